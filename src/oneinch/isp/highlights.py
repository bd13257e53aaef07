"""Highlights: clipped sensor channels, reconstructed or clipped without colour casts.

Works on demosaiced, white-balanced camera RGB. ``clip`` is where each channel saturated after
white balance (the WB gain of that channel, as 1.0 was the sensor white). Where only some
channels clipped, the missing ones are rebuilt from the unclipped ones with the chromaticity of
nearby unclipped pixels, propagated into the clipped region by pyramid push-pull normalised
convolution (Knutsson & Westin 1993; Gortler et al. 1996 "pull-push"). Where every channel
clipped the result is neutral at the smallest value consistent with all clips — so a clipped
highlight can never turn magenta (the classic cast of clipping green while red and blue, scaled
by larger WB gains, go on).
"""

from __future__ import annotations

import cv2
import numpy as np

CLIP_MARGIN = 0.995  # demosaicing and quantisation put clipped pixels slightly below the clip


def clip_levels(gains: np.ndarray, white: float = 1.0) -> np.ndarray:
    """Per-channel saturation level after white balance (float32, shape (3,))."""
    return (np.asarray(gains, dtype=np.float32) * np.float32(white)).astype(np.float32)


def _push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill where weight == 0 with a smooth extension of weighted values (values: (h, w, c))."""
    levels = [(values * weight[..., None], weight)]
    while min(levels[-1][1].shape) > 4:
        v, w = levels[-1]
        levels.append((cv2.pyrDown(v), cv2.pyrDown(w)))
    v, w = levels[-1]
    filled = v / np.maximum(w, 1e-8)[..., None]
    if not np.any(w > 1e-8):
        return np.zeros_like(values)
    coarse = filled
    for v, w in reversed(levels[:-1]):
        up = cv2.pyrUp(coarse, dstsize=(w.shape[1], w.shape[0]))
        if up.ndim == 2:
            up = up[..., None]
        a = np.clip(w * 4.0, 0.0, 1.0)[..., None]
        coarse = a * (v / np.maximum(w, 1e-8)[..., None]) + (1.0 - a) * up
    return coarse


def reconstruct(rgb: np.ndarray, clip: np.ndarray, mode: str = "reconstruct") -> np.ndarray:
    """Rebuild (or neutrally clip) saturated channels of white-balanced camera RGB.

    mode 'clip': every channel limited to the smallest clip (white, never a cast).
    mode 'reconstruct': see the module docstring. Returns a new float32 array.
    """
    clip = np.asarray(clip, dtype=np.float32).reshape(3)
    if mode == "clip":
        return np.minimum(rgb, clip.min()).astype(np.float32)
    if mode != "reconstruct":
        raise ValueError(f"unknown highlight mode {mode!r}")
    thr = clip * CLIP_MARGIN
    clipped = rgb >= thr
    any_clipped = clipped.any(axis=2)
    if not any_clipped.any():
        return rgb
    out = rgb.copy()
    h, w = any_clipped.shape
    # chromaticity field from unclipped, reasonably bright pixels, at a reduced resolution
    f = max(1, int(max(h, w) // 512))
    small = cv2.resize(rgb, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    small_clip = (
        cv2.resize(
            any_clipped.astype(np.float32),
            (small.shape[1], small.shape[0]),
            interpolation=cv2.INTER_AREA,
        )
        > 0
    )
    total = small.sum(axis=2)
    good = (~small_clip) & (total > 0.05 * float(clip.min()))
    chroma = small / np.maximum(total, 1e-6)[..., None]
    field = _push_pull(chroma.astype(np.float32), good.astype(np.float32))
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)
    if field.ndim == 2:
        field = field[..., None]
    field = np.clip(field, 1e-4, 1.0)

    ys, xs = np.nonzero(any_clipped)
    px = rgb[ys, xs]  # (n, 3)
    cm = clipped[ys, xs]
    ch = field[ys, xs]
    um = ~cm
    denom = (ch * um).sum(axis=1)
    k = (px * um).sum(axis=1) / np.maximum(denom, 1e-6)
    est = k[:, None] * ch
    est = np.minimum(est, 4.0 * clip.max())
    rebuilt = np.where(cm, np.maximum(px, est), px)
    all_clipped = cm.all(axis=1) | (denom < 1e-6)
    rebuilt[all_clipped] = np.maximum(px[all_clipped].max(axis=1), clip.max())[:, None]
    out[ys, xs] = rebuilt
    return out.astype(np.float32, copy=False)
