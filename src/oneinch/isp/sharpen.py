"""Sharpening: unsharp mask on luminance only (no colour fringes), with a noise threshold."""

from __future__ import annotations

import cv2
import numpy as np


def sharpen(
    rgb: np.ndarray, amount: float, radius: float = 1.0, threshold: float = 0.0
) -> np.ndarray:
    """Unsharp mask of display-referred RGB in [0, 1]: detail of luma Y added back to each channel.

    ``radius`` is the Gaussian sigma in pixels at output size; details smaller than ``threshold``
    (in Y units) are left alone so flat noisy areas are not sharpened.
    """
    if amount <= 0:
        return rgb
    y = rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    blur = cv2.GaussianBlur(
        y, (0, 0), sigmaX=max(0.3, float(radius)), borderType=cv2.BORDER_REFLECT
    )
    detail = y - blur
    if threshold > 0:
        detail = np.sign(detail) * np.maximum(np.abs(detail) - threshold, 0.0)
    out = rgb + (np.float32(amount) * detail)[..., None]
    return np.clip(out, 0.0, 1.0, out=out)
