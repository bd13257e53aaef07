"""Frames: geometry of every layout, OCR of the text, EXIF/ICC through frame_file, templates,
makes, fields, logos, fonts and the command."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, JpegImagePlugin, TiffImagePlugin

from oneinch.errors import InputError, OptionError, UnsupportedError
from oneinch.frame import (
    camera_name,
    frame_file,
    list_templates,
    load_template,
    normalise_make,
    output_path,
    render,
    render_detailed,
    shot_fields,
)
from oneinch.frame.fields import expand, format_shutter
from oneinch.frame.fonts import resolve_font
from oneinch.frame.logos import builtin_mark
from oneinch.raw.image import ShotInfo

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks" / "kodak24"
LAYOUTS = ("classic", "classic-dark", "border", "blur", "square", "text")
R = TiffImagePlugin.IFDRational

SHOT = ShotInfo(
    make="NIKON CORPORATION",
    model="NIKON Z 6",
    lens="NIKKOR Z 35mm f/1.8 S",
    focal_length=23.0,
    focal_length_35mm=23.0,
    f_number=1.9,
    exposure_time=0.01,
    iso=50,
    datetime=datetime(2023, 7, 4, 18, 31, tzinfo=timezone(timedelta(hours=8))),
)


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """A real photo (Kodak) resized, or a textured synthetic one when the data is absent."""
    src = DATA / "kodim01.png"
    if src.is_file():
        with Image.open(src) as im:
            base = im.convert("RGB")
        if (w > h) != (base.width > base.height):
            base = base.transpose(Image.Transpose.ROTATE_90)
        return base.resize((w, h), Image.Resampling.BILINEAR)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(a).resize((w, h), Image.Resampling.BILINEAR)


def _check_geometry(r, photo: Image.Image, layout: str) -> None:
    img = np.asarray(r.image).astype(int)
    H, W = img.shape[:2]
    x0, y0, x1, y1 = r.photo
    assert (x1 - x0, y1 - y0) == photo.size
    # the photo's pixels are untouched (blur: its rounded corners excepted)
    inset = 0 if layout != "blur" else round(0.012 * min(photo.size)) + 1
    got = img[y0 + inset : y1 - inset, x0 + inset : x1 - inset]
    want = np.asarray(photo).astype(int)[inset : photo.height - inset, inset : photo.width - inset]
    assert np.array_equal(got, want)
    u = min(photo.size)
    ax0, ay0, ax1, ay1 = r.text_area
    expect_h = {
        "classic": 0.11 * u,
        "classic-dark": 0.11 * u,
        "border": 0.11 * u,
        "blur": 0.12 * u,
        "square": 0.08 * max(photo.size),
        "text": 0.055 * u,
    }[layout]
    assert abs((ay1 - ay0) - expect_h) <= 1
    if layout.startswith("classic"):
        assert (W, H) == (photo.width, photo.height + round(0.11 * u))
        assert 0.10 <= (ay1 - ay0) / photo.height * (photo.height / u) <= 0.12
    if layout == "square":
        assert W == H
    # every drawn item sits inside the text area, 1 px clear of its edges and of the canvas
    assert r.items, "nothing drawn"
    texts = [t for t, _ in r.items if not t.startswith("|")]
    assert texts, "no text drawn"
    for _, (bx0, by0, bx1, by1) in r.items:
        assert ax0 + 1 <= bx0 < bx1 <= ax1 - 1 and ay0 + 1 <= by0 < by1 <= ay1 - 1
        assert 0 < bx0 and bx1 < W and by1 < H
    if layout != "blur":
        # measured ink (pixels unlike the background) lies inside the union of the item boxes
        bg = np.array(Image.new("RGB", (1, 1), r.template.colours["background"]).getpixel((0, 0)))
        area = img[ay0:ay1, ax0:ax1]
        ink = np.abs(area - bg).max(axis=2) > 24
        ys, xs = np.nonzero(ink)
        assert len(ys) > 50
        ux0 = min(b[0] for _, b in r.items) - ax0
        uy0 = min(b[1] for _, b in r.items) - ay0
        ux1 = max(b[2] for _, b in r.items) - ax0
        uy1 = max(b[3] for _, b in r.items) - ay0
        assert xs.min() >= ux0 - 1 and xs.max() <= ux1 and ys.min() >= uy0 - 1
        assert ys.max() <= uy1
        # nothing at the text area's outer edges
        assert not ink[:, 0].any() and not ink[:, -1].any() and not ink[-1, :].any()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("size", [(600, 400), (300, 450)], ids=["landscape", "portrait"])
def test_layout_geometry(layout: str, size: tuple[int, int]) -> None:
    photo = _photo(*size)
    r = render_detailed(photo, SHOT, layout)
    _check_geometry(r, photo, layout)
    assert r.image.mode == "RGB"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_orientation_6_through_frame_file(tmp_path: Path, layout: str) -> None:
    stored = _photo(480, 320)  # as the sensor stored it; orientation 6 = rotate 90° CW to view
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "NIKON CORPORATION"
    exif[ExifTags.Base.Model] = "NIKON Z 6"
    exif[ExifTags.Base.Orientation] = 6
    src = tmp_path / "o6.png"
    stored.save(src, exif=exif)
    out = frame_file(src, tmp_path / f"o6_{layout}.png", layout)
    upright = stored.transpose(Image.Transpose.ROTATE_270)
    assert upright.size == (320, 480)
    r = render_detailed(upright, SHOT, layout)
    _check_geometry(r, upright, layout)
    with Image.open(out) as im:
        assert im.size == r.image.size  # portrait canvas, not the stored landscape
        x0, y0, x1, y1 = r.photo
        inset = 8
        got = np.asarray(im.convert("RGB"))[y0 + inset : y1 - inset, x0 + inset : x1 - inset]
        want = np.asarray(upright)[inset:-inset, inset:-inset]
        assert np.array_equal(got, want)
        assert im.getexif()[ExifTags.Base.Orientation] == 1


def test_long_text_is_scaled_not_clipped() -> None:
    photo = _photo(200, 300)
    long_lens = "A VERY LONG LENS NAME 24-105mm F4-7.1 IS STM MACRO ASPH " * 2
    for layout in LAYOUTS:
        r = render_detailed(photo, SHOT, layout, overrides={"lens": long_lens, "location": ""})
        _check_geometry(r, photo, layout)


def test_sizes_scale_with_the_image() -> None:
    small = render_detailed(_photo(600, 450), SHOT, "classic")
    big = render_detailed(_photo(2400, 1800), SHOT, "classic")
    for (ts, bs), (tb, bb) in zip(small.items, big.items, strict=True):
        assert ts == tb
        # boxes scale ×4 within font-size rounding
        if ts != "|divider":  # 1 px minimum
            assert (bb[2] - bb[0]) / (bs[2] - bs[0]) == pytest.approx(4, rel=0.12)
        assert bb[0] / 4 == pytest.approx(bs[0], abs=3)


def _ocr(img: Image.Image) -> str:
    exe = shutil.which("tesseract")
    if exe is None:
        pytest.skip("tesseract not installed (Debian: apt-get install -y tesseract-ocr)")
    # tesseract reads dark text on light best: grey, inverted when the background is dark, 2x
    g = img.convert("L")
    if np.asarray(g).mean() < 128:
        g = Image.eval(g, lambda v: 255 - v)
    g = g.resize((g.width * 2, g.height * 2), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    g.save(buf, format="PNG")
    out = subprocess.run(
        [exe, "stdin", "stdout", "--psm", "11"], input=buf.getvalue(), capture_output=True,
        timeout=60, check=True,
    )  # fmt: skip
    return out.stdout.decode("utf-8", "replace")


def _canon(s: str) -> str:
    """Case, spaces and OCR-confusable glyphs folded (O/0, S/5, I/l/1, Z/2)."""
    s = re.sub(r"\s+", "", s.lower())
    return s.translate(str.maketrans({"o": "0", "s": "5", "i": "1", "l": "1", "|": "1", "z": "2"}))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_ocr_reads_model_and_exposure(layout: str) -> None:
    r = render_detailed(_photo(1536, 1024), SHOT, layout)
    text = _canon(_ocr(r.image.crop(r.text_area)))
    assert _canon("Nikon Z 6") in text
    assert _canon("23mm f/1.9 1/100s ISO50") in text


# ---------------------------------------------------------------------------- files


def _jpeg_with_exif(path: Path, orientation: int = 1) -> tuple[bytes, bytes]:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "LEICA CAMERA AG"
    exif[ExifTags.Base.Model] = "LEICA M11"
    exif[ExifTags.Base.Orientation] = orientation
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.ExposureTime] = R(1, 250)
    sub[ExifTags.Base.FNumber] = R(14, 10)
    sub[ExifTags.Base.ISOSpeedRatings] = 64
    sub[ExifTags.Base.FocalLength] = R(35, 1)
    sub[ExifTags.Base.DateTimeOriginal] = "2023:07:04 18:31:05"
    sub[ExifTags.Base.LensModel] = "SUMMILUX-M 1:1.4/35 ASPH."
    _photo(400, 300).save(path, quality=92, exif=exif, icc_profile=icc)
    return exif.tobytes(), icc


def test_frame_file_keeps_exif_icc_and_input(tmp_path: Path) -> None:
    src = tmp_path / "in.jpg"
    _, icc = _jpeg_with_exif(src, orientation=6)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    dst = frame_file(src, output_path(src, tmp_path, "classic"), "classic")
    assert dst.name == "in_classic.jpg"
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    with Image.open(dst) as im:
        assert im.format == "JPEG" and im.size == (300, 400 + 33)
        assert im.info["icc_profile"] == icc
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
        exif = im.getexif()
        assert exif[ExifTags.Base.Model] == "LEICA M11"
        assert exif[ExifTags.Base.Orientation] == 1
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        assert float(sub[ExifTags.Base.ExposureTime]) == pytest.approx(1 / 250)
        assert sub[ExifTags.Base.LensModel] == "SUMMILUX-M 1:1.4/35 ASPH."
        q_out = im.quantization
    ref = io.BytesIO()
    Image.new("RGB", (8, 8)).save(ref, format="JPEG", quality=95, subsampling=0)
    with Image.open(ref) as r95:
        assert q_out == r95.quantization  # the q95 tables
    assert not list(tmp_path.glob("*.part"))


def test_frame_file_heic_and_tiff(tmp_path: Path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    src = tmp_path / "in.heic"
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Xiaomi"
    exif[ExifTags.Base.Model] = "2203121C"
    _photo(320, 240).save(src, format="HEIF", quality=90, exif=exif.tobytes())
    for suffix in (".heic", ".tif", ".png"):
        dst = frame_file(src, tmp_path / f"out{suffix}", "border")
        with Image.open(dst) as im:
            assert im.getexif()[ExifTags.Base.Model] == "2203121C"
            assert im.width == 320 + 2 * round(0.035 * 240)


def test_frame_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.jpg"):
        frame_file(tmp_path / "missing.jpg", tmp_path / "o.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"bad\.jpg"):
        frame_file(bad, tmp_path / "o.jpg")
    src = tmp_path / "in.jpg"
    _jpeg_with_exif(src)
    with pytest.raises(OptionError):
        frame_file(src, tmp_path / "o.bmpx")
    with pytest.raises(OptionError, match="overwrite"):
        frame_file(src, src)
    with pytest.raises(OptionError, match="unknown frame layout"):
        frame_file(src, tmp_path / "o.jpg", "nope")
    assert not (tmp_path / "o.jpg").exists()


# ---------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("make", "brand"),
    [
        ("LEICA CAMERA AG", "Leica"),
        ("NIKON CORPORATION", "Nikon"),
        ("Xiaomi", "Xiaomi"),
        ("FUJIFILM", "Fujifilm"),
        ("OLYMPUS IMAGING CORP.  ", "Olympus"),
        ("OM Digital Solutions", "OM System"),
        ("RICOH IMAGING COMPANY, LTD.", "Ricoh"),
        ("Canon", "Canon"),
        ("SONY", "Sony"),
        ("ACME OPTICAL CO., LTD.", "Acme"),
        ("", None),
    ],
)
def test_normalise_make(make: str, brand: str | None) -> None:
    assert normalise_make(make) == brand


def test_camera_names() -> None:
    assert camera_name("NIKON CORPORATION", "NIKON Z 6") == "Nikon Z 6"
    assert camera_name("LEICA CAMERA AG", "LEICA M11") == "Leica M11"
    assert camera_name("Canon", "Canon EOS R5") == "Canon EOS R5"
    assert camera_name("SONY", "ILCE-7M3") == "Sony ILCE-7M3"
    assert camera_name(None, "X100V") == "X100V"


def test_fields_and_overrides() -> None:
    f = shot_fields(SHOT)
    assert f["exposure"] == "23mm f/1.9 1/100s ISO50" and f["camera"] == "Nikon Z 6"
    assert f["datetime"] == "2023.07.04 18:31"
    f = shot_fields(SHOT, {"lens": "Summicron 28", "aperture": "f/2"})
    assert f["lens"] == "Summicron 28" and f["exposure"] == "23mm f/2 1/100s ISO50"
    eq = ShotInfo(focal_length=23, focal_length_35mm=35, f_number=2.8)
    assert shot_fields(eq)["focal"] == "35mm"
    assert shot_fields(eq, focal="actual")["focal"] == "23mm"
    assert shot_fields(eq, focal="both")["focal"] == "23mm (35mm eq.)"
    assert [format_shutter(t) for t in (1 / 8000, 1 / 3, 0.5, 2.0, 1.3)] == [
        "1/8000s", "0.3s", "0.5s", "2s", "1.3s",
    ]  # fmt: skip
    with pytest.raises(OptionError, match="unknown frame field"):
        shot_fields(SHOT, {"lense": "x"})
    assert expand("{location|lens}", {"location": "", "lens": "L"}) == "L"
    assert expand("{location}", {"location": ""}) == ""
    r = render_detailed(
        _photo(600, 400), ShotInfo(model="X"), "classic", overrides={"lens": "S 28"}
    )
    assert r.texts["right_secondary"] == "S 28" and r.texts["right_primary"] == ""
    _check_geometry(r, _photo(600, 400), "classic")


def test_location_field() -> None:
    s = ShotInfo(gps=(-33.86, 151.21, 5.0))
    assert shot_fields(s)["location"] == "33°51'36\"S 151°12'36\"E"


# ---------------------------------------------------------------------------- templates, logos


def test_builtin_templates_and_errors(tmp_path: Path) -> None:
    assert set(LAYOUTS) <= set(list_templates())
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "banner"\n[geometry]\nbanerr = 0.1\n')
    with pytest.raises(OptionError, match="banerr"):
        load_template(bad)
    bad.write_text('kind = "poster"\n')
    with pytest.raises(OptionError, match="kind"):
        load_template(bad)
    bad.write_text("kind = ")
    with pytest.raises(InputError, match="TOML"):
        load_template(bad)


def test_user_template_logo_and_config_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ONEINCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "oneinch" / "frames").mkdir(parents=True)
    (tmp_path / "oneinch" / "logos").mkdir(parents=True)
    (tmp_path / "oneinch" / "frames" / "mine.toml").write_text(
        'kind = "banner"\ndescription = "mine"\n[geometry]\nbanner = 0.2\n'
        '[colours]\nbackground = "#000080"\n[slots]\nleft_primary = "{lens}"\n'
    )
    logo = Image.new("RGBA", (60, 20), (0, 255, 0, 255))
    logo.save(tmp_path / "oneinch" / "logos" / "nikon.png")
    assert list_templates()["mine"] == "mine"
    photo = _photo(600, 400)
    r = render_detailed(photo, SHOT, "mine")
    assert r.image.height == 400 + 80 and r.texts["left_primary"] == SHOT.lens
    banner = np.asarray(r.image)[400:].astype(int)
    assert (banner[..., 2] == 128).mean() > 0.5  # navy background
    green = (banner[..., 1] > 200) & (banner[..., 0] < 60) & (banner[..., 2] < 60)
    lx0, ly0, lx1, ly1 = dict((k, b) for k, b in r.items)["|logo"]
    assert green.sum() > 0.8 * (lx1 - lx0) * (ly1 - ly0)  # the user's logo for Nikon is used
    # a make without a user logo gets the built-in mark instead
    r2 = render_detailed(photo, ShotInfo(make="Canon", model="EOS R5"), "mine")
    assert "|logo" in dict(r2.items)
    by_path = render_detailed(photo, SHOT, template=str(tmp_path / "oneinch/frames/mine.toml"))
    assert by_path.image.size == r.image.size


def test_svg_logo(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ONEINCH_CONFIG", str(tmp_path))
    (tmp_path / "logos").mkdir()
    (tmp_path / "logos" / "leica.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
        '<rect width="40" height="20" fill="#ff0000"/></svg>'
    )
    shot = ShotInfo(make="LEICA CAMERA AG", model="LEICA M11")
    try:
        import resvg_py  # noqa: F401
    except ImportError:
        try:
            import cairosvg  # noqa: F401
        except (ImportError, OSError):
            with pytest.raises(UnsupportedError, match="resvg-py"):
                render(_photo(600, 400), shot, "classic")
            return
    r = render_detailed(_photo(600, 400), shot, "classic")
    lx0, ly0, lx1, ly1 = dict(r.items)["|logo"]
    patch = np.asarray(r.image)[ly0:ly1, lx0:lx1].astype(int)
    assert (lx1 - lx0) == pytest.approx(2 * (ly1 - ly0), abs=2)
    assert ((patch[..., 0] > 200) & (patch[..., 1] < 60)).mean() > 0.8


def test_builtin_mark_and_fonts() -> None:
    m = np.asarray(builtin_mark(64, "#102030"))
    assert m.shape == (64, 64, 4)
    alpha = m[..., 3] > 128
    assert 0.25 < alpha.mean() < 0.75 and not alpha[32, 32]  # a ring with an open pupil
    assert (m[alpha][:, :3] == (0x10, 0x20, 0x30)).all()
    assert resolve_font("Roboto:bold").suffix == ".ttf" or resolve_font("DejaVu Sans:bold")
    with pytest.raises(OptionError, match="no font found"):
        resolve_font("No Such Font:bold")


def test_array_input() -> None:
    a = np.asarray(_photo(300, 200)).astype(np.float32) / 255.0
    out = render(a, SHOT, "text")
    assert out.size[0] == 300 and np.array_equal(
        np.asarray(out)[:200], np.asarray(_photo(300, 200))
    )
    assert a.dtype == np.float32  # input untouched


def test_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from oneinch.commands.frame import frame_app, parse_sets

    assert parse_sets(['lens="Summicron 28"', "iso=100"]) == {"lens": "Summicron 28", "iso": "100"}
    with pytest.raises(OptionError):
        parse_sets(["nokey"])
    src = tmp_path / "a.jpg"
    _jpeg_with_exif(src)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        frame_app, [str(src), "-o", str(out), "--layout", "square", "--set", "lens=Summicron 28"]
    )
    assert res.exit_code == 0, res.output
    with Image.open(out / "a_square.jpg") as im:
        assert im.width == im.height
    res = CliRunner().invoke(frame_app, [str(tmp_path / "nope.jpg"), "-o", str(out)])
    assert res.exit_code == 2


def test_command_output_file_or_folder(tmp_path: Path) -> None:
    """`oneinch frame a.jpg -o framed.jpg` writes that file, as `develop -o` does (it made a
    folder named framed.jpg); a name without an image extension, a trailing separator or
    several inputs name a folder, made when missing; one that cannot be made (a file is in
    the way) is one error line and exit 2 (it was an internal error)."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from oneinch.commands.frame import frame_app

    src = tmp_path / "a.jpg"
    _jpeg_with_exif(src)
    res = CliRunner().invoke(frame_app, [str(src), "-o", str(tmp_path / "framed.jpg")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "framed.jpg").is_file()
    with Image.open(tmp_path / "framed.jpg") as im:
        assert im.format == "JPEG" and im.height > 0
    res = CliRunner().invoke(frame_app, [str(src), "-o", str(tmp_path / "dir.png") + "/"])
    assert res.exit_code == 0 and (tmp_path / "dir.png" / "a_classic.jpg").is_file()
    res = CliRunner().invoke(frame_app, [str(src), "-o", str(tmp_path / "plain")])
    assert res.exit_code == 0 and (tmp_path / "plain" / "a_classic.jpg").is_file()
    res = subprocess.run([sys.executable, "-m", "oneinch", "frame", str(src), "-o",
                          str(src) + "/"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "a.jpg" in res.stderr
