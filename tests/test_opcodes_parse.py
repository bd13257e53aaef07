"""DNG opcode lists: exact values on real GoPro / LG files, round trips, limits."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tifffile

from conftest import DECODABLE, SHARED
from oneinch.errors import InputError
from oneinch.raw.image import Opcode
from oneinch.raw.opcodes import (
    OPCODE_NAMES,
    make_opcode,
    parse_opcode_list,
    serialize_opcode_list,
)

GPR = SHARED / "dng" / "gpr_vc5"


def _tag_bytes(path, code: int, sub: bool = False) -> bytes:
    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        if sub:
            tf.filehandle.seek(page.subifds[0])
            page = tifffile.TiffPage(tf, index=0)
        return bytes(page.tags[code].value)


def _ind_gainmap(b: bytes, k: int) -> tuple[tuple, np.ndarray]:
    """Independent struct walk to opcode k of a GainMap list: (header fields, gains)."""
    pos = 4
    for _ in range(k):
        pos += 16 + struct.unpack_from(">I", b, pos + 12)[0]
    op_id, _ver, flags, size = struct.unpack_from(">4I", b, pos)
    p = pos + 16
    area = struct.unpack_from(">10I", b, p)
    spacing = struct.unpack_from(">4d", b, p + 40)
    (mp,) = struct.unpack_from(">I", b, p + 72)
    n = area[8] * area[9] * mp
    gains = np.array(struct.unpack_from(f">{n}f", b, p + 76), dtype=np.float32)
    assert size == 76 + 4 * n
    return (op_id, flags, *area, *spacing, mp), gains


@pytest.mark.parametrize(
    ("name", "points_h"),
    [("GOPR9231.GPR", 22), ("GOPR0024.GPR", 23)],
)
def test_gopro_gainmaps_exact(name: str, points_h: int) -> None:
    b = _tag_bytes(GPR / name, 51009)
    ops = parse_opcode_list(b, name)
    assert [op.name for op in ops] == ["GainMap"] * 4
    for k, op in enumerate(ops):
        hdr, gains = _ind_gainmap(b, k)
        p = op.params
        assert op.id == hdr[0] == 9 and op.flags == hdr[1] == 1 and op.optional
        got = tuple(p[f] for f in ("Top", "Left", "Bottom", "Right", "Plane", "Planes",
                                   "RowPitch", "ColPitch", "MapPointsV", "MapPointsH"))  # fmt: skip
        assert got == hdr[2:12]
        assert (p["Top"], p["Left"]) == ((0, 0), (0, 1), (1, 0), (1, 1))[k]
        assert (p["Bottom"], p["Right"], p["RowPitch"], p["ColPitch"]) == (3000, 4000, 2, 2)
        assert (p["MapPointsV"], p["MapPointsH"], p["MapPlanes"]) == (23, points_h, 1)
        assert (p["MapSpacingV"], p["MapSpacingH"], p["MapOriginV"], p["MapOriginH"]) == hdr[12:16]
        assert p["MapSpacingV"] == pytest.approx(1 / 22)
        assert p["MapSpacingH"] == pytest.approx(1 / (points_h - 1))
        assert p["MapGain"].shape == (23, points_h, 1)
        np.testing.assert_array_equal(p["MapGain"].ravel(), gains)
        assert 1.0 <= p["MapGain"].min() and p["MapGain"].max() < 4.0  # lens shading gains
    assert serialize_opcode_list(ops) == b


def test_gopro_hero7_first_gains() -> None:
    ops = parse_opcode_list(_tag_bytes(GPR / "GOPR9231.GPR", 51009))
    np.testing.assert_array_equal(
        ops[0].params["MapGain"][0, :3, 0], np.array([1.6474609, 1.4433594, 1.3251953], np.float32)
    )


@pytest.mark.parametrize(
    "path",
    [
        GPR / "GPFR7066.GPR",
        GPR / "GPBK7066.GPR",
        DECODABLE / "gopro_fusion_front_GPFR7066_gpr2dng.dng",
    ],
)
def test_fusion_warp_rectilinear(path) -> None:
    b = _tag_bytes(path, 51022)
    (op,) = parse_opcode_list(b)
    assert op.name == "WarpRectilinear" and op.id == 1 and op.flags == 3
    n = struct.unpack_from(">I", b, 20)[0]
    coeffs = np.array(struct.unpack_from(f">{6 * n}d", b, 24)).reshape(n, 6)
    cx, cy = struct.unpack_from(">2d", b, 24 + 48 * n)
    assert op.params["Planes"] == n == 3
    np.testing.assert_array_equal(op.params["kr"], coeffs[:, :4])
    np.testing.assert_array_equal(op.params["kt"], coeffs[:, 4:])
    assert (op.params["cx"], op.params["cy"]) == (cx, cy) == (0.5, 0.5)
    assert op.params["kr"][0, 0] == pytest.approx(1.00037422, abs=1e-8)
    assert serialize_opcode_list([op]) == b


def test_lg_g4_map_polynomials() -> None:
    b = _tag_bytes(DECODABLE / "lg_g4_h815_linearraw_lossy_1mp.dng", 51009, sub=True)
    ops = parse_opcode_list(b)
    assert [op.name for op in ops] == ["MapPolynomial"] * 3
    pos = 4
    for k, op in enumerate(ops):
        size = struct.unpack_from(">I", b, pos + 12)[0]
        area = struct.unpack_from(">9I", b, pos + 16)
        coef = struct.unpack_from(f">{area[8] + 1}d", b, pos + 52)
        pos += 16 + size
        p = op.params
        assert (p["Top"], p["Left"], p["Bottom"], p["Right"]) == (0, 0, 338, 600)
        assert (p["Plane"], p["Planes"], p["Degree"]) == (k, 1, 3) == (area[4], area[5], area[8])
        np.testing.assert_array_equal(p["Coefficient"], coef)
    np.testing.assert_allclose(
        ops[1].params["Coefficient"], [0.00294499, 0.06219387, 0.0, 0.93290799], atol=1e-8
    )
    assert serialize_opcode_list(ops) == b


def _every_opcode() -> list[Opcode]:
    area = dict(Top=0, Left=0, Bottom=10, Right=12, Plane=0, Planes=1, RowPitch=1, ColPitch=1)
    rng = np.random.default_rng(1)
    return [
        make_opcode("WarpRectilinear", flags=1, kr=rng.normal(size=(3, 4)),
                    kt=rng.normal(size=(3, 2)), cx=0.5, cy=0.48),
        make_opcode("WarpFisheye", kr=rng.normal(size=(1, 4)), cx=0.5, cy=0.5),
        make_opcode("FixVignetteRadial", k0=0.1, k1=-0.2, k2=0.3, k3=0.0, k4=0.01, cx=0.5, cy=0.5),
        make_opcode("FixBadPixelsConstant", Constant=0, BayerPhase=1),
        make_opcode("FixBadPixelsList", BayerPhase=0, BadPoints=[[1, 2], [3, 4]],
                    BadRects=[[0, 0, 2, 2]]),
        make_opcode("TrimBounds", Top=1, Left=2, Bottom=9, Right=11),
        make_opcode("MapTable", **area, Table=np.arange(0, 65536, 16, dtype=np.uint16)),
        make_opcode("MapPolynomial", **area, Coefficient=[0.0, 1.0, -0.1]),
        make_opcode("GainMap", **area, MapSpacingV=0.5, MapSpacingH=0.25, MapOriginV=0.0,
                    MapOriginH=0.0, MapGain=rng.uniform(1, 2, (3, 5, 2)).astype(np.float32)),
        make_opcode("DeltaPerRow", **area, Delta=rng.normal(size=10).astype(np.float32)),
        make_opcode("DeltaPerColumn", **area, Delta=rng.normal(size=12).astype(np.float32)),
        make_opcode("ScalePerRow", **area, Scale=np.ones(10, np.float32)),
        make_opcode("ScalePerColumn", **area, Scale=np.full(12, 1.5, np.float32)),
        make_opcode("WarpRectilinear2", kr=rng.normal(size=(2, 15)), kt=np.zeros((2, 2)),
                    MinValidRadius=[0.0, 0.0], MaxValidRadius=[1.0, 1.0], cx=0.5, cy=0.5,
                    Reciprocal=1),
        Opcode(99, "Unknown99", 0x01070000, 1, {"data": b"\x01\x02\x03"}),
    ]  # fmt: skip


def _params_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a
    )


def test_every_opcode_round_trip() -> None:
    ops = _every_opcode()
    assert {op.id for op in ops} >= set(OPCODE_NAMES)
    blob = serialize_opcode_list(ops)
    back = parse_opcode_list(blob)
    assert len(back) == len(ops)
    for a, b in zip(ops, back, strict=True):
        assert (a.id, a.name, a.version, a.flags) == (b.id, b.name, b.version, b.flags)
        assert _params_equal(a.params, b.params), a.name
    assert serialize_opcode_list(back) == blob
    gm = back[8].params
    assert (gm["MapPointsV"], gm["MapPointsH"], gm["MapPlanes"]) == (3, 5, 2)
    assert back[4].params["BadPointCount"] == 2 and back[4].params["BadRectCount"] == 1
    assert back[13].params["kr"].shape == (2, 15)
    assert back[14].params["data"] == b"\x01\x02\x03"


def _gainmap_header(pv: int, ph: int, mp: int, n_gains: int) -> bytes:
    body = struct.pack(">10I", 0, 0, 10, 10, 0, 1, 1, 1, pv, ph) + struct.pack(">4d", 0, 0, 0, 0)
    body += struct.pack(">I", mp) + b"\x00" * 4 * n_gains
    return struct.pack(">I", 1) + struct.pack(">4I", 9, 0x01030000, 0, len(body)) + body


@pytest.mark.parametrize(
    ("blob", "needle"),
    [
        (b"\x00\x00", "too short"),
        (struct.pack(">I", 0xFFFFFFFF), "declares"),
        (struct.pack(">I", 2) + struct.pack(">4I", 6, 0, 0, 16) + b"\x00" * 16, "truncated"),
        (struct.pack(">I", 1) + struct.pack(">4I", 6, 0, 0, 99) + b"\x00" * 16, "99 bytes"),
        (_gainmap_header(100_000, 100_000, 4, 4), "gain map"),
        (_gainmap_header(2, 2, 1, 3), "gain map"),
        (_gainmap_header(2, 2, 1, 5), "trailing"),
        (struct.pack(">I", 1) + struct.pack(">4I", 8, 0, 0, 44)
         + struct.pack(">9I", 0, 0, 1, 1, 0, 1, 1, 1, 9) + b"\x00" * 8, "degree"),
        (struct.pack(">I", 1) + struct.pack(">4I", 1, 0, 0, 4) + struct.pack(">I", 9), "plane"),
        (struct.pack(">I", 1) + struct.pack(">4I", 7, 0, 0, 36)
         + struct.pack(">9I", 0, 0, 1, 1, 0, 1, 1, 1, 70000), "size"),
    ],
)  # fmt: skip
def test_malformed_lists_raise(blob: bytes, needle: str) -> None:
    with pytest.raises(InputError) as e:
        parse_opcode_list(blob, "bad.dng")
    msg = str(e.value)
    assert msg.startswith("bad.dng: ") and needle in msg and "\n" not in msg
