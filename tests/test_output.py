"""output/: ICC profiles vs LittleCMS, EXIF round trips, encoders, atomic writes."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, JpegImagePlugin

from oneinch.errors import OptionError, OutputError
from oneinch.isp import spaces
from oneinch.output import encode as enc
from oneinch.output.encode import encode_bytes, format_from_path, quantize, write
from oneinch.output.icc import fixed_primaries, icc_profile
from oneinch.output.metadata import exif_bytes, read_exif, shot_from_exif
from oneinch.photo import Photo
from oneinch.raw.image import ShotInfo
from oneinch.recipe import Output

SHOT = ShotInfo(
    make="Xiaomi",
    model="2203121C",
    lens="Leica Summicron 1:1.9-4.1/13-120 ASPH.",
    focal_length=8.7,
    focal_length_35mm=23,
    f_number=1.9,
    exposure_time=1 / 100,
    iso=50,
    datetime=dt.datetime(2023, 5, 4, 17, 30, 12, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    gps=(22.543096, 114.057865, 12.5),
    orientation=6,  # already applied to the pixels: must be written as 1
    artist="A. Photographer",
    copyright="(c) 2023 A. Photographer",
)


def _image(h: int = 192, w: int = 256, seed: int = 0) -> np.ndarray:
    """Photo-like test image: smooth gradients, a soft blob and mild texture, in [0, 1]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = x / w
    g = y / h
    b = 0.5 + 0.4 * np.exp(-((x - w / 2) ** 2 + (y - h / 2) ** 2) / (2 * (h / 4) ** 2))
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 1.5) - 0.5
    rgb = np.stack([r, g, b], axis=-1) + 0.05 * tex[..., None]
    return np.clip(rgb, 0, 1).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1.0 / mse)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes, bool]]:
    """(type, data, crc ok) for every chunk of a PNG stream."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        out.append((kind, body, crc == zlib.crc32(kind + body)))
        pos += 12 + n
    return out


# --- ICC ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", list(spaces.SPACES))
def test_icc_profile_structure(space: str) -> None:
    p = icc_profile(space)
    assert icc_profile(space) is p  # cached
    assert struct.unpack(">I", p[:4])[0] == len(p)
    assert p[36:40] == b"acsp" and p[8:12] == b"\x04\x40\x00\x00"
    # Profile ID = MD5 with flags, intent and the ID itself zeroed (ICC.1:2022 7.2.18)
    z = bytearray(p)
    z[44:48] = z[64:68] = b"\0\0\0\0"
    z[84:100] = b"\0" * 16
    assert hashlib.md5(bytes(z)).digest() == p[84:100]
    prof = ImageCms.ImageCmsProfile(io.BytesIO(p))
    assert spaces.SPACES[space].title in ImageCms.getProfileDescription(prof)
    assert prof.profile.version == pytest.approx(4.4)
    # colorants are the D50 columns of rgb_to_xyz_d50 (white-balanced to the PCS within 3e-4)
    m = spaces.rgb_to_xyz_d50(space)
    assert np.abs(fixed_primaries(space) / 65536 - m).max() < 3e-4
    assert (fixed_primaries(space).sum(axis=1) == [0xF6D6, 0x10000, 0xD32D]).all()
    lc = prof.profile
    cols = np.array([lc.red_colorant[0], lc.green_colorant[0], lc.blue_colorant[0]]).T
    assert np.abs(cols - m).max() < 3e-4


def _para_of(profile: bytes) -> tuple[int, list[float]]:
    (n,) = struct.unpack(">I", profile[128:132])
    for i in range(n):
        sig, off, size = struct.unpack(">4sII", profile[132 + 12 * i : 144 + 12 * i])
        if sig == b"rTRC":
            body = profile[off : off + size]
            assert body[:4] == b"para"
            (fn,) = struct.unpack(">H", body[8:10])
            k = (size - 12) // 4
            return fn, [v / 65536 for v in struct.unpack(f">{k}i", body[12 : 12 + 4 * k])]
    raise AssertionError("no rTRC")


@pytest.mark.parametrize("space", list(spaces.SPACES))
def test_icc_trc_equals_transfer(space: str) -> None:
    fn, (g, a, b, c, d) = _para_of(icc_profile(space))
    assert fn == 3
    v = np.linspace(0, 1, 4097)
    y = np.where(v >= d, np.power(np.maximum(a * v + b, 0), g), c * v)
    ref = spaces.decode(v, spaces.SPACES[space].transfer)
    assert np.abs(y - ref).max() < 2e-5


def _lcms_vs_numpy(space: str, n: int = 64 * 64) -> tuple[int, int]:
    rng = np.random.default_rng(1)
    x8 = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    m = spaces.xyz_d50_to_rgb("srgb") @ spaces.rgb_to_xyz_d50(space)
    lin = spaces.decode(x8 / 255.0, spaces.SPACES[space].transfer) @ m.T
    inside = np.all((lin > 0.001) & (lin < 0.999), axis=1)
    ours = np.rint(spaces.encode(lin, "srgb") * 255).astype(int)
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile(space)))
    t = ImageCms.buildTransform(
        src,
        ImageCms.createProfile("sRGB"),
        "RGB",
        "RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
    )
    img = Image.fromarray(x8.reshape(64, -1, 3), "RGB")
    theirs = np.asarray(ImageCms.applyTransform(img, t)).reshape(-1, 3).astype(int)
    return int(inside.sum()), int(np.abs(theirs - ours)[inside].max())


@pytest.mark.parametrize("space", ["srgb", "p3", "rec2020", "prophoto"])
def test_icc_littlecms_agrees_with_numpy(space: str) -> None:
    count, worst = _lcms_vs_numpy(space)
    assert count > 500  # enough in-gamut colours were tested
    assert worst <= 1  # 1/255


# --- EXIF ---------------------------------------------------------------------------------------


def _check_exif(tags: dict) -> None:
    assert tags["Make"] == "Xiaomi" and tags["Model"] == "2203121C"
    assert tags["LensModel"] == SHOT.lens
    assert tags["Orientation"] == 1
    assert tags["Software"] == "oneinch"
    assert tags["Artist"] == SHOT.artist and tags["Copyright"] == SHOT.copyright
    assert tags["ExposureTime"] == 0.01 and tags["FNumber"] == 1.9
    assert tags["FocalLength"] == 8.7 and tags["FocalLengthIn35mmFilm"] == 23
    assert tags["ISOSpeedRatings"] == 50
    assert tags["DateTimeOriginal"] == "2023:05:04 17:30:12"
    assert tags["DateTime"] == "2023:05:04 17:30:12"
    assert tags["OffsetTimeOriginal"] == "+08:00"
    assert tags["GPSLatitudeRef"] == "N" and tags["GPSLongitudeRef"] == "E"
    assert abs(tags["GPSLatitudeDecimal"] - 22.543096) < 1e-8
    assert abs(tags["GPSLongitudeDecimal"] - 114.057865) < 1e-8
    assert tags["GPSAltitudeMeters"] == 12.5


def test_exif_bytes_ifds_and_roundtrip(tmp_path: Path) -> None:
    data = exif_bytes(SHOT)
    assert data.startswith(b"Exif\0\0")
    ex = Image.Exif()
    ex.load(data[6:])
    assert 0x8769 in ex and 0x8825 in ex  # Exif and GPS sub-IFD pointers in IFD0
    assert 0x829A in ex.get_ifd(0x8769) and 0x829A not in ex  # ExposureTime in the Exif IFD
    assert 2 in ex.get_ifd(0x8825)  # GPSLatitude in the GPS IFD
    p = tmp_path / "e.jpg"
    Image.new("RGB", (8, 8)).save(p, exif=data)
    _check_exif(read_exif(p))


def test_shot_from_exif_inverts_exif_bytes(tmp_path: Path) -> None:
    shot = ShotInfo(
        make="NIKON CORPORATION",
        model="NIKON Z 9",
        lens="NIKKOR Z 24-70mm f/2.8 S",
        focal_length=35.0,
        f_number=8.0,
        exposure_time=1 / 3,
        iso=102400,  # > 65535: RecommendedExposureIndex
        datetime=dt.datetime(2024, 2, 29, 23, 59, 58, 250000,
                             tzinfo=dt.timezone(-dt.timedelta(hours=3, minutes=30))),
        gps=(-33.856784, -151.215297, -4.25),
    )
    p = tmp_path / "s.jpg"
    Image.new("RGB", (8, 8)).save(p, exif=exif_bytes(shot))
    back = shot_from_exif(read_exif(p))
    assert back.make == shot.make and back.model == shot.model and back.lens == shot.lens
    assert back.exposure_time == shot.exposure_time  # 1/3 exactly as a rational
    assert back.f_number == 8.0 and back.focal_length == 35.0 and back.iso == 102400
    assert back.datetime == shot.datetime and back.datetime.utcoffset() == shot.datetime.utcoffset()
    assert back.gps is not None
    assert np.allclose(back.gps, shot.gps, atol=1e-8, rtol=0)
    assert back.orientation == 1 and back.software == "oneinch"


# --- quantisation -------------------------------------------------------------------------------


def test_quantize_rounds_clips_and_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(3).uniform(-0.2, 1.2, (37, 53, 3)).astype(np.float32)
    x[0, 0, 0] = np.nan
    for bits, top, dtype in ((8, 255, np.uint8), (16, 65535, np.uint16)):
        ref = np.rint(np.clip(np.nan_to_num(x, nan=0.0).astype(np.float64) * top, 0, top))
        q = quantize(x, bits)
        assert q.dtype == dtype and q.flags.c_contiguous
        assert np.array_equal(q, ref.astype(dtype))
        monkeypatch.setattr(enc, "_BLOCK_VALUES", 53 * 3 * 4)  # 4-row blocks
        assert np.array_equal(quantize(x, bits), q)
        assert np.array_equal(quantize(x, bits, bgr=True), q[..., ::-1])
        monkeypatch.undo()


@pytest.mark.parametrize("dither", ["ordered", "tpdf"])
def test_dither_keeps_the_mean_of_a_fraction(dither: str) -> None:
    flat = np.full((64, 64, 3), 100.3 / 255, dtype=np.float32)
    assert quantize(flat, 8).mean() == 100  # plain rounding loses the 0.3
    d = quantize(flat, 8, dither=dither)
    assert abs(d.mean() - 100.3) < 0.03
    assert d.min() >= 99 and d.max() <= 102


# --- encoders -----------------------------------------------------------------------------------


def test_jpeg_q92_444_quality_icc_exif(tmp_path: Path) -> None:
    rgb = _image()
    photo = Photo(rgb, "p3", SHOT)
    out = write(photo, tmp_path / "a.jpg", Output(format="jpeg", space="p3"))
    assert out == tmp_path / "a.jpg"
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (256, 192)
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
        assert im.info["icc_profile"] == icc_profile("p3")
        back = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
    assert _psnr(back, rgb) > 40
    _check_exif(read_exif(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg"]  # no temp files left


def test_jpeg_subsampling_option(tmp_path: Path) -> None:
    photo = Photo(_image(64, 96), "srgb", SHOT)
    data = encode_bytes(photo, Output(format="jpeg", subsampling="4:2:0", quality=80))
    with Image.open(io.BytesIO(data)) as im:
        assert JpegImagePlugin.get_sampling(im) == 2


def test_tiff16_exact_with_icc_and_exif(tmp_path: Path) -> None:
    rgb = _image()
    out = write(Photo(rgb, "rec2020", SHOT), tmp_path / "a.tif",
                Output(format="tiff", space="rec2020"))
    with tifffile.TiffFile(out) as tf:
        page = tf.pages[0]
        px = page.asarray()
        tags = page.tags
        assert px.dtype == np.uint16 and px.shape == (192, 256, 3)
        assert tags["InterColorProfile"].value == icc_profile("rec2020")
        assert tags["Make"].value == "Xiaomi" and tags["Model"].value == "2203121C"
        assert tags["Orientation"].value == 1 and tags["Software"].value == "oneinch"
        assert tags["DateTime"].value == "2023:05:04 17:30:12"
        assert tags["Compression"].value == 8 and tags["Predictor"].value == 2
        exif = tags["ExifTag"].value
        assert exif["ExposureTime"] == (1, 100) and exif["ISOSpeedRatings"] == 50
        assert exif["OffsetTimeOriginal"] == "+08:00"
        assert tags["GPSTag"].value["GPSLatitudeRef"] == "N"
    assert np.abs(px / 65535 - rgb).max() <= 0.5 / 65535 + 1e-7
    _check_exif(read_exif(out))


def test_tiff8_and_png8_round_trip(tmp_path: Path) -> None:
    rgb = _image(64, 80)
    photo = Photo(rgb, "srgb", SHOT)
    t = write(photo, tmp_path / "a.tiff", Output(format="tiff", bits=8))
    assert tifffile.imread(t).dtype == np.uint8
    assert np.abs(tifffile.imread(t) / 255 - rgb).max() <= 0.5 / 255 + 1e-6
    p = write(photo, tmp_path / "a.png", Output(format="png"))
    with Image.open(p) as im:
        assert im.mode == "RGB" and im.info["icc_profile"] == icc_profile("srgb")
        assert np.abs(np.asarray(im) / 255 - rgb).max() <= 0.5 / 255 + 1e-6
    _check_exif(read_exif(p))


def test_png16_exact_with_iccp_and_exif_chunks(tmp_path: Path) -> None:
    rgb = _image()
    out = write(Photo(rgb, "prophoto", SHOT), tmp_path / "a.png",
                Output(format="png", bits=16, space="prophoto"))
    chunks = _png_chunks(out.read_bytes())
    kinds = [k for k, _, _ in chunks]
    assert all(ok for _, _, ok in chunks)  # every CRC is right
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert kinds.index(b"iCCP") < kinds.index(b"IDAT")
    assert kinds.index(b"eXIf") < kinds.index(b"IDAT")
    ihdr = chunks[0][1]
    assert ihdr[8] == 16 and ihdr[9] == 2  # 16-bit truecolour
    iccp = dict((k, b) for k, b, _ in chunks)[b"iCCP"]
    name, rest = iccp.split(b"\0", 1)
    assert 1 <= len(name) <= 79 and rest[0] == 0
    assert zlib.decompress(rest[1:]) == icc_profile("prophoto")
    px = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert px.dtype == np.uint16
    assert np.abs(px / 65535 - rgb).max() <= 0.5 / 65535 + 1e-7
    _check_exif(read_exif(out))
    with Image.open(out) as im:  # Pillow sees the profile too
        assert im.info["icc_profile"] == icc_profile("prophoto")


def test_space_conversion_on_write(tmp_path: Path) -> None:
    rgb = _image(32, 48) * 0.8 + 0.1
    photo = Photo(rgb.astype(np.float32), "p3", SHOT)
    data = encode_bytes(photo, Output(format="png", bits=16, space="srgb"))
    px = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    m = spaces.xyz_d50_to_rgb("srgb") @ spaces.rgb_to_xyz_d50("p3")
    ref = spaces.encode(spaces.decode(photo.rgb, "srgb") @ m.T, "srgb")
    assert np.abs(px / 65535 - ref).max() < 2e-5
    assert _png_chunks(data)[1][0] == b"iCCP"


def test_encode_bytes_equals_written_file(tmp_path: Path) -> None:
    photo = Photo(_image(48, 64), "srgb", SHOT)
    for fmt, suffix in (("jpeg", "jpg"), ("tiff", "tif"), ("png", "png")):
        out = Output(format=fmt)
        assert write(photo, tmp_path / f"x.{suffix}", out).read_bytes() == encode_bytes(photo, out)


# --- failures -----------------------------------------------------------------------------------


def test_encoder_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = Photo(_image(32, 32), "srgb", SHOT)
    keep = tmp_path / "old.jpg"
    keep.write_bytes(b"previous file")

    def boom(fh, *args, **kwargs):
        fh.write(b"\xff\xd8 half a jpeg")
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(enc, "_encode_jpeg", boom)
    with pytest.raises(RuntimeError, match="exploded"):
        write(photo, tmp_path / "new.jpg", Output())
    with pytest.raises(RuntimeError):
        write(photo, keep, Output())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jpg"]
    assert keep.read_bytes() == b"previous file"


def test_disk_full_is_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fh, *args, **kwargs):
        fh.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(enc, "_encode_png", full)
    with pytest.raises(OutputError, match="disk full") as err:
        write(Photo(_image(16, 16), "srgb", SHOT), tmp_path / "full.png", Output(format="png"))
    assert "full.png" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_bad_folder_is_output_error(tmp_path: Path) -> None:
    photo = Photo(_image(16, 16), "srgb", SHOT)
    missing = tmp_path / "nope" / "a.jpg"
    with pytest.raises(OutputError, match="nope"):
        write(photo, missing, Output())
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(OutputError, match=r"file\.txt: it is a file, not a folder"):
        write(photo, afile / "a.png", Output(format="png"))  # (said "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_options_and_suffixes(tmp_path: Path) -> None:
    assert format_from_path("a/B.JPG") == "jpeg" and format_from_path("x.jpeg") == "jpeg"
    assert format_from_path("x.tif") == "tiff" and format_from_path("x.TIFF") == "tiff"
    assert format_from_path("x.png") == "png" and format_from_path("x.webp") is None
    assert format_from_path("noext") is None
    photo = Photo(_image(16, 16), "srgb", SHOT)
    with pytest.raises(OptionError, match="JPEG is 8-bit"):
        encode_bytes(photo, Output(format="jpeg", bits=16))
    with pytest.raises(OptionError, match="subsampling"):
        encode_bytes(photo, Output(subsampling="4:1:1"))
    with pytest.raises(OptionError, match="suffix"):
        write(photo, tmp_path / "a.png", Output(format="jpeg"))
    # no Output: the suffix decides, in the photo's own space
    out = write(Photo(_image(16, 16), "p3", SHOT), tmp_path / "b.tif")
    with tifffile.TiffFile(out) as tf:
        assert tf.pages[0].tags["InterColorProfile"].value == icc_profile("p3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tif"]


def test_an_image_format_we_do_not_write_is_refused(tmp_path: Path) -> None:
    """`write(photo, 'x.gif')` (or `develop -o x.webp`) wrote JPEG bytes under the other
    format's suffix; it is an OptionError naming the file, and nothing is written."""
    photo = Photo(_image(16, 16), "srgb", SHOT)
    for name in ("x.gif", "x.WEBP", "x.bmp", "x.jp2", "x.exr"):
        with pytest.raises(OptionError, match=r"x\."):
            write(photo, tmp_path / name)
        with pytest.raises(OptionError):
            write(photo, tmp_path / name, Output(format="jpeg"))
    assert list(tmp_path.iterdir()) == []
    assert write(photo, tmp_path / "plain").read_bytes()[:2] == b"\xff\xd8"  # no suffix: JPEG
    # develop_file says so before it opens or develops the raw
    from oneinch.api import develop_file

    with pytest.raises(OptionError, match="WebP"):
        develop_file(tmp_path / "not-even-there.dng", tmp_path / "x.webp")


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
def test_exiftool_validates_files(tmp_path: Path) -> None:
    photo = Photo(_image(32, 48), "srgb", SHOT)
    outputs = (("v.jpg", Output()), ("v.png", Output(format="png", bits=16)),
               ("v.tif", Output(format="tiff")))
    for name, out in outputs:
        p = write(photo, tmp_path / name, out)
        res = subprocess.run(["exiftool", "-validate", "-warning", "-a", str(p)],
                             capture_output=True, text=True, check=True)
        warnings = [ln for ln in res.stdout.splitlines() if ln.startswith("Warning")]
        # Pillow can only type ComponentsConfiguration BYTE (Exif: UNDEFINED), so it is omitted
        # exiftool also flags Deflate (8, TIFF TN2) as non-baseline and wants a GPS method tag
        allowed = ("Missing required JPEG ExifIFD tag 0x9101 ComponentsConfiguration",
                   "Invalid value for IFD0 tag 0x0103 Compression",
                   "Missing required TIFF GPS tag 0x001b GPSProcessingMethod")
        assert all(w.endswith(allowed) for w in warnings), res.stdout
