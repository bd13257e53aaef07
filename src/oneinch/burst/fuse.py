"""Exposure brackets: merge raws of different exposure times into one linear HDR raw, and
Mertens exposure fusion of display images.

Raw HDR merge: each frame is scaled to the reference (shortest) exposure, x_k = y_k·t_ref/t_k,
and averaged with inverse-variance weights from the noise model, w_k = 1/Var(x_k) =
(t_k/t_ref)² / (S·y_k + O) (the maximum-likelihood combination of Poisson–Gaussian samples,
e.g. Granados et al., CVPR 2010, §3); samples at or near saturation get weight 0, and samples
that disagree with the reference by more than 4σ (motion) are dropped. Frames are aligned by
a global integer shift of Bayer cells (median of the HDR+ tile displacements).

Mertens, Kautz, Van Reeth, "Exposure Fusion", Pacific Graphics 2007: per-pixel weights
contrast^ωc · saturation^ωs · well-exposedness^ωe (Gaussian around 0.5, σ = 0.2), normalised,
blended with a Laplacian pyramid (Burt & Adelson 1983) of the images and a Gaussian pyramid of
the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from ..errors import InputError
from ..raw.image import Levels, RawImage
from . import align as al
from .merge import (
    OUT_BLACK,
    OUT_WHITE,
    check_frames,
    encode_mosaic,
    normalized_planes,
    per_colour_profile,
    plane_noise,
)

SATURATION = 0.97  # normalised value above which a sample counts as clipped


def _global_shift(ref: np.ndarray, alt: np.ndarray) -> tuple[int, int]:
    """Median tile displacement (grey pixels = Bayer cells) of ``alt`` against ``ref``."""
    a = al.align(al.pyramid(ref), al.pyramid(alt))
    return int(np.median(a.dy)), int(np.median(a.dx))


def _shift(planes: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out(p) = planes(p + d), edges clamped."""
    _, h, w = planes.shape
    ys = np.clip(np.arange(h) + dy, 0, h - 1)
    xs = np.clip(np.arange(w) + dx, 0, w - 1)
    return planes[:, ys[:, None], xs[None, :]]


def merge_bracket(raws: Sequence[RawImage]) -> tuple[RawImage, dict[str, float]]:
    """Bracketed Bayer raws (EXIF exposure times differ) -> one linear HDR RawImage.

    The result uses the shortest frame's metadata and scale (1 = its white), 16-bit data with
    black 4096, and a NoiseProfile of the merge's mean variance ratio in the shadows.
    """
    check_frames(raws)
    times = []
    for r in raws:
        t = r.shot.exposure_time
        if not t or t <= 0:
            raise InputError("bracket frame has no exposure time in its EXIF", r.path)
        times.append(float(t))
    ref_i = int(np.argmin(times))
    t_ref = times[ref_i]
    ref_raw = raws[ref_i]
    noise = plane_noise(ref_raw)[:, :, None, None]  # (4, 2, 1, 1)
    planes = [normalized_planes(r) for r in raws]
    g_ref = al.grey(planes[ref_i])
    num = np.zeros_like(planes[ref_i], dtype=np.float64)
    den = np.zeros_like(num)
    ref_x = planes[ref_i]
    ref_var = noise[:, 0] * np.maximum(ref_x, 0) + noise[:, 1]
    for k, pl in enumerate(planes):
        ratio = t_ref / times[k]
        if k != ref_i:
            # compare both frames clipped where the longer one saturates
            lim = np.float32(SATURATION * ratio)
            dy, dx = _global_shift(np.minimum(g_ref, lim),
                                   np.minimum(al.grey(pl) * np.float32(ratio), lim))
            pl = _shift(pl, dy, dx)
        y = pl.astype(np.float64)
        var_y = noise[:, 0] * np.maximum(y, 0) + noise[:, 1]
        x = y * ratio
        var_x = var_y * ratio * ratio
        ok = y < SATURATION
        if k != ref_i:  # reject motion: disagreement beyond 4σ of the two estimates
            ok &= (x - ref_x) ** 2 <= 16.0 * (var_x + ref_var)
        wgt = np.where(ok, 1.0 / var_x, 0.0)
        num += wgt * x
        den += wgt
    merged = np.where(den > 0, num / np.maximum(den, 1e-300), ref_x)
    # variance of the weighted mean is 1/Σw; relative to the reference frame's variance:
    var_ratio = float(np.median(np.where(den > 0, 1.0 / np.maximum(den, 1e-300), ref_var)
                                / ref_var))
    mosaic = al.from_planes(merged.astype(np.float32))
    prof = per_colour_profile(ref_raw, plane_noise(ref_raw)) * var_ratio
    out = replace(
        ref_raw,
        data=encode_mosaic(mosaic) if mosaic.shape == ref_raw.data.shape else
        _encode_odd(ref_raw, mosaic),
        levels=Levels(black=np.full((1, 1, 1), float(OUT_BLACK)),
                      white=np.array([float(OUT_WHITE)])),
        noise_profile=prof, bits_per_sample=16, is_dng=True,
    )
    return out, {"reference": float(ref_i), "noise_ratio": var_ratio,
                 "dynamic_range_gain_ev": float(np.log2(max(times) / t_ref))}


def _encode_odd(ref_raw: RawImage, mosaic: np.ndarray) -> np.ndarray:
    from ..isp.levels import normalize

    full = normalize(ref_raw.data, ref_raw.levels)
    full[: mosaic.shape[0], : mosaic.shape[1]] = mosaic
    return encode_mosaic(full)


# ---------------------------------------------------------------------------------------------
# Mertens exposure fusion (display-referred images in [0, 1])


def mertens_weights(img: np.ndarray, wc: float = 1.0, ws: float = 1.0,
                    we: float = 1.0) -> np.ndarray:
    """Mertens et al. 2007 §3.1: contrast (|Laplacian| of grey), saturation (std over RGB),
    well-exposedness (Π_c exp(−(v−0.5)²/(2·0.2²))), combined as a product of powers."""
    x = np.asarray(img, np.float32)
    grey = x.mean(axis=2)
    contrast = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=1))
    saturation = x.std(axis=2)
    well = np.prod(np.exp(-((x - 0.5) ** 2) / (2 * 0.2**2)), axis=2)
    return (contrast**wc) * (saturation**ws) * (well**we) + 1e-12


def _gauss_pyr(x: np.ndarray, n: int) -> list[np.ndarray]:
    out = [x]
    for _ in range(n - 1):
        out.append(cv2.pyrDown(out[-1]))
    return out


def _lap_pyr(x: np.ndarray, n: int) -> list[np.ndarray]:
    g = _gauss_pyr(x, n)
    out = []
    for i in range(n - 1):
        up = cv2.pyrUp(g[i + 1], dstsize=(g[i].shape[1], g[i].shape[0]))
        out.append(g[i] - up)
    out.append(g[-1])
    return out


def mertens(images: Sequence[np.ndarray], *, wc: float = 1.0, ws: float = 1.0,
            we: float = 1.0, levels: int | None = None) -> np.ndarray:
    """Fuse display-referred RGB images (H, W, 3) in [0, 1] of one scene (Mertens 2007)."""
    imgs = [np.ascontiguousarray(i, dtype=np.float32) for i in images]
    if not imgs:
        raise ValueError("mertens needs at least one image")
    h, w = imgs[0].shape[:2]
    if any(i.shape != imgs[0].shape for i in imgs):
        raise ValueError("mertens: images differ in size")
    wts = np.stack([mertens_weights(i, wc, ws, we) for i in imgs])
    wts /= wts.sum(axis=0, keepdims=True)
    n = levels or max(1, int(np.log2(min(h, w))) + 1)
    out: list[np.ndarray] | None = None
    for img, wt in zip(imgs, wts, strict=True):
        lp = _lap_pyr(img, n)
        gp = _gauss_pyr(wt.astype(np.float32), n)
        contrib = [lap * g[..., None] for lap, g in zip(lp, gp, strict=True)]
        out = contrib if out is None else [o + c for o, c in zip(out, contrib, strict=True)]
    assert out is not None
    res = out[-1]
    for lev in range(n - 2, -1, -1):
        res = cv2.pyrUp(res, dstsize=(out[lev].shape[1], out[lev].shape[0])) + out[lev]
    return np.ascontiguousarray(np.clip(res, 0.0, 1.0), dtype=np.float32)
