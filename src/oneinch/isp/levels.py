"""Levels: stored sensor values -> normalised linear float32 (0 = black, 1 = white).

DNG 1.6 ch. 5 "Linearization" and "Black Level"/"White Level": apply the LinearizationTable,
subtract BlackLevel (repeated over BlackLevelRepeatDim) plus BlackLevelDeltaH/DeltaV, then scale
so that WhiteLevel maps to 1. Values are not clipped (noise keeps its negative half, which
matters for denoising and merging).
"""

from __future__ import annotations

import numpy as np

from ..raw.image import Levels


def normalize(data: np.ndarray, levels: Levels) -> np.ndarray:
    """Stored values (H, W) or (H, W, S) -> float32 normalised linear values, same shape."""
    x = np.asarray(data)
    if levels.linearization is not None:
        table = np.asarray(levels.linearization, dtype=np.float32)
        x = table[np.minimum(x, len(table) - 1)]
    if uniform_black(levels) and np.asarray(levels.white).size == 1:
        b = np.float32(np.asarray(levels.black).flat[0])
        scale = np.float32(1.0 / max(float(np.asarray(levels.white).flat[0]) - float(b), 1e-6))
        out = x.astype(np.float32)
        out -= b
        out *= scale
        return out
    h, w = x.shape[:2]
    samples = 1 if x.ndim == 2 else x.shape[2]
    black = np.asarray(levels.black, dtype=np.float32).reshape(
        levels.black.shape[0] if np.ndim(levels.black) >= 1 else 1,
        levels.black.shape[1] if np.ndim(levels.black) >= 2 else 1,
        -1,
    )
    if black.shape[2] not in (1, samples):
        black = black[:, :, :1]
    rh, rw = black.shape[:2]
    black_full = np.tile(black, (-(-h // rh), -(-w // rw), 1))[:h, :w]
    if levels.black_delta_v is not None:
        black_full = black_full + np.asarray(levels.black_delta_v, np.float32)[:h, None, None]
    if levels.black_delta_h is not None:
        black_full = black_full + np.asarray(levels.black_delta_h, np.float32)[None, :w, None]
    white = np.asarray(levels.white, dtype=np.float32).reshape(-1)
    if samples == 1:
        black_full = black_full[:, :, 0]
        white_v = white[:1]
        scale = 1.0 / np.maximum(white_v - black_full, 1e-6)
    else:
        white_v = white if white.size == samples else np.repeat(white[:1], samples)
        scale = 1.0 / np.maximum(white_v[None, None, :] - black_full, 1e-6)
    out = (x.astype(np.float32) - black_full) * scale
    return np.ascontiguousarray(out, dtype=np.float32)


def uniform_black(levels: Levels) -> bool:
    """True when one black value applies to every pixel (fast paths can use it)."""
    b = np.asarray(levels.black)
    return (
        bool(np.all(b == b.flat[0]))
        and levels.black_delta_h is None
        and levels.black_delta_v is None
    )


# Saturation below WhiteLevel (channel_saturation): a plateau is looked for in the top
# PLATEAU_MIN..1 of the range (LibRaw's adjust_maximum_thr is 0.75: a sensor does not stop
# further below its WhiteLevel), in bins of PLATEAU_BIN of it, histogrammed from PLATEAU_FROM
PLATEAU_MIN = 0.85
PLATEAU_FROM = 0.7
PLATEAU_BIN = 0.002
PLATEAU_CONTRAST = 10.0  # the plateau's bin holds this many times the mean bin below and above
PLATEAU_MIN_FRACTION = 1e-4  # ... and at least this fraction of the colour's samples
PLATEAU_DENSE = 30  # of the 38 bins below it that hold samples (not a quantised histogram)
PLATEAU_SAMPLES = 1_000_000  # samples read at most (row blocks spread over the image)


def channel_saturation(data: np.ndarray, levels: Levels, cfa=None) -> np.ndarray:
    """Each colour's saturation level, normalised (1.0 = WhiteLevel), shape (3,).

    A sensor (or its encoder) may stop a colour short of the file's WhiteLevel: the GoPro
    HERO6's VC-5 GPR data hold green at ~0.95 of WhiteLevel (3 % of its green samples pile up
    there, with the codec's noise around it) and blue at ~0.92, while red reaches 1.0. Trusted,
    WhiteLevel leaves those clipped greens looking unclipped to highlight reconstruction, which
    rebuilds nothing there, and the clipped clouds come out magenta (R/G 1.2, B/G 1.2) wherever
    the tone curve does not push them to white. The level is found as dcraw's and LibRaw's
    fixed margins below white are not (they would cut every other raw short): a plateau, a
    histogram bin (PLATEAU_BIN of the range) in the top PLATEAU_MIN..1 of the range that
    holds PLATEAU_CONTRAST times the mean bin below it and above it and PLATEAU_MIN_FRACTION of
    the colour's samples, in a dense histogram (quantised, e.g. lossy LinearRaw data, has
    isolated spikes). A plateau at white, or none, is 1.0. The level returned is the lower
    edge of the bin below the plateau's, so that the codec's spread around it counts as clipped.
    (Raws made from 8-bit pictures whose highlights clipped at 255 have such a plateau too, and
    it is taken for what it is: three of bench/quality_highlights.py's ten scenes, whose error
    there rose from ΔE00 12.02 to 12.06.)
    ``cfa``: the mosaic's pattern (None: ``data`` is (H, W, 3) LinearRaw)."""
    x = np.asarray(data)
    h = x.shape[0]
    period = 12  # (a whole number of 2x2, 4x4 and 6x6 CFA periods and black repeats)
    block = period * 2
    blocks = max(1, min(h // block, int(PLATEAU_SAMPLES // max(1, block * x.shape[1]))))
    starts = np.linspace(0, max(0, h - block), blocks).astype(int) // period * period
    rows = normalize(np.concatenate([x[s : s + block] for s in starts]), levels)
    if cfa is None:
        planes = [rows[..., c].ravel() for c in range(min(3, rows.shape[-1]))]
    else:
        pat = np.asarray(cfa.pattern)
        ph, pw = pat.shape
        planes = [np.concatenate([rows[i::ph, j::pw].ravel() for i in range(ph)
                                  for j in range(pw) if pat[i, j] == c]) for c in range(3)]
    n_bins = round((1.0 - PLATEAU_FROM) / PLATEAU_BIN)
    sat = np.ones(3, np.float32)
    for c, v in enumerate(planes):
        top = v[(v >= PLATEAU_FROM) & (v < 1.0 + PLATEAU_BIN)]
        if top.size < 16:
            continue
        counts = np.bincount(np.minimum(((top - PLATEAU_FROM) / PLATEAU_BIN).astype(np.int64),
                                        n_bins), minlength=n_bins + 1)
        first = round((PLATEAU_MIN - PLATEAU_FROM) / PLATEAU_BIN)
        b = first + int(counts[first:].argmax())
        if b >= n_bins - 5 or b < 42:  # at white (1.0 within 1 %), or no context below
            continue
        below, above = counts[b - 40 : b - 2], counts[b + 3 :]
        peak = float(counts[b])
        if (peak >= max(16.0, PLATEAU_MIN_FRACTION * v.size)
                and peak >= PLATEAU_CONTRAST * float(below.mean())
                and peak >= PLATEAU_CONTRAST * float(above.mean() if above.size else 0.0)
                and np.count_nonzero(below) >= PLATEAU_DENSE):
            sat[c] = PLATEAU_FROM + (b - 1) * PLATEAU_BIN
    return sat
