"""Demosaicing for non-Bayer CFAs (X-Trans 6x6 and any periodic pattern).

``generic_bilinear``: per-colour normalised convolution (Knutsson & Westin 1993) with a small
Gaussian: a bilinear-like interpolation that works for any periodic CFA.
``xtrans_demosaic``: green by gradient-weighted directional normalised convolution, then R and
B by normalised-convolution interpolation of the colour differences R - G, B - G (the
smooth-hue assumption, Cok 1987; as in the colour-difference stage of Frank Markesteijn's
X-Trans method), so edges follow the dense green plane.
"""

from __future__ import annotations

import cv2
import numpy as np

from oneinch.raw.image import CFAPattern

_B = cv2.BORDER_REFLECT_101


def _gauss(sigma: float, r: int) -> np.ndarray:
    x = np.arange(-r, r + 1, dtype=np.float32)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return np.outer(g, g).astype(np.float32)


def _nconv(values: np.ndarray, mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    num = cv2.filter2D(values * mask, cv2.CV_32F, kernel, borderType=_B)
    den = cv2.filter2D(mask, cv2.CV_32F, kernel, borderType=_B)
    return num / np.maximum(den, 1e-12)


def generic_bilinear(mosaic: np.ndarray, pattern: CFAPattern) -> np.ndarray:
    """Normalised-convolution interpolation of each colour for any periodic CFA."""
    masks = pattern.masks(*mosaic.shape).astype(np.float32)
    k = _gauss(1.0, 2)
    out = np.empty((*mosaic.shape, 3), np.float32)
    for c in range(3):
        out[..., c] = np.where(masks[c] > 0, mosaic, _nconv(mosaic, masks[c], k))
    return out


def xtrans_demosaic(mosaic: np.ndarray, pattern: CFAPattern) -> np.ndarray:
    """X-Trans (or any periodic CFA): directional green, then colour-difference R/B."""
    m = np.ascontiguousarray(mosaic, np.float32)
    masks = pattern.masks(*m.shape).astype(np.float32)
    mg = masks[1]
    # green: horizontal and vertical 1-D normalised convolutions, weighted by inverse gradient
    kh = np.array([[0.25, 1.0, 0.0, 1.0, 0.25]], np.float32)
    kd = _gauss(0.8, 1)
    g_h = _nconv(m, mg, kh)
    g_v = _nconv(m, mg, np.ascontiguousarray(kh.T))
    g_d = _nconv(m, mg, kd)
    g_h = np.where(np.isfinite(g_h) & (cv2.filter2D(mg, -1, kh, borderType=_B) > 0), g_h, g_d)
    g_v = np.where(cv2.filter2D(mg, -1, np.ascontiguousarray(kh.T), borderType=_B) > 0, g_v, g_d)
    grad_h = np.abs(cv2.Sobel(m, cv2.CV_32F, 1, 0, ksize=3, borderType=_B))
    grad_v = np.abs(cv2.Sobel(m, cv2.CV_32F, 0, 1, ksize=3, borderType=_B))
    k5 = _gauss(1.5, 2)
    grad_h = cv2.filter2D(grad_h, -1, k5, borderType=_B) + 1e-6
    grad_v = cv2.filter2D(grad_v, -1, k5, borderType=_B) + 1e-6
    wh, wv = 1.0 / grad_h**2, 1.0 / grad_v**2
    green = np.where(mg > 0, m, (wh * g_h + wv * g_v) / (wh + wv)).astype(np.float32)
    out = np.empty((*m.shape, 3), np.float32)
    out[..., 1] = green
    k = _gauss(1.0, 2)
    for c in (0, 2):
        diff = _nconv(m - green, masks[c], k)
        out[..., c] = np.where(masks[c] > 0, m, green + diff)
    return out
