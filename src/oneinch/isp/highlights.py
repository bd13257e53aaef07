"""Highlights: clipped sensor channels, reconstructed or clipped without colour casts.

Works on demosaiced, white-balanced camera RGB. ``clip`` is where each channel saturated after
white balance (the WB gain of that channel, as 1.0 was the sensor white). Values at or above
the clip count as clipped (DNG GainMaps applied before white balance can lift a saturated pixel
above its nominal clip: it is still clipped, and a clipped value is only ever raised).

'reconstruct' (default) — chromaticity inpainting from the unclipped surroundings:

1. *Clip confidence.* A channel is a soft lower bound from ``SOFT_LO`` of its clip upwards
   (smoothstep to fully clipped at ``SOFT_HI``), grown by ``SPREAD`` px per channel: a
   colour-difference demosaic carries a clipped sample's deficit into its neighbours, where it
   can read well *below* the clip (a clipped green beside bright red and blue: the classic
   magenta fringe). The mask is grown by ``BORDER`` px more before chromaticity is sampled.
2. *Chromaticity field.* rgb / (r+g+b) of unclipped pixels, weighted by their brightness (the
   bright rim of a clipped area is most likely the same surface or light), is propagated into
   the clipped areas by pyramid push-pull normalised convolution (Knutsson & Westin 1993;
   Gortler et al. 1996 "pull-push"), at most ``FIELD_EDGE`` px on the long edge; the field is
   sampled bilinearly at clipped pixels only (bounded memory at 50 MP). This is the idea of the
   "inpaint opposed" highlight reconstruction of darktable 4.x (its manual: the colour of a
   clipped area is taken from the unclipped pixels around it) and of Masood, Shah & Tappen 2009
   ("Automatic correction of saturated regions in photographs using cross-channel correlation",
   which transfers channel ratios from nearby unsaturated pixels).
3. *Partially clipped pixels.* The chromaticity is searched on the line from neutral to the
   field's (``MIX_STEPS``): the one whose least-squares scale best explains the trusted
   channels and does not put a clipped channel below what the sensor recorded (the field of a
   differently coloured neighbour is thus pulled back towards neutral — "opposed" evidence,
   as darktable's method uses the unclipped channels of the pixel itself). The scale is at
   least what every clipped channel needs; each clipped channel becomes
   max(observed, scale · chromaticity), so nothing is ever lowered. The steps' estimates are
   averaged with weights exp(-error / ``MIX_SOFTNESS``) (a posterior mean, not the best
   step), so the result is a smooth function of the pixel: a strip's last-bit differences
   cannot flip a choice.
4. *Fully clipped pixels.* Nothing but lower bounds is known: the result is the smallest value
   consistent with every recorded channel, at the field's chromaticity desaturated by
   ``FULL_SATURATION`` towards neutral (0 = neutral white, as a blown-out light looks). It is
   blended with the partial estimate by the trust of the last unclipped channel (no seam).

Only pixels near a clip are touched; the field is computed at reduced size and sampled at those
pixels, so memory stays bounded at 50 MP. One parallel numba read pass finds, per row, the
columns with a value near a clip and (when the field's factor divides the image: 8 at 50 MP)
the block means that are the field's INTER_AREA reduction: with no value near a clip (the
common case) that is all the work; otherwise the near-clip mask is built only in a box around
the clips of each band of rows, and the clip confidence and steps 3-4 run per pixel in numba
kernels (one thread each pixel, no temporaries). The reduction of the rebuilt image for the
brightness field is that of the input except in the blocks that changed, recomputed alone.
:class:`Prescan` lets the pass run strip by strip where the strips are made.
``_reconstruct_reference`` is the same algorithm in plain numpy/OpenCV (tests: within 1e-5).
Measured against rawpy's Clip / Blend / Reconstruct modes in bench/quality_highlights.py.

No estimate can turn magenta by itself: magenta needs green far below red and blue, and a
clipped green is only ever raised while unclipped red and blue are kept.

'clip': every channel limited to the smallest clip (white, never a cast).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from .. import _aot as aot
from .._jit import numba
from ..errors import OptionError

MODES = ("reconstruct", "clip")
SOFT_LO = 0.90  # fraction of the clip where a channel starts to count as (partly) clipped
SOFT_HI = 0.985  # fully clipped from here (demosaicing pulls clipped pixels slightly below)
SPREAD = 1  # px: clip confidence grown per channel (demosaicing spreads a clipped sample)
BORDER = 0  # px: the clip mask is grown by this more before sampling chromaticity
FIELD_EDGE = 1024  # long edge of the chromaticity field
BRIGHT_POWER = 2.0  # border pixels weighted by (brightness / clip) ** this
MIX_STEPS = np.linspace(0.0, 1.0, 5, dtype=np.float32)  # neutral (0) .. field chromaticity (1)
VIOLATION = 1.0  # weight of a clipped channel estimated below what the sensor recorded
# The steps' estimates are averaged with weights exp(-(err + prior) / MIX_SOFTNESS), err the
# step's misfit (squared, relative to the pixel's) and prior MIX_PRIOR * (1 - t)^2 (which
# prefers the field's chromaticity when the trusted channels cannot tell): the posterior mean
# over the steps, misfits of ~2 % RMS counting as indistinguishable. It replaced the smallest
# error's step (prior 1e-4) in session 10: an argmin jumps between two tying steps on a
# last-bit change of its input (a strip's values against the whole image's; 1.3e-3 at one
# pixel of a real GoPro file, 0.1 on a swept synthetic pixel), the average moves at most ~10x
# its input (tests). bench/quality_highlights.py, 10 scenes, argmin -> this: mean dE00 12.13
# -> 12.03, Dab 14.01 -> 13.78, logY 0.338 -> 0.340, dE00 p95 25.66 -> 26.74, dH 4.02 -> 4.08,
# magenta 0.14 -> 0.19 % (rawpy's best mode: 14.61, 16.82, 0.413, 27.70, 7.54, 2.99 %).
MIX_PRIOR = 1e-2
MIX_SOFTNESS = 5e-4
FULL_SATURATION = 0.0  # chromaticity kept in fully clipped areas (0 = neutral)
MAX_GAIN = 4.0  # a rebuilt channel stays below this multiple of the largest clip
_CHUNK = 1 << 20  # near-clip pixels per chunk of rebuild_pixels (bounded temporaries)


def clip_levels(gains: np.ndarray, white: float | np.ndarray = 1.0) -> np.ndarray:
    """Per-channel saturation level after white balance (float32, shape (3,)); ``white``: the
    normalised level each colour saturates at (levels.channel_saturation), one or per colour."""
    return (np.asarray(gains, dtype=np.float32) *
            np.asarray(white, dtype=np.float32)).astype(np.float32).reshape(3)


def _pull(vw: np.ndarray, weight: np.ndarray) -> tuple[list, np.ndarray | None]:
    """The pull half of push-pull: pyramids of weighted values and weights down to 4 px, and
    the coarsest level's normalised values (holes: the global mean); None if all weight is 0."""
    levels = [(vw, weight)]
    while min(levels[-1][1].shape) > 4:
        v, w = levels[-1]
        vd = cv2.pyrDown(v)
        levels.append((vd if vd.ndim == 3 else vd[..., None], cv2.pyrDown(w)))
    v, w = levels[-1]
    if not np.any(w > 1e-8):
        return levels, None
    total = w.sum()
    mean = (v.reshape(-1, v.shape[-1]).sum(0) / total).astype(np.float32)
    return levels, np.where(w[..., None] > 1e-8, v / np.maximum(w, 1e-8)[..., None], mean)


def _push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill where weight == 0 with a smooth extension of weighted values (values: (h, w, c))."""
    levels, coarse = _pull(values * weight[..., None], weight)
    if coarse is None:
        return np.full_like(values, 1.0 / values.shape[-1])
    for v, w in reversed(levels[:-1]):
        up = cv2.pyrUp(coarse, dstsize=(w.shape[1], w.shape[0]))
        if up.ndim == 2:
            up = up[..., None]
        a = np.clip(w * 4.0, 0.0, 1.0)[..., None]
        coarse = a * (v / np.maximum(w, 1e-8)[..., None]) + (1.0 - a) * up
    return coarse.astype(np.float32)


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@aot.entry
@numba.njit(parallel=True, cache=True, nogil=True)
def _row_hits_kernel(rgb, t0, t1, t2, hits):  # pragma: no cover - numba
    h, w = rgb.shape[0], rgb.shape[1]
    for i in numba.prange(h):
        hit = False
        for j in range(w):
            hit |= (rgb[i, j, 0] >= t0) | (rgb[i, j, 1] >= t1) | (rgb[i, j, 2] >= t2)
        hits[i] = hit


def _row_hits(rgb: np.ndarray, clip: np.ndarray, frac: float) -> np.ndarray:
    """(H,) bool: rows where ``_clip_mask(rgb, clip, frac)`` has a pixel. One numba read pass
    (releases the GIL); the thresholds are ``_clip_mask``'s, compared exactly (float64)."""
    thr = [float(clip[c] * frac) for c in range(3)]
    hits = np.empty(rgb.shape[0], np.bool_)
    _row_hits_kernel(rgb, thr[0], thr[1], thr[2], hits)
    return hits


def _grow_rows(rows: np.ndarray, r: int) -> np.ndarray:
    """Row flags grown by ``r`` rows each way (a 1-D dilation)."""
    if r <= 0 or not rows.any():
        return rows.copy()
    idx = np.flatnonzero(rows)
    out = np.zeros_like(rows)
    for d in range(-r, r + 1):
        out[np.clip(idx + d, 0, rows.size - 1)] = True
    return out


def _clip_mask(rgb: np.ndarray, clip: np.ndarray, frac: float) -> np.ndarray:
    m = rgb[..., 0] >= clip[0] * frac
    m |= rgb[..., 1] >= clip[1] * frac
    m |= rgb[..., 2] >= clip[2] * frac
    return m


def _field_size(h: int, w: int) -> tuple[float, tuple[int, int]]:
    """Scale factor to the reduced fields and their (width, height)."""
    f = max(1.0, max(h, w) / FIELD_EDGE)
    return f, (max(1, round(w / f)), max(1, round(h / f)))


def _block_factor(h: int, w: int) -> int:
    """The integer factor of the reduced fields when it divides the image (8192 x 6144 ->
    1024 x 768: INTER_AREA is then a plain block mean, computed by :func:`_scan`), else 0."""
    f, size = _field_size(h, w)
    fi = round(f)
    return fi if f > 1 and fi == f and h == size[1] * fi and w == size[0] * fi else 0


def chroma_field(rgb: np.ndarray, clip: np.ndarray, near: np.ndarray | None,
                 rows: np.ndarray | None = None, *, small: np.ndarray | None = None,
                 bad: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Brightness-weighted chromaticity of pixels outside ``near``, push-pulled everywhere.

    Returns the field (h', w', 3) at reduced resolution and the scale factor to it.
    ``rows``: (H,) bool, the rows where ``near`` may be set (None: any). ``small``: the
    INTER_AREA reduction of ``rgb`` if already known; ``bad``: a reduced mask, > 0 where a
    block holds a pixel of ``near`` (then ``near`` may be None).
    """
    h, w = rgb.shape[:2]
    f, size = _field_size(h, w)
    if small is None:
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if f > 1 else rgb
    if bad is None:
        bad = _area_mask(near, size, f, rows)
    total = np.maximum(small, 0).sum(axis=2)
    chroma = np.maximum(small, 0) / np.maximum(total, 1e-9)[..., None]
    weight = np.clip(total / float(clip.sum()), 0.0, 1.0) ** BRIGHT_POWER
    weight = (weight * (bad <= 0) * (total > 1e-4)).astype(np.float32)
    return _push_pull(chroma.astype(np.float32), weight), f


def _area_mask(near: np.ndarray, size: tuple[int, int], f: float,
               rows: np.ndarray | None = None) -> np.ndarray:
    """The ``near`` mask grown by ``BORDER`` px, as float32, area-resized to ``size``.

    With an integer factor that divides the image (8192 x 6144 -> 1024 x 768) the area resize
    is a plain block mean, computed here in bands of rows (identical values; no full-size
    float32 copy of the mask), skipping bands without a flag in ``rows`` ((H,) bool, rows where
    ``near`` may be set; None: all); otherwise the whole mask is converted at once."""
    h, w = near.shape
    kernel = np.ones((2 * BORDER + 1,) * 2, np.uint8)
    fi = round(f)
    if f <= 1 or fi != f or h != size[1] * fi or w != size[0] * fi:
        grown = cv2.dilate(near.view(np.uint8), kernel)
        if f <= 1:
            return grown.astype(np.float32)
        return cv2.resize(grown.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    out = np.empty((size[1], size[0]), np.float32)
    band = max(1, 256 // fi) * fi  # input rows per band (a multiple of the factor)
    for a in range(0, h, band):
        b = min(h, a + band)
        lo, hi = max(0, a - BORDER), min(h, b + BORDER)
        if rows is not None and not rows[lo:hi].any():
            out[a // fi : b // fi] = 0.0  # the block mean of an all-false band
            continue
        grown = cv2.dilate(near[lo:hi].view(np.uint8), kernel)[a - lo : a - lo + b - a]
        out[a // fi : b // fi] = cv2.resize(
            grown.astype(np.float32), (size[0], (b - a) // fi), interpolation=cv2.INTER_AREA
        )
    return out


def _near_mask(rgb: np.ndarray, clip: np.ndarray, hits: np.ndarray | None = None) -> np.ndarray:
    """``_clip_mask(rgb, clip, SOFT_LO)`` dilated by ``SPREAD`` px (bool), built in bands of
    rows with ``SPREAD`` rows of context: the same mask without full-size temporaries.
    ``hits``: :func:`_row_hits` of the same threshold; bands without one are left all false
    (the zero pages of ``np.zeros`` are never touched)."""
    h = rgb.shape[0]
    near = np.empty(rgb.shape[:2], np.bool_) if hits is None else np.zeros(rgb.shape[:2], bool)
    kernel = np.ones((2 * SPREAD + 1,) * 2, np.uint8)
    band = 256
    for a in range(0, h, band):
        b = min(h, a + band)
        lo, hi = max(0, a - SPREAD), min(h, b + SPREAD)
        if hits is not None and not hits[lo:hi].any():
            continue
        m = _clip_mask(rgb[lo:hi], clip, SOFT_LO)
        if SPREAD > 0:
            m = cv2.dilate(m.view(np.uint8), kernel).view(np.bool_)
        near[a:b] = m[a - lo : a - lo + b - a]
    return near


def _nonzero_rows(mask: np.ndarray, rows: np.ndarray, band: int = 256
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero(mask)`` (row-major order) reading only bands of rows with a flag in
    ``rows``."""
    ys, xs = [np.zeros(0, np.intp)], [np.zeros(0, np.intp)]
    for a in range(0, mask.shape[0], band):
        b = min(mask.shape[0], a + band)
        if rows[a:b].any():
            y, x = np.nonzero(mask[a:b])
            ys.append(y + a)
            xs.append(x)
    return np.concatenate(ys), np.concatenate(xs)


def _sample(field: np.ndarray, f: float, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear samples of the reduced field at full-resolution pixel centres (n, c)."""
    nc = 1 if field.ndim == 2 else field.shape[2]
    mx = ((xs.astype(np.float32) + 0.5) / np.float32(f) - 0.5).reshape(-1, 1)
    my = ((ys.astype(np.float32) + 0.5) / np.float32(f) - 0.5).reshape(-1, 1)
    out = np.empty((ys.size, nc), np.float32)
    for lo in range(0, ys.size, 1 << 20):  # cv2.remap limits map sizes to 32767 per side
        hi = min(ys.size, lo + (1 << 20))
        n = hi - lo
        cols = 1024
        rows = -(-n // cols)
        pad = rows * cols - n
        mxx = np.pad(mx[lo:hi, 0], (0, pad), mode="edge").reshape(rows, cols)
        myy = np.pad(my[lo:hi, 0], (0, pad), mode="edge").reshape(rows, cols)
        s = cv2.remap(field, mxx, myy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[lo:hi] = s.reshape(-1, nc)[:n]
    return out


def clip_confidence(rgb: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Per-channel clip confidence (H, W, 3) in [0, 1], grown by ``SPREAD`` px per channel:
    colour-difference demosaicing carries a clipped sample's deficit into its neighbours, which
    can land well below the clip (a clipped green beside a bright red reads low)."""
    p = _smoothstep(rgb / clip, SOFT_LO, SOFT_HI).astype(np.float32)
    if SPREAD > 0:
        p = cv2.dilate(p, np.ones((2 * SPREAD + 1,) * 2, np.uint8))
    return p


def _clip_confidence_at(rgb: np.ndarray, clip: np.ndarray, ys: np.ndarray, xs: np.ndarray
                        ) -> np.ndarray:
    """clip_confidence at the pixels (ys, xs) only, computed per bounding box of 128-row bands
    (bounded memory; the box spans only the columns of the band's pixels, with ``SPREAD`` of
    context: the dilation's border outside the box never wins, so values are exact). ``ys``
    ascending (np.nonzero's row-major order): each band's pixels are one slice, found by
    binary search."""
    out = np.empty((ys.size, 3), np.float32)
    h = rgb.shape[0]
    band = 128
    ordered = ys.size < 2 or bool(np.all(ys[1:] >= ys[:-1]))
    for y0 in range(0, h, band):
        if ordered:
            i0, i1 = np.searchsorted(ys, [y0, y0 + band])
            sel = slice(int(i0), int(i1))
            if i1 <= i0:
                continue
        else:
            sel = (ys >= y0) & (ys < y0 + band)
            if not sel.any():
                continue
        a, b = max(0, y0 - SPREAD), min(h, y0 + band + SPREAD)
        xb = xs[sel]  # only the columns of these pixels and their SPREAD neighbours
        c0, c1 = max(0, int(xb.min()) - SPREAD), min(rgb.shape[1], int(xb.max()) + SPREAD + 1)
        conf = clip_confidence(rgb[a:b, c0:c1], clip)
        out[sel] = conf[ys[sel] - a, xb - c0]
    return out


def rebuild_pixels(px: np.ndarray, clip: np.ndarray, chroma: np.ndarray,
                   full_saturation: float | None = None, p: np.ndarray | None = None,
                   level: np.ndarray | None = None) -> np.ndarray:
    """Steps 3-4 of the module docstring for pixels ``px`` (n, 3) with field chroma (n, 3),
    clip confidence ``p`` (n, 3; default from ``px`` alone) and, for fully clipped pixels, the
    inpainted brightness ``level`` (n,; R+G+B) they should at least reach."""
    if p is None:
        p = _smoothstep(px / clip, SOFT_LO, SOFT_HI)
    ch = np.clip(chroma, 1e-4, 1.0)
    ch = ch / ch.sum(axis=1, keepdims=True)
    trust = 1.0 - p
    # partial: the chromaticity on the line from neutral to the field's that best explains the
    # trusted channels (a border of another colour is pulled back towards neutral), scaled to
    # them by least squares
    norm = (px * px).sum(axis=1) + 1e-12
    errs, ests = [], []
    for t in MIX_STEPS:
        cht = t * ch + (1.0 - t) / 3.0
        k = (trust * px * cht).sum(axis=1) / np.maximum((trust * cht * cht).sum(axis=1), 1e-12)
        k = np.maximum(k, (p * px / cht).max(axis=1))  # no clipped channel below its record
        est = k[:, None] * cht
        miss = trust * (px - est) ** 2 + VIOLATION * p * np.maximum(px - est, 0.0) ** 2
        errs.append(miss.sum(axis=1) / norm + MIX_PRIOR * (1.0 - t) ** 2)
        ests.append(est)
    err = np.stack(errs, axis=1)  # (n, steps): weights exp(-err / MIX_SOFTNESS)
    wts = np.exp((err.min(axis=1, keepdims=True) - err) * np.float32(1.0 / MIX_SOFTNESS))
    est_part = (wts[..., None] * np.stack(ests, axis=1)).sum(axis=1) / wts.sum(axis=1)[:, None]
    # full: smallest value, at desaturated chroma, that reaches every channel's clip
    s = FULL_SATURATION if full_saturation is None else full_saturation
    ch_full = s * ch + (1.0 - s) / 3.0
    k_full = (px / ch_full).max(axis=1)
    if level is not None:
        k_full = np.maximum(k_full, level)
    est_full = k_full[:, None] * ch_full
    a = np.clip(trust.max(axis=1) * 4.0, 0.0, 1.0)[:, None]  # how much is still unclipped
    est = a * est_part + (1.0 - a) * est_full
    est = np.minimum(est, MAX_GAIN * float(clip.max()))
    rebuilt = px + p * np.maximum(est - px, 0.0)
    return rebuilt.astype(np.float32)


def _clip_mode(rgb: np.ndarray, clip: np.ndarray, mode: str,
               out: np.ndarray | None) -> np.ndarray:
    """mode 'clip' (every channel limited to the smallest clip); any other non-'reconstruct'
    mode is an OptionError."""
    if mode != "clip":
        raise OptionError(f"unknown highlight mode {mode!r} (one of {', '.join(MODES)})")
    if out is not None:
        return np.minimum(rgb, clip.min(), out=out)
    return np.minimum(rgb, clip.min()).astype(np.float32)


def _reconstruct_reference(rgb: np.ndarray, clip: np.ndarray, mode: str = "reconstruct", *,
                           out: np.ndarray | None = None) -> np.ndarray:
    """:func:`reconstruct` in plain numpy / OpenCV (the reference its numba paths match)."""
    clip = np.asarray(clip, dtype=np.float32).reshape(3)
    if mode != "reconstruct":
        return _clip_mode(rgb, clip, mode, out)
    rgb = np.asarray(rgb, dtype=np.float32)
    hits = _row_hits(rgb, clip, SOFT_LO)  # one read pass: rows with a value near a clip
    if out is None:
        out = rgb.copy()
    elif out is not rgb:
        out[...] = rgb
    if not hits.any():  # nothing near a clip: nothing to rebuild
        return out
    near = _near_mask(rgb, clip, hits)  # (grown by SPREAD)
    rows = _grow_rows(hits, SPREAD)  # rows where ``near`` can be set
    field, f = chroma_field(rgb, clip, near, rows)
    ys, xs = _nonzero_rows(near, rows)
    del near
    p = _clip_confidence_at(rgb, clip, ys, xs)  # all of it before ``out`` (maybe rgb) changes
    full = (1.0 - p).max(axis=1) < 0.25  # step 4 reached: bring the brightness in, too
    keep_px, keep_chroma = [], []
    for a in range(0, ys.size, _CHUNK):  # per-pixel work in chunks: bounded temporaries
        sl = slice(a, a + _CHUNK)
        cy, cx = ys[sl], xs[sl]
        px, chroma = rgb[cy, cx], _sample(field, f, cy, cx)
        fsel = full[sl]
        keep_px.append(px[fsel])
        keep_chroma.append(chroma[fsel])
        out[cy, cx] = rebuild_pixels(px, clip, chroma, p=p[sl])
    if full.any():
        fy, fx = ys[full], xs[full]
        level = _level_field(out, clip, fy, fx)
        out[fy, fx] = rebuild_pixels(np.concatenate(keep_px), clip, np.concatenate(keep_chroma),
                                     p=p[full], level=level)
    return out


@aot.entry
@numba.njit(cache=True, nogil=True)
def _mark_blocks(ys, xs, fi, bad):  # pragma: no cover - numba
    for k in range(ys.size):
        bad[ys[k] // fi, xs[k] // fi] = 1.0


def _pixels_area(h: int, w: int, size: tuple[int, int], f: float, ys: np.ndarray,
                 xs: np.ndarray) -> np.ndarray:
    """A mask of the pixels (ys, xs) of an (h, w) image, area-resized to ``size`` (by ``f``);
    used only as ``> 0``. With an integer factor that divides the image, the block mean is
    > 0 exactly on the blocks that hold a pixel: marked directly, with no full-size mask;
    with another factor, on the cells their area reaches (:class:`AreaTables`)."""
    fi = round(f)
    if f > 1 and fi == f and h == size[1] * fi and w == size[0] * fi:
        bad = np.zeros((size[1], size[0]), np.float32)
        _mark_blocks(ys, xs, fi, bad)
        return bad
    tabs = AreaTables.of(h, w, size) if f > 1 else None
    if tabs is not None:
        grid = np.zeros((size[1], size[0], 1), np.float64)
        tabs.add_points(grid, ys, xs, np.ones((ys.size, 1), np.float32))
        return grid[..., 0].astype(np.float32)
    full = np.zeros((h, w), np.float32)
    full[ys, xs] = 1.0
    return cv2.resize(full, size, interpolation=cv2.INTER_AREA) if f > 1 else full


def _level_field(out: np.ndarray, clip: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                 small: np.ndarray | None = None) -> np.ndarray:
    """Brightness (R+G+B) of the reconstructed surroundings of fully clipped pixels (ys, xs),
    bright pixels weighted most, push-pulled into them: a blown area is at least as bright as
    its rebuilt rim, so it never sits as a grey hole inside a brighter halo. ``small``: the
    INTER_AREA reduction of ``out`` if already known."""
    h, w = out.shape[:2]
    f, size = _field_size(h, w)
    if small is None:
        small = cv2.resize(out, size, interpolation=cv2.INTER_AREA) if f > 1 else out
    bad = _pixels_area(h, w, size, f, ys, xs)
    level = np.maximum(small, 0).sum(axis=2)
    weight = np.clip(level / float(clip.sum()), 0.0, 4.0) ** (2 * BRIGHT_POWER)
    weight = (weight * (bad <= 0)).astype(np.float32)
    filled = _push_pull(level[..., None].astype(np.float32), weight)
    return _sample(filled[..., 0], f, ys, xs)[:, 0]


class AreaTables:
    """The separable weights of an INTER_AREA reduction of an (h, w) image to ``size`` (w',
    h') by a factor that is no integer: output cell i of an axis covers source coordinates
    [i s, min((i + 1) s, n)) (s = n / n', the area relation), and a source pixel's weight
    in it is the length of its overlap divided by the cell's width. Overlaps under 1e-3 px
    are left out, as OpenCV's resize does (tested against cv2.resize). With s >= 1 each
    source pixel reaches at most two cells per axis: ``d[k]`` and ``wt[k]`` hold them (-1:
    none). The reduction can then be summed strip by strip (:class:`Prescan`) and changed
    at a few pixels (:func:`reconstruct`'s brightness field) with no full-size image."""

    def __init__(self, h: int, w: int, size: tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.yd, self.yw = self._axis(int(h), self.size[1])
        self.xd, self.xw = self._axis(int(w), self.size[0])

    @staticmethod
    def of(h: int, w: int, size: tuple[int, int]) -> AreaTables | None:
        """The tables (cached), or None when an axis is not reduced (s < 1)."""
        if size[0] > w or size[1] > h:
            return None
        return _area_tables(int(h), int(w), (int(size[0]), int(size[1])))

    @staticmethod
    def _axis(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        s = n / m
        d = np.full((n, 2), -1, np.int64)
        wt = np.zeros((n, 2), np.float64)
        for i in range(m):
            lo, hi = i * s, min((i + 1) * s, float(n))
            for k in range(int(np.floor(lo)), min(n, int(np.ceil(hi)))):
                overlap = min(k + 1.0, hi) - max(float(k), lo)
                if overlap <= 1e-3:
                    continue
                slot = 0 if d[k, 0] < 0 else 1
                d[k, slot], wt[k, slot] = i, overlap / (hi - lo)
        assert (d[:, 0] >= 0).all()  # (the kernels rely on it: overlaps sum to 1 a pixel)
        return d, wt

    def rows_reached(self, a: int, b: int) -> tuple[int, int]:
        """The output rows [i0, i1) that source rows a..b reach."""
        return int(self.yd[a, 0]), int(self.yd[b - 1].max()) + 1

    def add_rows(self, strip: np.ndarray, row0: int) -> tuple[int, np.ndarray]:
        """(i0, the weighted sums of ``strip`` = source rows row0.. (n, w, 3) over output
        rows i0..), float64: a strip's share of the reduction."""
        i0, i1 = self.rows_reached(row0, row0 + strip.shape[0])
        acc = np.zeros((i1 - i0, self.size[0], strip.shape[2]), np.float64)
        _area_rows_kernel(np.ascontiguousarray(strip, np.float32), row0, self.yd, self.yw,
                          self.xd, self.xw, acc, i0)
        return i0, acc

    def add_points(self, grid: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                   vals: np.ndarray) -> None:
        """Add the reduction of an image that is ``vals`` (n, c) at (ys, xs), 0 elsewhere,
        into ``grid`` (h', w', c) float64."""
        _area_points_kernel(np.asarray(ys, np.int64), np.asarray(xs, np.int64),
                            np.ascontiguousarray(vals, np.float32), self.yd, self.yw,
                            self.xd, self.xw, grid)


@functools.lru_cache(maxsize=4)
def _area_tables(h: int, w: int, size: tuple[int, int]) -> AreaTables:
    return AreaTables(h, w, size)


def streamable(h: int, w: int) -> bool:
    """Whether :class:`Prescan` makes the whole read pass of an (h, w) image, so that
    :func:`reconstruct` with it reads only rows near clips: a reduced field (an image over
    ``FIELD_EDGE`` px) by a block mean or by :class:`AreaTables`."""
    f, size = _field_size(h, w)
    return f > 1 and (_block_factor(h, w) > 0 or AreaTables.of(h, w, size) is not None)


@aot.entry
@numba.njit(cache=True, nogil=True)
def _area_rows_kernel(strip, row0, yd, yw, xd, xw, acc, i0):  # pragma: no cover - numba
    # (3 channels; every pixel reaches cell xd[x, 0], a cell's edge pixels xd[x, 1] too)
    line = np.zeros((acc.shape[1], 3))
    for i in range(strip.shape[0]):
        line[:] = 0.0
        for x in range(strip.shape[1]):
            v0, v1, v2 = strip[i, x, 0], strip[i, x, 1], strip[i, x, 2]
            d, wt = xd[x, 0], xw[x, 0]
            line[d, 0] += wt * v0
            line[d, 1] += wt * v1
            line[d, 2] += wt * v2
            d = xd[x, 1]
            if d >= 0:
                wt = xw[x, 1]
                line[d, 0] += wt * v0
                line[d, 1] += wt * v1
                line[d, 2] += wt * v2
        y = row0 + i
        for t in range(2):
            d = yd[y, t]
            if d >= 0:
                wy = yw[y, t]
                for j in range(line.shape[0]):
                    acc[d - i0, j, 0] += wy * line[j, 0]
                    acc[d - i0, j, 1] += wy * line[j, 1]
                    acc[d - i0, j, 2] += wy * line[j, 2]


@aot.entry
@numba.njit(cache=True, nogil=True)
def _area_points_kernel(ys, xs, vals, yd, yw, xd, xw, grid):  # pragma: no cover - numba
    for k in range(ys.size):
        for ty in range(2):
            dy = yd[ys[k], ty]
            if dy < 0:
                continue
            for tx in range(2):
                dx = xd[xs[k], tx]
                if dx < 0:
                    continue
                wgt = yw[ys[k], ty] * xw[xs[k], tx]
                for c in range(vals.shape[1]):
                    grid[dy, dx, c] += wgt * vals[k, c]


# --- numba paths of reconstruct (references: the numpy functions above) ----------------------

_F0, _F1 = np.float32(0.0), np.float32(1.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _block_row_means(rgb, bi, fi, col, small):  # pragma: no cover - numba
    """Block means of block row ``bi`` from its column sums ``col`` (float32, summed row by
    row in order), in float64."""
    inv = 1.0 / (fi * fi)
    for bj in range(rgb.shape[1] // fi):
        for c in range(3):
            acc = 0.0
            for j in range(bj * fi, bj * fi + fi):
                acc += col[3 * j + c]
            small[bi, bj, c] = np.float32(acc * inv)


def _scan_rows(rgb, thr, fi, first, last, small, seen, summed):  # pragma: no cover - numba
    # block rows in parallel; the block sums are made only once a hit was seen (``seen[0]``,
    # shared: a stale read only defers a block row to _sum_rows, with the same arithmetic),
    # so an image with nothing near a clip costs one compare per value
    h, w = rgb.shape[0], rgb.shape[1]
    unit = max(fi, 1)
    for bi in numba.prange(h // unit):
        sums = fi > 0 and seen[0]
        col = np.zeros(w * 3 if fi > 0 else 0, np.float32)  # column sums of the band's rows
        hit = False
        for i in range(bi * unit, bi * unit + unit):
            row = rgb[i].reshape(-1)
            n = np.int32(0)  # branch-free count in the same (vectorised) loop as the sums
            if sums:
                for k in range(w * 3):
                    v = row[k]
                    n += np.int32(v >= thr[k])
                    col[k] += v
            else:
                for k in range(w * 3):
                    n += np.int32(row[k] >= thr[k])
            lo, hi = -1, -1
            if n > 0:  # the extents only in rows with a hit
                hit = True
                for j in range(w):
                    if (row[3 * j] >= thr[0]) | (row[3 * j + 1] >= thr[1]) | (
                            row[3 * j + 2] >= thr[2]):
                        if lo < 0:
                            lo = j
                        hi = j
            first[i] = lo
            last[i] = hi
        if fi > 0 and hit and not sums:  # the first hit here: sum these rows (still cached)
            seen[0] = True
            for i in range(bi * unit, bi * unit + unit):
                row = rgb[i].reshape(-1)
                for k in range(w * 3):
                    col[k] += row[k]
            sums = True
        if sums:
            _block_row_means(rgb, bi, fi, col, small)
        if fi > 0:
            summed[bi] = sums


_scan_kernel = aot.entry(numba.njit(parallel=True, cache=True, nogil=True)(_scan_rows),
                         f"{__name__}._scan_kernel")
_scan_kernel_serial = aot.entry(numba.njit(cache=True, nogil=True)(_scan_rows),  # strips' threads
                                f"{__name__}._scan_kernel_serial")


@aot.entry
@numba.njit(parallel=True, cache=True, nogil=True)
def _sum_rows(rgb, fi, todo, small):  # pragma: no cover - numba
    """The block means of the block rows ``todo`` (as _scan_rows makes them)."""
    w = rgb.shape[1]
    for t in numba.prange(todo.size):
        bi = todo[t]
        col = np.zeros(w * 3, np.float32)
        for i in range(bi * fi, bi * fi + fi):
            row = rgb[i].reshape(-1)
            for k in range(w * 3):
                col[k] += row[k]
        _block_row_means(rgb, bi, fi, col, small)


def _scan(rgb: np.ndarray, clip: np.ndarray, fi: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One parallel read pass: per row the first and last column of ``_clip_mask(rgb, clip,
    SOFT_LO)`` (-1: none; the same float32 thresholds) and, with a block factor ``fi`` > 0
    (:func:`_block_factor`) and a value near a clip anywhere (else None), the block means of
    ``rgb`` (= its INTER_AREA reduction; float32 column sums of ``fi`` rows, float64 block
    sums; block rows read before the first hit was seen are summed after, in a second parallel
    pass)."""
    h, w = rgb.shape[:2]
    thr = np.tile((clip * np.float32(SOFT_LO)).astype(np.float32), w)  # per row element
    first, last = np.empty(h, np.int64), np.empty(h, np.int64)
    small = np.empty((h // fi, w // fi, 3) if fi else (0, 0, 3), np.float32)
    summed = np.zeros(small.shape[0], np.bool_)
    _scan_kernel(rgb, thr, fi, first, last, small, np.zeros(1, np.bool_), summed)
    if not fi or not (last >= 0).any():
        return first, last, None  # (no block means needed: nothing to rebuild)
    if not summed.all():  # block rows read before the first hit was seen
        _sum_rows(rgb, fi, np.flatnonzero(~summed), small)
    return first, last, small


@aot.entry
@numba.njit(cache=True, nogil=True)
def _block_means_kernel(img, fi, blocks, small):  # pragma: no cover - numba
    bw = small.shape[1]
    inv = 1.0 / (fi * fi)
    for k in range(blocks.size):
        bi, bj = blocks[k] // bw, blocks[k] % bw
        a0, a1, a2 = 0.0, 0.0, 0.0
        for i in range(bi * fi, bi * fi + fi):
            s0, s1, s2 = 0.0, 0.0, 0.0
            for j in range(bj * fi, bj * fi + fi):
                s0 += img[i, j, 0]
                s1 += img[i, j, 1]
                s2 += img[i, j, 2]
            a0 += s0
            a1 += s1
            a2 += s2
        small[bi, bj, 0] = np.float32(a0 * inv)
        small[bi, bj, 1] = np.float32(a1 * inv)
        small[bi, bj, 2] = np.float32(a2 * inv)


def _near_pixels(rgb: np.ndarray, clip: np.ndarray, first: np.ndarray, last: np.ndarray,
                 band: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero(_near_mask(rgb, clip))`` (row-major) from :func:`_scan`'s column extents:
    the mask is built only in the box of each band of rows that spans its hits, with
    ``SPREAD`` px of context (no hit lies outside the box, so the dilation is exact), and only
    on the rows ``last`` flags: what the box reads on other rows is discarded (for a sparse
    image, :func:`reconstruct`'s ``prescan``)."""
    h, w = rgb.shape[:2]
    kernel = np.ones((2 * SPREAD + 1,) * 2, np.uint8)
    ys, xs = [np.zeros(0, np.intp)], [np.zeros(0, np.intp)]
    for a in range(0, h, band):
        b = min(h, a + band)
        lo, hi = max(0, a - SPREAD), min(h, b + SPREAD)
        hit = last[lo:hi] >= 0
        if not hit.any():
            continue
        c0 = max(0, int(first[lo:hi][hit].min()) - SPREAD)
        c1 = min(w, int(last[lo:hi][hit].max()) + SPREAD + 1)
        m = _clip_mask(rgb[lo:hi, c0:c1], clip, SOFT_LO)
        m[~hit] = False  # (no value near a clip there: rows the caller may never have written)
        if SPREAD > 0:
            m = cv2.dilate(m.view(np.uint8), kernel).view(np.bool_)
        y, x = np.nonzero(m[a - lo : a - lo + b - a])
        ys.append(y + a)
        xs.append(x + c0)
    return np.concatenate(ys), np.concatenate(xs)


@aot.entry
@numba.njit(cache=True, nogil=True)
def _confidence_kernel(rgb, ys, xs, clip, lo, span, spread, px, p):  # pragma: no cover
    h, w = rgb.shape[0], rgb.shape[1]
    two, three = np.float32(2.0), np.float32(3.0)
    for k in range(ys.size):
        y, x = ys[k], xs[k]
        for c in range(3):
            px[k, c] = rgb[y, x, c]
            t = min(max((rgb[y, x, c] / clip[c] - lo) / span, _F0), _F1)
            if t == _F1:  # fully clipped: no neighbour can be more (smoothstep <= 1)
                p[k, c] = _F1
                continue
            best = np.float32(-np.inf)
            for i in range(max(0, y - spread), min(h, y + spread + 1)):
                for j in range(max(0, x - spread), min(w, x + spread + 1)):
                    t = (rgb[i, j, c] / clip[c] - lo) / span
                    t = min(max(t, _F0), _F1)
                    t = t * t * (three - two * t)
                    best = max(best, t)
            p[k, c] = best


def _clip_confidence_px(rgb: np.ndarray, clip: np.ndarray, ys: np.ndarray, xs: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``rgb[ys, xs]`` and :func:`_clip_confidence_at` (the smoothstep's float32 arithmetic,
    dilated by ``SPREAD``) in one numba pass over the pixels (n, 3 each)."""
    px, p = np.empty((ys.size, 3), np.float32), np.empty((ys.size, 3), np.float32)
    _confidence_kernel(rgb, ys, xs, clip.astype(np.float32), np.float32(SOFT_LO),
                       np.float32(SOFT_HI - SOFT_LO), SPREAD, px, p)
    return px, p


@aot.entry
@numba.njit(parallel=True, cache=True, nogil=True)
def _rebuild_kernel(px, chroma, p, level, sel, mix, mix_u, mix_prior, inv_soft, s_full, u_full,
                    gmax, part, have_part, res):  # pragma: no cover - numba
    eps4, tiny, four = np.float32(1e-4), np.float32(1e-12), np.float32(4.0)
    has_level = level.size > 0
    for q in numba.prange(sel.size):
        i = sel[q]
        x0, x1, x2 = px[i, 0], px[i, 1], px[i, 2]
        p0, p1, p2 = p[i, 0], p[i, 1], p[i, 2]
        c0 = min(max(chroma[i, 0], eps4), _F1)
        c1 = min(max(chroma[i, 1], eps4), _F1)
        c2 = min(max(chroma[i, 2], eps4), _F1)
        cs = c0 + c1 + c2
        c0, c1, c2 = c0 / cs, c1 / cs, c2 / cs
        r0, r1, r2 = _F1 - p0, _F1 - p1, _F1 - p2
        norm = x0 * x0 + x1 * x1 + x2 * x2 + tiny
        best = np.float32(np.inf)
        e0, e1, e2 = _F0, _F0, _F0
        if have_part:  # the partial estimate of an earlier call (it does not depend on level)
            e0, e1, e2 = part[i, 0], part[i, 1], part[i, 2]
        # all channels clipped: the partial estimate gets weight 0 (any finite value will do)
        skip = have_part or max(max(r0, r1), r2) <= _F0
        sw = _F0  # weights exp(-err / soft) in one pass: the sums rescale as the minimum drops
        for m in range(0 if skip else mix.size):
            t, u = mix[m], mix_u[m]
            h0, h1, h2 = t * c0 + u, t * c1 + u, t * c2 + u
            num = r0 * x0 * h0 + r1 * x1 * h1 + r2 * x2 * h2
            den = r0 * h0 * h0 + r1 * h1 * h1 + r2 * h2 * h2
            k = num / max(den, tiny)
            k = max(k, max(max(p0 * x0 / h0, p1 * x1 / h1), p2 * x2 / h2))
            s0, s1, s2 = k * h0, k * h1, k * h2
            d0, d1, d2 = x0 - s0, x1 - s1, x2 - s2
            v0, v1, v2 = max(d0, _F0), max(d1, _F0), max(d2, _F0)
            miss = (r0 * (d0 * d0) + p0 * (v0 * v0)) + (r1 * (d1 * d1) + p1 * (v1 * v1))
            miss = miss + (r2 * (d2 * d2) + p2 * (v2 * v2))
            err = miss / norm + mix_prior[m]
            if err < best:
                if sw > _F0:
                    f = np.exp((err - best) * inv_soft)
                    sw, e0, e1, e2 = sw * f, e0 * f, e1 * f, e2 * f
                best = err
            wm = np.exp((best - err) * inv_soft)
            sw, e0, e1, e2 = sw + wm, e0 + wm * s0, e1 + wm * s1, e2 + wm * s2
        if sw > _F0:
            e0, e1, e2 = e0 / sw, e1 / sw, e2 / sw
        if not have_part and part.shape[0] > 0:
            part[i, 0], part[i, 1], part[i, 2] = e0, e1, e2
        f0, f1, f2 = s_full * c0 + u_full, s_full * c1 + u_full, s_full * c2 + u_full
        kf = max(max(x0 / f0, x1 / f1), x2 / f2)
        if has_level:
            kf = max(kf, level[q])
        a = min(max(max(max(r0, r1), r2) * four, _F0), _F1)
        b = _F1 - a
        q0 = min(a * e0 + b * (kf * f0), gmax)
        q1 = min(a * e1 + b * (kf * f1), gmax)
        q2 = min(a * e2 + b * (kf * f2), gmax)
        res[q, 0] = x0 + p0 * max(q0 - x0, _F0)
        res[q, 1] = x1 + p1 * max(q1 - x1, _F0)
        res[q, 2] = x2 + p2 * max(q2 - x2, _F0)


def rebuild_pixels_numba(px: np.ndarray, clip: np.ndarray, chroma: np.ndarray,
                         full_saturation: float | None = None, p: np.ndarray | None = None,
                         level: np.ndarray | None = None, part: np.ndarray | None = None,
                         have_part: bool = False, sel: np.ndarray | None = None
                         ) -> np.ndarray:
    """:func:`rebuild_pixels` as one numba pass over the pixels (its float32 arithmetic, no
    temporaries); the per-step constants are computed by numpy exactly as there. ``part``
    (n, 3): filled with the partial estimate (step 3), or with ``have_part`` taken from it
    (it depends on neither ``level`` nor ``full_saturation``). ``sel``: rebuild only these
    pixels (indices; ``level`` and the result are then per index)."""
    px = np.ascontiguousarray(px, np.float32)
    if p is None:
        p = _smoothstep(px / clip, SOFT_LO, SOFT_HI)
    s = FULL_SATURATION if full_saturation is None else full_saturation
    mix_u = np.array([(1.0 - t) / 3.0 for t in MIX_STEPS], np.float32)
    prior = np.array([MIX_PRIOR * (1.0 - t) ** 2 for t in MIX_STEPS], np.float32)
    u_full = np.float32((1.0 - s) / 3.0)  # Python scalars meet float32 arrays as float32
    gmax = np.float32(MAX_GAIN * float(np.max(clip)))
    sel = np.arange(px.shape[0]) if sel is None else np.asarray(sel, np.intp)
    res = np.empty((sel.size, 3), np.float32)
    lev = np.zeros(0, np.float32) if level is None else np.ascontiguousarray(level, np.float32)
    if part is None:
        part, have_part = np.zeros((0, 3), np.float32), False
    _rebuild_kernel(px, np.ascontiguousarray(chroma, np.float32),
                    np.ascontiguousarray(p, np.float32), lev, sel, MIX_STEPS, mix_u, prior,
                    np.float32(1.0 / MIX_SOFTNESS), np.float32(s), u_full, gmax, part,
                    have_part, res)
    return res


@aot.entry
@numba.njit(cache=True, nogil=True)
def _scatter_kernel(out, ys, xs, sel, vals):  # pragma: no cover - numba
    for k in range(sel.size):
        for c in range(3):
            out[ys[sel[k]], xs[sel[k]], c] = vals[k, c]


@aot.entry
@numba.njit(cache=True, nogil=True)
def _full_flags(p, lim):  # pragma: no cover - numba
    full = np.empty(p.shape[0], np.bool_)
    for k in range(p.shape[0]):
        full[k] = max(max(_F1 - p[k, 0], _F1 - p[k, 1]), _F1 - p[k, 2]) < lim
    return full


@aot.entry
@numba.njit(cache=True, nogil=True, error_model="numpy")  # (divisors >= 1e-8)
def _pp_blend_kernel(v, w, up, out):  # pragma: no cover - numba
    # over the flat pixels, the channels written out for 3 and 1 (a loop of its own over
    # the channels kept the pixel loop scalar: 1024 x 768 x 3, 2.15 -> 1.05 ms; the same
    # values)
    four, tiny = np.float32(4.0), np.float32(1e-8)
    n, nc = v.shape[0] * v.shape[1], v.shape[2]
    vf, uf, of, wf = v.reshape(n * nc), up.reshape(n * nc), out.reshape(n * nc), w.reshape(n)
    if nc == 3:
        for p in range(n):
            a = min(max(wf[p] * four, _F0), _F1)
            iw = max(wf[p], tiny)
            b = _F1 - a
            of[3 * p] = a * (vf[3 * p] / iw) + b * uf[3 * p]
            of[3 * p + 1] = a * (vf[3 * p + 1] / iw) + b * uf[3 * p + 1]
            of[3 * p + 2] = a * (vf[3 * p + 2] / iw) + b * uf[3 * p + 2]
    elif nc == 1:
        for p in range(n):
            a = min(max(wf[p] * four, _F0), _F1)
            of[p] = a * (vf[p] / max(wf[p], tiny)) + (_F1 - a) * uf[p]
    else:
        for p in range(n):
            a = min(max(wf[p] * four, _F0), _F1)
            iw = max(wf[p], tiny)
            b = _F1 - a
            for c in range(nc):
                of[nc * p + c] = a * (vf[nc * p + c] / iw) + b * uf[nc * p + c]


def _push_pull_numba(vw: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """:func:`_push_pull` of ``values`` given ``vw = values * weight[..., None]`` (h, w, c),
    with each level's blend in one numba pass (numpy's float32 arithmetic, no broadcasting
    temporaries); the pyramids are OpenCV's, as there."""
    levels, coarse = _pull(vw, weight)
    if coarse is None:
        return np.full_like(vw, 1.0 / vw.shape[-1])
    for v, w in reversed(levels[:-1]):
        up = cv2.pyrUp(coarse, dstsize=(w.shape[1], w.shape[0]))
        if up.ndim == 2:
            up = up[..., None]
        coarse = np.empty(v.shape, np.float32)
        _pp_blend_kernel(v, w, up, coarse)
    return coarse.astype(np.float32, copy=False)


@aot.entry
@numba.njit(cache=True, nogil=True, error_model="numpy")  # (divisors > 0)
def _field_inputs_kernel(small, bad, csum, level_mode, vw, weight):  # pragma: no cover
    # the mode is tested once, not per pixel, and the 4th power is two squarings: ``** 4.0``
    # (a pow call a pixel) took 5x the level pass (1024 x 768: 7.7 -> 1.5 ms). Over the flat
    # pixels, numpy's error model: 1024 x 768, chroma 2.46 -> 0.89 ms, level 1.31 -> 0.69
    # (the same values)
    tiny9, tiny4, four = np.float32(1e-9), np.float32(1e-4), np.float32(4.0)
    n = small.shape[0] * small.shape[1]
    s, bd, wt = small.reshape(3 * n), bad.reshape(n), weight.reshape(n)
    if level_mode:  # _level_field: brightness, weighted by its (clipped) 4th power
        v = vw.reshape(n)
        for p in range(n):
            tot = max(s[3 * p], _F0) + max(s[3 * p + 1], _F0) + max(s[3 * p + 2], _F0)
            t = min(max(tot / csum, _F0), four)
            t2 = t * t
            x = (t2 * t2) * (_F1 if bd[p] <= 0 else _F0)
            wt[p] = x
            v[p] = tot * x
        return
    v = vw.reshape(3 * n)
    for p in range(n):  # chroma_field: chromaticity, weighted by squared brightness
        m0, m1, m2 = max(s[3 * p], _F0), max(s[3 * p + 1], _F0), max(s[3 * p + 2], _F0)
        tot = m0 + m1 + m2
        d = max(tot, tiny9)
        t = min(max(tot / csum, _F0), _F1)
        x = t * t * (_F1 if bd[p] <= 0 else _F0) * (_F1 if tot > tiny4 else _F0)
        wt[p] = x
        v[3 * p] = (m0 / d) * x
        v[3 * p + 1] = (m1 / d) * x
        v[3 * p + 2] = (m2 / d) * x


def _chroma_field_numba(small: np.ndarray, bad: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """:func:`chroma_field` from the reduced image ``small`` and mask ``bad`` (numba)."""
    assert BRIGHT_POWER == 2.0  # the kernel squares (the level pass squares twice: 2 * 2)
    vw = np.empty((*small.shape[:2], 3), np.float32)
    weight = np.empty(small.shape[:2], np.float32)
    _field_inputs_kernel(np.ascontiguousarray(small, np.float32), bad, np.float32(clip.sum()),
                         False, vw, weight)
    return _push_pull_numba(vw, weight)


def _level_field_numba(small_out: np.ndarray, clip: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                       f: float, bad: np.ndarray) -> np.ndarray:
    """:func:`_level_field` from the reduced ``out`` and ``bad`` = :func:`_pixels_area` of
    (ys, xs) (numba)."""
    vw = np.empty((*small_out.shape[:2], 1), np.float32)
    weight = np.empty(small_out.shape[:2], np.float32)
    _field_inputs_kernel(np.ascontiguousarray(small_out, np.float32), bad,
                         np.float32(clip.sum()), True, vw, weight)
    return _sample(_push_pull_numba(vw, weight)[..., 0], f, ys, xs)[:, 0]


class Prescan:
    """The one read pass of :func:`reconstruct` (per row, the extent of the values near a
    clip; the block means of the field's reduction), filled strip by strip where the strips
    are made (hot in cache, in their own threads: ``add`` is serial numba, nogil), so that
    ``reconstruct(x, clip, prescan=...)`` need not read the whole image again. Strips must
    start and end on multiples of the block factor (8 at 8192 x 6144); if they do not, or
    some rows were never added, reconstruct simply scans the image itself (same result)."""

    def __init__(self, shape: tuple[int, ...], clip: np.ndarray, *, area: bool = False) -> None:
        self.h, self.w = int(shape[0]), int(shape[1])
        self.clip = np.asarray(clip, dtype=np.float32).reshape(3).copy()
        self.fi = _block_factor(self.h, self.w)
        f, size = _field_size(self.h, self.w)
        # ``area``, another factor: each strip's share of the reduction (AreaTables), summed
        # in order at the end (else reconstruct resizes the image, when it has a clip)
        self.tabs = AreaTables.of(self.h, self.w, size) if area and f > 1 and not self.fi else None
        self.parts: dict[int, tuple[int, np.ndarray]] = {}
        self._summed: np.ndarray | None = None
        self.first = np.full(self.h, -1, np.int64)
        self.last = np.full(self.h, -1, np.int64)
        shape_small = (self.h // self.fi, self.w // self.fi, 3) if self.fi else (0, 0, 3)
        # every block mean is set by the strip that adds its rows (result() needs them all):
        # no zeros, whose 9.4 MB at 50 MP took ~4 ms of the main thread before the strips
        self.small = np.empty(shape_small, np.float32)
        self.done = np.zeros(self.h, np.bool_)
        self.aligned = True
        self._thr = np.tile(self.clip * np.float32(SOFT_LO), self.w).astype(np.float32)

    def add(self, strip: np.ndarray, row0: int) -> None:
        """Scan rows ``row0 : row0 + len(strip)`` (float32 (n, W, 3), as they will be passed
        to reconstruct)."""
        n, fi = strip.shape[0], self.fi
        if strip.shape[1] != self.w or row0 < 0 or row0 + n > self.h:
            self.aligned = False
            return
        if fi and (row0 % fi or n % fi):
            self.aligned = False
            return
        strip = np.ascontiguousarray(strip, dtype=np.float32)
        small = self.small[row0 // fi : (row0 + n) // fi] if fi else self.small
        _scan_kernel_serial(strip, self._thr, fi, self.first[row0 : row0 + n],
                            self.last[row0 : row0 + n], small, np.ones(1, np.bool_),
                            np.zeros(small.shape[0], np.bool_))  # (the sums always)
        if self.tabs is not None:
            self.parts[row0] = self.tabs.add_rows(strip, row0)
            self._summed = None
        self.done[row0 : row0 + n] = True

    def result(self, rgb: np.ndarray, clip: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """(first, last, small) as :func:`_scan` gives them for ``rgb``, or None when this
        scan does not cover it (other shape or clip, rows missing, strips not aligned)."""
        if (not self.aligned or rgb.shape[:2] != (self.h, self.w)
                or not np.array_equal(np.asarray(clip, np.float32).reshape(3), self.clip)
                or not self.done.all()):
            return None
        if self.tabs is not None:
            if self._summed is None:
                total = np.zeros((*self.tabs.size[::-1], 3), np.float64)
                for row0 in sorted(self.parts):  # (a fixed order: the same sums every time)
                    i0, acc = self.parts[row0]
                    total[i0 : i0 + acc.shape[0]] += acc
                self._summed = total.astype(np.float32)
            return self.first, self.last, self._summed
        return self.first, self.last, (self.small if self.fi else None)


def reconstruct(rgb: np.ndarray, clip: np.ndarray, mode: str = "reconstruct", *,
                out: np.ndarray | None = None, prescan: Prescan | None = None) -> np.ndarray:
    """Rebuild (or neutrally clip) saturated channels of white-balanced camera RGB.

    mode 'clip': every channel limited to the smallest clip (white, never a cast).
    mode 'reconstruct': see the module docstring. Returns a new float32 array, or ``out``
    (which may be ``rgb`` itself: every pixel is read before any is written).

    Same result as :func:`_reconstruct_reference` (within float rounding) with one parallel
    numba read pass over the image (clip extents per row and, when the field's factor divides
    the image, its block means), masks only in boxes around the clips, and per-pixel numba
    kernels for the clip confidence and the rebuild. ``prescan``: that read pass, already
    made strip by strip (:class:`Prescan`; ignored when it does not cover ``rgb``). With a
    covering prescan, the values read are only those within ``2 * SPREAD`` rows of a value
    near a clip and in the field's blocks that hold such values: the other rows of ``rgb`` may
    be memory never written (develop's streamed strips keep only the strips with clips).
    """
    clip = np.asarray(clip, dtype=np.float32).reshape(3)
    if mode != "reconstruct":
        return _clip_mode(rgb, clip, mode, out)
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    h, w = rgb.shape[:2]
    fi = _block_factor(h, w)
    scanned = None if prescan is None else prescan.result(rgb, clip)
    first, last, small = _scan(rgb, clip, fi) if scanned is None else scanned
    if out is None:
        out = rgb.copy()
    elif out is not rgb:
        out[...] = rgb
    if not (last >= 0).any():  # nothing near a clip: nothing to rebuild
        return out
    ys, xs = _near_pixels(rgb, clip, first, last)
    f, size = _field_size(h, w)
    if BORDER == 0:
        bad = _pixels_area(h, w, size, f, ys, xs)
    else:
        near = np.zeros((h, w), np.bool_)
        near[ys, xs] = True
        bad = _area_mask(near, size, f)
    if small is None:
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if f > 1 else rgb
    field = _chroma_field_numba(small, bad, clip)
    px, p = _clip_confidence_px(rgb, clip, ys, xs)  # all read before ``out`` changes
    full = _full_flags(p, np.float32(0.25))  # step 4 reached: bring the brightness in, too
    chroma = _sample(field, f, ys, xs)
    part = np.empty((ys.size, 3), np.float32)
    every = np.arange(ys.size)
    _scatter_kernel(out, ys, xs, every, rebuild_pixels_numba(px, clip, chroma, p=p, part=part))
    if full.any():
        sel = np.flatnonzero(full)
        fy, fx = ys[sel], xs[sel]
        tabs = AreaTables.of(h, w, size) if f > 1 and not fi else None
        if fi:  # the reduction of ``out``: that of ``rgb`` but in the blocks that changed
            small_out = small.copy()  # (``bad`` > 0 marks exactly the blocks of (ys, xs))
            _block_means_kernel(out, fi, np.flatnonzero(bad > 0), small_out)
        elif tabs is not None:  # that of ``rgb`` plus the reduction of the changes
            grid = small.astype(np.float64)
            tabs.add_points(grid, ys, xs, out[ys, xs] - px)
            small_out = grid.astype(np.float32)
        else:
            small_out = cv2.resize(out, size, interpolation=cv2.INTER_AREA) if f > 1 else out
        level = _level_field_numba(small_out, clip, fy, fx, f,
                                   _pixels_area(h, w, size, f, fy, fx))
        _scatter_kernel(out, ys, xs, sel, rebuild_pixels_numba(
            px, clip, chroma, p=p, level=level, part=part, have_part=True, sel=sel))
    return out
