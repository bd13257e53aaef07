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
