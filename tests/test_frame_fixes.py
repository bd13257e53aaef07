"""Frame regressions: TIFF inputs/outputs carry only EXIF metadata, output suffixes, truncated
TIFFs, small photos, logo bombs, missing fonts and 16-bit framed develops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import ExifTags, Image

from conftest import KODAK, load_rgb8
from oneinch.errors import InputError
from oneinch.frame import frame_file, render_detailed
from oneinch.output.encode import write
from oneinch.photo import Photo
from oneinch.raw.image import ShotInfo
from oneinch.recipe import Output

SHOT = ShotInfo(make="NIKON CORPORATION", model="NIKON Z 6", exposure_time=1 / 250,
                f_number=2.8, iso=200.0, focal_length=35.0)
SRC = Path(__file__).resolve().parents[1] / "src"
LAYOUTS = ("classic", "classic-dark", "border", "blur", "square", "text")
# TIFF tags that describe a file's pixel layout: never EXIF metadata to carry over
STRUCTURAL = {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338,
              339}


def _rgb(h: int = 150, w: int = 220) -> np.ndarray:
    src = KODAK / "kodim05.png"
    if src.is_file():
        return load_rgb8(src)[:h, :w].astype(np.float32) / 255.0
    rng = np.random.default_rng(1)
    return rng.random((h, w, 3), dtype=np.float32)


def _input(tmp: Path, kind: str) -> Path:
    fmt, bits = {"jpg": ("jpeg", 8), "png": ("png", 8), "tif8": ("tiff", 8),
                 "tif16": ("tiff", 16)}[kind]
    suffix = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif"}[fmt]
    return write(Photo(rgb=_rgb(), shot=SHOT), tmp / f"in_{kind}{suffix}",
                 Output(format=fmt, bits=bits, quality=95))


@pytest.mark.parametrize("kind", ["jpg", "png", "tif8", "tif16"])
@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg", ".webp"])
def test_frame_file_any_input_to_any_output(tmp_path: Path, kind: str, suffix: str) -> None:
    """A TIFF input's whole first IFD (width, height, bits, strips) was passed on as EXIF: the
    framed TIFF kept the input's size and bit depth over the framed 8-bit data."""
    src = _input(tmp_path, kind)
    with Image.open(src) as im:
        photo = np.asarray(im.convert("RGB"))
    want = render_detailed(photo, SHOT, "classic")
    dst = frame_file(src, tmp_path / f"out{suffix}", "classic")
    with Image.open(dst) as im:
        assert im.size == want.image.size
        got = np.asarray(im.convert("RGB"))
        exif = im.getexif()
        if suffix == ".tif":
            assert im.tag_v2[258] == (8, 8, 8)
        else:
            assert not STRUCTURAL & set(exif)
        assert exif[ExifTags.Base.Model] == "NIKON Z 6"
        assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ISOSpeedRatings] == 200
    if suffix in (".tif", ".png"):  # lossless: the very pixels
        assert np.array_equal(got, np.asarray(want.image))
    else:
        assert np.abs(got.astype(int) - np.asarray(want.image).astype(int)).mean() < 4
    if suffix == ".tif":
        assert np.array_equal(tifffile.imread(dst), np.asarray(want.image))


# ---------------------------------------------------------------------------- -o FILE or FOLDER


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ONEINCH_ZYGOTE": "0",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "oneinch", "frame", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def _invoke(*args: str):
    from typer.testing import CliRunner

    from oneinch.commands.frame import frame_app

    return CliRunner().invoke(frame_app, list(args))


@pytest.mark.parametrize("suffix", [".avif", ".jxl", ".webp", ".heic", ".png", ".tif"])
def test_command_writes_the_format_of_the_output_suffix(tmp_path: Path, suffix: str) -> None:
    """`-o x.avif` (and .jxl, .webp) made a folder x.avif holding a JPEG."""
    from oneinch.output.modern import read_modern

    src = _input(tmp_path, "jpg")
    dst = tmp_path / f"x{suffix}"
    res = _invoke(str(src), "-o", str(dst))
    assert res.exit_code == 0, res.output
    assert dst.is_file()
    d = read_modern(dst) if suffix in (".avif", ".jxl") else None
    if d is not None:
        assert d.rgb.shape[1] == 220 and d.rgb.shape[0] > 150
    else:
        import pillow_heif

        pillow_heif.register_heif_opener()
        with Image.open(dst) as im:
            assert im.format == {".webp": "WEBP", ".heic": "HEIF", ".png": "PNG",
                                 ".tif": "TIFF"}[suffix]
            assert im.width == 220 and im.height > 150


@pytest.mark.parametrize("name", ["x.txt", "x.gif", "x.bmpx"])
def test_command_unknown_output_suffix_is_an_error(tmp_path: Path, name: str) -> None:
    src = _input(tmp_path, "jpg")
    res = _cli(str(src), "-o", str(tmp_path / name))
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and name in res.stderr, res.stderr
    assert not (tmp_path / name).exists()


def test_command_several_inputs_and_an_output_file(tmp_path: Path) -> None:
    """`frame a.jpg b.png -o f7.jpg` made a folder named f7.jpg."""
    a, b = _input(tmp_path, "jpg"), _input(tmp_path, "png")
    res = _cli(str(a), str(b), "-o", str(tmp_path / "f7.jpg"))
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "f7.jpg" in res.stderr, res.stderr
    assert not (tmp_path / "f7.jpg").exists()
    res = _invoke(str(a), str(b), "-o", str(tmp_path / "f7.jpg") + "/")  # a folder: asked for
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "f7.jpg").iterdir()) == [
        "in_jpg_classic.jpg", "in_png_classic.png"]
    (tmp_path / "made").mkdir()
    res = _invoke(str(a), str(b), "-o", str(tmp_path / "made"))  # an existing folder
    assert res.exit_code == 0 and len(list((tmp_path / "made").iterdir())) == 2


# ---------------------------------------------------------------------------- unreadable inputs


def test_truncated_tiff_is_one_line_not_a_raw_file(tmp_path: Path) -> None:
    """A truncated TIFF was called a raw file, after a libtiff line and a Pillow warning."""
    cut = []
    for kind in ("tif8", "tif16"):
        whole = _input(tmp_path, kind).read_bytes()
        for n in (8, 100, 300, 1000, 3000, len(whole) // 2, len(whole) * 9 // 10):
            p = tmp_path / f"t_{kind}_{n}.tif"
            p.write_bytes(whole[:n])
            cut.append(p)
    # whole, but its deflate strips garbled: libtiff prints its own error line to stderr
    z = tmp_path / "garbled.tif"
    Image.fromarray((_rgb() * 255).astype(np.uint8)).save(z, compression="tiff_adobe_deflate")
    with Image.open(z) as im:
        start, count = im.tag_v2[273][0], im.tag_v2[279][0]
    b = bytearray(z.read_bytes())
    for i in range(start + 2, start + count, 7):
        b[i] = (b[i] * 31 + 7) & 255
    z.write_bytes(bytes(b))
    cut.append(z)
    res = _cli(*map(str, cut), "-o", str(tmp_path / "out") + "/")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == len(cut) + 1, res.stderr  # one per file, and the count
    for p in cut:
        mine = [line for line in lines if line.startswith(f"oneinch: error: {p}: ")]
        assert len(mine) == 1, res.stderr
        assert "raw" not in mine[0], mine[0]
        assert "truncated" in mine[0] or "cannot read" in mine[0], mine[0]
    assert not list((tmp_path / "out").glob("*"))


def test_raw_tiff_is_still_called_raw(tmp_path: Path) -> None:
    dng = SRC.parent / "samples" / "oneinch_demo.dng"
    if not dng.is_file():
        pytest.skip("no sample DNG")
    renamed = tmp_path / "shot.tif"
    renamed.write_bytes(dng.read_bytes())
    for p in (dng, renamed):
        with pytest.raises(InputError, match="a raw file"):
            frame_file(p, tmp_path / "o.jpg")
    assert not (tmp_path / "o.jpg").exists()


# ---------------------------------------------------------------------------- small photos

FULL_SHOT = ShotInfo(make="NIKON CORPORATION", model="NIKON Z 6", lens="NIKKOR Z 35mm f/1.8 S",
                     exposure_time=1 / 100, f_number=1.8, iso=100.0, focal_length=35.0)
SMALL_SIZES = [(w, h) for w in (3, 10, 30, 50, 64, 100, 160, 400)
               for h in (3, 12, 30, 60, 79, 100, 267)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_small_photos_keep_their_pixels_and_the_text_inside(layout: str) -> None:
    """At a short side below ~80 px the fonts' minimum size overflowed the text area: text
    over the photo (its pixels changed by up to 42 levels) and past the canvas."""
    rng = np.random.default_rng(3)
    for w, h in SMALL_SIZES:
        a = rng.random((h, w, 3), dtype=np.float32)
        want = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
        r = render_detailed(a, FULL_SHOT, layout)
        img = np.asarray(r.image)
        H, W = img.shape[:2]
        x0, y0, x1, y1 = r.photo
        assert (x1 - x0, y1 - y0) == (w, h)
        inset = 0 if layout != "blur" else round(0.012 * min(w, h)) + 1
        assert np.array_equal(img[y0 + inset:y1 - inset, x0 + inset:x1 - inset],
                              want[inset:h - inset, inset:w - inset]), (w, h)
        ax0, ay0, ax1, ay1 = r.text_area
        assert 0 <= ax0 < ax1 <= W and 0 <= ay0 < ay1 <= H, (w, h)
        assert ay0 >= y1 or ax0 >= x1 or ax1 <= x0, (w, h)  # the area is off the photo
        for name, (bx0, by0, bx1, by1) in r.items:
            assert ax0 <= bx0 <= bx1 <= ax1 and ay0 <= by0 <= by1 <= ay1, (w, h, name, r.items)


# ---------------------------------------------------------------------------- logos and fonts


def _png_declaring(path: Path, w: int, h: int) -> Path:
    """A ~100-byte PNG whose header declares w x h pixels (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [30000, 12000])
def test_logo_declaring_a_huge_size_is_an_input_error(tmp_path: Path, side: int) -> None:
    """A 100-byte logo declaring 30000x30000 was a DecompressionBombError: 'internal error'."""
    logo = _png_declaring(tmp_path / "bomb.png", side, side)
    assert logo.stat().st_size < 200
    tmpl = tmp_path / "mine.toml"
    tmpl.write_text(f'kind = "banner"\nlogo = "{logo}"\n')
    with pytest.raises(InputError, match=r"bomb\.png"):
        render_detailed(_rgb(), SHOT, template=str(tmpl))
    src = _input(tmp_path, "jpg")
    res = _cli(str(src), "--template", str(tmpl), "-o", str(tmp_path / "o.jpg"))
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "bomb.png" in res.stderr, res.stderr
    assert not (tmp_path / "o.jpg").exists()


def test_a_template_font_that_resolves_nowhere_is_an_option_error(tmp_path: Path) -> None:
    """A missing font was silently replaced by Roboto (the defaults were appended to it)."""
    from oneinch.errors import OptionError
    from oneinch.frame import load_template
    from oneinch.frame.fonts import resolve_font

    (tmp_path / "adir.ttf").mkdir()
    png = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(png)
    tmpl = tmp_path / "mine.toml"
    for font in ("/nonexistent/Foo.ttf", "NoSuchFont:bold", str(tmp_path / "adir.ttf"),
                 str(png), str(tmp_path)):
        tmpl.write_text(f'kind = "banner"\n[fonts]\nprimary = "{font}"\n')
        with pytest.raises(OptionError) as e:
            render_detailed(_rgb(), SHOT, template=load_template(tmpl))
        assert font in str(e.value) and "mine.toml" in str(e.value)
    res = _cli(str(_input(tmp_path, "jpg")), "--template", str(tmpl), "-o",
               str(tmp_path / "o.jpg"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert str(tmp_path) in res.stderr and not (tmp_path / "o.jpg").exists()
    # a real font file, or a list whose later names are the user's own fallbacks, still works
    real = resolve_font("Roboto:bold")
    for spec in (f'"{real}"', f'["NoSuchFont:bold", "{real}"]'):
        tmpl.write_text(f'kind = "banner"\n[fonts]\nprimary = {spec}\n'
                        '[slots]\nleft_primary = "{camera}"\n')
        t = load_template(tmpl)
        assert t.fonts["primary"][-1] == str(real)
        r = render_detailed(_rgb(), SHOT, template=t)
        assert "Nikon Z 6" in [name for name, _ in r.items]


# ---------------------------------------------------------------------------- framed develops


@pytest.mark.parametrize("layout", ["classic", "text"])
def test_a_framed_16_bit_tiff_keeps_the_photo_at_full_precision(tmp_path: Path,
                                                                  layout: str) -> None:
    """A framed develop went through the frame's 8-bit image: a 16-bit TIFF held only 256
    distinct values."""
    from oneinch.api import develop_file
    from oneinch.recipe import Frame, Recipe

    dng = SRC.parent / "samples" / "oneinch_demo.dng"
    if not dng.is_file():
        pytest.skip("no sample DNG")
    out = Output(format="tiff", size=240)
    plain = tifffile.imread(develop_file(dng, tmp_path / "p.tif", Recipe(output=out)))
    framed = tifffile.imread(develop_file(dng, tmp_path / "f.tif",
                                          Recipe(output=out, frame=Frame(layout=layout))))
    assert plain.dtype == framed.dtype == np.uint16
    h, w = plain.shape[:2]
    assert framed.shape[1] == w and framed.shape[0] > h  # the text area below the photo
    assert len(np.unique(plain)) > 1024
    assert np.array_equal(framed[:h], plain)
