"""Geometry: default crop, EXIF orientation, resizing."""

from __future__ import annotations

import cv2
import numpy as np


def crop(img: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Crop to (top, left, height, width), clamped to the image; None = no crop (a view)."""
    if box is None:
        return img
    top, left, hh, ww = crop_box(img.shape[:2], box)
    return img[top : top + hh, left : left + ww]


def crop_box(shape: tuple[int, ...], box: tuple[int, int, int, int] | None
             ) -> tuple[int, int, int, int]:
    """:func:`crop`'s (top, left, height, width) in an image of ``shape`` (rows, cols)."""
    h, w = int(shape[0]), int(shape[1])
    if box is None:
        return 0, 0, h, w
    top, left, hh, ww = (int(v) for v in box)
    top, left = max(0, min(top, h - 1)), max(0, min(left, w - 1))
    return top, left, min(h, top + hh) - top, min(w, left + ww) - left


_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: a.swapaxes(0, 1)[::-1, :],
}
_UNDO = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}  # orientation -> its inverse


def orient(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation (1..8) so the result displays upright (TIFF 6.0 / EXIF 2.32)."""
    o = int(orientation or 1)
    if o == 1 or o not in range(1, 9):
        return img
    return np.ascontiguousarray(_ORIENT[o](img))


def unoriented_view(upright: np.ndarray, orientation: int) -> np.ndarray:
    """A view of an image ``upright`` (as :func:`orient` made it) in the sensor's layout:
    writing the view's rows writes the upright image's pixels where orient puts them."""
    o = int(orientation or 1)
    if o == 1 or o not in range(1, 9):
        return upright
    return _ORIENT[_UNDO[o]](upright)


def resize_long_edge(img: np.ndarray, size: int | None) -> np.ndarray:
    """Downscale (area filter) so the long edge is ``size``; never upscales."""
    if not size:
        return img
    h, w = img.shape[:2]
    long_edge = max(h, w)
    if long_edge <= size:
        return img
    s = size / long_edge
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)


def scale_aspect(img: np.ndarray, default_scale: tuple[float, float]) -> np.ndarray:
    """Honour DNG DefaultScale (non-square pixels) by stretching the shorter-sampled axis."""
    sx, sy = (float(v) for v in default_scale)
    if abs(sx - sy) < 1e-6 or sx <= 0 or sy <= 0:
        return img
    h, w = img.shape[:2]
    r = sx / sy
    nw, nh = (round(w * r), h) if r > 1 else (w, round(h / r))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_CUBIC)
