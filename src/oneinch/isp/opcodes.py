"""Apply DNG opcode lists (OpcodeList1/2/3) to image data.

Adobe DNG Specification 1.7.0.0 (2023), ch. 7 "Opcode List Processing". OpcodeList1 acts on
the stored values as read (before linearisation), OpcodeList2 on the linear mosaic (0 black,
1 white) before demosaicing, OpcodeList3 on the demosaiced image. Areas (Top, Left, Bottom,
Right, Plane, Planes, RowPitch, ColPitch) and relative coordinates refer to the image the list
acts on: the active area for lists 2 and 3, the whole stored raw image for list 1 (as the DNG
SDK reads stage 1) — pass ``origin``/``frame`` when ``img`` is only the active area of it.

Value domains follow the DNG SDK, which hands 16-bit stage-1/2 images to float opcodes scaled
by 1/65535: in list 1, MapPolynomial, DeltaPer* and MapTable work on ``stored / 65535`` (resp.
the stored integer), in lists 2 and 3 on the normalised values. Results are not clipped.
Parsing lives in :mod:`oneinch.raw.opcodes`; this module only applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputError, UnsupportedError
from ..raw.image import CFAPattern, Opcode
from . import lens, shading
from .shading import pitched_slice

__all__ = ["apply_opcode", "apply_opcode_list", "fix_bad_pixels"]

_U16 = 65535.0


class _Ctx:
    """Where ``img`` sits in the opcode list's coordinate frame, and the value domain."""

    def __init__(
        self, list_no: int, origin: tuple[int, int], frame: tuple[int, int],
        cfa: CFAPattern | None, source: str | None, interpolation: str,
    ) -> None:  # fmt: skip
        self.list_no = list_no
        self.origin = origin
        self.frame = frame
        self.cfa = cfa
        self.source = source
        self.unit = _U16 if list_no == 1 else 1.0  # value of 1.0 in the SDK's float domain
        self.interpolation = interpolation


def _planes(img: np.ndarray) -> int:
    return 1 if img.ndim == 2 else int(img.shape[2])


def _area_views(img: np.ndarray, p: Mapping[str, Any], ctx: _Ctx):
    """Yield (view, rows, cols) for each plane the area spec selects (views into ``img``)."""
    h, w = img.shape[:2]
    rs, rows = pitched_slice(p["Top"], p["Bottom"], p["RowPitch"], ctx.origin[0], h)
    cs, cols = pitched_slice(p["Left"], p["Right"], p["ColPitch"], ctx.origin[1], w)
    if rows.size == 0 or cols.size == 0:
        return
    for plane in range(int(p["Plane"]), min(int(p["Plane"]) + int(p["Planes"]), _planes(img))):
        yield (img[rs, cs] if img.ndim == 2 else img[rs, cs, plane]), rows, cols


def _map_table(img: np.ndarray, p: Mapping[str, Any], ctx: _Ctx) -> np.ndarray:
    """MapTable (opcode 7): a 16-bit LUT; inputs past the table take its last entry."""
    out = img.copy()
    table = np.asarray(p["Table"], dtype=np.float32)
    for view, _, _ in _area_views(out, p, ctx):
        x = view if ctx.list_no == 1 else view * _U16
        idx = np.clip(np.rint(x), 0, len(table) - 1).astype(np.int64)
        view[...] = table[idx] if ctx.list_no == 1 else table[idx] / _U16
    return out


def _map_polynomial(img: np.ndarray, p: Mapping[str, Any], ctx: _Ctx) -> np.ndarray:
    """MapPolynomial (opcode 8): out = sum_i c_i x^i on the SDK's 0..1 value scale."""
    out = img.copy()
    c = np.asarray(p["Coefficient"], dtype=np.float64)
    for view, _, _ in _area_views(out, p, ctx):
        x = view.astype(np.float64) / ctx.unit
        y = np.full_like(x, c[-1])
        for ci in c[-2::-1]:
            y = y * x + ci
        view[...] = y * ctx.unit
    return out


def _per_line(img: np.ndarray, p: Mapping[str, Any], ctx: _Ctx, axis: int, add: bool):
    """DeltaPerRow/Column (10, 11) and ScalePerRow/Column (12, 13): one value per area line."""
    out = img.copy()
    vals = np.asarray(p["Delta" if add else "Scale"], dtype=np.float32)
    lo, pitch = (p["Top"], p["RowPitch"]) if axis == 0 else (p["Left"], p["ColPitch"])
    for view, rows, cols in _area_views(out, p, ctx):
        lines = rows if axis == 0 else cols
        k = (lines - int(lo)) // max(int(pitch), 1)
        ok = k < len(vals)  # the spec requires Count to cover the area; be lenient
        v = np.where(ok, vals[np.minimum(k, len(vals) - 1)], 0.0 if add else 1.0)
        v = v.astype(np.float32)
        v = v[:, None] if axis == 0 else v[None, :]
        if add:
            view += v * np.float32(ctx.unit)
        else:
            view *= v
    return out


def _trim(img: np.ndarray, p: Mapping[str, Any], ctx: _Ctx) -> np.ndarray:
    """TrimBounds (opcode 6): keep rows Top..Bottom-1 and columns Left..Right-1."""
    h, w = img.shape[:2]
    t = min(max(int(p["Top"]) - ctx.origin[0], 0), h)
    b = min(max(int(p["Bottom"]) - ctx.origin[0], t), h)
    lft = min(max(int(p["Left"]) - ctx.origin[1], 0), w)
    r = min(max(int(p["Right"]) - ctx.origin[1], lft), w)
    out = np.ascontiguousarray(img[t:b, lft:r])
    ctx.origin, ctx.frame = (0, 0), (out.shape[0], out.shape[1])  # later ops see the trimmed image
    return out


# --------------------------------------------------------------------------- bad pixels

_BAYER_PHASE = {0: "RGGB", 1: "GRBG", 2: "GBRG", 3: "BGGR"}  # DNG 1.7 ch. 7 BayerPhase


def _colour_map(shape: tuple[int, int], phase: int, ctx: _Ctx) -> np.ndarray:
    """Colour index (H, W) of each mosaic pixel, from BayerPhase (or a non-Bayer CFA)."""
    h, w = shape
    if ctx.cfa is not None and ctx.cfa.kind != "bayer":
        m = ctx.cfa.masks(h, w)
        return np.argmax(m, axis=0).astype(np.int8)
    pat = CFAPattern.bayer(_BAYER_PHASE.get(int(phase) & 3, "RGGB"))
    pat = pat.shifted(ctx.origin[0] % 2, ctx.origin[1] % 2)
    return np.argmax(pat.masks(h, w), axis=0).astype(np.int8)


_OFFSETS = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)]


def fix_bad_pixels(
    plane: np.ndarray, bad: np.ndarray, colour: np.ndarray | None = None, max_passes: int = 64
) -> np.ndarray:
    """Replace ``bad`` pixels of a 2-D plane by same-colour good neighbours (5x5 window).

    Weights are 1 / distance^2 (exact on flat and linearly varying areas). Pixels with no good
    neighbour are filled in later passes from pixels filled before them (bad rectangles fill
    from their border inward). ``colour`` (H, W) restricts neighbours to the same CFA colour;
    None treats every pixel as one colour. Returns a new float32 array.
    """  # fmt: skip
    out = np.array(plane, dtype=np.float32, copy=True)
    h, w = out.shape
    bad = np.array(bad, dtype=bool, copy=True)
    col = np.zeros((h, w), np.int8) if colour is None else np.asarray(colour)
    for _ in range(max_passes):
        ys, xs = np.nonzero(bad)
        if ys.size == 0:
            break
        acc = np.zeros(ys.size, np.float64)
        wsum = np.zeros(ys.size, np.float64)
        c0 = col[ys, xs]
        for dy, dx in _OFFSETS:
            ny, nx = ys + dy, xs + dx
            inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
            ny, nx = np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)
            ok = inside & ~bad[ny, nx] & (col[ny, nx] == c0)
            wt = ok / float(dy * dy + dx * dx)
            acc += wt * out[ny, nx]
            wsum += wt
        done = wsum > 0
        if not done.any():
            break
        out[ys[done], xs[done]] = (acc[done] / wsum[done]).astype(np.float32)
        bad[ys[done], xs[done]] = False
    return out


def _bad_pixel_planes(img: np.ndarray, masks: list[np.ndarray], phase: int, ctx: _Ctx):
    out = img.copy()
    if img.ndim == 2:
        colour = _colour_map(img.shape, phase, ctx) if ctx.list_no != 3 else None
        return fix_bad_pixels(out, masks[0], colour)
    for c in range(img.shape[2]):
        out[:, :, c] = fix_bad_pixels(out[:, :, c], masks[min(c, len(masks) - 1)])
    return out


def _fix_bad_constant(img: np.ndarray, p: Mapping[str, Any], ctx: _Ctx) -> np.ndarray:
    """FixBadPixelsConstant (opcode 4): pixels equal to Constant are bad."""
    const = float(p["Constant"]) / (1.0 if ctx.list_no == 1 else _U16)
    if img.ndim == 2:
        masks = [img == np.float32(const)]
    else:
        masks = [img[:, :, c] == np.float32(const) for c in range(img.shape[2])]
    if not any(m.any() for m in masks):
        return img.copy()
    return _bad_pixel_planes(img, masks, int(p["BayerPhase"]), ctx)


def _fix_bad_list(img: np.ndarray, p: Mapping[str, Any], ctx: _Ctx) -> np.ndarray:
    """FixBadPixelsList (opcode 5): listed points (row, col) and rects (t, l, b, r) are bad."""
    h, w = img.shape[:2]
    bad = np.zeros((h, w), dtype=bool)
    oy, ox = ctx.origin
    pts = np.asarray(p.get("BadPoints", np.zeros((0, 2))), dtype=np.int64).reshape(-1, 2)
    if len(pts):
        y, x = pts[:, 0] - oy, pts[:, 1] - ox
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        bad[y[ok], x[ok]] = True
    for t, lft, b, r in np.asarray(p.get("BadRects", np.zeros((0, 4))), np.int64).reshape(-1, 4):
        bad[max(t - oy, 0) : max(b - oy, 0), max(lft - ox, 0) : max(r - ox, 0)] = True
    if not bad.any():
        return img.copy()
    return _bad_pixel_planes(img, [bad], int(p["BayerPhase"]), ctx)


# --------------------------------------------------------------------------- dispatch


def _warp(img: np.ndarray, op: Opcode, ctx: _Ctx) -> np.ndarray:
    p = op.params
    if img.ndim == 2 and ctx.cfa is not None:
        raise UnsupportedError(
            f"DNG OpcodeList{ctx.list_no}: {op.name} on a CFA mosaic (warps need RGB data)",
            ctx.source,
        )
    kw = {"origin": ctx.origin, "frame": ctx.frame, "interpolation": ctx.interpolation}
    n, planes = int(p["Planes"]), _planes(img)
    if n not in (1, planes):
        raise UnsupportedError(
            f"DNG OpcodeList{ctx.list_no}: {op.name} has {n} coefficient sets for an image of "
            f"{planes} planes",
            ctx.source,
        )
    if op.name == "WarpRectilinear":
        return lens.warp_rectilinear(img, p["kr"], p["kt"], p["cx"], p["cy"], **kw)
    if op.name == "WarpRectilinear2":
        return lens.warp_rectilinear2(
            img, p["kr"], p["kt"], p["MinValidRadius"], p["MaxValidRadius"], p["cx"], p["cy"],
            bool(p["Reciprocal"]), **kw,
        )  # fmt: skip
    return lens.warp_fisheye(img, p["kr"], p["cx"], p["cy"], **kw)


def _gain_map(img: np.ndarray, op: Opcode, ctx: _Ctx) -> np.ndarray:
    return shading.apply_gain_map(img, op.params, ctx.origin, ctx.frame)


def _vignette(img: np.ndarray, op: Opcode, ctx: _Ctx) -> np.ndarray:
    return shading.fix_vignette_radial(img, op.params, ctx.origin, ctx.frame)


_HANDLERS = {
    "WarpRectilinear": _warp,
    "WarpRectilinear2": _warp,
    "WarpFisheye": _warp,
    "FixVignetteRadial": _vignette,
    "FixBadPixelsConstant": lambda img, op, ctx: _fix_bad_constant(img, op.params, ctx),
    "FixBadPixelsList": lambda img, op, ctx: _fix_bad_list(img, op.params, ctx),
    "TrimBounds": lambda img, op, ctx: _trim(img, op.params, ctx),
    "MapTable": lambda img, op, ctx: _map_table(img, op.params, ctx),
    "MapPolynomial": lambda img, op, ctx: _map_polynomial(img, op.params, ctx),
    "GainMap": _gain_map,
    "DeltaPerRow": lambda img, op, ctx: _per_line(img, op.params, ctx, 0, True),
    "DeltaPerColumn": lambda img, op, ctx: _per_line(img, op.params, ctx, 1, True),
    "ScalePerRow": lambda img, op, ctx: _per_line(img, op.params, ctx, 0, False),
    "ScalePerColumn": lambda img, op, ctx: _per_line(img, op.params, ctx, 1, False),
}


# opcodes whose result at a pixel depends on its value and position alone: applied to a strip
# of rows (``origin``: its first row) they give those rows of the whole image's result
POINTWISE = frozenset({
    "GainMap", "MapTable", "MapPolynomial", "DeltaPerRow", "DeltaPerColumn", "ScalePerRow",
    "ScalePerColumn", "FixVignetteRadial",
})


def pointwise(ops: Sequence[Opcode]) -> bool:
    """Whether every opcode of the list is in :data:`POINTWISE` (an empty list is)."""
    return all(op.name in POINTWISE for op in ops)


def apply_opcode(
    img: np.ndarray, op: Opcode, *, list_no: int, cfa: CFAPattern | None = None,
    source: str | None = None, origin: tuple[int, int] = (0, 0),
    frame: tuple[int, int] | None = None, interpolation: str = "cubic",
) -> np.ndarray:
    """Apply one opcode (see :func:`apply_opcode_list`)."""
    return apply_opcode_list(
        img, [op], list_no=list_no, cfa=cfa, source=source, origin=origin, frame=frame,
        interpolation=interpolation,
    )  # fmt: skip


def apply_opcode_list(
    img: np.ndarray, ops: Sequence[Opcode], *, list_no: int, cfa: CFAPattern | None,
    source: str | None = None, origin: tuple[int, int] = (0, 0),
    frame: tuple[int, int] | None = None, preview: bool = False, interpolation: str = "cubic",
) -> np.ndarray:
    """Apply DNG OpcodeList ``list_no`` (1, 2 or 3) in order; returns a new float32 array.

    ``img``: list 1 — stored values as float32 (H, W) or (H, W, S); list 2 — normalised linear
    mosaic (H, W) or LinearRaw (H, W, 3); list 3 — demosaiced (H, W, 3). ``cfa`` is the mosaic's
    layout (None for RGB). ``origin`` is where img[0, 0] lies in the list's coordinate frame and
    ``frame`` that frame's (height, width): for list 1 on an active-area crop pass the ActiveArea
    top/left and the stored image size; lists 2 and 3 use the defaults. ``preview`` skips
    opcodes flagged PreviewSkip. An opcode oneinch cannot apply is skipped when its Optional
    flag is set, else UnsupportedError names the file and opcode (DNG 1.7 ch. 7).
    """  # fmt: skip
    if list_no not in (1, 2, 3):
        raise ValueError(f"list_no must be 1, 2 or 3, not {list_no}")
    out = np.array(img, dtype=np.float32, order="C", copy=True)
    ctx = _Ctx(
        list_no, (int(origin[0]), int(origin[1])),
        frame if frame is not None else (out.shape[0], out.shape[1]), cfa, source, interpolation,
    )  # fmt: skip
    for op in ops:
        if preview and op.preview_skip:
            continue
        handler = _HANDLERS.get(op.name)
        if handler is None:
            if op.optional:
                continue
            raise UnsupportedError(
                f"DNG OpcodeList{list_no}: required opcode {op.name} (id {op.id}) is not "
                "supported",
                source,
            )
        try:
            out = handler(out, op, ctx)
        except UnsupportedError:
            if op.optional:
                continue
            raise
    if ops and not np.isfinite(out).all():
        raise InputError(f"DNG OpcodeList{list_no} produced non-finite values", source)
    return np.ascontiguousarray(out, dtype=np.float32)
