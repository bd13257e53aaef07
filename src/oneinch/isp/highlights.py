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
   max(observed, scale · chromaticity), so nothing is ever lowered.
4. *Fully clipped pixels.* Nothing but lower bounds is known: the result is the smallest value
   consistent with every recorded channel, at the field's chromaticity desaturated by
   ``FULL_SATURATION`` towards neutral (0 = neutral white, as a blown-out light looks). It is
   blended with the partial estimate by the trust of the last unclipped channel (no seam).

Only pixels near a clip are touched; the field is computed at reduced size and sampled at those
pixels, and clip confidence is computed in bands, so memory stays bounded at 50 MP. One numba
read pass first finds the rows with a value near a clip: with none (the common case) that is
all the work; otherwise masks are built only in bands of rows near those. Measured
against rawpy's Clip / Blend / Reconstruct modes in bench/quality_highlights.py.

No estimate can turn magenta by itself: magenta needs green far below red and blue, and a
clipped green is only ever raised while unclipped red and blue are kept.

'clip': every channel limited to the smallest clip (white, never a cast).
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

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
MIX_PRIOR = 1e-4  # prefer the field's chromaticity when the trusted channels cannot tell
FULL_SATURATION = 0.0  # chromaticity kept in fully clipped areas (0 = neutral)
MAX_GAIN = 4.0  # a rebuilt channel stays below this multiple of the largest clip
_CHUNK = 1 << 20  # near-clip pixels per chunk of rebuild_pixels (bounded temporaries)


def clip_levels(gains: np.ndarray, white: float = 1.0) -> np.ndarray:
    """Per-channel saturation level after white balance (float32, shape (3,))."""
    return (np.asarray(gains, dtype=np.float32) * np.float32(white)).astype(np.float32)


def _push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill where weight == 0 with a smooth extension of weighted values (values: (h, w, c))."""
    levels = [(values * weight[..., None], weight)]
    while min(levels[-1][1].shape) > 4:
        v, w = levels[-1]
        vd = cv2.pyrDown(v)
        levels.append((vd if vd.ndim == 3 else vd[..., None], cv2.pyrDown(w)))
    v, w = levels[-1]
    if not np.any(w > 1e-8):
        return np.full_like(values, 1.0 / values.shape[-1])
    total = w.sum()
    mean = (v.reshape(-1, v.shape[-1]).sum(0) / total).astype(np.float32)
    coarse = np.where(w[..., None] > 1e-8, v / np.maximum(w, 1e-8)[..., None], mean)
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


def chroma_field(rgb: np.ndarray, clip: np.ndarray, near: np.ndarray,
                 rows: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Brightness-weighted chromaticity of pixels outside ``near``, push-pulled everywhere.

    Returns the field (h', w', 3) at reduced resolution and the scale factor to it.
    ``rows``: (H,) bool, the rows where ``near`` may be set (None: any).
    """
    h, w = near.shape
    f = max(1.0, max(h, w) / FIELD_EDGE)
    size = (max(1, round(w / f)), max(1, round(h / f)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if f > 1 else rgb
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
    best_err = np.full(px.shape[0], np.inf, np.float32)
    est_part = np.zeros_like(px)
    norm = (px * px).sum(axis=1) + 1e-12
    for t in MIX_STEPS:
        cht = t * ch + (1.0 - t) / 3.0
        k = (trust * px * cht).sum(axis=1) / np.maximum((trust * cht * cht).sum(axis=1), 1e-12)
        k = np.maximum(k, (p * px / cht).max(axis=1))  # no clipped channel below its record
        est = k[:, None] * cht
        miss = trust * (px - est) ** 2 + VIOLATION * p * np.maximum(px - est, 0.0) ** 2
        err = miss.sum(axis=1) / norm + MIX_PRIOR * (1.0 - t) ** 2
        better = err < best_err
        best_err = np.where(better, err, best_err)
        est_part[better] = est[better]
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


def reconstruct(rgb: np.ndarray, clip: np.ndarray, mode: str = "reconstruct", *,
                out: np.ndarray | None = None) -> np.ndarray:
    """Rebuild (or neutrally clip) saturated channels of white-balanced camera RGB.

    mode 'clip': every channel limited to the smallest clip (white, never a cast).
    mode 'reconstruct': see the module docstring. Returns a new float32 array, or ``out``
    (which may be ``rgb`` itself: every pixel is read before any is written).
    """
    clip = np.asarray(clip, dtype=np.float32).reshape(3)
    if mode == "clip":
        if out is not None:
            return np.minimum(rgb, clip.min(), out=out)
        return np.minimum(rgb, clip.min()).astype(np.float32)
    if mode != "reconstruct":
        raise OptionError(f"unknown highlight mode {mode!r} (one of {', '.join(MODES)})")
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


def _pixels_area(h: int, w: int, size: tuple[int, int], f: float, ys: np.ndarray,
                 xs: np.ndarray) -> np.ndarray:
    """A mask of the pixels (ys, xs) of an (h, w) image, area-resized to ``size`` (by ``f``);
    used only as ``> 0``. With an integer factor that divides the image, the block mean is
    > 0 exactly on the blocks that hold a pixel: marked directly, with no full-size mask."""
    fi = round(f)
    if f > 1 and fi == f and h == size[1] * fi and w == size[0] * fi:
        bad = np.zeros(size[1] * size[0], np.float32)
        bad[(ys // fi) * size[0] + xs // fi] = 1.0
        return bad.reshape(size[1], size[0])
    full = np.zeros((h, w), np.float32)
    full[ys, xs] = 1.0
    return cv2.resize(full, size, interpolation=cv2.INTER_AREA) if f > 1 else full


def _level_field(out: np.ndarray, clip: np.ndarray, ys: np.ndarray, xs: np.ndarray
                 ) -> np.ndarray:
    """Brightness (R+G+B) of the reconstructed surroundings of fully clipped pixels (ys, xs),
    bright pixels weighted most, push-pulled into them: a blown area is at least as bright as
    its rebuilt rim, so it never sits as a grey hole inside a brighter halo."""
    h, w = out.shape[:2]
    f = max(1.0, max(h, w) / FIELD_EDGE)
    size = (max(1, round(w / f)), max(1, round(h / f)))
    small = cv2.resize(out, size, interpolation=cv2.INTER_AREA) if f > 1 else out
    bad = _pixels_area(h, w, size, f, ys, xs)
    level = np.maximum(small, 0).sum(axis=2)
    weight = np.clip(level / float(clip.sum()), 0.0, 4.0) ** (2 * BRIGHT_POWER)
    weight = (weight * (bad <= 0)).astype(np.float32)
    filled = _push_pull(level[..., None].astype(np.float32), weight)
    return _sample(filled[..., 0], f, ys, xs)[:, 0]
