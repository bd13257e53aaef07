"""looks.lut: .cube / HaldCLUT / tiles read and write, tetrahedral vs trilinear, errors, interop
with ffmpeg's lut3d filter."""

import shutil
import subprocess
from pathlib import Path

import colour
import cv2
import numpy as np
import pytest

from oneinch.errors import InputError
from oneinch.isp.spaces import decode, encode
from oneinch.looks.lut import (
    Lut,
    apply_lut,
    apply_table,
    apply_table_trilinear,
    bake,
    cube_text,
    hald_image,
    identity_grid,
    load_lut,
    read_cube,
    read_image_lut,
    write_cube,
    write_hald,
)
from oneinch.looks.measure import read_srgb_png, srgb_to_lab
from oneinch.looks.styles import apply_style

KODAK = Path(__file__).resolve().parents[2] / "shared/data/benchmarks/kodak24"


def _colours(n=4000, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 3)).astype(np.float32)


def _de2000(a_lin, b_lin):
    return colour.delta_E(srgb_to_lab(a_lin), srgb_to_lab(b_lin), method="CIE 2000")


def _smooth_lut(n=33):
    g = identity_grid(n).astype(np.float64)
    r, gg, b = g[..., 0], g[..., 1], g[..., 2]
    out = np.stack([r**0.8 * 0.9 + 0.1 * gg * b, 0.5 * (gg + gg**2) + 0.05 * r,
                    b**1.3 * 0.95 + 0.05 * np.sin(3 * r)], axis=-1)
    return Lut(out.astype(np.float32))


def test_identity_cube_round_trip(tmp_path):
    write_cube(tmp_path / "id.cube", Lut(identity_grid(33)))
    lut = read_cube(tmp_path / "id.cube")
    x = _colours()
    assert lut.size == 33 and np.abs(apply_table(x, lut) - x).max() < 1e-4


@pytest.mark.parametrize("level", [4, 8, 12])
def test_identity_hald_round_trip(tmp_path, level):
    write_hald(tmp_path / "id.png", Lut(identity_grid(17)), level=level)
    lut = read_image_lut(tmp_path / "id.png")
    assert lut.size == level * level
    x = _colours()
    assert np.abs(apply_table(x, lut) - x).max() < 1e-4


def _affine_lut(n=9):
    m = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.0, 0.3, 0.7]], np.float32)
    return Lut(identity_grid(n) @ (0.85 * m) + 0.02)  # stays inside [0, 1]


def test_hald_tiff_and_layouts(tmp_path):
    lut = _affine_lut()
    write_hald(tmp_path / "h.tif", lut, level=8)
    back = read_image_lut(tmp_path / "h.tif", layout="hald")
    x = _colours()
    assert np.abs(apply_table(x, back) - apply_table(x, lut)).max() < 1e-4
    # the same table as a 512x512 8x8-tile lookup.png: detected as tiles
    t = back.table.transpose(2, 1, 0, 3).reshape(8, 8, 64, 64, 3)  # [b=(ty,tx), g, r]
    img = t.transpose(0, 2, 1, 3, 4).reshape(512, 512, 3)
    cv2.imwrite(str(tmp_path / "lookup.png"), np.round(img[..., ::-1] * 65535).astype(np.uint16))
    tiles = load_lut(tmp_path / "lookup.png")
    assert np.abs(tiles.table - back.table).max() < 1e-4
    # a flat grey image cannot be told apart: ask for the layout, with the file name
    cv2.imwrite(str(tmp_path / "flat.png"), np.full((512, 512, 3), 128, np.uint8))
    with pytest.raises(InputError, match=r"flat\.png.*declare the layout"):
        load_lut(tmp_path / "flat.png")
    assert load_lut(tmp_path / "flat.png", layout="tiles").size == 64


def test_tetrahedral_matches_trilinear_reference():
    x = _colours()
    affine = _affine_lut()
    # both are exact for affine maps, so they agree to float precision
    assert np.abs(apply_table(x, affine) - apply_table_trilinear(x, affine)).max() < 1e-5
    smooth = _smooth_lut()
    d = np.abs(apply_table(x, smooth) - apply_table_trilinear(x, smooth))
    assert d.max() < 2e-3 and d.mean() < 2e-4
    nodes = identity_grid(33).reshape(-1, 3)
    assert np.abs(apply_table(nodes, smooth) - smooth.table.reshape(-1, 3)).max() < 1e-6


def test_cube_1d_domain_and_resolve_shaper(tmp_path):
    n = 5
    ramp = np.linspace(0, 1, n)
    one_d = "LUT_1D_SIZE 5\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 2 2 2\n" + "".join(
        f"{v**2:.6f} {v:.6f} {1 - v:.6f}\n" for v in ramp)
    (tmp_path / "a.cube").write_text(one_d)
    lut = read_cube(tmp_path / "a.cube")
    y = apply_table(np.array([[1.0, 1.0, 1.0]], np.float32), lut)[0]  # t = 0.5
    assert np.abs(y - [0.25, 0.5, 0.5]).max() < 1e-6
    y = apply_table(np.array([[0.25, 0.75, 2.0]], np.float32), lut)[0]  # between nodes
    assert np.abs(y - [0.0625 / 2, 0.375, 0.0]).max() < 1e-6
    # Resolve: 1D shaper with its input range, then a 3D identity over LUT_3D_INPUT_RANGE
    shaper = "".join(f"{v:.6f} {v:.6f} {v:.6f}\n" for v in np.linspace(0, 1, 9))
    three = "".join(f"{r:.6f} {g:.6f} {b:.6f}\n" for b in ramp for g in ramp for r in ramp)
    text = ("TITLE \"resolve\"\nLUT_1D_SIZE 9\nLUT_1D_INPUT_RANGE 0 4\nLUT_3D_SIZE 5\n"
            "LUT_3D_INPUT_RANGE 0 1\n" + shaper + three)
    (tmp_path / "r.cube").write_text(text)
    lut = read_cube(tmp_path / "r.cube")
    assert lut.kind == "3d+shaper" and lut.title == "resolve"
    x = np.array([[0.0, 1.0, 2.0], [4.0, 3.0, 0.5]], np.float32)
    assert np.abs(apply_table(x, lut) - x / 4).max() < 1e-5
    # a 3D cube with DOMAIN_MAX 2
    (tmp_path / "d.cube").write_text("LUT_3D_SIZE 5\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 2 2 2\n"
                                     + three)
    lut = read_cube(tmp_path / "d.cube")
    assert np.abs(apply_table(x[:1], lut) - x[:1] / 2).max() < 1e-5


@pytest.mark.parametrize("text, line, what", [
    ("LUT_3D_SIZE 2\n0 0 0\n1 0 0\n0 1\n", 4, "expected 3 numbers, found 2"),
    ("LUT_3D_SIZE 2\n0 0 0\n1 0 x\n", 3, "must be numbers"),
    ("# c\nLUT_3D_SIZE 2\n0 0 0\n1 0 0\n", 4, "ends after 2 of 8"),
    ("LUT_3D_SIZE 100000\n", 1, "outside 2..256"),
    ("LUT_3D_SIZE two\n", 1, "one whole number"),
    ("0 0 0\n", 1, "before LUT_1D_SIZE"),
    ("LUT_1D_SIZE 2\n0 0 0\n1 1 1\n1 1 1\n", 4, "more table lines"),
    ("LUT_1D_SIZE 2\nDOMAIN_MIN 0 0\n", 2, "DOMAIN_MIN needs 3 numbers"),
    ("LUT_1D_SIZE 2\n0 0 0\nDOMAIN_MAX 1 1 1\n1 1 1\n", 3, "after the table data"),
    ("LUT_1D_SIZE 2\n0 0 0\nnan 1 1\n", 3, "not finite"),
])
def test_malformed_cube_one_clear_line(tmp_path, text, line, what):
    p = tmp_path / "bad.cube"
    p.write_text(text)
    with pytest.raises(InputError) as e:
        read_cube(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and f"line {line}:" in msg and what in msg


def test_other_bad_lut_files(tmp_path):
    (tmp_path / "b.cube").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    with pytest.raises(InputError, match="binary"):
        read_cube(tmp_path / "b.cube")
    cv2.imwrite(str(tmp_path / "r.png"), np.zeros((100, 120, 3), np.uint8))
    with pytest.raises(InputError, match="not a HaldCLUT"):
        load_lut(tmp_path / "r.png")
    with pytest.raises(InputError, match="not found"):
        load_lut(tmp_path / "missing.cube")
    with pytest.raises(InputError, match="unknown LUT type"):
        load_lut(tmp_path / "x.3dl")


def test_strength_and_declared_space():
    rng = np.random.default_rng(2)
    x = rng.uniform(0.05, 0.9, (16, 16, 3)).astype(np.float32)
    ident = Lut(identity_grid(17))
    for sp in ("srgb", "p3", "rec2020-linear"):
        assert np.abs(apply_lut(x, ident, 1.0, lut_space=sp) - x).max() < 2e-4
    inv = bake(lambda v: 1 - v, 17, lut_space="srgb-linear")
    full = apply_lut(x, inv, 1.0, lut_space="srgb-linear")
    half = apply_lut(x, inv, 0.5, lut_space="srgb-linear")
    assert np.abs(full - (1 - x)).max() < 1e-5
    assert np.abs(half - 0.5).max() < 1e-5
    assert np.array_equal(apply_lut(x, inv, 0.0), x)


def _kodak_crop(name="kodim23.png"):
    p = KODAK / name
    if not p.exists():
        pytest.skip(f"Kodak test data not found at {p}")
    d = read_srgb_png(p)
    return np.ascontiguousarray(d[128:384, 192:576])


@pytest.mark.parametrize("style", ["vivid", "bw-hc", "sepia"])
def test_style_exported_as_cube_matches_direct(tmp_path, style):
    x = _kodak_crop()
    write_cube(tmp_path / "s.cube", bake(lambda v: apply_style(v, style), 33))
    via_lut = apply_lut(x, read_cube(tmp_path / "s.cube"))
    direct = apply_style(x, style)
    assert _de2000(via_lut, direct).mean() < 0.5


@pytest.mark.skipif(shutil.which("ffmpeg") is None,
                    reason="ffmpeg not installed (the Makefile's test setup installs it)")
def test_ffmpeg_lut3d_interop(tmp_path):
    x = _kodak_crop("kodim07.png")
    src = np.round(encode(x, "srgb") * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), src[..., ::-1])
    lut = bake(lambda v: apply_style(v, "vivid"), 33, title="oneinch vivid")
    (tmp_path / "v.cube").write_text(cube_text(lut))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "in.png"), "-vf",
                    f"lut3d=file={tmp_path / 'v.cube'}:interp=tetrahedral", "-pix_fmt", "rgb24",
                    str(tmp_path / "out.png")], check=True, timeout=60)
    theirs = read_srgb_png(tmp_path / "out.png")
    ours = apply_lut(decode(src.astype(np.float32) / 255, "srgb"), read_cube(tmp_path / "v.cube"))
    assert theirs.shape == ours.shape
    assert _de2000(theirs, ours).mean() < 1.0
    # and the LUT really did something (a test that can fail)
    assert _de2000(theirs, x).mean() > 2.0


def test_hald_image_is_the_identity_layout():
    img = hald_image(Lut(identity_grid(5)), 2)  # level 2: 8x8 px, 4 steps
    flat = img.reshape(-1, 3)
    i = 1 + 4 * 2 + 16 * 3  # r step 1, g step 2, b step 3
    assert np.allclose(flat[i], [1 / 3, 2 / 3, 1.0], atol=1e-6)


@pytest.mark.parametrize("size", ["\u00b2", "\u0663", "9" * 5000, "+3", "3.0"])
def test_cube_size_must_be_ascii_digits(tmp_path, size):
    """A size keyword that str.isdigit() accepts but int() refuses (superscript two, Arabic-Indic
    digits) or a huge digit string is one clear InputError naming the file and the line, not a
    ValueError (an internal error in the CLI)."""
    p = tmp_path / "sup.cube"
    p.write_text(f"# a comment\nLUT_3D_SIZE {size}\n0 0 0\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_cube(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and "line 2:" in msg and "LUT_3D_SIZE" in msg
    assert len(msg) < 200 + len(str(p))  # the 5000 digits are not echoed back


def test_cli_develop_with_bad_cube_size_exits_2(tmp_path):
    from typer.testing import CliRunner

    from oneinch.cli import app

    p = tmp_path / "sup.cube"
    p.write_text("LUT_3D_SIZE \u00b2\n", encoding="utf-8")
    raw = (Path(__file__).resolve().parents[2]
           / "shared/data/dng/decodable/lg_g4_h815_linearraw_lossy_1mp.dng")
    if not raw.exists():
        pytest.skip(f"sample DNG not found at {raw}")
    res = CliRunner().invoke(app, ["develop", str(raw), "--lut", str(p),
                                   "-o", str(tmp_path / "o.jpg")])
    assert res.exit_code == 2, res.output
    assert "internal error" not in res.output and "sup.cube" in res.output



def _identity_rows(n):
    ramp = np.linspace(0, 1, n)
    return "".join(f"{r:.6f} {g:.6f} {b:.6f}\n" for b in ramp for g in ramp for r in ramp)


@pytest.mark.parametrize("head", ["\ufeffLUT_3D_SIZE 2\n", "LUT_3D_SIZE\t2\n",
                                  '\ufeffTITLE\t"tabbed"\nLUT_3D_SIZE\t2\n',
                                  "TITLE\t\"tabbed\"\nDOMAIN_MIN\t0 0 0\nLUT_3D_SIZE 2\n"])
def test_cube_bom_and_tab_after_keyword(tmp_path, head):
    """Adobe Cube LUT Specification 1.0: keywords and values are separated by whitespace (a tab
    is whitespace), and files saved by Windows editors start with a UTF-8 byte-order mark."""
    p = tmp_path / "ok.cube"
    p.write_bytes((head + _identity_rows(2)).encode("utf-8"))
    lut = read_cube(p)
    x = _colours()
    assert lut.size == 2 and np.abs(apply_table(x, lut) - x).max() < 1e-5
    if "TITLE" in head:
        assert lut.title == "tabbed"


@pytest.mark.parametrize("writer", ["tifffile", "opencv"])
def test_float_tiff_hald(tmp_path, writer):
    """A float32 RGB TIFF HaldCLUT (as written by tifffile or OpenCV) loads: Pillow cannot read
    such TIFF headers, so the size check must not depend on it."""
    import tifffile

    img = hald_image(Lut(identity_grid(17)), 4)  # 64 x 64 px, float32, 16 steps per axis
    p = tmp_path / "id.tif"
    if writer == "tifffile":
        tifffile.imwrite(p, img, photometric="rgb")
    else:
        assert cv2.imwrite(str(p), np.ascontiguousarray(img[..., ::-1]))
    lut = read_image_lut(p)
    x = _colours()
    assert lut.size == 16 and np.abs(apply_table(x, lut) - x).max() < 1e-5
    # a float TIFF that is not a HaldCLUT is still refused by its size, naming the file
    tifffile.imwrite(tmp_path / "r.tif", np.zeros((10, 12, 3), np.float32), photometric="rgb")
    with pytest.raises(InputError, match=r"r\.tif.*not a HaldCLUT"):
        read_image_lut(tmp_path / "r.tif")
    (tmp_path / "junk.tif").write_bytes(b"II*\0garbage")
    with pytest.raises(InputError, match=r"junk\.tif"):
        read_image_lut(tmp_path / "junk.tif")


def test_large_cube_memory_is_bounded(tmp_path):
    """Reading a LUT_3D_SIZE 65 .cube (7 MB of text, a 3.3 MB float32 table) must not hold a
    Python object per number: traced peak memory stays within 3 tables + 16 MB of parsing
    buffers (before the bulk parser: 87 MB; size 96: 281 MB for a 10 MB table)."""
    import tracemalloc

    n = 65
    rng = np.random.default_rng(7)
    table = rng.uniform(0, 1, (n, n, n, 3)).astype(np.float32)
    p = tmp_path / "big.cube"
    with open(p, "w") as f:
        f.write(f'TITLE "big"\n# a comment\nLUT_3D_SIZE {n}\n')
        np.savetxt(f, table.transpose(2, 1, 0, 3).reshape(-1, 3), fmt="%.6f")
    read_cube(tmp_path / "big.cube")  # warm up imports outside the measurement
    tracemalloc.start()
    try:
        lut = read_cube(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.abs(lut.table - table).max() < 1e-6
    assert peak < 3 * table.nbytes + 16 * 2**20, f"peak {peak / 2**20:.0f} MB"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_cube_line_endings_and_comments_inside_data(tmp_path, newline):
    """CRLF and CR-only files, blank and comment lines between rows, and a file without a final
    newline read the same table."""
    rows = _identity_rows(3).splitlines()
    text = newline.join(["# head", "LUT_3D_SIZE 3", "", *rows[:10], "# mid", "  ", *rows[10:]])
    p = tmp_path / "e.cube"
    p.write_bytes(text.encode())
    x = _colours()
    assert np.abs(apply_table(x, read_cube(p)) - x).max() < 1e-5


@pytest.mark.parametrize("bad, what", [("0 0 0 0", "expected 3 numbers, found 4"),
                                       ("0 0", "expected 3 numbers, found 2"),
                                       ("0 1.5.3 0", "must be numbers"),
                                       ("0 1e999 0", "not finite"),
                                       ("0 inf 0", "not finite"),
                                       ("0 0x1p3 0", "must be numbers"),
                                       ("0 0 0 # c", "expected 3 numbers"),
                                       ("TITLE \"late\"", "after the table data")])
def test_cube_errors_deep_in_a_large_table(tmp_path, bad, what):
    """Errors found by the bulk parser name the same line as the line-by-line checks."""
    n = 33
    rows = _identity_rows(n).splitlines()
    k = 20000
    rows[k] = bad
    p = tmp_path / "bad.cube"
    p.write_text("LUT_3D_SIZE 33\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as e:
        read_cube(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and f"line {k + 2}:" in msg and what in msg


def test_cube_too_many_rows_and_long_line(tmp_path):
    rows = _identity_rows(33)
    p = tmp_path / "more.cube"
    p.write_text("LUT_3D_SIZE 33\n" + rows + "0 0 0\n")
    with pytest.raises(InputError, match=rf"line {33**3 + 2}: more table lines"):
        read_cube(p)
    p = tmp_path / "long.cube"
    p.write_text("LUT_3D_SIZE 2\n" + "0 " * 3_000_000 + "\n")
    with pytest.raises(InputError, match=r"long\.cube: line 2:"):
        read_cube(p)
