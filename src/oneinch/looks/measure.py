"""Measurements of a rendered look (used by bench/looks.py and tests/test_looks.py).

Display-referred sRGB images are treated as scenes by inverting the *neutral* tone curve:
``scene = inverse_tone_map(decode_srgb(png), neutral tone)``, so that the neutral preset renders
the image as published and the other looks are differences from it. Source white (255) is given
the finite scene value 1 EV above the neutral white point (``HEADROOM_EV``).

Measures (CIE 1976 L*a*b*, D65, from display-linear sRGB):
    saturation  mean chroma C*ab over all pixels
    shadows     5th-percentile L*
    midtones    median L*
    contrast    mid-tone contrast: interquartile range of L* (75th − 25th percentile)
    local       local contrast: mean |L* − Gaussian-blurred L*| (σ = 1 % of the long edge)
    clipped     fraction of pixels with any channel at 8-bit 255 after sRGB encoding
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..isp.spaces import SPACES, decode, encode, rgb_to_xyz_native
from ..recipe import Recipe
from .looks import PRESETS, apply_look
from .tone import inverse_tone_map, tone_map


def srgb_to_lab(display_linear: np.ndarray) -> np.ndarray:
    """Display-linear sRGB -> CIELAB (D65 white), float64."""
    m = rgb_to_xyz_native(SPACES["srgb"])
    xyz = np.asarray(display_linear, np.float64) @ m.T
    wp = m.sum(axis=1)
    t = xyz / wp
    d = 6 / 29
    f = np.where(t > d**3, np.cbrt(t), t / (3 * d * d) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def look_stats(display_linear: np.ndarray) -> dict[str, float]:
    lab = srgb_to_lab(np.clip(display_linear, 0, 1))
    lum = lab[..., 0]
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    sigma = 0.01 * max(lum.shape)
    blur = cv2.GaussianBlur(lum.astype(np.float32), (0, 0), sigma)
    q5, q25, q50, q75 = np.percentile(lum, [5, 25, 50, 75])
    enc = np.round(encode(display_linear, "srgb") * 255)
    return {
        "saturation": float(chroma.mean()),
        "shadows": float(q5),
        "midtones": float(q50),
        "contrast": float(q75 - q25),
        "local": float(np.abs(lum - blur).mean()),
        "clipped": float((enc >= 255).any(axis=-1).mean()),
    }


def read_srgb_png(path: str | Path) -> np.ndarray:
    """8/16-bit sRGB PNG -> display-linear float32 RGB."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(path)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return decode(img[..., 2::-1].astype(np.float32) / scale, "srgb")


HEADROOM_EV = 1.0


def scene_from_display(display_linear: np.ndarray) -> np.ndarray:
    """Treat a display-referred image as a scene: invert the neutral tone curve. The source's
    white (255) becomes the scene value 1 EV above the neutral white point (white_ev + 1)."""
    return inverse_tone_map(display_linear, Recipe().with_(**PRESETS["neutral"]).tone,
                            headroom_ev=HEADROOM_EV)


def render(scene: np.ndarray, name: str) -> np.ndarray:
    """Scene-linear sRGB -> display-linear with the named preset's tone and look."""
    r = Recipe().with_(**PRESETS[name])
    return apply_look(tone_map(scene, r.tone), r.look)
