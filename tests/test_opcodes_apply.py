"""Applying DNG opcodes (DNG 1.7 ch. 7): crafted opcodes with exact expected results, and the
real GoPro files' OpcodeList2 GainMaps / OpcodeList3 WarpRectilinear."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from oneinch.errors import UnsupportedError
from oneinch.isp.opcodes import apply_opcode_list, fix_bad_pixels
from oneinch.raw.image import CFAPattern, Opcode
from oneinch.raw.opcodes import make_opcode, parse_opcode_list, serialize_opcode_list

RGGB = CFAPattern.bayer("RGGB")
AREA = {"Plane": 0, "Planes": 1, "RowPitch": 1, "ColPitch": 1}
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dng" / "decodable"


def _area(h, w, **kw):
    return {"Top": 0, "Left": 0, "Bottom": h, "Right": w, **AREA, **kw}


def _gain_map(h, w, gains, **kw):
    g = np.asarray(gains, dtype=np.float32)
    if g.ndim == 2:
        g = g[:, :, None]
    pv, ph = g.shape[:2]
    p = _area(h, w, **kw)
    p.update(
        MapSpacingV=1.0 / max(pv - 1, 1), MapSpacingH=1.0 / max(ph - 1, 1),
        MapOriginV=0.0, MapOriginH=0.0, MapGain=g,
    )  # fmt: skip
    p.update({k: v for k, v in kw.items() if k.startswith("Map")})
    return make_opcode("GainMap", **p)


def _apply(img, ops, list_no=2, cfa=RGGB, **kw):
    # every crafted list goes through the DNG byte format and back, as read from a file
    ops = parse_opcode_list(serialize_opcode_list(ops))
    return apply_opcode_list(img, ops, list_no=list_no, cfa=cfa, source="crafted.dng", **kw)


# ---------------------------------------------------------------------------------- GainMap


def test_gain_map_per_cfa_phase_exact():
    h, w = 40, 60
    flat = np.full((h, w), 0.25, np.float32)
    ops = [
        _gain_map(h, w, np.full((3, 3), g), Top=t, Left=lft, RowPitch=2, ColPitch=2)
        for g, (t, lft) in zip((1.5, 2.0, 0.5, 1.25), ((0, 0), (0, 1), (1, 0), (1, 1)), strict=True)
    ]
    out = _apply(flat, ops)
    assert np.array_equal(out[0::2, 0::2], np.full((20, 30), 0.375, np.float32))
    assert np.array_equal(out[0::2, 1::2], np.full((20, 30), 0.5, np.float32))
    assert np.array_equal(out[1::2, 0::2], np.full((20, 30), 0.125, np.float32))
    assert np.array_equal(out[1::2, 1::2], np.full((20, 30), 0.3125, np.float32))


def test_gain_map_region_and_bilinear_and_clamp():
    h, w = 20, 40
    flat = np.ones((h, w), np.float32)
    # 2x2 map: gain 1 at the top-left, 3 at the top-right, 2 bottom-left, 4 bottom-right
    op = _gain_map(h, w, [[1.0, 3.0], [2.0, 4.0]], Top=2, Left=4, Bottom=18, Right=36)
    out = _apply(flat, [op])
    assert np.all(out[:2] == 1) and np.all(out[18:] == 1) and np.all(out[:, :4] == 1)
    rows, cols = np.mgrid[2:18, 4:36]
    v, u = rows / h, cols / w  # relative image coordinates (DNG SDK: row / height)
    expect = 1 + 2 * u + 1 * v
    np.testing.assert_allclose(out[2:18, 4:36], expect, rtol=1e-6)
    # a map covering only the middle: clamped outside its points
    op = _gain_map(h, w, [[1.0, 3.0]], MapOriginH=0.25, MapSpacingH=0.5, MapPointsV=1)
    out = _apply(flat, [op])
    np.testing.assert_allclose(out[:, :10], 1.0)
    np.testing.assert_allclose(out[:, 30:], 3.0)
    np.testing.assert_allclose(out[5, 20], 2.0, rtol=1e-6)


def test_gain_map_planes_rgb_and_origin():
    h, w = 16, 16
    rgb = np.ones((h, w, 3), np.float32)
    g = np.stack([np.full((2, 2), 2.0), np.full((2, 2), 3.0)], axis=2)  # 2 map planes
    op = _gain_map(h, w, g, Plane=0, Planes=3)
    out = _apply(rgb, [op], list_no=3, cfa=None)
    assert np.all(out[..., 0] == 2) and np.all(out[..., 1] == 3) and np.all(out[..., 2] == 3)
    # list 1 on an active-area crop == full frame then cropped
    full = np.random.default_rng(0).uniform(100, 4000, (24, 30)).astype(np.float32)
    op = _gain_map(24, 30, [[1.0, 2.0], [3.0, 4.0]])
    ref = _apply(full, [op], list_no=1)[4:20, 6:26]
    got = _apply(full[4:20, 6:26], [op], list_no=1, origin=(4, 6), frame=(24, 30))
    np.testing.assert_allclose(got, ref, rtol=1e-6)


# ------------------------------------------------------------------- per-row/column, tables


def test_delta_and_scale_per_row_column():
    h, w = 6, 8
    img = np.full((h, w), 0.5, np.float32)
    deltas = np.arange(h, dtype=np.float32) * 0.01
    out = _apply(img, [make_opcode("DeltaPerRow", **_area(h, w), Delta=deltas)])
    np.testing.assert_allclose(out, 0.5 + deltas[:, None] + np.zeros((1, w)), atol=1e-7)
    # list 1: deltas are in the SDK's 0..1 scale of the 16-bit range
    out1 = _apply(img * 1000, [make_opcode("DeltaPerRow", **_area(h, w), Delta=deltas)], 1)
    np.testing.assert_allclose(out1, 500 + 65535 * deltas[:, None] + np.zeros((1, w)), rtol=1e-6)
    # pitch 2 columns from column 1: every other column, one scale each
    scales = np.array([2.0, 3.0, 4.0, 5.0], np.float32)
    op = make_opcode("ScalePerColumn", **_area(h, w, Left=1, ColPitch=2), Scale=scales)
    out = _apply(img, [op])
    np.testing.assert_allclose(out[0, 1::2], 0.5 * scales)
    np.testing.assert_allclose(out[:, 0::2], 0.5)
    op = make_opcode("DeltaPerColumn", **_area(h, w), Delta=np.full(w, -0.1, np.float32))
    np.testing.assert_allclose(_apply(img, [op]), 0.4, atol=1e-7)
    op = make_opcode("ScalePerRow", **_area(h, w, Top=2, Bottom=4), Scale=[2.0, 0.5])
    out = _apply(img, [op])
    np.testing.assert_allclose(out[:, 0], [0.5, 0.5, 1.0, 0.25, 0.5, 0.5])


def test_map_table_and_polynomial():
    table = np.minimum(np.arange(1000) * 3, 65535).astype(np.uint16)  # 1000 entries
    stored = np.array([[0, 10, 999, 5000]], np.float32)  # 5000 is past the table
    out = _apply(stored, [make_opcode("MapTable", **_area(1, 4), Table=table)], list_no=1)
    np.testing.assert_array_equal(out, [[0, 30, 2997, 2997]])
    lin = np.array([[0.0, 10 / 65535, 0.5]], np.float32)
    out = _apply(lin, [make_opcode("MapTable", **_area(1, 3), Table=table)], list_no=2)
    np.testing.assert_allclose(out, [[0.0, 30 / 65535, 2997 / 65535]], rtol=1e-6)
    x = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    op = make_opcode("MapPolynomial", **_area(3, 4), Coefficient=[0.1, 2.0, -0.5])
    np.testing.assert_allclose(_apply(x, [op]), 0.1 + 2 * x - 0.5 * x**2, rtol=1e-6)
    # LinearRaw: one plane only
    rgb = np.stack([x, x, x], axis=2)
    op = make_opcode("MapPolynomial", **_area(3, 4, Plane=1), Coefficient=[0.0, 2.0])
    out = _apply(rgb, [op], cfa=None)
    np.testing.assert_allclose(out[..., 1], 2 * x, rtol=1e-6)
    np.testing.assert_array_equal(out[..., 0], x)


def test_trim_bounds_crops():
    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    out = _apply(img, [make_opcode("TrimBounds", Top=2, Left=3, Bottom=7, Right=9)], list_no=3)
    np.testing.assert_array_equal(out, img[2:7, 3:9])


# ------------------------------------------------------------------------------ bad pixels


def _cfa_flat(h, w, vals=(0.2, 0.5, 0.8)):
    m = RGGB.masks(h, w)
    return (vals[0] * m[0] + vals[1] * m[1] + vals[2] * m[2]).astype(np.float32)


def test_fix_bad_pixels_constant_same_colour():
    img = _cfa_flat(12, 12) * 4000
    bad = img.copy()
    for y, x in ((4, 4), (4, 5), (7, 7), (0, 0), (11, 10)):  # R, G, B, corner R, edge G
        bad[y, x] = 0
    op = make_opcode("FixBadPixelsConstant", Constant=0, BayerPhase=0)
    out = _apply(bad, [op], list_no=1)
    np.testing.assert_allclose(out, img, rtol=1e-6)


def test_fix_bad_pixels_list_points_and_rect():
    h, w = 24, 24
    yy, xx = np.mgrid[0:h, 0:w]
    img = (_cfa_flat(h, w) * (1 + 0.01 * xx + 0.02 * yy)).astype(np.float32)
    broken = img.copy()
    broken[5, 9] = 9.0
    broken[12:16, 10:13] = 0.0
    op = make_opcode(
        "FixBadPixelsList", BayerPhase=0, BadPoints=[[5, 9]], BadRects=[[12, 10, 16, 13]]
    )
    out = _apply(broken, [op])
    np.testing.assert_allclose(out[5, 9], img[5, 9], rtol=1e-6)  # linear ramp: exact
    np.testing.assert_allclose(out[12:16, 10:13], img[12:16, 10:13], rtol=0.03)
    np.testing.assert_array_equal(np.delete(out.ravel(), [5 * w + 9]), np.delete(
        np.where((yy >= 12) & (yy < 16) & (xx >= 10) & (xx < 13), out, img).ravel(), [5 * w + 9]
    ))  # fmt: skip
    # phase 3 = BGGR: the colour layout follows BayerPhase, not the cfa argument
    bggr = CFAPattern.bayer("BGGR").masks(8, 8)
    img2 = (0.2 * bggr[0] + 0.5 * bggr[1] + 0.8 * bggr[2]).astype(np.float32)
    b2 = img2.copy()
    b2[3, 3] = 0
    op = make_opcode("FixBadPixelsList", BayerPhase=3, BadPoints=[[3, 3]])
    np.testing.assert_allclose(_apply(b2, [op]), img2, rtol=1e-6)


def test_fix_bad_pixels_plain_single_colour():
    plane = np.full((5, 5), 2.0, np.float32)
    bad = np.zeros((5, 5), bool)
    bad[1:4, 1:4] = True
    out = fix_bad_pixels(np.where(bad, 0, plane), bad)
    np.testing.assert_allclose(out, 2.0)


# ------------------------------------------------------------------------------------ warps


def _ramps(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.ascontiguousarray(np.stack([xx, yy, xx + yy], axis=2))


def _expected_src(h, w, ratio_fn, cx=0.5, cy=0.5, kt=(0.0, 0.0)):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yc, xc = cy * h, cx * w
    norm = max(np.hypot(yc - a, xc - b) for a in (0, h) for b in (0, w))
    dx, dy = (xx - xc) / norm, (yy - yc) / norm
    r2 = np.minimum(dx * dx + dy * dy, 1.0)
    ratio = ratio_fn(r2)
    sx = dx * ratio + kt[1] * (r2 + 2 * dx * dx) + 2 * kt[0] * dx * dy
    sy = dy * ratio + kt[0] * (r2 + 2 * dy * dy) + 2 * kt[1] * dx * dy
    return xc + norm * sx, yc + norm * sy


def _interior(sx, sy, h, w, margin=3):
    return (sx > margin) & (sx < w - 1 - margin) & (sy > margin) & (sy < h - 1 - margin)


def test_warp_rectilinear_moves_points_as_the_model_says():
    h, w = 60, 80
    kr = [1.02, -0.08, 0.01, 0.0]
    kt = [0.002, -0.001]
    op = make_opcode(
        "WarpRectilinear", kr=[kr], kt=[kt], cx=0.45, cy=0.55
    )
    out = _apply(_ramps(h, w), [op], list_no=3, cfa=None)
    sx, sy = _expected_src(
        h, w, lambda r2: kr[0] + r2 * (kr[1] + r2 * (kr[2] + r2 * kr[3])), 0.45, 0.55, kt
    )
    m = _interior(sx, sy, h, w)
    assert m.mean() > 0.8
    assert np.abs(out[..., 0] - sx)[m].max() < 0.1  # the ramp's value is its x position
    assert np.abs(out[..., 1] - sy)[m].max() < 0.1


def test_warp_rectilinear_per_plane_tca():
    h, w = 40, 40
    op = make_opcode(
        "WarpRectilinear", kr=[[1.01, 0, 0, 0], [1, 0, 0, 0], [0.99, 0, 0, 0]],
        kt=np.zeros((3, 2)), cx=0.5, cy=0.5,
    )  # fmt: skip
    img = np.repeat(_ramps(h, w)[..., :1], 3, axis=2)
    out = _apply(img, [op], list_no=3, cfa=None)
    np.testing.assert_allclose(out[20, 30], [20 + 10 * 1.01, 30, 20 + 10 * 0.99], atol=0.05)


def test_warp_rectilinear2_reciprocal_and_valid_range():
    h, w = 50, 70
    kr = np.zeros(15)
    kr[0], kr[2] = 1.0, 0.1
    op = make_opcode(
        "WarpRectilinear2", kr=[kr], kt=[[0, 0]], MinValidRadius=[0.0], MaxValidRadius=[0.8],
        cx=0.5, cy=0.5, Reciprocal=1,
    )  # fmt: skip
    out = _apply(_ramps(h, w), [op], list_no=3, cfa=None)
    sx, sy = _expected_src(h, w, lambda r2: 1.0 / (1.0 + 0.1 * np.minimum(r2, 0.64)))
    m = _interior(sx, sy, h, w)
    assert m.mean() > 0.8
    assert np.abs(out[..., 0] - sx)[m].max() < 0.1
    assert np.abs(out[..., 1] - sy)[m].max() < 0.1


@pytest.mark.parametrize("model", ["rectilinear", "rectilinear2", "fisheye"])
@pytest.mark.parametrize("tangential", [False, True])
def test_warp_coords_kernel_equals_numpy_reference(model, tangential):
    """The one-pass float64 kernel gives the numpy reference's maps (to float32 rounding), with
    an off-centre optical centre, a sub-frame origin, valid-range clamping and the reciprocal
    model."""
    from oneinch.isp.lens import warp_source_coords

    coeffs: dict = {"kr": np.array([1.0, -0.08, 0.03, -0.01])}
    if model == "rectilinear2":
        kr = np.zeros(15)
        kr[:6] = [1.02, -0.01, -0.05, 0.02, 0.004, -0.002]
        coeffs = {"kr": kr, "lo": 0.05, "hi": 0.9, "reciprocal": tangential}
    if tangential:
        coeffs["kt"] = np.array([0.002, -0.003])
    for shape, origin, frame in (((61, 83), (0, 0), None), ((40, 52), (7, 11), (64, 90))):
        want = warp_source_coords(shape, model, coeffs, 0.47, 0.53, origin, frame,
                                  use_numba=False)
        got = warp_source_coords(shape, model, coeffs, 0.47, 0.53, origin, frame)
        for g, ref in zip(got, want, strict=True):
            assert g.dtype == np.float32 and g.shape == shape
            np.testing.assert_allclose(g, ref, rtol=0, atol=2e-5)


def test_warp_fisheye():
    h, w = 50, 50
    op = make_opcode("WarpFisheye", kr=[[1.0, 0.0, 0.0, 0.0]], cx=0.5, cy=0.5)
    out = _apply(_ramps(h, w), [op], list_no=3, cfa=None)

    def ratio(r2):
        r = np.sqrt(r2)
        return np.where(r > 0, np.arctan(r) / np.where(r > 0, r, 1), 1.0)

    sx, sy = _expected_src(h, w, ratio)
    m = _interior(sx, sy, h, w)
    assert np.abs(out[..., 0] - sx)[m].max() < 0.1
    # a fisheye-to-rectilinear warp pulls the corners' sources inward
    assert sx[0, 0] > 1.0 and sy[0, 0] > 1.0


def test_fix_vignette_radial_exact():
    h, w = 30, 40
    k = {"k0": 0.3, "k1": 0.1, "k2": 0.0, "k3": 0.0, "k4": 0.05}
    op = make_opcode("FixVignetteRadial", cx=0.5, cy=0.5, **k)
    out = _apply(np.full((h, w, 3), 0.5, np.float32), [op], list_no=3, cfa=None)
    np.testing.assert_allclose(out[0, 0], 0.5 * (1 + 0.3 + 0.1 + 0.05), rtol=1e-6)  # r = 1
    np.testing.assert_allclose(out[15, 20], 0.5, rtol=1e-6)  # the centre: r = 0
    r2 = (5 / 25) ** 2
    np.testing.assert_allclose(out[15, 25, 1], 0.5 * (1 + 0.3 * r2 + 0.1 * r2**2 + 0.05 * r2**5))


def test_pointwise_opcodes_per_strip_equal_the_whole_image():
    """develop applies a pointwise OpcodeList2 per strip of rows, placed by ``origin``: each
    strip, even one starting on an odd row or inside a pitch, gives the whole result's rows."""
    from oneinch.isp.opcodes import POINTWISE, pointwise

    h, w = 37, 50
    rng = np.random.default_rng(4)
    img = rng.uniform(0.05, 0.9, (h, w)).astype(np.float32)
    ops = [
        _gain_map(h, w, rng.uniform(0.8, 1.6, (5, 7)), Top=1, RowPitch=2),  # one CFA phase
        _gain_map(h, w, rng.uniform(0.8, 1.6, (4, 4)), Top=3, Bottom=30, Left=2, Right=45),
        make_opcode("MapTable", **_area(h, w),
                    Table=np.minimum(np.arange(4096) * 17, 65535).astype(np.uint16)),
        make_opcode("MapPolynomial", **_area(h, w, Left=1, ColPitch=2),
                    Coefficient=[0.01, 0.9, 0.05]),
        make_opcode("DeltaPerRow", **_area(h, w, Top=5, RowPitch=3),
                    Delta=rng.normal(0, 0.01, 11).astype(np.float32)),
        make_opcode("ScalePerRow", **_area(h, w), Scale=rng.uniform(0.9, 1.1, h)),
        make_opcode("DeltaPerColumn", **_area(h, w), Delta=rng.normal(0, 0.01, w)),
        make_opcode("ScalePerColumn", **_area(h, w), Scale=rng.uniform(0.9, 1.1, w)),
        make_opcode("FixVignetteRadial", cx=0.4, cy=0.6, k0=0.3, k1=0.1, k2=0.0, k3=0.0,
                    k4=0.05),
    ]
    assert {op.name for op in ops} == POINTWISE and pointwise(ops)
    ref = _apply(img, ops)
    for cuts in ([0, 13, 37], [0, 1, 8, 9, 26, 37]):
        got = np.concatenate([_apply(img[a:b], ops, origin=(a, 0), frame=(h, w))
                              for a, b in itertools.pairwise(cuts)])
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
    bad = make_opcode("FixBadPixelsConstant", Constant=0, BayerPhase=0)
    trim = make_opcode("TrimBounds", Top=1, Left=1, Bottom=h - 1, Right=w - 1)
    assert not pointwise([*ops, bad]) and not pointwise([trim]) and pointwise([])


# ------------------------------------------------------------------ flags, errors, contracts


def test_unknown_opcode_optional_skipped_required_errors():
    img = np.full((4, 4), 0.5, np.float32)
    opt = Opcode(99, "Unknown99", 0x01070000, 1, {"data": b"\0\0\0\0"})
    req = Opcode(99, "Unknown99", 0x01070000, 0, {"data": b"\0\0\0\0"})
    np.testing.assert_array_equal(_apply(img, [opt]), img)
    with pytest.raises(UnsupportedError, match=r"crafted\.dng.*Unknown99"):
        _apply(img, [req])
    # a warp on a CFA mosaic cannot be applied: error unless optional
    warp = make_opcode("WarpRectilinear", kr=[[1.01, 0, 0, 0]], kt=[[0, 0]], cx=0.5, cy=0.5)
    with pytest.raises(UnsupportedError, match="WarpRectilinear"):
        _apply(img, [warp])
    warp_opt = make_opcode(
        "WarpRectilinear", flags=1, kr=[[1.01, 0, 0, 0]], kt=[[0, 0]], cx=0.5, cy=0.5
    )
    np.testing.assert_array_equal(_apply(img, [warp_opt]), img)


def test_input_never_mutated():
    img = np.full((8, 8), 0.5, np.float32)
    before = img.copy()
    ops = [
        _gain_map(8, 8, np.full((2, 2), 2.0)),
        make_opcode("DeltaPerRow", **_area(8, 8), Delta=np.ones(8, np.float32)),
        make_opcode("FixBadPixelsConstant", Constant=0, BayerPhase=0),
    ]
    out = _apply(img, ops)
    np.testing.assert_array_equal(img, before)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, 2.0)


# ---------------------------------------------------------------------- real GoPro files


def _gopro_green(name):
    tifffile = pytest.importorskip("tifffile")
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} missing")
    page = tifffile.TiffFile(path).pages[0]
    raw = page.asarray().astype(np.float32)
    black = float(np.mean(page.tags[50714].value[1::2]))  # BlackLevel is RATIONAL (n, d)
    white = float(page.tags[50717].value)
    mosaic = (raw - black) / (white - black)
    ops = parse_opcode_list(page.tags[51009].value, source=str(path))
    out = apply_opcode_list(mosaic, ops, list_no=2, cfa=RGGB, source=str(path))
    return mosaic[0::2, 1::2], out[0::2, 1::2]  # green of the red rows, 1500 x 2000


def _patch(g, y0, y1, x0, x1):  # coordinates on a 1000 x 750 thumbnail
    return float(np.median(g[y0 * 2 : y1 * 2, x0 * 2 : x1 * 2]))


@pytest.mark.parametrize(
    ("name", "inner", "outer"),
    [
        # HERO6: the concrete walkway near the centre and at the bottom edge
        ("gopro_hero6_GOPR0024_gpr2dng.dng", (430, 460, 350, 390), (700, 740, 330, 420)),
        # HERO7: the overcast sky near the top centre and towards the top-left corner
        ("gopro_hero7_GOPR9231_gpr2dng.dng", (60, 110, 520, 600), (20, 60, 200, 260)),
    ],
)
def test_gopro_gain_maps_even_out_flat_region(name, inner, outer):
    before, after = _gopro_green(name)
    rb = _patch(before, *outer) / _patch(before, *inner)
    ra = _patch(after, *outer) / _patch(after, *inner)
    print(f"{name}: outer/inner green before {rb:.3f} after {ra:.3f}")
    assert rb < 0.9  # the outer patch is darker as recorded (lens shading + scene)
    assert abs(np.log(ra)) < 0.75 * abs(np.log(rb))  # and markedly closer to the centre after


def _fusion_shift(img, s=256, m=32):
    """R-vs-G displacement (dx, dy) in px, by phase correlation on the central s x s."""
    cv2 = pytest.importorskip("cv2")
    a = img[m : m + s, m : m + s, 1].astype(np.float64)
    b = img[m : m + s, m : m + s, 0].astype(np.float64)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, cv2.createHanningWindow((s, s), cv2.CV_64F))
    return dx, dy


def test_fusion_warp_rectilinear_removes_lateral_ca():
    """The Fusion front's OpcodeList3 WarpRectilinear is pure TCA (kr0 R 1.000374, G 1,
    B 1.000187, no k1..k3): red is magnified against green. Measure the radial R-G shift on
    four patches (left/right/top/bottom) before and after, warping only crops via origin/frame.
    """
    tifffile = pytest.importorskip("tifffile")
    cv2 = pytest.importorskip("cv2")
    path = DATA / "gopro_fusion_front_GPFR7066_gpr2dng.dng"
    if not path.exists():
        pytest.skip(f"{path} missing")
    page = tifffile.TiffFile(path).pages[0]
    raw = page.asarray()
    h, w = raw.shape
    ops = parse_opcode_list(page.tags[51022].value, source=str(path))
    assert [op.name for op in ops] == ["WarpRectilinear"]
    n = 320
    spots = {"left": (h // 2 - n // 2, 268), "right": (h // 2 - n // 2, w - 268 - n),
             "top": (268, w // 2 - n // 2), "bottom": (h - 268 - n, w // 2 - n // 2)}  # fmt: skip
    shifts = {}
    for key, (y, x) in spots.items():
        crop = raw[y : y + n, x : x + n]  # even y, x: the crop stays RGGB
        rgb = cv2.cvtColor(crop, cv2.COLOR_BayerRG2RGB).astype(np.float32) / 16383
        out = apply_opcode_list(
            rgb, ops, list_no=3, cfa=None, source=str(path), origin=(y, x), frame=(h, w)
        )
        shifts[key] = (_fusion_shift(rgb), _fusion_shift(out))

    def expansion(i):  # mean outward R shift (px): ~ (k_R - 1) * distance from centre
        return (shifts["right"][i][0] - shifts["left"][i][0]
                + shifts["bottom"][i][1] - shifts["top"][i][1]) / 4  # fmt: skip

    before, after = expansion(0), expansion(1)
    print(f"Fusion R-G radial misregistration: before {before:.3f} px, after {after:.3f} px")
    assert before > 0.2  # about 0.00037 * 1100 px = 0.41 px predicted by the opcode
    assert abs(after) < 0.4 * before


def test_colour_gain_is_what_the_gopro_gain_maps_apply():
    """isp.shading.colour_gain (the lens shading denoise takes out of its noise model) equals
    the four GainMaps of a GoPro HERO7 applied to a mosaic of ones, read at each colour's
    sites (greens: the mean of the two), 1.6-2x in the corners."""
    from oneinch.isp import shading
    from oneinch.isp.opcodes import apply_opcode_list
    from oneinch.raw import open_raw

    path = DATA / "gopro_hero7_GOPR9231_gpr2dng.dng"
    if not path.is_file():
        pytest.skip("GoPro DNG not available")
    raw = open_raw(path)
    ops = raw.opcodes[2]
    h, w = raw.data.shape
    ones = apply_opcode_list(np.ones((h, w), np.float32), ops, list_no=2, cfa=raw.cfa)
    ys, xs = np.arange(0, h, 250), np.arange(0, w, 250)  # even: the top-left site of a quad
    got = shading.colour_gain(ops, raw.cfa.pattern, (h, w), ys, xs)
    pat = raw.cfa.pattern
    for c in range(3):
        sites = [(dy, dx) for dy in range(2) for dx in range(2) if pat[dy][dx] == c]
        want = np.mean([ones[ys + dy][:, xs + dx] for dy, dx in sites], axis=0)
        np.testing.assert_allclose(got[..., c], want, rtol=2e-3)
    assert got.max() > 1.6 and abs(float(got[len(ys) // 2, len(xs) // 2].mean()) - 1) < 0.01
    assert shading.colour_gain((), raw.cfa.pattern, (h, w), ys, xs) is None


@pytest.mark.parametrize("factor", [2, 4])
def test_binning_stored_values_then_shading_is_the_front_then_binning(factor):
    """Previews (and the statistics prepass) of a raw whose OpcodeList2 holds GainMaps bin
    the stored values in one pass and multiply each bin by its colour's gain at the bin's
    centre; the reference multiplies every sample before binning. On a GoPro HERO7 (maps up
    to 2x): within 2e-4 on average, 2e-3 at most; without maps, exactly bin_stored."""
    from functools import partial

    from oneinch import develop as dv
    from oneinch.isp import whitebalance
    from oneinch.raw import open_raw
    from oneinch.recipe import Recipe

    path = DATA / "gopro_hero7_GOPR9231_gpr2dng.dng"
    if not path.is_file():
        pytest.skip("GoPro DNG not available")
    raw = open_raw(path)
    r = Recipe()
    gains = whitebalance.gains(whitebalance.neutral(raw.color, r.white_balance, None, raw.cfa))
    front = partial(dv._front, lv=raw.levels, gains=gains, cfa=raw.cfa,
                    ops2=tuple(raw.opcodes[2]), frame=raw.data.shape[:2], source=raw.path)
    m = raw.data[2000:2400]  # the bottom rows: the maps' steepest part
    assert dv._gains_only(front, m)
    ref = dv._bin(front(m, 2000), raw.cfa, factor)
    got = dv._bin_stored_shaded(m, 2000, front, raw.cfa, factor)
    rel = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3)
    assert rel.mean() < 2e-4 and rel.max() < 2e-3, (rel.mean(), rel.max())
    plain = partial(dv._front, lv=raw.levels, gains=gains, cfa=raw.cfa, ops2=(),
                    frame=raw.data.shape[:2], source=raw.path)
    np.testing.assert_array_equal(dv._bin_stored_shaded(m, 2000, plain, raw.cfa, factor),
                                  dv.bin_stored(m, raw.levels, gains, raw.cfa, factor))
