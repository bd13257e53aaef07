"""Lens shading: DNG GainMap and FixVignetteRadial opcodes.

Adobe DNG Specification 1.7.0.0 (2023), ch. 7 "Opcode List Processing": GainMap (opcode 9)
and FixVignetteRadial (opcode 3). Coordinates follow the DNG SDK's convention: pixel (row, col)
sits at integer coordinates of the image the opcode list refers to (its *frame*); a relative
coordinate is ``row / frame_height``. Results are not clipped (oneinch keeps values above 1;
a sensor-clipped pixel ends at its gain, which is >= 1 for shading maps).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "apply_gain_map", "colour_gain", "fix_vignette_radial", "gain_map_field", "pitched_slice",
]


def pitched_slice(lo: int, hi: int, pitch: int, origin: int, size: int) -> tuple[slice, np.ndarray]:
    """Rows (or columns) ``lo, lo+pitch, ... < hi`` of a frame, intersected with an image.

    The image covers frame indices ``origin .. origin+size``. Returns the slice into the image
    and the frame indices it selects (DNG 1.7 ch. 7 area spec: Top/Bottom and RowPitch).
    """
    pitch = max(int(pitch), 1)
    start = max(int(lo), origin)
    first = int(lo) + -(-(start - int(lo)) // pitch) * pitch
    end = min(int(hi), origin + size)
    if first >= end:
        return slice(0, 0), np.zeros(0, dtype=np.int64)
    idx = np.arange(first, end, pitch, dtype=np.int64)
    return slice(first - origin, end - origin, pitch), idx


def _axis_weights(rel: np.ndarray, origin: float, spacing: float, points: int):
    """Bilinear indices and weights of relative coordinates on a map axis, clamped outside."""
    if points <= 1 or spacing <= 0:
        z = np.zeros(rel.shape, dtype=np.int64)
        return z, z, np.zeros(rel.shape)
    f = np.clip((rel - origin) / spacing, 0.0, points - 1.0)
    i0 = np.minimum(np.floor(f).astype(np.int64), points - 2)
    return i0, i0 + 1, f - i0


def gain_map_field(
    gains: np.ndarray, p: Mapping[str, Any], rows: np.ndarray, cols: np.ndarray,
    frame_h: int, frame_w: int,
) -> np.ndarray:
    """The gain at frame pixels ``rows x cols`` from one map plane (2-D), bilinearly.

    DNG 1.7 ch. 7 GainMap: map point (i, j) lies at relative coordinates
    (MapOriginV + i MapSpacingV, MapOriginH + j MapSpacingH); outside the map it is clamped.
    """  # fmt: skip
    g = np.asarray(gains, dtype=np.float64)
    pv, ph = g.shape
    v0, v1, wv = _axis_weights(rows / float(frame_h), p["MapOriginV"], p["MapSpacingV"], pv)
    h0, h1, wh = _axis_weights(cols / float(frame_w), p["MapOriginH"], p["MapSpacingH"], ph)
    g_rows = g[v0] * (1.0 - wv)[:, None] + g[v1] * wv[:, None]  # (rows, ph)
    field = g_rows[:, h0] * (1.0 - wh)[None, :] + g_rows[:, h1] * wh[None, :]
    return field.astype(np.float32)


def apply_gain_map(
    img: np.ndarray, p: Mapping[str, Any], origin: tuple[int, int] = (0, 0),
    frame: tuple[int, int] | None = None,
) -> np.ndarray:
    """Multiply the GainMap's area (Top/Left/Bottom/Right, Plane/Planes, pitches) by its map.

    ``img`` is (H, W) or (H, W, C); ``origin`` is where img[0, 0] lies in the opcode's frame of
    size ``frame`` (default: img itself). Map plane ``k`` serves image plane ``Plane + k``; the
    last map plane serves the rest (DNG 1.7 ch. 7). Returns a new float32 array.
    """  # fmt: skip
    out = np.array(img, dtype=np.float32, copy=True)
    h, w = out.shape[:2]
    fh, fw = frame if frame is not None else (h, w)
    rs, rows = pitched_slice(p["Top"], p["Bottom"], p["RowPitch"], origin[0], h)
    cs, cols = pitched_slice(p["Left"], p["Right"], p["ColPitch"], origin[1], w)
    if rows.size == 0 or cols.size == 0:
        return out
    gains = np.asarray(p["MapGain"], dtype=np.float32)
    if gains.ndim == 2:
        gains = gains[:, :, None]
    nplanes = 1 if out.ndim == 2 else out.shape[2]
    cache: dict[int, np.ndarray] = {}
    for plane in range(int(p["Plane"]), min(int(p["Plane"]) + int(p["Planes"]), nplanes)):
        k = min(plane - int(p["Plane"]), gains.shape[2] - 1)
        if k not in cache:
            cache[k] = gain_map_field(gains[:, :, k], p, rows, cols, fh, fw)
        if out.ndim == 2:
            out[rs, cs] *= cache[k]
        else:
            out[rs, cs, plane] *= cache[k]
    return out


def _phases(lo: int, pitch: int, period: int) -> set[int]:
    """Residues mod ``period`` of the indices ``lo, lo+pitch, ...`` (an area's rows or
    columns)."""
    pitch = max(int(pitch), 1)
    return {(int(lo) + k * pitch) % period for k in range(period)}


def colour_gain(
    ops: Any, pattern: tuple[tuple[int, ...], ...] | None, frame: tuple[int, int],
    rows: np.ndarray, cols: np.ndarray,
) -> np.ndarray | None:
    """The gain OpcodeList2's GainMaps put on each colour, at frame positions ``rows`` x
    ``cols`` (float, any spacing: the maps are smooth): (len(rows), len(cols), 3) float32,
    or None when no GainMap applies.

    A mosaic (``pattern``, its CFA; the maps' plane 0): each CFA site's gain is the product
    of the maps whose area and pitches select its phase, evaluated where it is; a colour's is
    the mean over its sites (the two greens of a Bayer quad). Without a pattern, the image is
    RGB and map plane ``k`` serves plane ``Plane + k`` (the last one the rest), as
    :func:`apply_gain_map`. Area bounds are kept; the other opcodes (tonal, bad pixels) put
    no gain. This is what lens shading did to the noise: the develop denoises the image
    divided by it (isp.denoise's noise model is the sensor's, before the opcodes)."""
    gain = _site_gains(ops, pattern, frame, rows, cols)
    if gain is None:
        return None
    out = np.empty((len(rows), len(cols), 3), np.float32)
    for c in range(3):
        mine = [g for s, g in gain.items() if pattern[s[0]][s[1]] == c] if pattern is not None \
            else [gain[c]]
        out[..., c] = np.mean(mine, axis=0) if mine else 1.0
    return out


def _site_gains(
    ops: Any, pattern: tuple[tuple[int, ...], ...] | None, frame: tuple[int, int],
    rows: np.ndarray, cols: np.ndarray,
) -> dict | None:
    """:func:`colour_gain` before its mean over a colour's sites: {(dy, dx): gain} per CFA
    site of ``pattern`` (float64, (len(rows), len(cols))), or {plane: gain} for RGB; None
    when no GainMap applies."""
    maps = [op for op in ops if getattr(op, "name", None) == "GainMap"]
    if not maps:
        return None
    rows = np.asarray(rows, np.float64)
    cols = np.asarray(cols, np.float64)
    fh, fw = frame
    ph = len(pattern) if pattern is not None else 1
    pw = len(pattern[0]) if pattern is not None else 1
    sites = [(dy, dx) for dy in range(ph) for dx in range(pw)] if pattern is not None else []
    keys = sites if pattern is not None else [0, 1, 2]  # CFA sites, or RGB planes
    gain = {k: np.ones((rows.size, cols.size), np.float64) for k in keys}

    def inside(p: Mapping[str, Any], dy: int, dx: int) -> np.ndarray:
        """The area holds the site (dy, dx) of the CFA cell each position lies in."""
        r = np.floor(rows / ph) * ph + dy
        c = np.floor(cols / pw) * pw + dx
        return (((r >= p["Top"]) & (r < p["Bottom"]))[:, None]
                & ((c >= p["Left"]) & (c < p["Right"]))[None, :])

    for op in maps:
        p = op.params
        g = np.asarray(p["MapGain"], np.float64)
        g = g[:, :, None] if g.ndim == 2 else g
        if pattern is not None:
            if int(p["Plane"]) != 0:
                continue  # (a mosaic has one plane)
            ys, xs = _phases(p["Top"], p["RowPitch"], ph), _phases(p["Left"], p["ColPitch"], pw)
            field = gain_map_field(g[:, :, 0], p, rows, cols, fh, fw)
            for dy, dx in sites:
                if dy in ys and dx in xs:
                    gain[(dy, dx)] = gain[(dy, dx)] * np.where(inside(p, dy, dx), field, 1.0)
            continue
        first = int(p["Plane"])
        for plane in range(first, min(first + int(p["Planes"]), 3)):
            k = min(plane - first, g.shape[2] - 1)
            field = gain_map_field(g[:, :, k], p, rows, cols, fh, fw)
            gain[plane] = gain[plane] * np.where(inside(p, 0, 0), field, 1.0)
    return gain


def site_spread(ops: Any, pattern: tuple[tuple[int, ...], ...], frame: tuple[int, int],
                n: int = 33) -> float:
    """How far the GainMaps' gains of one colour's CFA sites part (the two greens of a Bayer
    quad: separate maps, or a map on one of them only), read at the same places: the largest
    (max / min - 1) over the colours and an n x n grid over the frame. 0 when the sites of a
    colour get the same gain; :func:`colour_gain` gives a colour its sites' mean, which
    differs from a site's gain by about half of this at most. (The gain's slope between the
    sites of one cell is left out: a smooth gain does that to any image it multiplies.)"""
    fh, fw = frame
    gain = _site_gains(ops, pattern, frame, np.linspace(0, fh - 1, n),
                       np.linspace(0, fw - 1, n))
    if gain is None:
        return 0.0
    by_colour: dict[int, list[np.ndarray]] = {}
    for (dy, dx), g in gain.items():
        by_colour.setdefault(pattern[dy][dx], []).append(g)
    worst = 0.0
    for sites in by_colour.values():
        if len(sites) > 1:
            st = np.stack(sites)
            worst = max(worst, float((st.max(0) / np.maximum(st.min(0), 1e-6) - 1.0).max()))
    return worst


def map_spacing_px(ops: Any, frame: tuple[int, int]) -> float:
    """The smallest distance in frame pixels between neighbouring points of the GainMaps
    (inf when no map has two points along an axis): how smooth their bilinear gain is."""
    fh, fw = frame
    out = float("inf")
    for op in ops:
        if getattr(op, "name", None) != "GainMap":
            continue
        p = op.params
        if int(p["MapPointsV"]) > 1:
            out = min(out, float(p["MapSpacingV"]) * fh)
        if int(p["MapPointsH"]) > 1:
            out = min(out, float(p["MapSpacingH"]) * fw)
    return out


def optical_centre(cx: float, cy: float, frame: tuple[int, int]) -> tuple[float, float, float]:
    """(centre_y, centre_x, norm): the optical centre (cy * frame_h, cx * frame_w) in frame
    pixel coordinates and the largest distance from it to a frame corner, which DNG 1.7 ch. 7
    warps and vignettes normalise radii by (DNG SDK convention)."""
    fh, fw = frame
    yc, xc = cy * fh, cx * fw
    norm = max(np.hypot(yc - a, xc - b) for a in (0.0, fh) for b in (0.0, fw))
    return float(yc), float(xc), float(norm) if norm > 0 else 1.0


def radial_distance(
    shape: tuple[int, int], cx: float, cy: float, origin: tuple[int, int] = (0, 0),
    frame: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Pixel offsets from the optical centre, normalised as DNG 1.7 ch. 7 warps do.

    The centre is (cy * frame_h, cx * frame_w) in frame pixel coordinates; distances are divided
    by the largest distance from the centre to a frame corner (DNG SDK convention). Returns
    (dy (H, 1), dx (1, W), norm, centre_y, centre_x) with dy, dx normalised.
    """  # fmt: skip
    h, w = shape
    yc, xc, norm = optical_centre(cx, cy, frame if frame is not None else (h, w))
    dy = ((np.arange(h, dtype=np.float64) + origin[0] - yc) / norm)[:, None]
    dx = ((np.arange(w, dtype=np.float64) + origin[1] - xc) / norm)[None, :]
    return dy, dx, norm, yc, xc


def fix_vignette_radial(
    img: np.ndarray, p: Mapping[str, Any], origin: tuple[int, int] = (0, 0),
    frame: tuple[int, int] | None = None,
) -> np.ndarray:
    """FixVignetteRadial (DNG 1.7 ch. 7, opcode 3): multiply every plane by
    g(r) = 1 + k0 r^2 + k1 r^4 + k2 r^6 + k3 r^8 + k4 r^10, r normalised to 1 at the farthest
    corner from the optical centre (cx, cy)."""
    dy, dx, _, _, _ = radial_distance(img.shape[:2], p["cx"], p["cy"], origin, frame)
    r2 = dy * dy + dx * dx
    k = [float(p[f"k{i}"]) for i in range(5)]
    g = 1.0 + r2 * (k[0] + r2 * (k[1] + r2 * (k[2] + r2 * (k[3] + r2 * k[4]))))
    g = g.astype(np.float32)
    out = np.asarray(img, dtype=np.float32)
    return np.ascontiguousarray(out * (g if out.ndim == 2 else g[:, :, None]), dtype=np.float32)
