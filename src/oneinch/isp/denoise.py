"""Raw denoising driven by a Poisson-Gaussian noise model, on demosaiced camera RGB.

Pipeline (one call of :func:`denoise`):

1. Noise model: variance = S*x + O per channel (DNG NoiseProfile, already scaled for the WB
   gains by ``develop``), or estimated from the image: by ``develop`` on the mosaic
   (:func:`estimate_mosaic_noise`; a binned preview on its pixels, :func:`estimate_binned_noise`),
   else on the RGB (:func:`estimate_noise_profile`).
2. Variance stabilisation: generalised Anscombe transform (GAT, Starck, Murtagh, Bijaoui 1998;
   Makitalo & Foi 2013) with one (alpha, sigma) shared by the three channels, so that a grey
   pixel stays grey and the chroma channels carry no luma structure.
3. Orthonormal opponent transform (Y, C1, C2): white noise stays white; luma and chroma get
   their own noise level and strength.
4. Denoising with a sliding-window DCT filter: hard thresholding, then (the 'full' tier) an
   empirical Wiener filter that uses the first pass as pilot (Yu & Sapiro 2011, "DCT image
   denoising: a simple and effective image denoising algorithm", IPOL; the Wiener second step
   and the aggregation weights follow Dabov, Foi, Katkovnik, Egiazarian 2007, BM3D, §2.3-2.4,
   without block matching); the lighter tiers use one pass of the non-negative garrote.
   Luma is filtered at full resolution. Chroma is filtered on a 2x2 box-downsampled copy
   and the noise removed there, upsampled, is subtracted (the coarse scale of a multi-scale
   DCT, Facciolo, Pierazzo, Morel 2017, "Conservative scale recomposition for multiscale
   denoising"): the 8x8 patches then reach the low frequencies at a quarter of the cost. The
   chroma above that copy's band (the full-resolution chroma minus the bilinear upsampling of
   its box average) goes through a pointwise non-negative garrote at a multiple of its own
   noise level (``Tier.fine``; that level measured, like the DCT spectrum, on noise pushed
   through the demosaic): the two scales of a Laplacian-pyramid-like split, coarse by
   patches, fine by pixels. Until session 11 the fine band was kept as demosaicing left it,
   on the belief that demosaiced chroma noise is low-frequency; it was most of the chroma
   noise a pixel shows (ISO 3200, 42 images: +1.1 dB, SSIM +0.076 with it garroted; filtering
   chroma at full resolution instead measured below that at 2-5x the time). (A coarse scale
   for luma too, its low frequencies replacing the fine result's, measured no better at ISO
   3200 and 12800, session 10.)
5. Inverse opponent transform and the closed-form approximation of the exact unbiased inverse
   GAT (Makitalo & Foi 2013, IEEE TIP 22(1), eq. 9 / §III-B).

Demosaicing correlates the noise; following Jin, Facciolo, Morel (CVPRW 2020) the filter uses
a noise level above the raw one where that measures better (``LUMA_SIGMA_FACTOR``,
``Tier.chroma_k``, tuned on synthetic raws, see bench/quality_denoise.py).

Tiers ('auto' picks by :func:`noise_level`, and filters nothing below ``AUTO_MIN_NOISE``, where
every tier measured below the unfiltered image; 'manual' always 'full'). Binned previews
(``binned``) filter chroma at full resolution. PSNR of displayed sRGB on
the quick subset (kodim01, kodim02, McMaster 1, whole images; ``bench/quality_denoise.py
--quick``), ms/MP at 12 MP on the shared 2-core machine (``--speed``, min of 3; load-dependent):

    tier    luma             chroma                      ISO100  ISO800  ISO3200  ISO12800  ms/MP
    noisy   -                -                           39.32   30.05   23.63    17.07     -
    light   garrote, step 5  1/2 res, garrote, step 3    39.84   32.14   26.74    21.36     ~17
            (lambda 1.2)     fine band 1.5
    medium  garrote, step 3  1/2 res, garrote, step 2    39.80   32.39   27.67    23.02     ~22
                             (chroma_k 1.1) fine 2.5
    full    2-pass, step 2   1/2 res, 2-pass, step 2     39.96   32.60   27.92    23.35     ~41
            (pilot step 3)   (pilot step 3, chroma_k 1.1) fine 4
    auto    picks light / medium / full / full: 39.84 / 32.39 / 27.92 / 23.35
            (SSIM 0.9708 / 0.8936 / 0.7909 / 0.6200)
    ('fine': the fine-band garrote's multiple, taken by the noise level, see ``Tier``; a
    tier run off its own noise level takes the one of the level: the light row at ISO 800
    garrotes at 2.5. ms/MP of session 14 (whole-image calls, whose parallel kernels the
    ahead-of-time module runs on one thread), after the DCT passes went from double to
    single precision: light 17, medium 22, full 41; the light tier's luma and chroma
    passes alone: 6.3 -> 5.2 and 10.6 -> 6.3 ns a pixel of their planes. Earlier figures,
    measured in a faster phase of the machine than the figures below:
    the same run gave light 11 -> 10 ms/MP without the fine band; medium and full were ~35
    and ~57 until session 12 vectorised their backward pass. Until session 13 the light
    tier left luma untouched: 39.72 / 31.03 / 24.68 / 18.15 (SSIM 0.9692 at ISO 100),
    ~11 ms/MP; its luma filter costs 1.6x that, measured in one run (14.6 -> 23.1 ms/MP in a
    slower phase). Until session 11, no fine band: auto 39.65 / 31.97 / 27.15 / 21.91, SSIM
    0.9679 / 0.8712 / 0.7357 / 0.4777, light ~13, medium ~43, full ~80 ms/MP in a slower
    phase.
    Before the numba kernels the full method took ~2100-3500 ms/MP; before the DCT kernel
    ran across patches in SIMD: ~20-55 / 65-150 / 160-215; before session 10 chroma was
    filtered at its noise level, x1: medium 39.69 / 31.91 / 26.84 / 21.59, full 39.75 / 32.00
    / 27.05 / 21.88)

'2-pass' is hard thresholding then the Wiener pass; 'garrote' one pass of the non-negative
garrote (``Tier.garrote``). Until session 9 light and medium were 2-pass: light at chroma step
4 (39.56 / 30.75 / 24.41 / 17.83, 15 ms/MP in the same run), medium at luma step 4, chroma
step 3 (39.61 / 31.78 / 26.75 / 21.62, 50 ms/MP). On all 42 images (Kodak-24 + McMaster-18,
bench/quality_denoise.py's synthetic cases), PSNR / SSIM, the garrote tiers against those:
light at ISO 100 40.70 / 0.9688 against 40.62 / 0.9678 (noisy 40.33 / 0.9647), ISO 250 36.95
/ 0.9322 against 36.85 / 0.9303; medium at ISO 800 33.26 / 0.8770 against 33.16 / 0.8756,
ISO 1600 30.77 / 0.8177 against 30.69 / 0.8184. At these noise levels a finer patch grid buys
more than the Wiener pass. One hard-threshold pass measured about as well (ISO 100 40.65 /
0.9682), but a hard threshold is discontinuous: a last-bit difference between a strip and the
whole image flipped a coefficient (3.7e-4 in a develop test). At ISO 3200 the Wiener pass wins
(12 images: garrote at luma and chroma step 2, lambda 2.0: -0.18 dB, SSIM -0.013), so full
keeps it; its hard pilot pass is every 3 px since session 9 (was 2: 39.74 / 32.00 / 27.05 /
21.88, 90 ms/MP; the SSIM the same or higher, see ``TIERS``).

The pointwise stages (GAT, opponent transform, chroma box-downsampling; and back, with the
bilinear upsampling of the removed chroma noise and the inverse GAT) are two fused numba
passes; the DCT filter is one fused numba kernel per pass (see ``_dct_pass_nb``). When
luma is left untouched (a luma strength of 0) the backward pass skips the opponent round
trip (T is orthonormal). All kernels release the GIL, so two strips denoise at once. Every stage is
local, so a strip of rows with :func:`margin` rows of context and its global ``row0`` gives
the same rows as the whole image.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .. import _aot as aot
from .. import _jit
from .._jit import njit, prange
from ..errors import InputError, OptionError
from ..raw.image import CFAPattern
from ..recipe import DENOISE_MODES, Denoise
from ._demosaic_rcd import _refl  # reflect-101 index (numba, inlined)

_BAYER = CFAPattern.bayer("RGGB")

MODES: tuple[str, ...] = DENOISE_MODES

# Noise-level multiplier of luma on the stabilised (unit-variance) raw noise. Tuned on the
# synthetic Kodak/McMaster raws (bench/quality_denoise.py) with the default demosaic; chroma's
# is per tier (Tier.chroma_k).
LUMA_SIGMA_FACTOR = 1.0

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
# Sliding-window DCT filter
#
# Fast path (numba, ``_dct_pass_nb``): the 2-D 8x8 DCT is separable, so for one row of patches
# (a band of 8 image rows) the vertical 8-point DCT of every column is computed once and shared
# by all horizontally overlapping patches; each patch then needs only 8 horizontal 8-point DCTs,
# its shrinkage, 8 inverse horizontal DCTs, and an accumulation into a band buffer that is still
# in the vertical-frequency domain (the inverse vertical DCT is linear, so it is applied once per
# band after all its patches). The 8-point DCTs use the even/odd split (32 multiply-adds instead
# of 64). The per-patch work runs across patches, not within one: the band's columns are stored
# as ``step`` residue planes (column jj*step + m at m*nj + jj), where sample k of patch j is at
# a fixed offset plus j, so the horizontal DCTs, shrinkage, weights, inverse DCTs and the
# accumulation are unit-stride loops over a block of patches that LLVM turns into SIMD (8-16
# patches per instruction); the residue <-> image-column interleave is spelt out for steps 2-4
# so that it vectorises too. Bands in one parallel batch are >= 8 rows apart, so no two threads
# write the same row. Borders are reflected by index (no padded copy). Reference: the BLAS/numpy
# path below.


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


def _grid_start(row0: int, step: int) -> int:
    """First patch row (local coordinates, in [-8, -8 + step)) of the global grid -8 + k*step
    for an image whose first row is global row ``row0``."""
    return -_PATCH + ((-row0) % step)




# float32 constants: Python floats are float64 to numba, and a float32 times one is computed
# in double precision and converted back (perf had the DCT passes in vmulpd / vcvtpd2ps)
_C = [math.cos(j * math.pi / 16) for j in range(8)]
_A0 = np.float32(math.sqrt(1 / 8))
_H1, _H2, _H3, _H4 = (np.float32(0.5 * _C[k]) for k in (1, 2, 3, 4))
_H5, _H6, _H7 = (np.float32(0.5 * _C[k]) for k in (5, 6, 7))


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _fdct8(x0, x1, x2, x3, x4, x5, x6, x7):  # pragma: no cover - numba
    """Orthonormal 8-point DCT-II by the even/odd split (32 multiplies)."""
    s0, s1, s2, s3 = x0 + x7, x1 + x6, x2 + x5, x3 + x4
    d0, d1, d2, d3 = x0 - x7, x1 - x6, x2 - x5, x3 - x4
    return (_A0 * (s0 + s1 + s2 + s3),
            _H1 * d0 + _H3 * d1 + _H5 * d2 + _H7 * d3,
            _H2 * (s0 - s3) + _H6 * (s1 - s2),
            _H3 * d0 - _H7 * d1 - _H1 * d2 - _H5 * d3,
            _H4 * (s0 - s1 - s2 + s3),
            _H5 * d0 - _H1 * d1 + _H7 * d2 + _H3 * d3,
            _H6 * (s0 - s3) - _H2 * (s1 - s2),
            _H7 * d0 - _H5 * d1 + _H3 * d2 - _H1 * d3)


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _idct8(y0, y1, y2, y3, y4, y5, y6, y7):  # pragma: no cover - numba
    """Inverse (transpose) of :func:`_fdct8`."""
    a = _A0 * y0
    e0 = a + _H2 * y2 + _H4 * y4 + _H6 * y6
    e1 = a + _H6 * y2 - _H4 * y4 - _H2 * y6
    e2 = a - _H6 * y2 - _H4 * y4 + _H2 * y6
    e3 = a - _H2 * y2 + _H4 * y4 - _H6 * y6
    o0 = _H1 * y1 + _H3 * y3 + _H5 * y5 + _H7 * y7
    o1 = _H3 * y1 - _H7 * y3 - _H1 * y5 - _H5 * y7
    o2 = _H5 * y1 - _H1 * y3 + _H7 * y5 + _H3 * y7
    o3 = _H7 * y1 - _H5 * y3 + _H3 * y5 - _H1 * y7
    return e0 + o0, e1 + o1, e2 + o2, e3 + o3, e3 - o3, e2 - o2, e1 - o1, e0 - o0


_JB = 128  # patches per block (measured: 32-128 within a few %; 128 slightly best)


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _res_span(s, nj, w):  # pragma: no cover - numba
    """Residue columns jj in [jlo, jhi) whose s band columns jj*s .. jj*s+s-1 are all image
    columns (band column xi = image column xi - 8)."""
    jlo = (8 + s - 1) // s
    jhi = max(jlo, min((w + 8) // s, nj))
    return jlo, jhi


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _to_res(row, pcols, s, nj, w, dst):  # pragma: no cover - numba
    """Gather one image row into residue order (dst[m*nj + jj] = band column jj*s + m).
    Steps 2-4 spell the interleave out with a constant stride, which LLVM vectorises."""
    jlo, jhi = _res_span(s, nj, w)
    for m in range(s):
        for jj in range(jlo):
            dst[m * nj + jj] = row[pcols[m * nj + jj]]
        for jj in range(jhi, nj):
            dst[m * nj + jj] = row[pcols[m * nj + jj]]
    n = jhi - jlo
    src = row[jlo * s - 8:]
    if s == 4:
        d0, d1, d2, d3 = dst[jlo:], dst[nj + jlo:], dst[2 * nj + jlo:], dst[3 * nj + jlo:]
        for k in range(n):
            d0[k], d1[k], d2[k], d3[k] = src[4 * k], src[4 * k + 1], src[4 * k + 2], src[4 * k + 3]
    elif s == 3:
        d0, d1, d2 = dst[jlo:], dst[nj + jlo:], dst[2 * nj + jlo:]
        for k in range(n):
            d0[k], d1[k], d2[k] = src[3 * k], src[3 * k + 1], src[3 * k + 2]
    elif s == 2:
        d0, d1 = dst[jlo:], dst[nj + jlo:]
        for k in range(n):
            d0[k], d1[k] = src[2 * k], src[2 * k + 1]
    else:
        for m in range(s):
            dm = dst[m * nj + jlo:]
            for k in range(n):
                dm[k] = src[s * k + m]


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _add_from_res(src, s, nj, w, dst, first):  # pragma: no cover - numba
    """dst[x] += the residue-order band value of band column x + 8, for x in [0, w); ``first``
    (the row's first band): dst[x] = that value, dst not read (it may hold anything)."""
    jlo, jhi = _res_span(s, nj, w)
    for xx in range(min(jlo * s - 8, w)):
        xi = xx + 8
        v = src[(xi % s) * nj + xi // s]
        dst[xx] = v if first else dst[xx] + v
    for xx in range(max(jhi * s - 8, 0), w):
        xi = xx + 8
        v = src[(xi % s) * nj + xi // s]
        dst[xx] = v if first else dst[xx] + v
    n = jhi - jlo
    d = dst[jlo * s - 8:]
    if first:  # (loops of their own: the sums' memory is only written)
        for m in range(s):
            sm = src[m * nj + jlo:]
            for k in range(n):
                d[s * k + m] = sm[k]
    elif s == 4:
        s0, s1, s2, s3 = src[jlo:], src[nj + jlo:], src[2 * nj + jlo:], src[3 * nj + jlo:]
        for k in range(n):
            d[4 * k] += s0[k]
            d[4 * k + 1] += s1[k]
            d[4 * k + 2] += s2[k]
            d[4 * k + 3] += s3[k]
    elif s == 3:
        s0, s1, s2 = src[jlo:], src[nj + jlo:], src[2 * nj + jlo:]
        for k in range(n):
            d[3 * k] += s0[k]
            d[3 * k + 1] += s1[k]
            d[3 * k + 2] += s2[k]
    elif s == 2:
        s0, s1 = src[jlo:], src[nj + jlo:]
        for k in range(n):
            d[2 * k] += s0[k]
            d[2 * k + 1] += s1[k]
    else:
        for m in range(s):
            sm = src[m * nj + jlo:]
            for k in range(n):
                d[s * k + m] += sm[k]


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _vdct_band(img, rows, pcols, s, nj, r, dst):  # pragma: no cover - numba
    """Vertical DCT of the 8 (reflected) rows ``rows`` of ``img``, columns in residue order
    (see _to_res), into dst (8, s*nj)."""
    n = dst.shape[1]
    w = img.shape[1]
    for a in range(8):
        _to_res(img[rows[a]], pcols, s, nj, w, r[a])
    r0, r1, r2, r3, r4, r5, r6, r7 = r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]
    d0, d1, d2, d3, d4, d5, d6, d7 = (dst[0], dst[1], dst[2], dst[3], dst[4], dst[5], dst[6],
                                      dst[7])
    for p in range(n):
        t = _fdct8(r0[p], r1[p], r2[p], r3[p], r4[p], r5[p], r6[p], r7[p])
        d0[p], d1[p], d2[p], d3[p] = t[0], t[1], t[2], t[3]
        d4[p], d5[p], d6[p], d7[p] = t[4], t[5], t[6], t[7]


@njit(cache=True, inline="always", nogil=True)
def _rows8(a, b):  # pragma: no cover - numba
    """Rows b .. b+7 of a 2-D array, as eight views."""
    return a[b], a[b + 1], a[b + 2], a[b + 3], a[b + 4], a[b + 5], a[b + 6], a[b + 7]


@njit(cache=True, inline="always", nogil=True)
def _taps8(vk, offs, j0):  # pragma: no cover - numba
    """The eight samples of patches j0, j0+1, ... of one band row in residue order: sample k
    of patch j0 + jl is the jl-th element of the k-th view."""
    return (vk[offs[0] + j0:], vk[offs[1] + j0:], vk[offs[2] + j0:], vk[offs[3] + j0:],
            vk[offs[4] + j0:], vk[offs[5] + j0:], vk[offs[6] + j0:], vk[offs[7] + j0:])


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _garrote(t, q):  # pragma: no cover - numba
    """The non-negative garrote's factor for coefficient t and squared threshold q."""
    return max(np.float32(1.0) - q / max(t * t, np.float32(1e-30)), np.float32(0.0))


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _hdct_shrink(v, offs, j0, nb, thr, cb, wsum, garrote):  # pragma: no cover - numba
    """Horizontal DCTs of patches j0 .. j0+nb-1 into cb (64, _JB), shrunk, and per patch the
    sum the aggregation weight is the inverse of into wsum. Sample k of patch j is
    v[kv, offs[k] + j] for every vertical frequency kv: unit stride in j.

    Hard threshold (``garrote`` False): a coefficient is kept or zeroed, wsum = the number
    kept. Non-negative garrote: coefficient c times s = max(0, 1 - thr^2 / c^2), wsum = the
    sum of s^2 (as the Wiener pass's weights). The DC is always kept (s = 1)."""
    z = np.float32(0.0)
    one = np.float32(1.0)
    for jl in range(nb):
        wsum[jl] = z
    for kv in range(8):
        x0, x1, x2, x3, x4, x5, x6, x7 = _taps8(v[kv], offs, j0)
        b = kv * 8
        c0, c1, c2, c3, c4, c5, c6, c7 = _rows8(cb, b)
        if garrote:
            q0 = thr[b] * thr[b] if kv > 0 else z
            q1, q2, q3 = thr[b + 1] * thr[b + 1], thr[b + 2] * thr[b + 2], thr[b + 3] * thr[b + 3]
            q4, q5 = thr[b + 4] * thr[b + 4], thr[b + 5] * thr[b + 5]
            q6, q7 = thr[b + 6] * thr[b + 6], thr[b + 7] * thr[b + 7]
            for jl in range(nb):
                t = _fdct8(x0[jl], x1[jl], x2[jl], x3[jl], x4[jl], x5[jl], x6[jl], x7[jl])
                s0, s1, s2, s3 = (_garrote(t[0], q0), _garrote(t[1], q1), _garrote(t[2], q2),
                                  _garrote(t[3], q3))
                s4, s5, s6, s7 = (_garrote(t[4], q4), _garrote(t[5], q5), _garrote(t[6], q6),
                                  _garrote(t[7], q7))
                c0[jl], c1[jl], c2[jl], c3[jl] = t[0] * s0, t[1] * s1, t[2] * s2, t[3] * s3
                c4[jl], c5[jl], c6[jl], c7[jl] = t[4] * s4, t[5] * s5, t[6] * s6, t[7] * s7
                wsum[jl] += (((s0 * s0 + s1 * s1) + (s2 * s2 + s3 * s3))
                             + ((s4 * s4 + s5 * s5) + (s6 * s6 + s7 * s7)))
            continue
        h0 = thr[b] if kv > 0 else np.float32(-1.0)
        h1, h2, h3, h4, h5, h6, h7 = (thr[b + 1], thr[b + 2], thr[b + 3], thr[b + 4],
                                      thr[b + 5], thr[b + 6], thr[b + 7])
        for jl in range(nb):
            t = _fdct8(x0[jl], x1[jl], x2[jl], x3[jl], x4[jl], x5[jl], x6[jl], x7[jl])
            k0, k1, k2, k3 = abs(t[0]) >= h0, abs(t[1]) >= h1, abs(t[2]) >= h2, abs(t[3]) >= h3
            k4, k5, k6, k7 = abs(t[4]) >= h4, abs(t[5]) >= h5, abs(t[6]) >= h6, abs(t[7]) >= h7
            c0[jl], c1[jl] = (t[0] if k0 else z), (t[1] if k1 else z)
            c2[jl], c3[jl] = (t[2] if k2 else z), (t[3] if k3 else z)
            c4[jl], c5[jl] = (t[4] if k4 else z), (t[5] if k5 else z)
            c6[jl], c7[jl] = (t[6] if k6 else z), (t[7] if k7 else z)
            wsum[jl] += (((one if k0 else z) + (one if k1 else z))
                         + ((one if k2 else z) + (one if k3 else z))
                         + ((one if k4 else z) + (one if k5 else z))
                         + ((one if k6 else z) + (one if k7 else z)))


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _hdct_block(v, offs, j0, nb, cb):  # pragma: no cover - numba
    """As _hdct_shrink without shrinkage (the Wiener pass shrinks in a separate loop: fused
    with the pilot's DCT it measured slower)."""
    for kv in range(8):
        x0, x1, x2, x3, x4, x5, x6, x7 = _taps8(v[kv], offs, j0)
        b = kv * 8
        c0, c1, c2, c3, c4, c5, c6, c7 = _rows8(cb, b)
        for jl in range(nb):
            t = _fdct8(x0[jl], x1[jl], x2[jl], x3[jl], x4[jl], x5[jl], x6[jl], x7[jl])
            c0[jl], c1[jl], c2[jl], c3[jl] = t[0], t[1], t[2], t[3]
            c4[jl], c5[jl], c6[jl], c7[jl] = t[4], t[5], t[6], t[7]


@aot.entry(noalias=True)  # writes only acc and wband (fresh); x and pil (may be x) are read
@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _dct_pass_nb(x, pil, has_pilot, garrote, thr, s2, step, oy, g0, acc, wband,
                 nchunk):  # pragma: no cover
    """One pass of the sliding-window DCT filter over every patch (see dct_denoise), adding
    weighted patches into acc; band i's aggregation weight per column goes to wband[i] (the
    8 rows of a band share it; _normalize_nb sums the bands that cover a row).

    Bands that overlap are added in turns (groups of bands 8 rows or more apart run in
    parallel); a band's turn is its index on the global grid (``g0`` = the global index of
    band 0) modulo the number of turns, so every row of a strip sums its bands in the order
    the whole image does: a strip's rows are bit for bit the whole image's.

    A band of 8 rows is kept in residue planes: band column xi = jj*step + m is stored at
    m*nj + jj, so sample k of patch j sits at offs[k] + j with offs[k] = (k % step)*nj +
    k // step. Every per-patch operation (horizontal DCT, shrinkage, weights, inverse DCT,
    accumulation) is then a unit-stride loop over a block of patches, which LLVM vectorises.
    """
    h, w = x.shape
    s = step
    n_rows = (h - 1 - oy) // s + 1
    n_cols = (w - 1 + 8) // s + 1
    wb = (n_cols - 1) * s + 8
    nj = n_cols + 7 // s
    npl = s * nj
    groups = (8 + s - 1) // s
    pcols = np.empty(npl, np.int64)  # residue order -> reflected image column
    for m in range(s):
        for jj in range(nj):
            pcols[m * nj + jj] = _refl(min(jj * s + m, wb - 1) - 8, w)
    offs = np.empty(8, np.int64)
    for k in range(8):
        offs[k] = (k % s) * nj + k // s
    eps = np.float32(1e-20)
    for gg in range(groups):
        g = (gg - g0) % groups  # the first local band whose global index is in turn gg
        n_g = (n_rows - g + groups - 1) // groups
        nch = max(1, min(n_g, nchunk))
        for ci in prange(nch):
            rows = np.empty(8, np.int64)
            r = np.empty((8, npl), np.float32)
            v = np.empty((8, npl), np.float32)
            pv = np.empty((8, npl) if has_pilot else (1, 1), np.float32)
            band = np.empty((8, npl), np.float32)
            wrow = np.empty(npl, np.float32)
            cb = np.empty((64, _JB), np.float32)
            tb = np.empty((8, _JB), np.float32)
            pb = np.empty((64, _JB) if has_pilot else (1, 1), np.float32)
            wt = np.empty(_JB, np.float32)
            for k in range(ci * n_g // nch, (ci + 1) * n_g // nch):
                i = g + k * groups
                y0 = oy + i * s
                for a in range(8):
                    rows[a] = _refl(y0 + a, h)
                band[:] = 0.0
                wrow[:] = 0.0
                _vdct_band(x, rows, pcols, s, nj, r, v)
                if has_pilot:
                    _vdct_band(pil, rows, pcols, s, nj, r, pv)
                for j0 in range(0, n_cols, _JB):
                    nb = min(_JB, n_cols - j0)
                    if has_pilot:
                        _hdct_block(v, offs, j0, nb, cb)
                        _hdct_block(pv, offs, j0, nb, pb)
                        for jl in range(nb):
                            wt[jl] = 0.0
                        for q in range(64):
                            cq = cb[q]
                            pq = pb[q]
                            sq = s2[q] + eps
                            for jl in range(nb):
                                p2 = pq[jl] * pq[jl]
                                sh = p2 / (p2 + sq)
                                cq[jl] *= sh
                                wt[jl] += sh * sh
                        for jl in range(nb):
                            wt[jl] = np.float32(1.0) / max(wt[jl], np.float32(1e-3))
                    else:
                        _hdct_shrink(v, offs, j0, nb, thr, cb, wt, garrote)
                        for jl in range(nb):
                            wt[jl] = np.float32(1.0) / wt[jl]  # (>= 1: the DC is kept)
                    t0, t1, t2, t3, t4, t5, t6, t7 = _rows8(tb, 0)
                    for kv in range(8):
                        c0, c1, c2, c3, c4, c5, c6, c7 = _rows8(cb, kv * 8)
                        for jl in range(nb):
                            ww = wt[jl]
                            t = _idct8(c0[jl], c1[jl], c2[jl], c3[jl], c4[jl], c5[jl],
                                       c6[jl], c7[jl])
                            t0[jl], t1[jl], t2[jl], t3[jl] = (ww * t[0], ww * t[1], ww * t[2],
                                                              ww * t[3])
                            t4[jl], t5[jl], t6[jl], t7[jl] = (ww * t[4], ww * t[5], ww * t[6],
                                                              ww * t[7])
                        bk = band[kv]
                        for u in range(8):
                            dst = bk[offs[u] + j0:]
                            tu = tb[u]
                            for jl in range(nb):
                                dst[jl] += tu[jl]
                    for u in range(8):
                        dst = wrow[offs[u] + j0:]
                        for jl in range(nb):
                            dst[jl] += wt[jl]
                # inverse vertical DCT of the band (residue order), added to its image rows
                b0, b1, b2, b3, b4, b5, b6, b7 = _rows8(band, 0)
                r0, r1, r2, r3, r4, r5, r6, r7 = _rows8(r, 0)
                for p in range(npl):
                    t = _idct8(b0[p], b1[p], b2[p], b3[p], b4[p], b5[p], b6[p], b7[p])
                    r0[p], r1[p], r2[p], r3[p] = t[0], t[1], t[2], t[3]
                    r4[p], r5[p], r6[p], r7[p] = t[4], t[5], t[6], t[7]
                _add_from_res(wrow, s, nj, w, wband[i], True)
                ti = (i + g0) % groups
                for a in range(8):
                    yy = y0 + a
                    if 0 <= yy < h:  # the row's first band (in turn order) sets its sums
                        first = True
                        for j in range(max(0, -((oy + 7 - yy) // s)),
                                       min(n_rows, (yy - oy) // s + 1)):
                            if j != i and (j + g0) % groups < ti:
                                first = False
                        _add_from_res(r[a], s, nj, w, acc[yy], first)


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _normalize_row(ay, wband, y, oy, step, dst):  # pragma: no cover - numba
    """dst = row y of the sums ``ay`` divided by the summed weights of the bands (rows oy +
    i*step .. +7) that cover it (dst may be ay)."""
    w = ay.shape[0]
    n_rows = wband.shape[0]
    ws = np.zeros(w, np.float32)
    for i in range(max(0, -((oy + 7 - y) // step)), min(n_rows, (y - oy) // step + 1)):
        wi = wband[i]
        for x in range(w):
            ws[x] += wi[x]
    for x in range(w):
        dst[x] = ay[x] / max(ws[x], np.float32(1e-12))


@aot.entry(noalias=True)  # acc in place; wband is read
@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _normalize_nb(acc, wband, oy, step):  # pragma: no cover - numba
    """acc /= the summed weights of the bands covering each row (:func:`_normalize_row`)."""
    for y in prange(acc.shape[0]):
        _normalize_row(acc[y], wband, y, oy, step, acc[y])
    return acc


def _pad_for(img: np.ndarray, step: int, oy: int = -_PATCH) -> tuple[np.ndarray, int, int]:
    """Reference padding: reflect by 8 - (oy + 8) rows on top, 8 columns left, and enough that
    the patch grid ends past the edge."""
    p = _PATCH
    h, w = img.shape
    top = -oy
    hp, wp = h + top + p, w + 2 * p
    extra_h = (-(hp - p)) % step
    extra_w = (-(wp - p)) % step
    mode = "reflect" if min(h, w) > p + max(extra_h, extra_w) else "symmetric"
    padded = np.pad(img, ((top, p + extra_h), (p, p + extra_w)), mode=mode)
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


def _dct_denoise_numpy(img: np.ndarray, sig: np.ndarray, step: int, pilot: np.ndarray | None,
                       oy: int, garrote: float = 0.0) -> np.ndarray:
    """Plain numpy/BLAS reference of :func:`dct_denoise` (padded copy, 64x64 GEMMs)."""
    p = _PATCH
    x, h, w = _pad_for(img, step, oy)
    pil = _pad_for(pilot, step, oy)[0] if pilot is not None else None
    n_rows = (x.shape[0] - p) // step + 1
    n_cols = (x.shape[1] - p) // step + 1
    acc = np.zeros_like(x)
    wacc = np.zeros_like(x)
    s2 = np.ascontiguousarray(sig * sig, np.float32)
    lam = garrote if garrote > 0 else _HARD_LAMBDA
    thr = np.ascontiguousarray(np.float32(lam) * sig, np.float32)
    chunk = max(1, 65536 // n_cols)
    for r0 in range(0, n_rows, chunk):
        r1 = min(n_rows, r0 + chunk)
        c = _patches(x, step, r0, r1) @ _KT
        if pil is None and garrote > 0:
            shrink = np.maximum(1.0 - thr * thr / np.maximum(c * c, np.float32(1e-30)), 0.0)
            shrink[:, 0] = 1.0
            shrink = shrink.astype(np.float32)
            c *= shrink
            wts = 1.0 / (shrink * shrink).sum(axis=1)
        elif pil is None:
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
        _aggregate_numpy(acc, wacc, np.ascontiguousarray(rec, np.float32),
                         wts.astype(np.float32), step, r0, r1 - r0, n_cols)
    out = acc / np.maximum(wacc, np.float32(1e-12))
    return np.ascontiguousarray(out[-oy : -oy + h, p : p + w], np.float32)


_TLS = threading.local()
_SCRATCH_MAX = 1 << 23  # floats (32 MB): a strip's full-resolution plane at 50 MP


def _scratch(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array (any content) from a per-thread buffer reused across calls (the band
    weights of :func:`dct_denoise`, every row of which its pass sets; never returned): mapped
    pages are far cheaper than the page faults of a fresh allocation per strip and pass."""
    n = int(np.prod(shape))
    if n > _SCRATCH_MAX:  # whole-image calls: do not keep a big buffer alive
        return np.empty(shape, np.float32)
    buf = getattr(_TLS, "buf", None)
    if buf is None or buf.size < n:
        buf = np.empty(n, np.float32)
        _TLS.buf = buf
    return buf[:n].reshape(shape)


def dct_denoise(img: np.ndarray, sigma: float | np.ndarray, step: int = 2,
                pilot: np.ndarray | None = None, *, use_numba: bool = True,
                row0: int = 0, garrote: float = 0.0, sums: bool = False) -> np.ndarray | tuple:
    """One pass of sliding 8x8 DCT denoising of a 2-D float32 image with white noise ``sigma``.

    Without ``pilot``: hard thresholding at 2.7 sigma, aggregation weights 1/#kept
    (Yu & Sapiro 2011; Dabov et al. 2007 §2.3); ``garrote`` > 0: the non-negative garrote at
    that many sigma instead (see ``TIERS``), weights 1/sum(shrink^2). With ``pilot``:
    empirical Wiener shrinkage P^2/(P^2 + sigma^2) from the pilot's DCT, weights
    1/sum(shrink^2) (Dabov et al. 2007 §2.4).
    Patches every ``step`` pixels in both directions, on the grid -8 + k*step of global rows
    (``row0`` = global index of the first row, for strips) and columns. ``sigma`` is a scalar
    (white noise) or 64 noise standard deviations, one per DCT coefficient (row-major 8x8;
    coloured noise, as after demosaicing: Makinen, Azzari, Foi 2020, "Collaborative filtering
    of correlated noise", uses the same per-coefficient variances).
    ``use_numba=False`` runs the plain numpy/BLAS reference. ``sums``: (weighted sums, band
    weights, grid start) before the normalisation (:func:`_normalize_nb`; a caller that
    divides as it reads them, the backward pass), or (result, None, 0) where the numpy path
    ran.
    """
    sig = np.ascontiguousarray(
        np.broadcast_to(np.asarray(sigma, np.float32), (_PATCH * _PATCH,)), np.float32)
    x = np.ascontiguousarray(img, np.float32)
    if not np.any(sig > 0):
        return (x.copy(), None, 0) if sums else x.copy()
    oy = _grid_start(row0, step)
    pil = None if pilot is None else np.ascontiguousarray(pilot, np.float32)
    if pil is not None:
        garrote = 0.0  # (a pilot: the Wiener pass)
    if not use_numba or min(x.shape) <= _PATCH + step:
        res = _dct_denoise_numpy(x, sig, step, pil, oy, garrote)
        return (res, None, 0) if sums else res
    # not calloc: the pass read each sum before adding to it, and a page of fresh calloc
    # memory is first read-mapped to the shared zero page, then copied on the write, each
    # copy a TLB flush on the other core (perf, 50 MP develop: ~4 % of all samples in
    # ptep_clear_flush and its IPIs under this pass); nor zero-filled (a pass of its own):
    # the first band of a row in the pass's order writes its sums, later ones add
    acc = np.empty(x.shape, np.float32)  # (not zeroed: each row's first band sets it)
    n_bands = (x.shape[0] - 1 - oy) // step + 1  # (every row of wband is set)
    wband = (np.empty((n_bands, x.shape[1]), np.float32) if sums  # (returned: not the scratch
             else _scratch((n_bands, x.shape[1])))  # buffer, which the next call reuses)
    s2 = np.ascontiguousarray(sig * sig, np.float32)
    thr = np.ascontiguousarray(np.float32(garrote or _HARD_LAMBDA) * sig, np.float32)
    g0 = (int(row0) + oy + _PATCH) // step  # band 0's index on the global grid -8 + k*step
    _dct_pass_nb(x, x if pil is None else pil, pil is not None, garrote > 0,
                 thr, s2, int(step), int(oy), g0, acc, wband, 4 * _jit.threads())
    if sums:
        return acc, wband, int(oy)
    return _normalize_nb(acc, wband, int(oy), int(step))


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


def denoise_channel(img: np.ndarray, sigma: float | np.ndarray, step: int = 2, *,
                    row0: int = 0, use_numba: bool = True, garrote: float = 0.0,
                    pilot_step: int = 0, sums: bool = False) -> np.ndarray | tuple:
    """Two-pass DCT denoising (hard threshold, then Wiener) of one channel; ``garrote`` > 0:
    one pass of the non-negative garrote at that many sigma instead. ``pilot_step``: the
    hard pass's patch spacing when not ``step`` (the pilot may be coarser than the Wiener
    pass it guides).

    ``sigma``: scalar or (64,) per-DCT-coefficient noise standard deviations. ``sums``: the
    last pass's unnormalised sums (see :func:`dct_denoise`).
    """
    x = np.ascontiguousarray(img, np.float32)
    if garrote > 0:
        return dct_denoise(x, sigma, step, row0=row0, use_numba=use_numba, garrote=garrote,
                           sums=sums)
    basic = dct_denoise(x, sigma, pilot_step or step, row0=row0, use_numba=use_numba)
    return dct_denoise(x, sigma, step, pilot=basic, row0=row0, use_numba=use_numba,
                       sums=sums)


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
# Fused pointwise passes: GAT + opponent transform (+ box downsampling of chroma) forward;
# chroma correction upsampling + inverse opponent + inverse GAT backward. One read and one
# write of the image each, both cores. Plain numpy references: _forward_np, _backward_np.


@njit(cache=True, fastmath=True, nogil=True)
def _fwd_row(xr, a, c0, k, t0, t1, t2, lr, write, r1, r2):  # pragma: no cover - numba
    """GAT + opponent transform of one row (flat (w*3,): a constant stride of 3 lets LLVM
    vectorise, a 2-D row's runtime stride does not): luma into lr (when ``write``), chroma
    added into r1, r2."""
    t00, t01, t02 = t0[0], t0[1], t0[2]
    t10, t11, t12 = t1[0], t1[1], t1[2]
    t20, t21, t22 = t2[0], t2[1], t2[2]
    z = np.float32(0.0)
    for xx in range(r1.shape[0]):
        g0 = k * math.sqrt(max(a * xr[3 * xx + 0] + c0, z))
        g1 = k * math.sqrt(max(a * xr[3 * xx + 1] + c0, z))
        g2 = k * math.sqrt(max(a * xr[3 * xx + 2] + c0, z))
        r1[xx] += t10 * g0 + t11 * g1 + t12 * g2
        r2[xx] += t20 * g0 + t21 * g1 + t22 * g2
        if write:
            lr[xx] = t00 * g0 + t01 * g1 + t02 * g2


@aot.entry(noalias=True)  # writes only lum, c1, c2 (fresh); x is read
@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _forward_nb(x, a, c0, k, t, f, want_luma, lum, c1, c2):  # pragma: no cover - numba
    h, w = x.shape[0], x.shape[1]
    hl, wl = c1.shape
    inv = np.float32(1.0 / (f * f))
    t0 = np.ascontiguousarray(t[0])
    t1 = np.ascontiguousarray(t[1])
    t2 = np.ascontiguousarray(t[2])
    full = w // f  # low-res columns whose box lies inside the row
    for r in prange(hl):
        r1 = np.zeros(w, np.float32)
        r2 = np.zeros(w, np.float32)
        for dy in range(f):
            yy = min(r * f + dy, h - 1)
            write = want_luma and r * f + dy < h
            lr = lum[yy] if write else lum[0]
            _fwd_row(x[yy].reshape(3 * w), a, c0, k, t0, t1, t2, lr, write, r1, r2)
        o1 = c1[r]
        o2 = c2[r]
        if f == 2:
            for cl in range(full):
                o1[cl] = (r1[2 * cl] + r1[2 * cl + 1]) * inv
                o2[cl] = (r2[2 * cl] + r2[2 * cl + 1]) * inv
        else:
            for cl in range(full):
                s1 = np.float32(0.0)
                s2 = np.float32(0.0)
                for dx in range(f):
                    s1 += r1[cl * f + dx]
                    s2 += r2[cl * f + dx]
                o1[cl] = s1 * inv
                o2[cl] = s2 * inv
        for cl in range(full, wl):
            s1 = np.float32(0.0)
            s2 = np.float32(0.0)
            for dx in range(f):
                xx = min(cl * f + dx, w - 1)
                s1 += r1[xx]
                s2 += r2[xx]
            o1[cl] = s1 * inv
            o2[cl] = s2 * inv


def _up_coords(n: int, nl: int, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear upsampling by ``f`` with pixel centres aligned (edge clamped): i0, i1, frac."""
    s = (np.arange(n, dtype=np.float64) + 0.5) / f - 0.5
    s = np.clip(s, 0.0, nl - 1)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, nl - 1)
    return i0, i1, (s - i0).astype(np.float32)


@njit(cache=True, fastmath=True, nogil=True)
def _up_row(da, db, fy, xi0, xi1, xf, f, lo, e):  # pragma: no cover - numba
    """One row of the bilinear upsampling: rows da, db blended by fy (at low resolution,
    into ``lo``), then interpolated along x into ``e``. For f = 2 the interior columns
    follow the fixed pattern of _up_coords (x = 2j+2: lo[j], lo[j+1] at 3/4; x = 2j+3:
    lo[j+1], lo[j+2] at 1/4), without index gathers."""
    for i in range(lo.shape[0]):
        lo[i] = da[i] + fy * (db[i] - da[i])
    w = e.shape[0]
    n2 = 0
    if f == 2:
        n2 = max(0, min((w - 4) // 2, lo.shape[0] - 3) + 1)
        q3 = np.float32(0.75)
        q1 = np.float32(0.25)
        for j in range(n2):
            e[2 * j + 2] = lo[j] + q3 * (lo[j + 1] - lo[j])
            e[2 * j + 3] = lo[j + 1] + q1 * (lo[j + 2] - lo[j + 1])
    # the columns the pattern leaves (all of them when f != 2): two loops over the edges, not
    # one over every column with a skip (that loop was half of the upsampling's time)
    a, b = (2, 2 * n2 + 2) if n2 else (w, w)
    for xx in range(min(a, w)):
        va = lo[xi0[xx]]
        e[xx] = va + xf[xx] * (lo[xi1[xx]] - va)
    for xx in range(b, w):
        va = lo[xi0[xx]]
        e[xx] = va + xf[xx] * (lo[xi1[xx]] - va)


@njit(cache=True, inline="always", fastmath=True, nogil=True)
def _fine_cut(fb, q):  # pragma: no cover - numba
    """What the non-negative garrote at squared threshold q removes from fb (Tier.fine):
    fb - fb * max(0, 1 - q / fb^2) = fb * min(1, q / fb^2)."""
    return fb * min(np.float32(1.0), q / max(fb * fb, np.float32(1e-30)))


@njit(cache=True, fastmath=True, nogil=True)
def _bwd_light_row(xr, a, c0, ia, t1, t2, e1, e2, fine, l1, l2, q1, q2, p0, p1, p2,
                   orow):  # pragma: no cover
    # luma untouched (luma strength 0; the light tier until session 13), algebraic
    # inverse: T is orthonormal, so
    # T^T (T g - [0, e1, e2]) = g - e1 T[1] - e2 T[2], no opponent round trip;
    # in the GAT's sqrt units (g * alpha/2) the inverse is (s^2 - c0) / a.
    # ``fine``: the chroma above the low-res band, T[1] g - l1 (l1, l2: the noisy low-res
    # chroma upsampled), loses what the garrote at q1, q2 cuts (_fine_cut), too.
    # Planar rows p0..p2 first (unit-stride stores: SIMD), then one interleaving copy.
    t10, t11, t12 = t1[0] * ia, t1[1] * ia, t1[2] * ia
    t20, t21, t22 = t2[0] * ia, t2[1] * ia, t2[2] * ia
    z = np.float32(0.0)
    ra = np.float32(1.0) / a
    k = np.float32(1.0) / ia
    n = e1.shape[0]
    if fine:
        u10, u11, u12 = t1[0], t1[1], t1[2]
        u20, u21, u22 = t2[0], t2[1], t2[2]
        for xx in range(n):
            s0 = math.sqrt(max(a * xr[3 * xx + 0] + c0, z))
            s1 = math.sqrt(max(a * xr[3 * xx + 1] + c0, z))
            s2 = math.sqrt(max(a * xr[3 * xx + 2] + c0, z))
            u1 = e1[xx] + _fine_cut(k * (u10 * s0 + u11 * s1 + u12 * s2) - l1[xx], q1)
            u2 = e2[xx] + _fine_cut(k * (u20 * s0 + u21 * s1 + u22 * s2) - l2[xx], q2)
            sq = s0 - (t10 * u1 + t20 * u2)
            p0[xx] = (sq * sq - c0) * ra
            sq = s1 - (t11 * u1 + t21 * u2)
            p1[xx] = (sq * sq - c0) * ra
            sq = s2 - (t12 * u1 + t22 * u2)
            p2[xx] = (sq * sq - c0) * ra
    else:
        for xx in range(n):
            u1 = e1[xx]
            u2 = e2[xx]
            sq = math.sqrt(max(a * xr[3 * xx + 0] + c0, z)) - (t10 * u1 + t20 * u2)
            p0[xx] = (sq * sq - c0) * ra
            sq = math.sqrt(max(a * xr[3 * xx + 1] + c0, z)) - (t11 * u1 + t21 * u2)
            p1[xx] = (sq * sq - c0) * ra
            sq = math.sqrt(max(a * xr[3 * xx + 2] + c0, z)) - (t12 * u1 + t22 * u2)
            p2[xx] = (sq * sq - c0) * ra
    for xx in range(n):
        orow[3 * xx + 0] = p0[xx]
        orow[3 * xx + 1] = p1[xx]
        orow[3 * xx + 2] = p2[xx]


@njit(cache=True, fastmath=True, nogil=True)
def _bwd_row(xr, a, c0, k, t, lr, has_luma, e1, e2, fine, l1, l2, q1, q2, unbiased, alpha,
             sz2, p0, p1, p2, orow):  # pragma: no cover - numba
    """Medium/full tiers: replace luma (or keep it), subtract the chroma corrections (and,
    ``fine``, what the fine-band garrote cuts, as _bwd_light_row), inverse opponent transform
    and inverse GAT of one row (flat (w*3,) rows, see _fwd_row).
    In passes over planar rows p0..p2, as _bwd_light_row: the opponent round trip, then the
    inverse GAT, then one interleaving copy. The loop-invariant choices (luma, fine band,
    unbiased inverse) are selects or loops of their own, not branches in a per-channel
    loop, which had kept the row scalar: the whole denoise of a 12 MP image (interleaved
    runs) went from 35-36 to 24.5-25 ms/MP in the medium tier, 55-62 to 45-49 in the full."""
    s32 = math.sqrt(1.5)
    ia = np.float32(alpha * 0.5)
    z = np.float32(0.0)
    t00, t01, t02 = t[0, 0], t[0, 1], t[0, 2]
    t10, t11, t12 = t[1, 0], t[1, 1], t[1, 2]
    t20, t21, t22 = t[2, 0], t[2, 1], t[2, 2]
    n = e1.shape[0]
    fl1 = l1 if fine else e1  # (without the fine band q1 = q2 = 0: the cut is 0)
    fl2 = l2 if fine else e2
    for xx in range(n):
        g0 = k * math.sqrt(max(a * xr[3 * xx] + c0, z))
        g1 = k * math.sqrt(max(a * xr[3 * xx + 1] + c0, z))
        g2 = k * math.sqrt(max(a * xr[3 * xx + 2] + c0, z))
        o0 = lr[xx] if has_luma else t00 * g0 + t01 * g1 + t02 * g2
        o1 = t10 * g0 + t11 * g1 + t12 * g2
        o2 = t20 * g0 + t21 * g1 + t22 * g2
        o1 -= _fine_cut(o1 - fl1[xx], q1)
        o2 -= _fine_cut(o2 - fl2[xx], q2)
        o1 -= e1[xx]
        o2 -= e2[xx]
        p0[xx] = t00 * o0 + t10 * o1 + t20 * o2
        p1[xx] = t01 * o0 + t11 * o1 + t21 * o2
        p2[xx] = t02 * o0 + t12 * o1 + t22 * o2
    for p in (p0, p1, p2):
        if unbiased:
            for xx in range(n):
                dd = max(p[xx], np.float32(1.0))
                iv = np.float32(1.0) / dd
                zz = (np.float32(0.25) * dd * dd
                      + iv * (np.float32(0.25 * s32)
                              + iv * (np.float32(-11.0 / 8.0) + iv * np.float32(0.625 * s32)))
                      - np.float32(0.125) - sz2)
                p[xx] = zz * alpha
        else:
            for xx in range(n):
                q = p[xx] * ia
                p[xx] = (q * q - c0) / a
    for xx in range(n):
        orow[3 * xx + 0] = p0[xx]
        orow[3 * xx + 1] = p1[xx]
        orow[3 * xx + 2] = p2[xx]


@aot.entry(noalias=True)  # writes only out (fresh); the rest is read
@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _backward_nb(x, a, c0, k, t, lum, has_luma, d1, d2, yi0, yi1, yf, xi0, xi1, xf,
                 unbiased, alpha, sz2, out, f, c1, c2, q1, q2, lwb, loy,
                 lstep):  # pragma: no cover - numba
    """The chroma corrections d1, d2 (low res) upsampled and subtracted, luma replaced (or
    kept), back to linear RGB in ``out``. ``q1``, ``q2`` > 0 (Tier.fine): the chroma above
    the low-res band, against the noisy low-res chroma c1, c2, garroted (_fine_cut).
    ``lwb`` (more than one row): ``lum`` holds the luma pass's unnormalised sums, and each
    row is divided by its bands' weights (``lwb``, grid start ``loy``, spacing ``lstep``) as
    it is read, as _normalize_nb would have (the same sums, in the same order): no pass of
    its own over the luma plane."""
    h, w = x.shape[0], x.shape[1]
    wl = d1.shape[1]
    ia = np.float32(alpha * 0.5)
    t1 = np.ascontiguousarray(t[1])
    t2 = np.ascontiguousarray(t[2])
    light = not has_luma and not unbiased
    fine = q1 > 0 or q2 > 0
    norm = lwb.shape[0] > 1 or lwb.shape[1] > 1
    for y in prange(h):
        lo = np.empty(wl, np.float32)
        e1 = np.empty(w, np.float32)
        e2 = np.empty(w, np.float32)
        p = np.empty((3, w), np.float32)
        lf = np.empty((2, w) if fine else (2, 1), np.float32)
        _up_row(d1[yi0[y]], d1[yi1[y]], yf[y], xi0, xi1, xf, f, lo, e1)
        _up_row(d2[yi0[y]], d2[yi1[y]], yf[y], xi0, xi1, xf, f, lo, e2)
        if fine:  # the noisy low-res chroma, upsampled alike
            _up_row(c1[yi0[y]], c1[yi1[y]], yf[y], xi0, xi1, xf, f, lo, lf[0])
            _up_row(c2[yi0[y]], c2[yi1[y]], yf[y], xi0, xi1, xf, f, lo, lf[1])
        if light:
            _bwd_light_row(x[y].reshape(3 * w), a, c0, ia, t1, t2, e1, e2, fine, lf[0], lf[1],
                           q1, q2, p[0], p[1], p[2], out[y].reshape(3 * w))
        else:
            lr = lum[y] if has_luma else lum[0]
            if has_luma and norm:  # (the luma pass's sums: normalised as read)
                lr_n = np.empty(w, np.float32)
                _normalize_row(lr, lwb, y, loy, lstep, lr_n)
                lr = lr_n
            _bwd_row(x[y].reshape(3 * w), a, c0, k, t, lr,
                     has_luma, e1, e2, fine, lf[0], lf[1], q1, q2, unbiased, alpha, sz2,
                     p[0], p[1], p[2], out[y].reshape(3 * w))


def _forward_np(x: np.ndarray, alpha: float, sigma2: float, f: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference of ``_forward_nb``: luma (full res), chroma box-averaged by ``f``."""
    o = gat_forward(x, alpha, sigma2) @ OPPONENT.T.astype(np.float32)
    h, w = x.shape[:2]
    hl, wl = -(-h // f), -(-w // f)
    op = np.pad(o[..., 1:], ((0, hl * f - h), (0, wl * f - w), (0, 0)), mode="edge")
    ch = op.reshape(hl, f, wl, f, 2).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)
    return (np.ascontiguousarray(o[..., 0]), np.ascontiguousarray(ch[..., 0]),
            np.ascontiguousarray(ch[..., 1]))


def _backward_np(x: np.ndarray, alpha: float, sigma2: float, lum: np.ndarray | None,
                 d1: np.ndarray, d2: np.ndarray, f: int, unbiased: bool,
                 low: tuple[np.ndarray, np.ndarray] | None = None,
                 q: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Reference of ``_backward_nb``: replace luma, subtract the upsampled chroma corrections
    (and, ``q`` > 0, what the fine-band garrote removes against the noisy low-res chroma
    ``low``), inverse opponent, inverse GAT (unbiased if luma was denoised, else algebraic)."""
    t = OPPONENT.astype(np.float32)
    o = gat_forward(x, alpha, sigma2) @ t.T
    h, w = x.shape[:2]
    yi0, yi1, yf = _up_coords(h, d1.shape[0], f)
    xi0, xi1, xf = _up_coords(w, d1.shape[1], f)

    def up(d: np.ndarray) -> np.ndarray:
        rows = d[yi0] + yf[:, None] * (d[yi1] - d[yi0])
        return rows[:, xi0] + xf[None, :] * (rows[:, xi1] - rows[:, xi0])

    for i, (c, d) in enumerate(((1, d1), (2, d2))):
        corr = up(d)
        if low is not None and q[i] > 0:
            fb = o[..., c] - up(low[i])
            corr = corr + fb * np.minimum(1.0, np.float32(q[i]) / np.maximum(fb * fb, 1e-30))
        o[..., c] -= corr
    if lum is not None:
        o[..., 0] = lum
    y = o @ t
    if unbiased:
        return gat_inverse(y, alpha, sigma2)
    a = np.float32(alpha)
    c0 = np.float32(0.375 * alpha * alpha + sigma2)
    return ((y * np.float32(alpha / 2)) ** 2 - c0) / a


# --------------------------------------------------------------------------------------------
# Noise spectrum after demosaicing


def _cfa_of(method: str) -> tuple[CFAPattern, str, float]:
    """(CFA, demosaic method, weight) a ``demosaic_method`` name stands for: 'xtrans' is the
    X-Trans directional method (isp.demosaic); 'quad:METHOD' a Quad-Bayer mosaic remosaiced to
    Bayer, then demosaiced by METHOD (the remosaic interpolates: its noise is not the Bayer
    method's); any other name a Bayer method on RGGB. A suffix '@W' (develop's name for
    iri-lr / iri-cnn on a noisy raw) is the weight of the method's learned correction
    (isp.demosaic.learned_weight): the noise is modelled through the method as it ran."""
    weight = 1.0
    if "@" in method:
        method, w = method.rsplit("@", 1)
        weight = float(w)
    if method == "xtrans":
        return CFAPattern.xtrans(), "auto", weight
    if method.startswith("quad:"):
        return CFAPattern.quad_bayer(), method[len("quad:"):], weight
    return _BAYER, method, weight


def _through_demosaic(z: np.ndarray, cfa: CFAPattern, name: str, weight: float) -> np.ndarray:
    """Mosaic noise ``z`` as demosaic(``name``, ``weight``) passes it on a flat field of 0.25:
    the difference of the two results (the methods are not linear)."""
    from .demosaic import demosaic as _demosaic

    base = np.full(z.shape, 0.25, np.float32)
    return (_demosaic(base + z, cfa, name, weight=weight)
            - _demosaic(base, cfa, name, weight=weight))


@lru_cache(maxsize=4)
def _noise_field(method: str | None, rel: tuple[float, float, float], n: int,
                 seed: int) -> np.ndarray:
    """(n-32, n-32, 3) opponent-space noise of unit stabilised raw noise (relative variance
    ``rel`` per colour) pushed through ``demosaic(method)`` (None: white, one value a site),
    16 border pixels cropped."""
    rng = np.random.default_rng(seed)
    cfa, name, weight = _cfa_of(method) if method is not None else (_BAYER, "", 1.0)
    grid = cfa.masks(n, n)
    amp = 0.01
    std = sum(math.sqrt(rel[c]) * grid[c] for c in range(3)).astype(np.float32) * amp
    z = rng.standard_normal((n, n)).astype(np.float32) * std
    if method is None:  # no demosaicing: noise stays white, one value per site
        noise = rng.standard_normal((n, n, 3)).astype(np.float32) * np.sqrt(
            np.asarray(rel, np.float32)) * amp
    else:
        noise = _through_demosaic(z, cfa, name, weight)
    o = (noise / amp) @ OPPONENT.T.astype(np.float32)
    o = np.ascontiguousarray(o[16:-16, 16:-16])
    o.setflags(write=False)
    return o


def _psd_field(method: str | None, rel: tuple[float, float, float], n: int, seed: int,
               levels: tuple[int, ...]) -> np.ndarray:
    """(levels, 3, 64) noise std per 8x8 DCT coefficient, measured on :func:`_noise_field`."""
    o = _noise_field(method, rel, n, seed)
    out = np.zeros((len(levels), 3, _PATCH * _PATCH), np.float32)
    for li, lev in enumerate(levels):
        for c in range(3):
            ch = np.ascontiguousarray(o[..., c])
            for _ in range(lev):
                ch = _down2(ch)
            pt = _patches(ch, 2, 0, 10**6) @ _KT
            out[li, c] = np.sqrt(np.mean(pt * pt, axis=0))
    return out


def _fine_band(ch: np.ndarray) -> np.ndarray:
    """A channel minus the bilinear upsampling of its 2x2 box average: the detail above the
    band the half-resolution chroma filter sees (what ``_backward_nb`` shrinks)."""
    return ch - _up2(_down2(ch), ch.shape)


def _fine_std_field(method: str | None, rel: tuple[float, float, float], n: int,
                    seed: int) -> np.ndarray:
    """(3,) std of each opponent channel's :func:`_fine_band`, measured on the noise field."""
    o = _noise_field(method, rel, n, seed)
    band = [_fine_band(np.ascontiguousarray(o[..., c]))[4:-4, 4:-4] for c in range(3)]
    return np.array([float(np.sqrt(np.mean(np.square(b, dtype=np.float64)))) for b in band],
                    np.float32)


# White noise through ``_fine_band``, interior pixel: it keeps its own sample with weight
# 1 - 9/64 (the nearest box's bilinear weight 9/16, times 1/4) and takes the other samples of
# the four boxes with weights summing in squares to 100/1024 - (9/64)^2: the variance is
# 1 - 2 * 9/64 + 100/1024 = 836/1024 of the input's.
_WHITE_FINE_VAR = 836.0 / 1024.0


def _white_var(rel: tuple[float, float, float]) -> np.ndarray:
    """(3,): variance of Y, C1, C2 of white noise of relative variance ``rel`` per colour."""
    return (OPPONENT**2) @ np.asarray(rel, np.float64)


def _white_psd(rel: tuple[float, float, float], levels: tuple[int, ...]) -> np.ndarray:
    """_psd_field of white noise (no demosaicing), in closed form: the opponent transform
    gives channel k the variance sum_c OPPONENT[k, c]^2 rel[c]; each 2x2 box average quarters
    it; an orthonormal DCT keeps white noise white (every coefficient that std)."""
    std = np.sqrt(_white_var(rel))[None, :] / (2.0 ** np.asarray(levels, np.float64))[:, None]
    return np.repeat(std[:, :, None], _PATCH * _PATCH, axis=2).astype(np.float32)


@lru_cache(maxsize=32)
def _noise_psd_cached(method: str | None, rel: tuple[float, float, float],
                      quarter: bool) -> np.ndarray:
    levels = (0, 1, 2) if quarter else (0, 1)
    if method is None:  # exact, where a measurement would carry 5-10% sampling error
        out = _white_psd(rel, levels)
        out.setflags(write=False)
        return out
    # full and half resolution from a 192-px field; quarter resolution from a 448-px one
    # (3x the time of the other two: only when a caller filters chroma at quarter resolution)
    parts = [_psd_field(method, rel, 192, 12345, (0, 1))]
    if quarter:
        parts.append(_psd_field(method, rel, 448, 6789, (2,)))
    out = np.concatenate(parts, axis=0)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=32)
def _fine_std_cached(method: str | None, rel: tuple[float, float, float]) -> np.ndarray:
    if method is None:  # closed form (see _WHITE_FINE_VAR)
        out = np.sqrt(_white_var(rel) * _WHITE_FINE_VAR).astype(np.float32)
    else:  # the 192-px field of the full-resolution spectrum (cached: one demosaic)
        out = _fine_std_field(method, rel, 192, 12345)
    out.setflags(write=False)
    return out


def _rel_key(rel: np.ndarray) -> tuple[float, float, float]:
    return tuple(round(float(v), 2) for v in rel)  # type: ignore[return-value]


def noise_psd(method: str | None, rel: np.ndarray, quarter: bool = False) -> np.ndarray:
    """(levels, 3, 64): noise std per 8x8 DCT coefficient of Y, C1, C2, at full and half
    resolution (2x2 box-downsampled), and with ``quarter`` at quarter resolution (4x4; a
    Tier with ``chroma_factor`` 4).

    Measured by pushing a flat mosaic with unit stabilised noise (relative variance ``rel`` per
    colour) through ``demosaic(method)``; None means no demosaicing (white noise).
    """
    return _noise_psd_cached(method, _rel_key(rel), bool(quarter))


def fine_band_std(method: str | None, rel: np.ndarray) -> np.ndarray:
    """(3,): noise std of Y, C1, C2 above the half-resolution band (:func:`_fine_band`),
    measured as :func:`noise_psd` (None: white noise, in closed form)."""
    return _fine_std_cached(method, _rel_key(rel))


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
# Immerkaer 1996: the outer product of two second differences, zero on any row- or
# column-constant structure (straight horizontal and vertical edges) and on ramps; unit gain
# on white noise (its squares sum to 36)
_IMMERKAER = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0]).astype(np.float32) / np.float32(6.0)


def _block_stats(channel: np.ndarray, kernel: np.ndarray | None = _HP, peak: bool = False,
                 detail: np.ndarray | None = None, top: np.ndarray | None = None,
                 split: bool = True) -> tuple[np.ndarray, ...]:
    """Per 8x8 block: mean value and robust (MAD) variance of the high-pass ``kernel`` (or of
    ``detail``, given instead); with ``peak`` also the block's largest value (of ``top`` when
    given) and the variance of its values. ``split``: the MAD on both cores."""
    b = _EST_BLOCK
    h, w = (channel.shape[0] // b) * b, (channel.shape[1] // b) * b
    ch = np.ascontiguousarray(channel[:h, :w], np.float32)
    hp = (cv2.filter2D(ch, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT_101)
          if detail is None else np.ascontiguousarray(detail[:h, :w], np.float32))
    mad = (_block_mad(hp, b) if split else _block_mad_nb(hp, b, _NETWORK)) / 0.6745
    if not peak:
        mb = ch.reshape(h // b, b, w // b, b).mean(axis=(1, 3)).reshape(-1)
        return mb.astype(np.float64), mad.astype(np.float64) ** 2
    t = ch if top is None else np.ascontiguousarray(top[:h, :w], np.float32)
    mb, spread, mx = (np.empty((h // b) * (w // b), dt)
                      for dt in (np.float64, np.float64, np.float32))
    _block_moments_nb(ch, t, b, mb, spread, mx)
    return mb, mad.astype(np.float64) ** 2, mx, spread


@aot.entry
@njit(cache=True, nogil=True)
def _block_moments_nb(ch, top, b, mean, var, peak):  # pragma: no cover - numba
    """Per b x b block of ``ch`` (row-major blocks): its mean, the variance of its values
    (about the mean, in float64) and the largest value of ``top``'s block."""
    nbx = ch.shape[1] // b
    n = b * b
    for by in range(ch.shape[0] // b):
        for bx in range(nbx):
            s = 0.0
            m = top[by * b, bx * b]
            for i in range(b):
                for j in range(b):
                    s += ch[by * b + i, bx * b + j]
                    m = max(m, top[by * b + i, bx * b + j])
            mu = s / n
            q = 0.0
            for i in range(b):
                for j in range(b):
                    d = ch[by * b + i, bx * b + j] - mu
                    q += d * d
            k = by * nbx + bx
            mean[k] = mu
            var[k] = q / n
            peak[k] = m


def estimate_mosaic_noise(mosaic: np.ndarray | Sequence[np.ndarray], cfa: CFAPattern,
                          clip: np.ndarray, bands: int = 24) -> np.ndarray:
    """Estimate (3, 2) [S, O] (variance = S*x + O) per colour from a mosaic (levels and white
    balance applied, before demosaicing), or from several bands of rows of one (each starting
    on a row of the CFA's first; their blocks measured together). ``clip``: each colour's clip
    level (the WB gains).

    Foi, Trimeche, Katkovnik, Egiazarian 2008 ("Practical Poissonian-Gaussian noise modeling
    and fitting for single-image raw-data", IEEE TIP 17(10)) fit the noise of the raw data
    itself, where it is white: here each of the mosaic's four sub-images (one colour, every
    second row and column) is high-passed by Immerkaer's kernel (J. Immerkaer, "Fast noise
    variance estimation", CVIU 64(2), 1996: zero on ramps and on straight horizontal and
    vertical edges) and measured in 8x8 blocks (mean; robust variance from the median
    absolute deviation, Donoho & Johnstone 1994). Blocks that reach ``clip`` (per colour)
    are left out, and in each band (below) the blocks whose values vary more than the
    band's noise would make them (:func:`_flat`: an edge or texture in the levels themselves;
    a block across a dark and a bright stripe has the mean of both and the noise of either:
    on a striped synthetic scene S came out 0.3-0.6x with them).
    The blocks are split at quantiles of their means into ``bands`` equal shares; in each a
    low quantile of the variances keeps the flattest blocks, at the band's median level.
    S and O: a non-negative least-squares line through the bands, each weighted by
    sqrt(count) / variance (equal relative errors: a dark band's variance counts as much as
    a bright one's, which is what fixes O). The noise being white, the only calibration is
    the statistic's response to unit white noise (:func:`_white_gain`).

    Other mosaics (:func:`_same_colour_blocks`): every 2x2 block of one colour (Quad Bayer: all
    of them; X-Trans: its green ones) gives (a - b - c + d) / 2 of its four samples, which
    has the noise's variance and is zero on ramps and on straight horizontal and vertical
    edges (the finest diagonal Haar detail, where natural images have the least energy);
    those are measured in 8x8 groups of blocks as above. A colour with no such block (X-Trans
    R and B) takes the sensor's noise in stored units from the others (one S and O for every
    colour, as the DNG NoiseProfile's single pair has it), scaled by its gain.

    Against the estimator on the demosaiced image (:func:`estimate_noise_profile`, kept for
    LinearRaw), on synthetic raws with a known profile
    (bench/quality_denoise.py --estimate; noise level estimated / true, and the PSNR gain of
    'auto' denoise over none, dB):

    ===============================  ===========  ===========  ==========================
    raws, ISO                        demosaiced   mosaic       gain: demosaiced / mosaic
                                                               / true profile
    ===============================  ===========  ===========  ==========================
    demo_scene 3 MP, 100             0.72         0.99         +1.06 / +1.64 / +1.70
    demo_scene 3 MP, 800             0.84         0.99         +3.56 / +5.61 / +5.65
    demo_scene 3 MP, 3200            0.87         0.99         +4.95 / +7.77 / +7.77
    24 Kodak + McMaster, 800         1.02         1.13         +2.24 / +2.50 / +2.89
    24 Kodak + McMaster, 3200        0.93         1.06         +4.53 / +5.29 / +5.39
    X-Trans demo_scene, 800 / 3200   0.73 / 0.71  1.01 / 1.01
    Quad demo_scene, 800 / 3200      0.78 / 0.80  1.02 / 1.02
    ===============================  ===========  ===========  ==========================

    (median levels). The small, densely textured test images (film grain in the 'clean'
    Kodak scans) are still overrated at low ISO: 1.45x at ISO 100, where 'auto' then loses
    1.2 dB to no filtering (it lost 2.4 before).
    """
    parts = [np.asarray(m, np.float32) for m in
             ([mosaic] if isinstance(mosaic, np.ndarray) else mosaic)]
    for x in parts:
        if x.ndim != 2:
            raise InputError(f"estimate_mosaic_noise needs a mosaic (H, W), got shape {x.shape}")
    ph, pw = cfa.shape
    if (ph, pw) == (2, 2):
        pat = cfa.array()
        return _planes_noise({c: [x[dy::2, dx::2] for x in parts for dy in range(2)
                                  for dx in range(2) if pat[dy, dx] == c] for c in range(3)},
                             clip, bands)
    blocks = _same_colour_blocks(cfa)
    if not blocks:
        raise InputError(f"estimate_mosaic_noise: no 2x2 blocks of one colour in {cfa.name}")
    jobs = []
    for x in parts:
        for y0, x0, c in blocks:
            h, w = (x.shape[0] - y0 - 2) // ph + 1, (x.shape[1] - x0 - 2) // pw + 1
            if min(h, w) >= 2 * _EST_BLOCK:
                jobs.append((x, y0, x0, c, h, w))

    def one(job: tuple, split: bool) -> tuple:
        x, y0, x0, _, h, w = job
        a, b = x[y0::ph, x0::pw][:h, :w], x[y0::ph, x0 + 1 :: pw][:h, :w]
        d, e = x[y0 + 1 :: ph, x0::pw][:h, :w], x[y0 + 1 :: ph, x0 + 1 :: pw][:h, :w]
        return _block_stats((a + e) * np.float32(0.25) + (b + d) * np.float32(0.25), None,
                            peak=True, detail=(a - b - d + e) * np.float32(0.5),
                            top=np.maximum(np.maximum(a, b), np.maximum(d, e)), split=split)

    stats: dict[int, list] = {}
    for job, st in zip(jobs, _each_plane(one, jobs, [j[4] * j[5] for j in jobs]), strict=True):
        stats.setdefault(job[3], []).append(st)
    return _profile(stats, clip, bands, _white_gain("haar"), _flat_limit(False))


def estimate_binned_noise(rgb: np.ndarray | Sequence[np.ndarray], clip: np.ndarray,
                          bands: int = 24) -> np.ndarray:
    """(3, 2) [S, O] per colour of an image whose every channel carries white noise: a Bayer
    mosaic binned as develop's previews bin it (each pixel the mean of its own colour's
    samples), in its own units; or of several bands of one. Each channel is measured as
    :func:`estimate_mosaic_noise` measures a Bayer mosaic's sub-images, at a quarter or a
    sixteenth of their pixels."""
    parts = [np.asarray(x, np.float32) for x in ([rgb] if isinstance(rgb, np.ndarray) else rgb)]
    for x in parts:
        if x.ndim != 3 or x.shape[2] != 3:
            raise InputError(f"estimate_binned_noise needs (H, W, 3) RGB, got shape {x.shape}")
    return _planes_noise({c: [x[..., c] for x in parts] for c in range(3)}, clip, bands)


def _planes_noise(planes: dict[int, list[np.ndarray]], clip: np.ndarray,
                  bands: int) -> np.ndarray:
    """:func:`estimate_mosaic_noise` of white-noise planes, by colour: each high-passed by
    Immerkaer's kernel, in 8x8 blocks."""
    jobs = [(c, p) for c, ps in planes.items() for p in ps if min(p.shape) >= 4 * _EST_BLOCK]
    stats: dict[int, list] = {}
    for (c, _), st in zip(jobs, _each_plane(
            lambda job, split: _block_stats(job[1], _IMMERKAER, peak=True, split=split),
            jobs, [p.size for _, p in jobs]), strict=True):
        stats.setdefault(c, []).append(st)
    return _profile(stats, clip, bands, _white_gain("immerkaer"), _flat_limit(True))


def _each_plane(fn, jobs: list, pixels: list[int]) -> list:
    """``fn(job, split)`` of each of the estimator's planes: when they are large (``pixels``)
    one a core at a time (the kernels release the GIL; ``split`` False: each on one thread),
    else one after another (``split`` True: each block-MAD on both cores)."""
    from concurrent.futures import ThreadPoolExecutor

    from . import tiles

    if tiles.WORKERS < 2 or len(jobs) < 2 or sum(pixels) < 1 << 19:
        return [fn(j, True) for j in jobs]
    with ThreadPoolExecutor(min(tiles.WORKERS, len(jobs))) as pool:
        return list(pool.map(lambda j: fn(j, False), jobs))


def _profile(stats: dict[int, list], clip: np.ndarray, bands: int, gain: float,
             limit: float) -> np.ndarray:
    """(3, 2) [S, O] from each colour's blocks (:func:`_block_stats` with ``peak``): the
    blocks that reach the colour's ``clip`` left out, a line through the bands
    (:func:`_fit_bands`), the white-noise calibration ``gain``; a colour with no blocks
    takes the others' noise in stored units, scaled by its gain (``clip``)."""
    clip = np.asarray(clip, np.float64).reshape(3)
    out = np.zeros((3, 2))
    for c, parts in stats.items():
        mb, var, top, spread = (np.concatenate(v) for v in zip(*parts, strict=True))
        keep = top < 0.98 * clip[c]
        s_c, o_c = _fit_bands(mb[keep], var[keep], bands, spread[keep] / limit)
        out[c] = (s_c / gain, o_c / gain)
    measured = sorted(stats)
    for c in set(range(3)) - set(measured):  # (no block of this colour)
        if measured:
            stored = np.mean([out[m] / (clip[m], clip[m] ** 2) for m in measured], axis=0)
            out[c] = stored * (clip[c], clip[c] ** 2)
    return out


def _fit_bands(mb: np.ndarray, var: np.ndarray, bands: int,
               spread: np.ndarray | None = None) -> tuple[float, float]:
    """S and O of :func:`estimate_mosaic_noise` from its blocks' means and robust variances;
    with ``spread`` (the variance of each block's levels over the most its noise may give,
    :func:`_flat_limit`), each band is measured on its flat blocks (:func:`_flat`) alone,
    and left out with fewer than 8 (all blocks are measured when fewer than 3 bands are
    left)."""
    if mb.size < 8:
        return 0.0, 0.0
    bands = max(1, min(bands, mb.size // 16))  # (few blocks: fewer, fuller bands)
    edges = np.quantile(mb, np.linspace(0.01, 0.99, bands + 1))
    xs, vs, ws = [], [], []
    for i in range(bands):
        sel = (mb >= edges[i]) & (mb <= edges[i + 1])
        if spread is not None and sel.any():
            sel &= _flat(float(np.median(var[sel])), spread)
        n = int(sel.sum())
        if n < 8:
            continue
        v = float(np.quantile(var[sel], _EST_Q))
        if v <= 0:
            continue
        xs.append(float(np.median(mb[sel])))
        vs.append(v)
        ws.append(math.sqrt(n) / v)
    if spread is not None and len(xs) < 3:  # (texture everywhere: every block)
        return _fit_bands(mb, var, bands)
    return _fit_line_nonneg(np.array(xs), np.array(vs), np.array(ws))


def _same_colour_blocks(cfa: CFAPattern) -> list[tuple[int, int, int]]:
    """(row, column, colour) of non-overlapping 2x2 blocks of one colour in one period of the
    CFA (taken in raster order; a block may reach into the next period)."""
    ph, pw = cfa.shape
    pat = cfa.array()
    used = np.zeros((ph, pw), bool)
    out = []
    for y in range(ph):
        for x in range(pw):
            cells = [((y + dy) % ph, (x + dx) % pw) for dy in (0, 1) for dx in (0, 1)]
            if len({int(pat[p]) for p in cells}) == 1 and not any(used[p] for p in cells):
                for p in cells:
                    used[p] = True
                out.append((y, x, int(pat[y, x])))
    return out


def _flat_limit(planes: bool) -> float:
    """How much a block's levels may vary, over the noise variance, and still count as flat
    (:func:`_flat`): 2x what the noise alone gives a Bayer plane's 8x8 block (16 sensor
    pixels across; at 3x the 24 test images' median levels were 1.51 / 1.20 / 1.12 at ISO
    100 / 800 / 3200, now 1.45 / 1.13 / 1.06), 8x for a group of 2x2 blocks (32-48 pixels
    across, over which a scene varies more, and which their detail ignores; at 3x, the
    shadows of a textured X-Trans scene had no flat group left and O came out 0.3x). The
    noise alone: each level is one sample (a plane), or the mean of a 2x2 block (a quarter
    of its detail's variance)."""
    return 2.0 if planes else 8.0 * 0.25


def _flat(var: float, spread: np.ndarray) -> np.ndarray:
    """Blocks whose levels vary no more than the noise variance ``var`` (a band's typical
    measure: not each block's own, which would favour the blocks whose measure came out
    high) allows (``spread`` in units of :func:`_flat_limit`): no edge or texture in the
    levels themselves, so that a block's level is the level of the noise its detail
    measures (a block across a dark and a bright region has the mean of both and the noise
    of either)."""
    return spread <= var


# _white_gain_measured's values (a test measures them again): drawing and measuring the
# white noise took ~20 ms in every process that estimates
_WHITE_GAIN = {"immerkaer": 0.706698572562857, "haar": 0.7452490623208838}


def _white_gain(kind: str) -> float:
    """:func:`estimate_mosaic_noise`'s statistic (the ``_EST_Q`` quantile of the flat blocks'
    robust variances of its detail: 'immerkaer' on a plane, or 'haar' on 2x2 blocks) for unit
    white noise."""
    return _WHITE_GAIN[kind]


def _white_gain_measured(kind: str) -> float:
    """:func:`_white_gain`, measured on 512x512 samples of unit white noise (seeded)."""
    z = np.random.default_rng(54321).standard_normal((4, 512, 512)).astype(np.float32)
    if kind == "immerkaer":
        _, var, _, spread = _block_stats(z[0], _IMMERKAER, peak=True)
    else:
        a, b, d, e = z
        _, var, _, spread = _block_stats((a + b + d + e) * np.float32(0.25), None, peak=True,
                                         detail=(a - b - d + e) * np.float32(0.5))
    limit = _flat_limit(kind == "immerkaer")
    return float(np.quantile(var[_flat(float(np.median(var)), spread / limit)], _EST_Q))


def _block_mad(hp: np.ndarray, b: int) -> np.ndarray:
    """``_block_mad_nb`` on both cores: the rows of blocks in two halves (nogil)."""
    from concurrent.futures import ThreadPoolExecutor

    from . import tiles

    nby = hp.shape[0] // b
    if tiles.WORKERS < 2 or nby < 16:
        return _block_mad_nb(hp, b, _NETWORK)
    cut = nby // 2 * b
    with ThreadPoolExecutor(2) as pool:
        top = pool.submit(_block_mad_nb, hp[:cut], b, _NETWORK)
        bottom = _block_mad_nb(hp[cut:], b, _NETWORK)
        return np.concatenate([top.result(), bottom])


def _block_mad_np(hp: np.ndarray, b: int) -> np.ndarray:
    """Reference of ``_block_mad_nb``: numpy's median of each block's absolute deviations
    from its median."""
    h, w = hp.shape
    hb = hp.reshape(h // b, b, w // b, b).transpose(0, 2, 1, 3).reshape(-1, b * b)
    med = np.median(hb, axis=1, keepdims=True)
    return np.median(np.abs(hb - med), axis=1)


def _sorting_network(n: int) -> np.ndarray:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for n inputs (K. E.
    Batcher, "Sorting networks and their applications", AFIPS 1968), n a power of two: after
    ``v[i], v[j] = min, max`` at each in turn, v is sorted (543 comparators for 64)."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array(pairs, np.int64).reshape(-1, 2)


_NETWORK = _sorting_network(_EST_BLOCK * _EST_BLOCK)


@njit(cache=True, inline="always", nogil=True)
def _sort_columns(x, net):  # pragma: no cover - numba
    """Sort every column of x (n, m) by the network: the m columns side by side, each
    comparator a min and a max along a row pair (unit stride: SIMD across columns)."""
    m = x.shape[1]
    for p in range(net.shape[0]):
        a = x[net[p, 0]]
        c = x[net[p, 1]]
        for k in range(m):
            u = a[k]
            v = c[k]
            a[k] = min(u, v)
            c[k] = max(u, v)


@aot.entry
@njit(cache=True, nogil=True)
def _block_mad_nb(hp, b, net):  # pragma: no cover - numba
    """Per b x b block of ``hp`` (row-major blocks; h and w multiples of b; b*b even, the
    network's size): the median absolute deviation from the block's median, float32, as
    ``_block_mad_np`` gives it. The blocks of a row of blocks are sorted side by side by a
    sorting network (numpy partitions each block's 64 values apart: ~1 us a block, 0.4 s
    at 9 MP)."""
    nby, nbx = hp.shape[0] // b, hp.shape[1] // b
    n = b * b
    h2 = n // 2
    out = np.empty(nby * nbx, np.float32)
    x = np.empty((n, nbx), np.float32)
    two = np.float32(2.0)
    for by in range(nby):
        for i in range(b):
            row = hp[by * b + i]
            for j in range(b):
                d = x[i * b + j]
                for k in range(nbx):
                    d[k] = row[k * b + j]
        _sort_columns(x, net)
        for k in range(nbx):  # (numpy's median of an even count: the mean of the middle two)
            med = (x[h2 - 1, k] + x[h2, k]) / two
            for i in range(n):
                x[i, k] = abs(x[i, k] - med)
        _sort_columns(x, net)
        for k in range(nbx):
            out[by * nbx + k] = (x[h2 - 1, k] + x[h2, k]) / two
    return out


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
        noise = _through_demosaic(z, *_cfa_of(method))
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
# Speed/quality tiers for 'auto'


@dataclass(frozen=True)
class Tier:
    """How one denoise call spends its time.

    ``luma_step``: patch spacing of the two-pass luma DCT filter (0 = luma untouched).
    ``chroma_factor``: chroma is box-downsampled by this factor (1, 2 or 4), filtered
    (``chroma_step``) and the removed noise, bilinearly upsampled, subtracted.
    ``garrote``: 0, each filter is the two-pass one (hard threshold, then Wiener with the
    first pass as pilot); > 0: one pass of the non-negative garrote with threshold
    ``garrote`` sigma (:func:`denoise_channel`). ``pilot_step``: the hard pass's patch
    spacing in the two-pass filters (0: the same as the Wiener pass's). ``chroma_k``: the
    chroma filters' noise level in units of the chroma noise (luma: ``LUMA_SIGMA_FACTOR``).
    ``fine``: with chroma at low resolution, the chroma above that resolution's band (the
    full-resolution chroma minus the bilinear upsampling of its box average,
    :func:`_fine_band`) goes through a pointwise non-negative garrote at ``fine`` times its
    noise std (:func:`fine_band_std`, times ``chroma_k``); 0: kept as it is. The ``fine``
    used is that of the tier 'auto' picks for the image's noise level, whichever tier runs
    ('manual' runs the full tier at every ISO; full's ``fine`` at ISO 100 lost 1 dB on
    textured crops). ``luma_garrote``: the luma filter's lambda when it differs from the
    chroma's (0: ``garrote``).
    """

    name: str
    luma_step: int
    chroma_factor: int
    chroma_step: int
    garrote: float = 0.0
    pilot_step: int = 0
    chroma_k: float = 1.0
    fine: float = 0.0
    luma_garrote: float = 0.0


# Measured on the quick subset (2 Kodak + 1 McMaster, bench/quality_denoise.py --quick) and at
# 12 MP on this 2-core machine (min of repeats); see the table in the module docstring.
TIERS: dict[str, Tier] = {
    # light and medium: one pass of the non-negative garrote (Breiman 1995; for wavelet
    # coefficients Gao 1998, "Wavelet shrinkage denoising using the non-negative garrote",
    # JCGS 7(4)): c -> c * max(0, 1 - (lambda sigma)^2 / c^2). It is continuous, so a
    # last-bit difference in its input (a strip's values against the whole image's) moves
    # the result by as little, where a hard threshold can flip a coefficient. lambda from
    # 1.6 / 2.0 / 2.3 / 2.7 at ISO 100 (best 2.0) and 1.6 / 1.8 / 2.0 / 2.4 at ISO 800 and
    # 1600 (1.8: best at 1600, within 0.06 dB of the best at 800) on the synthetic Kodak +
    # McMaster raws (bench/quality_denoise.py's cases).
    # chroma_k (medium, full): chroma filtered at 1.25x its noise level. All 42 Kodak +
    # McMaster synthetic raws, 'auto', PSNR / SSIM against chroma_k 1: ISO 800 33.32 / 0.8803
    # against 33.27 / 0.8770, 1600 30.86 / 0.8223 against 30.77 / 0.8177, 3200 28.52 / 0.7498
    # against 28.43 / 0.7462, 12800 22.61 / 0.4703 against 22.60 / 0.4685; chosen on 8 other
    # photographs (CC0 wallpapers): medium best near 1.3-1.45, full near 1.25. The light tier
    # keeps 1: 1.2 lost 0.06 dB at ISO 100 on the 42 (SSIM +0.0001).
    # With the fine band garroted (below), chroma_k 1.1 (medium, full): on the 8 photographs
    # +0.01-0.1 dB against 1.25 and 0-0.07 against 1 (SSIM between them); on the 42 Kodak +
    # McMaster images within 0.02 dB of 1 (SSIM +0.0015), 0.05-0.1 dB above 1.25.
    # fine (session 11): until then the chroma above the half-resolution band was kept as
    # demosaicing left it; it is most of the chroma noise a pixel shows. Garroted at ``fine``
    # times its noise std, 8 CC0 wallpapers (640 px), PSNR / SSIM, ri demosaic (develops up
    # to 16 MP) | rcd (larger), fine 0 -> shipped: ISO 100 (light, 1.5) 41.39 / 0.9572 ->
    # 41.71 / 0.9618 | 40.79 / 0.9548 -> 41.38 / 0.9632; 800 (medium, 2.5) 34.73 / 0.8703 ->
    # 36.07 / 0.9205 | 33.70 / 0.8480 -> 35.75 / 0.9271; 3200 (full, 4) 29.68 / 0.7452 ->
    # 31.54 / 0.8633 | 27.84 / 0.6358 -> 31.30 / 0.8660; 12800 23.36 / 0.4754 -> 25.51 /
    # 0.7405 | 21.41 / 0.3347 -> 25.68 / 0.7554. fine from 1-6 per tier on those photographs
    # (best PSNR; light: 2 there, 1-1.5 on the 42 Kodak + McMaster images, 1.5 taken).
    # Chroma filtered at full resolution instead (chroma_factor 1) measured below it at 2-5x
    # the time: 3200 (ri) 30.71, 12800 24.63; the 8x8 patches at half resolution reach lower
    # frequencies.
    # light, luma (session 13): until then the light tier left luma as it was, and base ISO
    # kept its luma noise, which the tone curve lifts in the shadows. Luma is now garroted
    # on a coarse grid (every 5 px) at its own lambda (``luma_garrote``). ISO 100 against
    # chroma only, PSNR / SSIM: 8 CC0 wallpapers (640 px, bench metric) 41.71 / 0.9618 ->
    # 42.55 / 0.9697; 6 of them developed (1024 px, tone curve, against the clean twin)
    # 41.81 -> 43.72 dB; 12 Kodak + McMaster 40.83 / 0.9762 -> 41.05 / 0.9786. Luma step 4
    # / 5 / 6 and lambda 1.0-1.8 tried: step 4 +0.07 dB for 1.5x the luma cost; lambda 1.5
    # +0.15 dB on the developed wallpapers, but -0.09 on the 12 and a textured Kodak crop
    # lost 0.17 dB against the noisy input (1.2: -0.04). The medium tier (luma every 3 px)
    # stays 0.25-0.45 dB above it from ISO 140 to 280 on the wallpapers (a tie on the 12).
    "light": Tier("light", 5, 2, 3, garrote=2.0, fine=1.5, luma_garrote=1.2),
    "medium": Tier("medium", 3, 2, 2, garrote=1.8, chroma_k=1.1, fine=2.5),
    # full: the pilot (hard) pass every 3 px under a Wiener pass every 2 px: 12 Kodak +
    # McMaster synthetic raws, ISO 3200 28.170 / SSIM 0.7816 against 28.172 / 0.7815 with
    # the pilot every 2 px, ISO 12800 22.564 / 0.5173 against 22.567 / 0.5167; the pilot
    # every 4 px: -0.12 dB, SSIM -0.005
    "full": Tier("full", 2, 2, 2, pilot_step=3, chroma_k=1.1, fine=4.0),
}
# 'auto' picks the tier by noise_level(profile): relative sigma at middle grey.
# light up to ~ISO 140, the geometric mean of 100 and 200 (0.0284): it is the base-ISO speed
# case. Its bound had been ~ISO 280 (0.04), but luma noise costs more than that: medium
# against light (chroma only then), 12 Kodak + McMaster synthetic raws / 8 CC0 wallpapers
# at 640 px (neither test set), ISO 140 +0.32 / +1.26 dB, 200 +0.46 / +1.54, 280
# +0.62 / +1.97, SSIM +0.004 to +0.038; at ISO 100 +0.25 / +1.03 for ~2.3x the denoise
# time (light 11, medium 25 ms/MP at 12 MP). Against the light tier with its luma filter
# (session 13): +0.01 / +0.25 dB at ISO 140, +0.01 / +0.33 at 200, +0.05 / +0.43 at 280;
# the bound stays.
# medium up to ~ISO 1700 (the geometric mean of 800 and 3200).
LIGHT_MAX_NOISE = 0.0285
MEDIUM_MAX_NOISE = 0.10
# 'auto' filters nothing below these levels, where the tier it picks measured below the
# unfiltered image (session 15; until then the light tier ran at any level). Demosaiced
# (AUTO_MIN_NOISE), 12 Kodak + 12 McMaster synthetic raws, PSNR of the light tier against
# none (bench/quality_denoise.py --floor): ISO 10 (noise level 0.0075) -0.59 dB, 16
# (0.0095) -0.33, 25 (0.0119) -0.10, 30 (0.0131) -0.00, 35 (0.0141) +0.08, 40 (0.0151)
# +0.15, 50 (0.0169) +0.28, 100 (0.0239) +0.72; developed instead (tone curve, no
# sharpening, against the developed clean twin) ISO 20 -0.13, 25 -0.05, 30 +0.02, 40
# +0.15, 60 +0.35: both cross zero near 0.0125-0.013, the lower taken. Binned previews
# (AUTO_MIN_NOISE_BINNED: white noise per pixel, chroma at full resolution, see
# :func:`denoise`'s ``binned``; --binned), the raws binned 2x2, the light tier: 0.0113
# -0.31 dB, 0.0159 -0.07, 0.0225 +0.30. A 50 MP base-ISO raw binned 4x4 for a 2048-px
# preview is at ~0.010: left as it is.
AUTO_MIN_NOISE = 0.0125
AUTO_MIN_NOISE_BINNED = 0.016
_ALIGN = 4  # strips are re-aligned to this many rows (max chroma factor)


def noise_level(noise_profile: np.ndarray) -> float:
    """Relative noise sigma at middle grey: sqrt(S*0.18 + O) / 0.18 (channel means of a (3, 2)
    [S, O] profile). This is the noise sigma of log(x) there, i.e. of the displayed (gamma or
    log-encoded) value up to the encoding's slope. The synthetic raws (profile scaled by the
    WB gains) give 0.024 at ISO 100, 0.068 at 800, 0.143 at 3200, 0.329 at 12800."""
    p = np.asarray(noise_profile, np.float64).reshape(-1, 2)
    var = float(np.mean(p[:, 0])) * 0.18 + float(np.mean(p[:, 1]))
    return math.sqrt(max(var, 0.0)) / 0.18


def _level_tier(level: float) -> Tier:
    """The tier of 'auto' at this :func:`noise_level` (above the floor)."""
    if level <= LIGHT_MAX_NOISE:
        return TIERS["light"]
    if level <= MEDIUM_MAX_NOISE:
        return TIERS["medium"]
    return TIERS["full"]


def choose_tier(settings: Denoise | None, noise_profile: np.ndarray | None,
                binned: bool = False) -> Tier | None:
    """'manual' always uses the full method; 'auto' picks by :func:`noise_level` (no profile:
    the full method, since the noise level is only known after estimating it), and None
    (nothing to filter) below ``AUTO_MIN_NOISE`` (``binned``: ``AUTO_MIN_NOISE_BINNED``)."""
    s = settings or Denoise()
    if s.mode != "auto" or noise_profile is None:
        return TIERS["full"]
    lev = noise_level(noise_profile)
    if lev < (AUTO_MIN_NOISE_BINNED if binned else AUTO_MIN_NOISE):
        return None
    return _level_tier(lev)


def _tier_margin(t: Tier, binned: bool = False) -> int:
    """Rows of context a tier needs: each pass of 8-row patches reaches 7 rows (two passes:
    14); chroma adds the box (factor f; 1 when ``binned``) and one low-res row of bilinear
    upsampling: 16 low-res rows for two passes, 8 for one."""
    passes = 1 if t.garrote else 2
    luma = 7 * passes if t.luma_step else 0
    return max(luma, 8 * passes * (1 if binned else t.chroma_factor)) + _ALIGN


def margin(settings: Denoise | None = None, noise_profile: np.ndarray | None = None,
           binned: bool = False) -> int:
    """Rows of overlap a strip needs above and below so that ``denoise(strip, ..., row0=r)``
    equals the same rows of the whole-image result (within float rounding); 0 when nothing
    is filtered. ``binned``: as given to :func:`denoise`.

    Without a profile this is the worst case over the tiers 'auto' may choose. Strips must
    be given the same ``noise_profile`` (estimating it per strip would differ).
    """
    s = settings or Denoise()
    if s.mode == "off":
        return 0
    if s.mode == "auto" and noise_profile is None:
        return max(_tier_margin(t, binned) for t in TIERS.values())
    t = choose_tier(s, noise_profile, binned)
    return 0 if t is None else _tier_margin(t, binned)


# --------------------------------------------------------------------------------------------


def _strengths(settings: Denoise) -> tuple[float, float]:
    """(luma, chroma) strength; the settings' ranges are checked when a Denoise is made."""
    if settings.mode == "auto":
        base = 1.0
    elif settings.mode == "manual":
        base = 2.0 * float(settings.strength)  # 0.5 = the noise-model level of 'auto'
    else:
        raise OptionError(f"unknown denoise mode {settings.mode!r}; valid: {', '.join(MODES)}")
    return base * float(settings.luma), base * float(settings.chroma)


def _check_profile(noise_profile: np.ndarray) -> np.ndarray:
    prof = np.asarray(noise_profile, np.float64)
    if prof.shape not in ((3, 2), (1, 2), (2,)):
        raise InputError(f"noise profile must be (3, 2) [S, O] per channel, got {prof.shape}")
    prof = prof.reshape(-1, 2)
    if prof.shape[0] == 1:
        prof = np.repeat(prof, 3, axis=0)
    if prof.shape != (3, 2) or not np.all(np.isfinite(prof)):
        raise InputError(f"noise profile must be (3, 2) [S, O] per channel, got {prof!r}")
    return np.maximum(prof, 0.0)


def _gat_params(prof: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(alpha, sigma^2) of the shared generalised Anscombe transform, and each channel's
    residual relative variance after it, at mid-grey."""
    alpha = max(float(prof[:, 0].mean()), 1e-12)
    sigma2 = float(prof[:, 1].mean())
    if float(prof[:, 0].max()) < 1e-9:  # pure Gaussian noise: make the GAT an affine map
        alpha = math.sqrt(max(sigma2, 1e-20)) * 1e-3
    xm = 0.18
    rel = (prof[:, 0] * xm + prof[:, 1]) / (alpha * xm + sigma2)
    return alpha, sigma2, rel


def prepare(settings: Denoise | None, noise_profile: np.ndarray | None,
            demosaic_method: str | None = "auto", binned: bool = False) -> None:
    """Compute (and cache) what every strip of one image shares — the noise spectrum after
    demosaicing — once, before strips run in parallel threads (which would each compute it)."""
    s = settings or Denoise()
    if s.mode == "off" or noise_profile is None:
        return
    t = choose_tier(s, noise_profile, binned)
    prof = _check_profile(noise_profile)
    if t is not None and np.any(prof > 0):
        rel = _gat_params(prof)[2]
        noise_psd(demosaic_method, rel, quarter=not binned and t.chroma_factor == 4)
        if not binned:
            fine_band_std(demosaic_method, rel)


def _unfiltered(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """denoise's result when nothing is filtered: a copy of ``x``, or ``out`` holding it."""
    if out is None:
        return x.copy()
    if out is not x:
        out[...] = x
    return out


def denoise(
    rgb: np.ndarray,
    settings: Denoise | None = None,
    noise_profile: np.ndarray | None = None,
    iso: float | None = None,
    *,
    demosaic_method: str | None = "auto",
    step: int | None = None,
    chroma_half: bool = True,
    tier: str | None = None,
    row0: int = 0,
    use_numba: bool = True,
    out: np.ndarray | None = None,
    binned: bool = False,
) -> np.ndarray:
    """Denoise white-balanced linear camera RGB (H, W, 3) float32; returns a new array, or
    ``out`` (C-contiguous float32 of ``rgb``'s shape; may be ``rgb`` itself: the last pass
    reads each pixel before it writes it, so a strip needs no second image).

    ``binned``: each pixel is the mean of mosaic samples of its own colours (develop's
    binned previews), not interpolated: white noise per pixel and chroma detail of full
    resolution, which the half-resolution chroma path and its fine-band garrote (made for
    demosaiced chroma) take away: chroma is filtered at full resolution instead, and 'auto'
    stops at ``AUTO_MIN_NOISE_BINNED``. 12 Kodak + 12 McMaster synthetic raws binned 2x2,
    'auto' against no filtering, PSNR (bench metric, ``bench/quality_denoise.py
    --binned``), the half-resolution chroma -> full: ISO 100 (noise level 0.0225, light)
    +0.14 -> +0.30 dB, 200 (0.032, medium) -1.09 -> +1.03, 400 -0.22 -> +1.68, 800 +0.88
    -> +2.50, 1600 +2.24 -> +3.54, 3200 (full) +3.32 -> +5.03, 12800 +7.11 -> +7.35, for
    1.6-2x the time (2048 x 1536, whole-image calls: light 60 -> 98 ms, medium 69 -> 142,
    full 126 -> 247).

    ``noise_profile`` is (3, 2) [S, O] per channel (variance = S*x + O) or None (estimated
    from the image). ``iso`` is informational (the model already encodes it).
    ``demosaic_method`` is the method that made ``rgb`` (its noise spectrum is measured once
    and cached; None: not demosaiced, white noise). ``tier``: 'light', 'medium' or 'full'
    (default: :func:`choose_tier`). ``step`` overrides the tier's patch spacing (1 = every
    pixel: best, slowest). ``chroma_half=False`` filters chroma at full resolution.
    ``row0``: global index of the first row when ``rgb`` is a strip of a larger image (the
    patch grids follow the global rows; see :func:`margin`). ``use_numba=False``: the plain
    numpy reference (slow).
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
        prof = _check_profile(noise_profile)
    if out is not None and (out.shape != x.shape or out.dtype != np.float32
                            or not out.flags.c_contiguous):
        raise ValueError("out must be a C-contiguous float32 array of rgb's shape")
    if (luma_k == 0 and chroma_k == 0) or not np.any(prof > 0):
        return _unfiltered(x, out)
    if tier is not None and tier not in TIERS:
        raise OptionError(f"unknown denoise tier {tier!r}; valid: {', '.join(TIERS)}")
    t = TIERS[tier] if tier else choose_tier(s, noise_profile, binned)
    if t is None:  # 'auto' below its floor: nothing to filter
        return _unfiltered(x, out)
    luma_step = (step or t.luma_step) if t.luma_step else 0
    chroma_step = step or t.chroma_step
    pilot = 0 if step else t.pilot_step  # (a step asked for: both passes take it)
    f = t.chroma_factor if chroma_half and not binned else 1
    if luma_k == 0:
        luma_step = 0
    h0 = x.shape[0]
    if min(h0, x.shape[1]) < 4 * _PATCH:  # too small for low-res chroma
        f = 1
    # Re-align a strip so that its first row is a multiple of _ALIGN (reflected extra rows).
    k_al = int(row0) % _ALIGN if f > 1 else 0
    if k_al and h0 > k_al:
        x = np.ascontiguousarray(np.concatenate([x[k_al:0:-1], x], axis=0))
    else:
        k_al = 0
    r0 = int(row0) - k_al

    alpha, sigma2, rel = _gat_params(prof)
    level = {1: 0, 2: 1, 4: 2}[f]
    psd = noise_psd(demosaic_method, rel, quarter=level == 2)

    h, w = x.shape[:2]
    a32, c32, k32 = (np.float32(alpha), np.float32(0.375 * alpha * alpha + sigma2),
                     np.float32(2.0 / alpha))
    topp = OPPONENT.astype(np.float32)
    if use_numba:
        hl, wl = -(-h // f), -(-w // f)
        lum = np.empty((h, w) if luma_step else (1, 1), np.float32)
        c1 = np.empty((hl, wl), np.float32)
        c2 = np.empty((hl, wl), np.float32)
        _forward_nb(x, a32, c32, k32, topp, f, bool(luma_step), lum, c1, c2)
    else:
        lum, c1, c2 = _forward_np(x, alpha, sigma2, f)
    lum_d = None
    lwb, loy = np.zeros((1, 1), np.float32), 0  # luma sums' band weights: normalised as read
    if luma_step:
        lum_d, lwb, loy = denoise_channel(
            lum, psd[0, 0] * (LUMA_SIGMA_FACTOR * luma_k), luma_step, row0=r0,
            use_numba=use_numba, garrote=t.luma_garrote or t.garrote, pilot_step=pilot,
            sums=True)
        if lwb is None:  # (the numpy path ran: normalised already)
            lwb, loy = np.zeros((1, 1), np.float32), 0
    ck = t.chroma_k * chroma_k
    rem = []
    for c, ch in ((1, c1), (2, c2)):
        if ck > 0:
            dch = denoise_channel(ch, psd[level, c] * ck, chroma_step, row0=r0 // f,
                                  use_numba=use_numba, garrote=t.garrote,
                                  pilot_step=pilot)
            rem.append(np.ascontiguousarray(ch - dch, np.float32))
        else:
            rem.append(np.zeros_like(ch))
    unbiased = lum_d is not None
    q1 = q2 = np.float32(0.0)  # Tier.fine: the squared thresholds of the fine-band garrote
    if f > 1 and ck > 0:  # (its multiple by the noise level, whichever tier runs)
        lam = _level_tier(noise_level(prof)).fine
        tau = fine_band_std(demosaic_method, rel).astype(np.float64) * (lam * ck)
        q1, q2 = np.float32(tau[1] ** 2), np.float32(tau[2] ** 2)
    dst = out
    if use_numba:
        out = np.empty_like(x) if dst is None or k_al else dst
        yi0, yi1, yf = _up_coords(h, rem[0].shape[0], f)
        xi0, xi1, xf = _up_coords(w, rem[0].shape[1], f)
        _backward_nb(x, a32, c32, k32, topp, lum_d if unbiased else lum, unbiased,
                     rem[0], rem[1], yi0, yi1, yf, xi0, xi1, xf, unbiased, np.float32(alpha),
                     np.float32(sigma2 / (alpha * alpha)), out, f, c1, c2, q1, q2,
                     lwb, int(loy), int(luma_step))
    else:
        out = _backward_np(x, alpha, sigma2, lum_d, rem[0], rem[1], f, unbiased,
                           low=(c1, c2), q=(float(q1), float(q2)))
    if k_al:
        out = out[k_al:]
    if dst is not None and out is not dst:
        dst[...] = out
        return dst
    return np.ascontiguousarray(out, np.float32)
