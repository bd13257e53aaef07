"""DNG opcode lists (tags OpcodeList1/2/3): parse and serialise, never apply.

Follows the Adobe DNG Specification 1.7.0.0 (2023), chapter 7 "Opcode List Processing".
An opcode list is always big-endian, whatever the file's byte order::

    uint32 count
    count x { uint32 id; uint8[4] dng_version; uint32 flags; uint32 byte_count;
              uint8[byte_count] parameters }

Parameters are kept under the spec's field names (``Top``, ``Left``, ``Bottom``, ``Right``,
``Plane``, ``Planes``, ``RowPitch``, ``ColPitch``, ``MapPointsV``... ``MapGain``); tables, maps
and coefficient sets are numpy arrays. Warp coefficients use the spec's symbols (``kr``,
``kt``, ``cx``, ``cy``) with one row per plane. Opcodes with an unknown id keep their bytes in
``params['data']`` so that a list survives a parse/serialise round trip byte for byte.

Every count read from the file is checked against the bytes actually present before any
array is allocated, so a corrupt list raises :class:`~oneinch.errors.InputError` instead of
allocating gigabytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from .image import Opcode

__all__ = [
    "OPCODE_IDS",
    "OPCODE_NAMES",
    "make_opcode",
    "parse_opcode_list",
    "serialize_opcode_list",
]

OPCODE_NAMES: dict[int, str] = {
    1: "WarpRectilinear",
    2: "WarpFisheye",
    3: "FixVignetteRadial",
    4: "FixBadPixelsConstant",
    5: "FixBadPixelsList",
    6: "TrimBounds",
    7: "MapTable",
    8: "MapPolynomial",
    9: "GainMap",
    10: "DeltaPerRow",
    11: "DeltaPerColumn",
    12: "ScalePerRow",
    13: "ScalePerColumn",
    14: "WarpRectilinear2",
}
OPCODE_IDS: dict[str, int] = {v: k for k, v in OPCODE_NAMES.items()}

# Spec versions that introduced each opcode (DNG 1.3; WarpRectilinear2 in 1.6).
_DEFAULT_VERSION = {i: 0x01030000 for i in OPCODE_NAMES}
_DEFAULT_VERSION[14] = 0x01060000

MAX_OPCODES = 10_000  # far above any real file; guards the per-opcode loop
MAX_PLANES = 4  # DNG SDK kMaxColorPlanes
MAX_POLY_DEGREE = 8  # DNG 1.7 §7 MapPolynomial: degree ≤ 8
_AREA = ("Top", "Left", "Bottom", "Right", "Plane", "Planes", "RowPitch", "ColPitch")


class _Reader:
    """Big-endian cursor over one opcode's parameter bytes."""

    def __init__(self, data: bytes, what: str, source: str | None) -> None:
        self.data = data
        self.pos = 0
        self.what = what
        self.source = source

    def fail(self, problem: str) -> InputError:
        return InputError(f"bad DNG opcode {self.what}: {problem}", self.source)

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"{what} needs {n} bytes but only {len(self.data) - self.pos} remain")

    def u32(self, n: int = 1) -> tuple[int, ...]:
        self.need(4 * n, "uint32 fields")
        v = struct.unpack_from(f">{n}I", self.data, self.pos)
        self.pos += 4 * n
        return v

    def f64(self, n: int = 1) -> tuple[float, ...]:
        self.need(8 * n, "double fields")
        v = struct.unpack_from(f">{n}d", self.data, self.pos)
        self.pos += 8 * n
        return v

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        item = np.dtype(dtype).itemsize
        self.need(count * item, what)  # checked before allocating
        a = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += count * item
        return a.astype(dtype[1:], copy=True)  # native byte order, writable copy

    def done(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} unexpected trailing bytes")


def _planes(r: _Reader, n: int) -> int:
    if not 1 <= n <= MAX_PLANES:
        raise r.fail(f"plane count {n} outside 1..{MAX_PLANES}")
    return n


def _area(r: _Reader) -> dict[str, Any]:
    vals = r.u32(8)
    p = dict(zip(_AREA, vals, strict=True))
    if p["Bottom"] < p["Top"] or p["Right"] < p["Left"]:
        raise r.fail(f"empty or inverted area {vals[:4]}")
    if p["RowPitch"] == 0 or p["ColPitch"] == 0:
        raise r.fail("zero row or column pitch")
    return p


def _parse_params(op_id: int, r: _Reader) -> dict[str, Any]:
    if op_id == 1:  # WarpRectilinear
        n = _planes(r, r.u32()[0])
        r.need(n * 48 + 16, f"{n} planes of coefficients")
        c = r.array(">f8", n * 6, "coefficients").reshape(n, 6)
        cx, cy = r.f64(2)
        return {"Planes": n, "kr": c[:, :4].copy(), "kt": c[:, 4:].copy(), "cx": cx, "cy": cy}
    if op_id == 2:  # WarpFisheye
        n = _planes(r, r.u32()[0])
        r.need(n * 32 + 16, f"{n} planes of coefficients")
        c = r.array(">f8", n * 4, "coefficients").reshape(n, 4)
        cx, cy = r.f64(2)
        return {"Planes": n, "kr": c, "cx": cx, "cy": cy}
    if op_id == 3:  # FixVignetteRadial
        v = r.f64(7)
        return dict(zip(("k0", "k1", "k2", "k3", "k4", "cx", "cy"), v, strict=True))
    if op_id == 4:  # FixBadPixelsConstant
        constant, phase = r.u32(2)
        return {"Constant": constant, "BayerPhase": phase}
    if op_id == 5:  # FixBadPixelsList
        phase, npts, nrects = r.u32(3)
        r.need(8 * npts + 16 * nrects, f"{npts} bad points and {nrects} bad rects")
        pts = r.array(">u4", 2 * npts, "bad points").reshape(npts, 2)
        rects = r.array(">u4", 4 * nrects, "bad rects").reshape(nrects, 4)
        return {
            "BayerPhase": phase,
            "BadPointCount": npts,
            "BadRectCount": nrects,
            "BadPoints": pts,  # (row, col)
            "BadRects": rects,  # (top, left, bottom, right)
        }
    if op_id == 6:  # TrimBounds
        return dict(zip(("Top", "Left", "Bottom", "Right"), r.u32(4), strict=True))
    if op_id == 7:  # MapTable
        p = _area(r)
        (size,) = r.u32()
        if size == 0 or size > 65536:
            raise r.fail(f"MapTable size {size} outside 1..65536")
        p["TableSize"] = size
        p["Table"] = r.array(">u2", size, f"table of {size} entries")
        return p
    if op_id == 8:  # MapPolynomial
        p = _area(r)
        (deg,) = r.u32()
        if deg > MAX_POLY_DEGREE:
            raise r.fail(f"polynomial degree {deg} > {MAX_POLY_DEGREE}")
        p["Degree"] = deg
        p["Coefficient"] = r.array(">f8", deg + 1, f"{deg + 1} coefficients")
        return p
    if op_id == 9:  # GainMap
        p = _area(r)
        pv, ph = r.u32(2)
        sv, sh, ov, oh = r.f64(4)
        (mp,) = r.u32()
        if pv == 0 or ph == 0 or mp == 0:
            raise r.fail(f"empty gain map {pv}x{ph}x{mp}")
        r.need(4 * pv * ph * mp, f"gain map of {pv}x{ph}x{mp} points")
        gains = r.array(">f4", pv * ph * mp, "gain map").reshape(pv, ph, mp)
        p.update(
            MapPointsV=pv, MapPointsH=ph, MapSpacingV=sv, MapSpacingH=sh,
            MapOriginV=ov, MapOriginH=oh, MapPlanes=mp, MapGain=gains,
        )  # fmt: skip
        return p
    if op_id in (10, 11, 12, 13):  # DeltaPerRow/Column, ScalePerRow/Column
        p = _area(r)
        (count,) = r.u32()
        key = "Delta" if op_id in (10, 11) else "Scale"
        p["Count"] = count
        p[key] = r.array(">f4", count, f"{count} {key.lower()} values")
        return p
    if op_id == 14:  # WarpRectilinear2 (DNG 1.6)
        n = _planes(r, r.u32()[0])
        r.need(n * 19 * 8 + 16 + 4, f"{n} planes of coefficients")
        c = r.array(">f8", n * 19, "coefficients").reshape(n, 19)
        cx, cy = r.f64(2)
        (recip,) = r.u32()
        return {
            "Planes": n,
            "kr": c[:, :15].copy(),
            "kt": c[:, 15:17].copy(),
            "MinValidRadius": c[:, 17].copy(),
            "MaxValidRadius": c[:, 18].copy(),
            "cx": cx,
            "cy": cy,
            "Reciprocal": recip,
        }
    raise AssertionError(op_id)


def _check_finite(params: dict, what: str, source: str | None) -> None:
    """Refuse NaN/inf parameters: every DNG opcode field is a finite number (DNG 1.7 ch. 7)."""
    for key, v in params.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise InputError(f"DNG {what}: {key} is {v}", source)
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.isfinite(v).all():
            raise InputError(f"DNG {what}: {key} holds non-finite values", source)
        if isinstance(v, (list, tuple)):
            for x in v:
                if isinstance(x, float) and not math.isfinite(x):
                    raise InputError(f"DNG {what}: {key} holds {x}", source)


def parse_opcode_list(data: bytes, source: str | None = None) -> tuple[Opcode, ...]:
    """Parse one OpcodeList tag value (big-endian, DNG 1.7 ch. 7) into Opcodes.

    ``source`` (a file name) is used in error messages. Raises InputError on a malformed list.
    """
    data = bytes(data)
    if len(data) < 4:
        raise InputError(f"DNG opcode list too short ({len(data)} bytes)", source)
    (count,) = struct.unpack_from(">I", data, 0)
    if count > MAX_OPCODES or 4 + 16 * count > len(data):
        raise InputError(
            f"DNG opcode list declares {count} opcodes but has only {len(data)} bytes", source
        )
    ops: list[Opcode] = []
    pos = 4
    for i in range(count):
        if pos + 16 > len(data):
            raise InputError(f"DNG opcode list truncated in opcode header {i}", source)
        op_id, version, flags, size = struct.unpack_from(">IIII", data, pos)
        pos += 16
        if size > len(data) - pos:
            raise InputError(
                f"DNG opcode {i} (id {op_id}) declares {size} bytes, only {len(data) - pos} left",
                source,
            )
        body = data[pos : pos + size]
        pos += size
        name = OPCODE_NAMES.get(op_id)
        if name is None:
            ops.append(Opcode(op_id, f"Unknown{op_id}", version, flags, {"data": body}))
            continue
        r = _Reader(body, f"{i} ({name})", source)
        params = _parse_params(op_id, r)
        r.done()
        _check_finite(params, f"opcode {i} ({name})", source)
        ops.append(Opcode(op_id, name, version, flags, params))
    if pos != len(data):
        raise InputError(f"DNG opcode list has {len(data) - pos} trailing bytes", source)
    return tuple(ops)


def _u32(*v: int) -> bytes:
    return struct.pack(f">{len(v)}I", *(int(x) for x in v))


def _f64(*v: float) -> bytes:
    return struct.pack(f">{len(v)}d", *(float(x) for x in v))


def _arr(a: Any, dtype: str, shape: Sequence[int] | None = None, what: str = "") -> bytes:
    arr = np.asarray(a)
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{what} has shape {arr.shape}, expected {tuple(shape)}")
    return np.ascontiguousarray(arr, dtype=dtype).tobytes()


def _serialize_params(op: Opcode) -> bytes:
    p = op.params
    i = op.id
    if i not in OPCODE_NAMES:
        return bytes(p["data"])

    def area() -> bytes:
        return _u32(*(p[k] for k in _AREA))

    if i == 1:
        kr = np.asarray(p["kr"], dtype=np.float64).reshape(-1, 4)
        kt = np.asarray(p["kt"], dtype=np.float64).reshape(-1, 2)
        c = np.concatenate([kr, kt], axis=1)
        return _u32(len(c)) + _arr(c, ">f8") + _f64(p["cx"], p["cy"])
    if i == 2:
        kr = np.asarray(p["kr"], dtype=np.float64).reshape(-1, 4)
        return _u32(len(kr)) + _arr(kr, ">f8") + _f64(p["cx"], p["cy"])
    if i == 3:
        return _f64(*(p[k] for k in ("k0", "k1", "k2", "k3", "k4", "cx", "cy")))
    if i == 4:
        return _u32(p["Constant"], p["BayerPhase"])
    if i == 5:
        pts = np.asarray(p.get("BadPoints", np.zeros((0, 2))), dtype=np.uint32).reshape(-1, 2)
        rects = np.asarray(p.get("BadRects", np.zeros((0, 4))), dtype=np.uint32).reshape(-1, 4)
        return _u32(p["BayerPhase"], len(pts), len(rects)) + _arr(pts, ">u4") + _arr(rects, ">u4")
    if i == 6:
        return _u32(p["Top"], p["Left"], p["Bottom"], p["Right"])
    if i == 7:
        t = np.asarray(p["Table"]).ravel()
        return area() + _u32(t.size) + _arr(t, ">u2")
    if i == 8:
        c = np.asarray(p["Coefficient"], dtype=np.float64).ravel()
        return area() + _u32(c.size - 1) + _arr(c, ">f8")
    if i == 9:
        g = np.asarray(p["MapGain"], dtype=np.float32)
        if g.ndim == 2:
            g = g[:, :, None]
        pv, ph, mp = g.shape
        return (
            area()
            + _u32(pv, ph)
            + _f64(p["MapSpacingV"], p["MapSpacingH"], p["MapOriginV"], p["MapOriginH"])
            + _u32(mp)
            + _arr(g, ">f4")
        )
    if i in (10, 11, 12, 13):
        key = "Delta" if i in (10, 11) else "Scale"
        v = np.asarray(p[key], dtype=np.float32).ravel()
        return area() + _u32(v.size) + _arr(v, ">f4")
    if i == 14:
        kr = np.asarray(p["kr"], dtype=np.float64).reshape(-1, 15)
        n = len(kr)
        kt = np.asarray(p["kt"], dtype=np.float64).reshape(n, 2)
        lo = np.asarray(p["MinValidRadius"], dtype=np.float64).reshape(n, 1)
        hi = np.asarray(p["MaxValidRadius"], dtype=np.float64).reshape(n, 1)
        c = np.concatenate([kr, kt, lo, hi], axis=1)
        return _u32(n) + _arr(c, ">f8") + _f64(p["cx"], p["cy"]) + _u32(p["Reciprocal"])
    raise AssertionError(i)


def serialize_opcode_list(ops: Iterable[Opcode]) -> bytes:
    """Serialise Opcodes to an OpcodeList tag value (big-endian, DNG 1.7 ch. 7).

    Counts (``Planes``, ``Count``, ``TableSize``, ``MapPointsV``...) are taken from the arrays,
    so edited params stay consistent. ``parse_opcode_list(serialize_opcode_list(x)) == x``.
    """
    ops = list(ops)
    out = [_u32(len(ops))]
    for op in ops:
        body = _serialize_params(op)
        out.append(_u32(op.id, op.version, op.flags, len(body)))
        out.append(body)
    return b"".join(out)


def make_opcode(name: str, flags: int = 0, version: int | None = None, **params: Any) -> Opcode:
    """Build an Opcode by spec name, e.g. ``make_opcode('TrimBounds', Top=0, ...)``.

    The params are normalised by a serialise/parse round trip, so derived counts are filled in.
    """
    op_id = OPCODE_IDS[name]
    ver = _DEFAULT_VERSION[op_id] if version is None else version
    raw = Opcode(op_id, name, ver, flags, params)
    return parse_opcode_list(serialize_opcode_list([raw]))[0]


def opcode_summary(op: Opcode) -> dict[str, Any]:
    """A short JSON-friendly summary of an opcode's key parameters (for ``oneinch inspect``)."""
    out: dict[str, Any] = {"id": op.id, "name": op.name, "optional": op.optional}
    if op.preview_skip:
        out["preview_skip"] = True
    for k, v in op.params.items():
        if isinstance(v, np.ndarray):
            if v.size <= 16:
                out[k] = v.tolist()
            else:
                out[k] = {
                    "shape": list(v.shape),
                    "min": float(v.min()),
                    "max": float(v.max()),
                    "mean": float(v.mean()),
                }
        elif isinstance(v, bytes):
            out[k] = f"<{len(v)} bytes>"
        else:
            out[k] = v
    return out
