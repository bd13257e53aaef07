"""Output colour spaces: primaries, white points, XYZ(D50) <-> linear RGB, transfer functions.

Constants are from their standards (IEC 61966-2-1 sRGB; SMPTE EG 432-1 / Apple Display P3;
ITU-R BT.2020; ROMM RGB, ISO 22028-2 for ProPhoto). The profile connection space is XYZ D50
as in DNG and ICC, so D65 spaces are reached through a Bradford adaptation (Lam 1985).
Plain numpy: colour-science is too slow to import on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

D50_XY = (0.3457, 0.3585)  # ICC PCS white (ICC.1:2010, rounded as in the spec)
D65_XY = (0.3127, 0.3290)

BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)


@dataclass(frozen=True)
class Space:
    name: str
    title: str
    primaries: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    white: tuple[float, float]
    transfer: str  # 'srgb' | 'bt709' | 'romm' | 'linear'


SPACES: dict[str, Space] = {
    "srgb": Space(
        "srgb", "sRGB IEC61966-2.1", ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), D65_XY, "srgb"
    ),
    "p3": Space(
        "p3", "Display P3", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65_XY, "srgb"
    ),
    "rec2020": Space(
        "rec2020",
        "ITU-R BT.2020",
        ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
        D65_XY,
        "bt709",
    ),
    "prophoto": Space(
        "prophoto",
        "ProPhoto RGB (ROMM)",
        ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)),
        D50_XY,
        "romm",
    ),
}


def xy_to_xyz(xy: tuple[float, float] | np.ndarray) -> np.ndarray:
    """Chromaticity -> XYZ with Y = 1."""
    x, y = float(xy[0]), float(xy[1])
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def bradford(
    src_xy: tuple[float, float] | np.ndarray, dst_xy: tuple[float, float] | np.ndarray
) -> np.ndarray:
    """3x3 von Kries adaptation in the Bradford cone space from one white to another."""
    s = BRADFORD @ xy_to_xyz(src_xy)
    d = BRADFORD @ xy_to_xyz(dst_xy)
    return np.linalg.inv(BRADFORD) @ np.diag(d / s) @ BRADFORD


def rgb_to_xyz_native(space: Space) -> np.ndarray:
    """Linear RGB -> XYZ relative to the space's own white (SMPTE RP 177 derivation)."""
    p = np.stack([xy_to_xyz(xy) for xy in space.primaries], axis=1)
    scale = np.linalg.solve(p, xy_to_xyz(space.white))
    return p * scale


@cache
def rgb_to_xyz_d50(name: str) -> np.ndarray:
    """Linear RGB of ``name`` -> XYZ D50 (PCS), Bradford-adapted when the space is not D50."""
    sp = SPACES[name]
    m = rgb_to_xyz_native(sp)
    if sp.white != D50_XY:
        m = bradford(sp.white, D50_XY) @ m
    m.setflags(write=False)
    return m


@cache
def xyz_d50_to_rgb(name: str) -> np.ndarray:
    m = np.linalg.inv(rgb_to_xyz_d50(name))
    m.setflags(write=False)
    return m


FUSED_MIN_SIZE = 1 << 16  # values: from here encode/decode use the fused numba kernel
_FUSED = ("srgb", "bt709", "romm")


def encode(linear: np.ndarray, transfer: str) -> np.ndarray:
    """Display-linear [0, 1] -> encoded values with the space's transfer function (float32).

    Large arrays go through the fused numba kernel of :mod:`oneinch.isp._transfer` (same
    formulas, one pass, within 1e-6 of the numpy expressions below)."""
    if transfer in _FUSED and np.size(linear) >= FUSED_MIN_SIZE:
        from ._transfer import apply

        return apply(linear, transfer)
    x = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    if transfer == "srgb":
        return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(
            np.float32
        )
    if transfer == "bt709":
        return np.where(
            x < 0.018053968510807, 4.5 * x, 1.09929682680944 * np.power(x, 0.45) - 0.09929682680944
        ).astype(np.float32)
    if transfer == "romm":
        return np.where(x < 1 / 512, 16.0 * x, np.power(x, 1 / 1.8)).astype(np.float32)
    if transfer == "linear":
        return x
    raise ValueError(f"unknown transfer {transfer!r}")


def decode(encoded: np.ndarray, transfer: str) -> np.ndarray:
    """Inverse of :func:`encode` (float32)."""
    if transfer in _FUSED and np.size(encoded) >= FUSED_MIN_SIZE:
        from ._transfer import apply

        return apply(encoded, transfer, inverse=True)
    v = np.clip(np.asarray(encoded, dtype=np.float32), 0.0, 1.0)
    if transfer == "srgb":
        return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4)).astype(
            np.float32
        )
    if transfer == "bt709":
        return np.where(
            v < 4.5 * 0.018053968510807,
            v / 4.5,
            np.power((v + 0.09929682680944) / 1.09929682680944, 1 / 0.45),
        ).astype(np.float32)
    if transfer == "romm":
        return np.where(v < 16 / 512, v / 16.0, np.power(v, 1.8)).astype(np.float32)
    if transfer == "linear":
        return v
    raise ValueError(f"unknown transfer {transfer!r}")


def luminance_weights(name: str) -> np.ndarray:
    """Y row of the space's RGB -> XYZ matrix (relative luminance weights)."""
    return rgb_to_xyz_native(SPACES[name])[1].copy()
