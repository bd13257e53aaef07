"""White balance: the camera-space neutral of the scene's white, and the gains that remove it.

A *neutral* is the camera RGB of a white surface (DNG AsShotNeutral), normalised here so its
largest component is 1; dividing the camera image by it (``apply_gains(x, gains(neutral))``)
makes whites (1, 1, 1), which is what ``color.camera_to_xyz_d50`` expects. Modes follow
``recipe.WhiteBalance``: 'as-shot', 'daylight', 'kelvin' (CCT + tint in Adobe's units: + makes
the photo magenta, as Lightroom's Tint) and 'auto'. Plain numpy (no colour-science at import).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, OptionError
from ..raw.image import CameraColor, CFAPattern, as_pattern
from ..recipe import WhiteBalance
from . import color as _color
from . import spaces

# 'daylight' is CIE D55 (CIE 15:2004 Table T.3, x = 0.33242, y = 0.34743; 5503 K), the usual
# photographic "daylight" preset (direct sun plus sky, about 5500 K), not D65 (overcast sky).
DAYLIGHT_XY = (0.33242, 0.34743)

CLIP_LEVEL = 0.98  # a sample at or above this (1 = sensor white) is treated as clipped
DARK_LEVEL = 0.01  # superpixels whose brightest channel is below this are too noisy to use
BRIGHT_FRACTION = 0.03  # the "white patch" estimate averages the brightest 3 % of usable pixels
GREY_ANGLE = 3.0  # degrees from (1, 1, 1) after correction: a "grey point"
GREY_MIN_FRACTION = 0.02  # refine on grey points only if at least 2 % of usable pixels are grey
AUTO_CCT_RANGE = (2000.0, 12000.0)  # K: auto WB keeps its estimate between these ...
AUTO_TINT_LIMIT = 30.0  # ... and within this tint of the Planckian locus (when matrices exist)
_MAX_SAMPLES = 1 << 18  # auto WB looks at no more than about 262 000 superpixels


def _normalise(n: np.ndarray) -> np.ndarray:
    n = np.asarray(n, dtype=float).reshape(3)
    return n / n.max()


def _has_matrix(color: CameraColor) -> bool:
    return color.color_matrix1 is not None or color.color_matrix2 is not None


def _as_shot(color: CameraColor) -> np.ndarray:
    if color.as_shot_neutral is not None:
        n = np.asarray(color.as_shot_neutral, dtype=float).reshape(-1)
        if n.shape == (3,) and np.all(np.isfinite(n)) and np.all(n > 0):
            return _normalise(n)
    if color.as_shot_white_xy is not None and _has_matrix(color):
        return _color.xy_to_neutral(color, color.as_shot_white_xy)
    # No usable as-shot white: D65 through the matrices, or no correction at all.
    if _has_matrix(color):
        return _color.xy_to_neutral(color, spaces.D65_XY)
    return np.ones(3)


def neutral(
    color: CameraColor,
    wb: WhiteBalance,
    image: np.ndarray | None = None,
    cfa: CFAPattern | str | None = None,
) -> np.ndarray:
    """Camera-space neutral (3,), max component 1, for the white-balance setting ``wb``.

    'as-shot': AsShotNeutral, else AsShotWhiteXY through ``color.xy_to_neutral``, else D65
    (or (1, 1, 1) without matrices). 'daylight': CIE D55 xy through the matrices. 'kelvin':
    ``color.cct_tint_to_xy(wb.kelvin, wb.tint)`` through the matrices. 'auto':
    :func:`auto_neutral` on ``image`` (a normalised mosaic with ``cfa``, or camera RGB), kept
    within plausible illuminants when the file has matrices, or as-shot when nothing in the
    image is usable.
    """
    mode = wb.mode
    if mode == "as-shot":
        return _as_shot(color)
    if mode in ("daylight", "kelvin"):
        if mode == "daylight":
            xy = np.array(DAYLIGHT_XY)
        else:
            if wb.kelvin is None:
                raise OptionError("white balance 'kelvin' needs a temperature")
            xy = _color.cct_tint_to_xy(wb.kelvin, wb.tint)
        return _color.xy_to_neutral(color, xy)
    if mode == "auto":
        if image is None:
            raise OptionError("white balance 'auto' needs the image")
        est = _auto(image, cfa)
        if est is None:  # all clipped or black
            return _as_shot(color)
        return _plausible(color, est) if _has_matrix(color) else est
    raise OptionError(f"unknown white balance {mode!r} (as-shot, auto, daylight, kelvin)")


def _plausible(color: CameraColor, est: np.ndarray) -> np.ndarray:
    """Pull an auto estimate onto plausible illuminants: CCT within ``AUTO_CCT_RANGE`` and
    tint within ±``AUTO_TINT_LIMIT`` (a locus prior in the spirit of Finlayson & Hordley's
    gamut-constrained illuminant estimation, 2001). Estimates already inside are unchanged."""
    try:
        cct, tint = _color.xy_to_cct_tint(_color.neutral_to_xy(color, est))
    except InputError:
        return est
    lo, hi = AUTO_CCT_RANGE
    c_cct, c_tint = float(np.clip(cct, lo, hi)), float(np.clip(tint, -AUTO_TINT_LIMIT,
                                                                  AUTO_TINT_LIMIT))
    if c_cct == cct and c_tint == tint:
        return est
    return _color.xy_to_neutral(color, _color.cct_tint_to_xy(c_cct, c_tint))


def _superpixels(image: np.ndarray, cfa: CFAPattern | str | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) mean camera RGB per CFA tile (or pixel) and (N,) flag: any sample clipped."""
    x = np.asarray(image)
    if x.ndim == 3 and x.shape[2] == 3:
        step = max(1, int(np.ceil(np.sqrt(x.shape[0] * x.shape[1] / _MAX_SAMPLES))))
        rgb = x[::step, ::step].reshape(-1, 3).astype(np.float32)
        return rgb, np.max(rgb, axis=1) >= CLIP_LEVEL
    if x.ndim != 2:
        raise InputError(f"auto white balance needs (H, W) or (H, W, 3) data, got {x.shape}")
    if cfa is None:
        raise OptionError("auto white balance on a mosaic needs its CFA pattern")
    pat = as_pattern(cfa)
    ph, pw = pat.shape
    th, tw = x.shape[0] // ph, x.shape[1] // pw
    if th == 0 or tw == 0:
        raise InputError(f"mosaic {x.shape} is smaller than one CFA tile {pat.shape}")
    step = max(1, int(np.ceil(np.sqrt(th * tw / _MAX_SAMPLES))))
    # Every step-th tile: (tiles_y, ph, tiles_x, pw) -> (N, ph*pw) samples per tile.
    tiles = x[: th * ph, : tw * pw].reshape(th, ph, tw, pw)[::step, :, ::step, :]
    tiles = tiles.transpose(0, 2, 1, 3).reshape(-1, ph * pw).astype(np.float32)
    idx = pat.array().reshape(-1)
    rgb = np.stack([tiles[:, idx == c].mean(axis=1) for c in range(3)], axis=1)
    return rgb, tiles.max(axis=1) >= CLIP_LEVEL


def auto_neutral(image: np.ndarray, cfa: CFAPattern | str | None = None) -> np.ndarray:
    """Estimate the scene illuminant's camera neutral from a normalised mosaic or camera RGB.

    Works on superpixels (one per CFA tile) with no clipped sample and whose brightest channel
    is above ``DARK_LEVEL``. Two classic estimators:

    * grey world (Buchsbaum 1980, J. Franklin Inst. 310(1)): the mean colour is neutral;
    * white patch / bright pixels (Land & McCann 1971 Retinex max-RGB, made robust as in Joze,
      Drew, Finlayson & Rey 2012, "The role of bright pixels in illumination estimation"): the
      mean of the brightest ``BRIGHT_FRACTION`` of usable pixels is neutral.

    Their geometric mean (each normalised to unit sum) is the first estimate: grey world is
    stable on colourful scenes without whites, white patch is right when a white or specular
    surface is present, and where they disagree the geometric mean halves either one's error in
    log-chroma. It is then refined on grey points (Huo, Chang, Wang & Wei 2006, "Robust
    automatic white balance algorithm using gray color points in images", IEEE TCE 52(2)):
    pixels that look achromatic after the current correction (within ``GREY_ANGLE`` degrees of
    (1, 1, 1), or twice that if too few) are averaged to give the next estimate, a few times,
    as long as enough of them (``GREY_MIN_FRACTION`` of usable pixels, at least 8) are found.
    Returns the neutral with max component 1. Raises InputError when no pixel is usable.
    """
    est = _auto(image, cfa)
    if est is None:
        raise InputError("auto white balance: no unclipped, non-black pixels to measure")
    return est


def _auto(image: np.ndarray, cfa: CFAPattern | str | None) -> np.ndarray | None:
    rgb, clipped = _superpixels(image, cfa)
    bright = rgb.max(axis=1)
    ok = ~clipped & (bright > DARK_LEVEL) & np.all(rgb > 0, axis=1)
    ok &= np.all(np.isfinite(rgb), axis=1)
    if np.count_nonzero(ok) < 16:
        return None
    good = rgb[ok].astype(np.float64)
    grey_world = good.mean(axis=0)
    k = max(8, round(BRIGHT_FRACTION * len(good)))
    order = np.argpartition(good.sum(axis=1), len(good) - k)[-k:]
    white_patch = good[order].mean(axis=0)
    est = np.sqrt(grey_world / grey_world.sum() * (white_patch / white_patch.sum()))
    est = est / est.sum()
    need = max(8, GREY_MIN_FRACTION * len(good))
    for _ in range(6):
        balanced = good / est
        cos = balanced.sum(axis=1) / (np.sqrt(3.0) * np.linalg.norm(balanced, axis=1))
        # The tightest cone (GREY_ANGLE, then twice that) holding enough grey points.
        grey = cos >= np.cos(np.radians(GREY_ANGLE))
        if np.count_nonzero(grey) < need:
            grey = cos >= np.cos(np.radians(2 * GREY_ANGLE))
        if np.count_nonzero(grey) < need:
            break
        new = good[grey].mean(axis=0)
        new = new / new.sum()
        done = np.max(np.abs(new - est)) < 1e-6
        est = new
        if done:
            break
    return _normalise(est)


def gains(neutral: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """White-balance multipliers: 1 / neutral, scaled so the smallest multiplier is 1."""
    n = np.asarray(neutral, dtype=float).reshape(-1)
    if n.shape != (3,) or not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise InputError(f"camera neutral must be 3 positive numbers, got {np.asarray(neutral)!r}")
    g = 1.0 / n
    return g / g.min()


def apply_gains_reference(
    x: np.ndarray, g: np.ndarray, cfa: CFAPattern | str | None = None
) -> np.ndarray:
    """Plain-numpy reference of :func:`apply_gains` (builds the full per-pixel gain map)."""
    a = np.asarray(x, dtype=np.float32)
    g32 = np.asarray(g, dtype=np.float32)
    if a.ndim == 3:
        return (a * g32).astype(np.float32)
    masks = as_pattern(cfa).masks(*a.shape)
    gain_map = sum(masks[c] * g32[c] for c in range(3))
    return (a * gain_map).astype(np.float32)


def apply_gains(
    x: np.ndarray, gains: np.ndarray | tuple[float, ...], cfa: CFAPattern | str | None = None
) -> np.ndarray:
    """Multiply a mosaic (H, W) per CFA colour, or RGB (H, W, 3) per channel, by ``gains``.

    float32 out, no clipping (highlights above 1 are kept for highlight reconstruction);
    the input is not modified.
    """
    a = np.asarray(x)
    g = np.asarray(gains, dtype=np.float32).reshape(-1)
    if g.shape != (3,) or not np.all(np.isfinite(g)):
        raise InputError(f"white-balance gains must be 3 finite numbers, got {gains!r}")
    if a.ndim == 3 and a.shape[2] == 3:
        return np.multiply(a, g, dtype=np.float32)
    if a.ndim != 2:
        raise InputError(f"apply_gains needs a (H, W) mosaic or (H, W, 3) RGB, got {a.shape}")
    if cfa is None:
        raise OptionError("white-balance gains on a mosaic need its CFA pattern")
    pat = as_pattern(cfa)
    ph, pw = pat.shape
    out = np.empty(a.shape, dtype=np.float32)
    for dy in range(ph):
        for dx in range(pw):
            np.multiply(a[dy::ph, dx::pw], g[pat.pattern[dy][dx]], out=out[dy::ph, dx::pw],
                        dtype=np.float32)
    return out
