"""Raw denoising driven by a Poisson-Gaussian noise model, on demosaiced camera RGB.

Pipeline (one call of :func:`denoise`):

1. Noise model: variance = S*x + O per channel (DNG NoiseProfile, already scaled for the WB
   gains by ``develop``), or estimated from the image (:func:`estimate_noise_profile`).
2. Variance stabilisation: generalised Anscombe transform (GAT, Starck, Murtagh, Bijaoui 1998;
   Makitalo & Foi 2013) with one (alpha, sigma) shared by the three channels, so that a grey
   pixel stays grey and the chroma channels carry no luma structure.
3. Orthonormal opponent transform (Y, C1, C2): white noise stays white; luma and chroma get
   their own noise level and strength.
4. Denoising with a two-pass sliding-window DCT filter: hard thresholding, then an empirical
   Wiener filter that uses the first pass as pilot (Yu & Sapiro 2011, "DCT image denoising: a
   simple and effective image denoising algorithm", IPOL; the Wiener second step and the
   aggregation weights follow Dabov, Foi, Katkovnik, Egiazarian 2007, BM3D, §2.3-2.4, without
   block matching). A coarse scale (2x2 box-downsampled) is denoised first and its low
   frequencies replace those of the fine scale (multi-scale DCT, Facciolo, Pierazzo, Morel
   2017, "Conservative scale recomposition for multiscale denoising"), which removes the
   low-frequency noise that 8x8 patches cannot see at high ISO. Chroma is filtered more
   strongly.
5. Inverse opponent transform and the closed-form approximation of the exact unbiased inverse
   GAT (Makitalo & Foi 2013, IEEE TIP 22(1), eq. 9 / §III-B).

Demosaicing correlates the noise; following Jin, Facciolo, Morel (CVPRW 2020) the filter uses
a noise level above the raw one (``LUMA_SIGMA_FACTOR``, ``CHROMA_SIGMA_FACTOR``, tuned on
synthetic raws, see bench/quality_denoise.py).
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
from numba import njit, prange

from ..errors import InputError, OptionError
from ..raw.image import CFAPattern
from ..recipe import Denoise

_BAYER = CFAPattern.bayer("RGGB")

MODES: tuple[str, ...] = ("auto", "off", "manual")

# Noise-level multipliers on the stabilised (unit-variance) raw noise, for 'auto'. Tuned on
# the synthetic Kodak/McMaster raws (bench/quality_denoise.py) with the default demosaic.
LUMA_SIGMA_FACTOR = 1.0
CHROMA_SIGMA_FACTOR = 1.0

_PATCH = 8
_HARD_LAMBDA = 2.7  # BM3D's hard threshold (Dabov et al. 2007, Table 1) in units of sigma
# Orthonormal opponent transform: rows are Y, C1 (R-B), C2 (R-2G+B).
OPPONENT = np.array(
    [[1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
     [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
     [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)]],
    dtype=np.float64,
)


# --------------------------------------------------------------------------------------------
# Variance stabilisation


def gat_forward(x: np.ndarray, alpha: float, sigma2: float) -> np.ndarray:
    """Generalised Anscombe transform: variance alpha*x + sigma2 -> ~1 (Makitalo & Foi 2013, eq. 1).

    f(x) = 2/alpha * sqrt(alpha*x + 3/8*alpha^2 + sigma2), argument clipped at 0.
    """
    a = np.float32(alpha)
    arg = x * a + np.float32(0.375 * alpha * alpha + sigma2)
    np.maximum(arg, 0.0, out=arg)
    return np.sqrt(arg) * np.float32(2.0 / alpha)


def gat_inverse(d: np.ndarray, alpha: float, sigma2: float) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse GAT (Makitalo & Foi 2013, §III-B).

    In photon units z = x/alpha, sigma_z^2 = sigma2/alpha^2:
    z = D^2/4 + sqrt(3/2)/4 D^-1 - 11/8 D^-2 + 5/8 sqrt(3/2) D^-3 - 1/8 - sigma_z^2.
    Below D = 1 (never reached with read noise of a few electrons) the algebraic inverse is used.
    """
    s32 = math.sqrt(1.5)
    sz2 = sigma2 / (alpha * alpha)
    dd = np.maximum(d.astype(np.float32), np.float32(1.0))
    inv = 1.0 / dd
    z = 0.25 * dd * dd + inv * (0.25 * s32 + inv * (-11.0 / 8.0 + inv * (0.625 * s32))) - 0.125
    z = z - np.float32(sz2)
    return (z * np.float32(alpha)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Sliding-window DCT filter (numpy + BLAS; the hot part is two 64x64 GEMMs per pass)


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (rows are basis vectors)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


_D8 = _dct_matrix(_PATCH)
_K = np.kron(_D8, _D8).astype(np.float32)  # vec_r(D P D^T) = K vec_r(P)
_KT = np.ascontiguousarray(_K.T)


def _pad_for(img: np.ndarray, step: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad by one patch on each side, plus enough that the patch grid ends on the edge."""
    p = _PATCH
    h, w = img.shape
    hp, wp = h + 2 * p, w + 2 * p
    extra_h = (-(hp - p)) % step
    extra_w = (-(wp - p)) % step
    mode = "reflect" if min(h, w) > p + max(extra_h, extra_w) else "symmetric"
    padded = np.pad(img, ((p, p + extra_h), (p, p + extra_w)), mode=mode)
    return np.ascontiguousarray(padded, np.float32), h, w


def _patches(img: np.ndarray, step: int, r0: int, r1: int) -> np.ndarray:
    """Patch rows r0..r1 of the grid as (n_rows*n_cols, 64) float32."""
    p = _PATCH
    win = np.lib.stride_tricks.sliding_window_view(img, (p, p))[::step, ::step]
    blk = win[r0:r1]
    return np.ascontiguousarray(blk.reshape(-1, p * p))


def _aggregate_numpy(acc: np.ndarray, wacc: np.ndarray, rec: np.ndarray, wts: np.ndarray,
                     step: int, r0: int, nr: int, nc: int) -> None:
    """Reference: add weighted patches (nr*nc, 64) back at their positions (in place)."""
    p = _PATCH
    rec = rec.reshape(nr, nc, p, p)
    wts = wts.reshape(nr, nc)
    y0 = r0 * step
    for a in range(p):
        ys = slice(y0 + a, y0 + a + step * (nr - 1) + 1, step)
        for b in range(p):
            xs = slice(b, b + step * (nc - 1) + 1, step)
            acc[ys, xs] += rec[:, :, a, b] * wts
            wacc[ys, xs] += wts


@njit(parallel=True, cache=True)
def _aggregate_numba(acc, wacc, rec, wts, step, r0, nr, nc):  # pragma: no cover - numba
    p = 8
    groups = (p + step - 1) // step  # patch rows this far apart never overlap
    for g in range(groups):
        n_g = (nr - g + groups - 1) // groups
        for k in prange(n_g):
            i = g + k * groups
            y0 = (r0 + i) * step
            for j in range(nc):
                w = wts[i * nc + j]
                x0 = j * step
                base = i * nc + j
                for a in range(p):
                    for b in range(p):
                        acc[y0 + a, x0 + b] += rec[base, a * p + b] * w
                        wacc[y0 + a, x0 + b] += w


def dct_denoise(img: np.ndarray, sigma: float | np.ndarray, step: int = 2,
                pilot: np.ndarray | None = None, *, use_numba: bool = True) -> np.ndarray:
    """One pass of sliding 8x8 DCT denoising of a 2-D float32 image with white noise ``sigma``.

    Without ``pilot``: hard thresholding at 2.7 sigma, aggregation weights 1/#kept
    (Yu & Sapiro 2011; Dabov et al. 2007 §2.3). With ``pilot``: empirical Wiener shrinkage
    P^2/(P^2 + sigma^2) from the pilot's DCT, weights 1/sum(shrink^2) (Dabov et al. 2007 §2.4).
    Patches every ``step`` pixels in both directions. ``sigma`` is a scalar (white noise) or
    64 noise standard deviations, one per DCT coefficient (row-major 8x8; coloured noise, as
    after demosaicing: Makinen, Azzari, Foi 2020, "Collaborative filtering of correlated
    noise", uses the same per-coefficient variances).
    """
    sig = np.broadcast_to(np.asarray(sigma, np.float32), (_PATCH * _PATCH,))
    if not np.any(sig > 0):
        return np.array(img, dtype=np.float32, copy=True)
    p = _PATCH
    x, h, w = _pad_for(np.asarray(img, np.float32), step)
    pil = _pad_for(np.asarray(pilot, np.float32), step)[0] if pilot is not None else None
    n_rows = (x.shape[0] - p) // step + 1
    n_cols = (x.shape[1] - p) // step + 1
    acc = np.zeros_like(x)
    wacc = np.zeros_like(x)
    s2 = np.ascontiguousarray(sig * sig, np.float32)
    thr = np.ascontiguousarray(np.float32(_HARD_LAMBDA) * sig, np.float32)
    chunk = max(1, 65536 // n_cols)
    for r0 in range(0, n_rows, chunk):
        r1 = min(n_rows, r0 + chunk)
        c = _patches(x, step, r0, r1) @ _KT
        if pil is None:
            keep = np.abs(c) >= thr
            keep[:, 0] = True
            c *= keep
            wts = 1.0 / np.count_nonzero(keep, axis=1).astype(np.float32)
        else:
            cp = _patches(pil, step, r0, r1) @ _KT
            cp *= cp
            shrink = cp / (cp + s2 + np.float32(1e-20))
            c *= shrink
            wts = 1.0 / np.maximum((shrink * shrink).sum(axis=1), np.float32(1e-3))
        rec = c @ _K
        agg = _aggregate_numba if use_numba else _aggregate_numpy
        agg(acc, wacc, np.ascontiguousarray(rec, np.float32), wts.astype(np.float32), step, r0,
            r1 - r0, n_cols)
    out = acc / np.maximum(wacc, np.float32(1e-12))
    return np.ascontiguousarray(out[p : p + h, p : p + w], np.float32)


def _down2(img: np.ndarray) -> np.ndarray:
    """2x2 box average (odd sizes: last row/column repeated). White noise sigma -> sigma/2."""
    h, w = img.shape
    x = img
    if h % 2 or w % 2:
        x = np.pad(img, ((0, h % 2), (0, w % 2)), mode="edge")
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def _up2(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    up = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(up[: shape[0], : shape[1]], np.float32)


def denoise_channel(img: np.ndarray, sigma: float | np.ndarray, step: int = 2) -> np.ndarray:
    """Two-pass DCT denoising (hard threshold, then Wiener) of one channel.

    ``sigma``: scalar or (64,) per-DCT-coefficient noise standard deviations.
    """
    x = np.asarray(img, np.float32)
    basic = dct_denoise(x, sigma, step)
    return dct_denoise(x, sigma, step, pilot=basic)


def denoise_channel_half(img: np.ndarray, sigma_half: float | np.ndarray,
                         step: int = 2) -> np.ndarray:
    """Denoise at half resolution and subtract the removed noise, upsampled, from the input.

    For chroma after demosaicing, whose noise is mostly low-frequency: the 2x2 box average
    moves it into the band an 8x8 patch sees, at a quarter of the cost.
    """
    x = np.asarray(img, np.float32)
    low = _down2(x)
    removed = low - denoise_channel(low, sigma_half, step)
    return np.ascontiguousarray(x - _up2(removed, x.shape), np.float32)


# --------------------------------------------------------------------------------------------
# Noise spectrum after demosaicing


@lru_cache(maxsize=32)
def _noise_psd_cached(method: str | None, rel: tuple[float, float, float]) -> np.ndarray:
    n = 192
    rng = np.random.default_rng(12345)
    grid = _BAYER.masks(n, n)
    amp = 0.01
    std = sum(math.sqrt(rel[c]) * grid[c] for c in range(3)).astype(np.float32) * amp
    z = rng.standard_normal((n, n)).astype(np.float32) * std
    if method is None:  # no demosaicing: noise stays white, one value per site
        noise = rng.standard_normal((n, n, 3)).astype(np.float32) * np.sqrt(
            np.asarray(rel, np.float32)) * amp
    else:
        from .demosaic import demosaic as _demosaic

        base = np.full((n, n), 0.25, np.float32)
        noise = _demosaic(base + z, _BAYER, method) - _demosaic(base, _BAYER, method)
    o = (noise / amp) @ OPPONENT.T.astype(np.float32)
    out = np.zeros((2, 3, _PATCH * _PATCH), np.float32)
    for lev in range(2):
        for c in range(3):
            ch = np.ascontiguousarray(o[16:-16, 16:-16, c])
            if lev:
                ch = _down2(ch)
            pt = _patches(ch, 2, 0, 10**6) @ _KT
            out[lev, c] = np.sqrt(np.mean(pt * pt, axis=0))
    out.setflags(write=False)
    return out


def noise_psd(method: str | None, rel: np.ndarray) -> np.ndarray:
    """(2, 3, 64): noise std per 8x8 DCT coefficient of Y, C1, C2, at full and half resolution.

    Measured by pushing a flat mosaic with unit stabilised noise (relative variance ``rel`` per
    colour) through ``demosaic(method)``; None means no demosaicing (white noise).
    """
    key = tuple(round(float(v), 2) for v in rel)
    return _noise_psd_cached(method, key)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Noise estimation


def estimate_noise_profile(rgb: np.ndarray, bands: int = 12,
                           demosaic_method: str | None = "auto") -> np.ndarray:
    """Estimate (3, 2) [S, O] (variance = S*x + O) per channel from one demosaiced image.

    Foi, Trimeche, Katkovnik, Egiazarian 2008 ("Practical Poissonian-Gaussian noise modeling
    and fitting for single-image raw-data", IEEE TIP 17(10)) in simplified form: a high-pass
    (a pixel minus the mean of its 4-neighbours, unit gain on white noise) is measured in 8x8
    blocks; each block gives its mean intensity and a robust variance (median absolute
    deviation / 0.6745, Donoho & Johnstone 1994). Blocks are binned by intensity; in each band
    a low quantile of the block variances keeps the flat (texture-free) blocks; S and O are a
    non-negative weighted least-squares line through the bands. The result is divided by the
    same estimator's response to unit raw noise pushed through ``demosaic_method`` (demosaicing
    lowers and correlates the noise; the low quantile sits below the mean).
    """
    x = np.asarray(rgb, np.float32)
    if x.ndim != 3 or x.shape[2] != 3:
        raise InputError(f"denoise needs (H, W, 3) RGB, got shape {x.shape}")
    b = _EST_BLOCK
    if x.shape[0] < 2 * b or x.shape[1] < 2 * b:
        return np.zeros((3, 2))
    gain = _estimator_gain(demosaic_method)
    out = np.zeros((3, 2))
    for c in range(3):
        mb, var = _block_stats(x[..., c])
        lo, hi = np.quantile(mb, [0.01, 0.99])
        edges = np.linspace(lo, hi, bands + 1)
        xs, vs, ws = [], [], []
        for i in range(bands):
            sel = (mb >= edges[i]) & (mb <= edges[i + 1])
            n = int(sel.sum())
            if n < 8:
                continue
            xs.append(float(mb[sel].mean()))
            vs.append(float(np.quantile(var[sel], _EST_Q)))
            ws.append(math.sqrt(n))
        s_c, o_c = _fit_line_nonneg(np.array(xs), np.array(vs), np.array(ws))
        out[c] = (s_c / gain[c], o_c / gain[c])
    return out


_EST_BLOCK = 8
_EST_Q = 0.2
_HP = np.array([[0, -0.25, 0], [-0.25, 1, -0.25], [0, -0.25, 0]], np.float32)
_HP /= math.sqrt(float((_HP * _HP).sum()))


def _block_stats(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 8x8 block: mean value and robust (MAD) variance of the high-pass."""
    b = _EST_BLOCK
    h, w = (channel.shape[0] // b) * b, (channel.shape[1] // b) * b
    ch = np.ascontiguousarray(channel[:h, :w], np.float32)
    hp = cv2.filter2D(ch, cv2.CV_32F, _HP, borderType=cv2.BORDER_REFLECT_101)
    hb = hp.reshape(h // b, b, w // b, b).transpose(0, 2, 1, 3).reshape(-1, b * b)
    mb = ch.reshape(h // b, b, w // b, b).mean(axis=(1, 3)).reshape(-1)
    med = np.median(hb, axis=1, keepdims=True)
    mad = np.median(np.abs(hb - med), axis=1) / 0.6745
    return mb.astype(np.float64), mad.astype(np.float64) ** 2


@lru_cache(maxsize=8)
def _estimator_gain(method: str | None) -> np.ndarray:
    """The estimator's output per channel for unit raw noise on a flat field (see above)."""
    n = 256
    rng = np.random.default_rng(54321)
    amp = 0.01
    z = rng.standard_normal((n, n)).astype(np.float32) * amp
    if method is None:
        noise = rng.standard_normal((n, n, 3)).astype(np.float32) * amp
    else:
        from .demosaic import demosaic as _demosaic

        base = np.full((n, n), 0.25, np.float32)
        noise = _demosaic(base + z, _BAYER, method) - _demosaic(base, _BAYER, method)
    g = np.array([np.quantile(_block_stats(noise[8:-8, 8:-8, c] / amp)[1], _EST_Q)
                  for c in range(3)])
    if method is not None:
        # On real scenes edge-directed demosaicing averages less than on a flat field: the
        # measured over-estimate on synthetic raws (kodim02, kodim03, McMaster 1; ISO 800 and
        # 3200, bench/quality_denoise.py) is taken out.
        g = g * _TEXTURE_CORRECTION
    return np.maximum(g, 1e-6)


_TEXTURE_CORRECTION = np.array([0.95, 2.0, 1.8])


def _fit_line_nonneg(x: np.ndarray, v: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    if x.size == 0:
        return 0.0, 0.0
    if x.size == 1:
        return 0.0, float(max(v[0], 0.0))
    a = np.stack([x, np.ones_like(x)], axis=1) * w[:, None]
    sol, *_ = np.linalg.lstsq(a, v * w, rcond=None)
    s, o = float(sol[0]), float(sol[1])
    if s < 0:
        s, o = 0.0, float(np.average(v, weights=w))
    if o < 0:
        o = 0.0
        s = float(max(np.sum(w * w * x * v) / max(np.sum(w * w * x * x), 1e-30), 0.0))
    return s, o


# --------------------------------------------------------------------------------------------


def _strengths(settings: Denoise) -> tuple[float, float]:
    if settings.mode == "auto":
        base = 1.0
    elif settings.mode == "manual":
        st = float(settings.strength)
        if not 0.0 <= st <= 1.0 or not math.isfinite(st):
            raise OptionError(f"denoise strength must be in 0..1, got {settings.strength!r}")
        base = 2.0 * st  # 0.5 = the noise-model level of 'auto'
    else:
        raise OptionError(f"unknown denoise mode {settings.mode!r}; valid: {', '.join(MODES)}")
    for name in ("luma", "chroma"):
        v = float(getattr(settings, name))
        if not (v >= 0.0 and math.isfinite(v)):
            raise OptionError(f"denoise {name} multiplier must be >= 0, got {v!r}")
    return base * float(settings.luma), base * float(settings.chroma)


def denoise(
    rgb: np.ndarray,
    settings: Denoise | None = None,
    noise_profile: np.ndarray | None = None,
    iso: float | None = None,
    *,
    demosaic_method: str | None = "auto",
    step: int = 2,
    chroma_half: bool = True,
) -> np.ndarray:
    """Denoise white-balanced linear camera RGB (H, W, 3) float32; returns a new array.

    ``noise_profile`` is (3, 2) [S, O] per channel (variance = S*x + O) or None (estimated
    from the image). ``iso`` is informational (the model already encodes it).
    ``demosaic_method`` is the method that made ``rgb`` (its noise spectrum is measured once
    and cached; None: not demosaiced, white noise). ``step`` is the patch grid spacing
    (1 = every pixel: best, slowest). ``chroma_half``: filter chroma at half resolution.
    """
    s = settings or Denoise()
    if s.mode == "off":
        return rgb
    luma_k, chroma_k = _strengths(s)
    x = np.asarray(rgb)
    if x.ndim != 3 or x.shape[2] != 3:
        raise InputError(f"denoise needs (H, W, 3) RGB, got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if noise_profile is None:
        prof = estimate_noise_profile(x, demosaic_method=demosaic_method)
    else:
        prof = np.asarray(noise_profile, np.float64)
        if prof.shape not in ((3, 2), (1, 2), (2,)):
            raise InputError(f"noise profile must be (3, 2) [S, O] per channel, got {prof.shape}")
        prof = prof.reshape(-1, 2)
        if prof.shape[0] == 1:
            prof = np.repeat(prof, 3, axis=0)
        if prof.shape != (3, 2) or not np.all(np.isfinite(prof)):
            raise InputError(f"noise profile must be (3, 2) [S, O] per channel, got {prof!r}")
        prof = np.maximum(prof, 0.0)
    if (luma_k == 0 and chroma_k == 0) or not np.any(prof > 0):
        return x.copy()
    alpha = max(float(prof[:, 0].mean()), 1e-12)
    sigma2 = float(prof[:, 1].mean())
    if float(prof[:, 0].max()) < 1e-9:  # pure Gaussian noise: make the GAT an affine map
        alpha = math.sqrt(max(sigma2, 1e-20)) * 1e-3
    # Residual per-channel variance after the shared GAT, evaluated at mid-grey.
    xm = 0.18
    rel = (prof[:, 0] * xm + prof[:, 1]) / (alpha * xm + sigma2)
    psd = noise_psd(demosaic_method, rel)
    y = gat_forward(x, alpha, sigma2)
    t = OPPONENT.astype(np.float32)
    o = y @ t.T
    out = np.empty_like(o)
    out[..., 0] = denoise_channel(np.ascontiguousarray(o[..., 0]),
                                  psd[0, 0] * (LUMA_SIGMA_FACTOR * luma_k), step)
    ck = CHROMA_SIGMA_FACTOR * chroma_k
    for c in (1, 2):
        ch = np.ascontiguousarray(o[..., c])
        if chroma_half and min(x.shape[:2]) >= 4 * _PATCH:
            out[..., c] = denoise_channel_half(ch, psd[1, c] * ck, step)
        else:
            out[..., c] = denoise_channel(ch, psd[0, c] * ck, step)
    y2 = out @ t  # orthonormal: inverse = transpose
    res = gat_inverse(y2, alpha, sigma2)
    return np.ascontiguousarray(res, np.float32)
