"""shot_info_from_exif / exif_from_pil: exact values from constructed tags and a real JPEG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import numpy as np
import pytest
from PIL import ExifTags, Image, TiffImagePlugin

from oneinch.raw.exif import exif_from_pil, parse_exif_datetime, shot_info_from_exif, xmp_value
from oneinch.raw.image import ShotInfo

R = TiffImagePlugin.IFDRational


def _tifffile_style() -> dict:
    # tifffile: rationals as (num, den), multi-rationals flattened, strings as str
    return {
        "Make": "LEICA CAMERA AG",
        "Model": "LEICA M11",
        "Orientation": 6,
        "LensModel": "SUMMILUX-M 1:1.4/35 ASPH.",
        "LensMake": "Leica",
        "LensSpecification": (35, 1, 35, 1, 14, 10, 14, 10),
        "FocalLength": (35, 1),
        "FocalLengthIn35mmFilm": 35,
        "FNumber": (14, 10),
        "ExposureTime": (1, 250),
        "ISOSpeedRatings": 64,
        "DateTimeOriginal": "2023:07:04 18:31:05",
        "OffsetTimeOriginal": "+08:00",
        "SubsecTimeOriginal": "25",
        "GPSInfo": {
            "GPSLatitudeRef": "S",
            "GPSLatitude": (33, 1, 51, 1, 3564, 100),
            "GPSLongitudeRef": "E",
            "GPSLongitude": (151, 1, 12, 1, 3600, 100),
            "GPSAltitudeRef": b"\x01",
            "GPSAltitude": (5, 2),
        },
        "Software": "fw 2.0",
        "Artist": b"Ann\x00",
        "Copyright": "Ann\x00Ed",
    }


def test_tifffile_style_tags_exact() -> None:
    s = shot_info_from_exif(_tifffile_style())
    assert isinstance(s, ShotInfo)
    assert s.make == "LEICA CAMERA AG" and s.model == "LEICA M11"
    assert s.lens == "SUMMILUX-M 1:1.4/35 ASPH." and s.extra["lens_source"] == "LensModel"
    assert s.extra["lens_make"] == "Leica"
    assert s.extra["lens_spec"] == (35.0, 35.0, 1.4, 1.4)
    assert s.focal_length == 35.0 and s.focal_length_35mm == 35.0
    assert s.f_number == pytest.approx(1.4) and s.exposure_time == pytest.approx(1 / 250)
    assert s.iso == 64 and s.orientation == 6
    tz = timezone(timedelta(hours=8))
    assert s.datetime == datetime(2023, 7, 4, 18, 31, 5, 250000, tzinfo=tz)
    assert s.datetime.utcoffset() == timedelta(hours=8)
    lat, lon, alt = s.gps
    assert lat == pytest.approx(-(33 + 51 / 60 + 35.64 / 3600))
    assert lon == pytest.approx(151 + 12 / 60 + 36 / 3600)
    assert alt == pytest.approx(-2.5)
    assert s.software == "fw 2.0" and s.artist == "Ann" and s.copyright == "Ann, Ed"


def test_pillow_style_rationals_and_ids() -> None:
    tags = {
        0x010F: b"NIKON CORPORATION\x00",
        0x0110: "NIKON Z 6",
        0x829D: R(28, 10),
        0x829A: R(1, 100),
        "PhotographicSensitivity": (400, 0),
        0x920A: R(50, 1),
        0x9003: "2021:01:02 03:04:05",
        0x8825: {2: (R(48), R(51), R(2415, 100)), 1: "N", 4: (R(2), R(21), R(0)), 3: "W"},
    }
    s = shot_info_from_exif(tags)
    assert s.make == "NIKON CORPORATION" and s.model == "NIKON Z 6"
    assert s.f_number == pytest.approx(2.8) and s.exposure_time == pytest.approx(0.01)
    assert s.iso == 400 and s.focal_length == 50.0
    assert s.datetime == datetime(2021, 1, 2, 3, 4, 5) and s.datetime.tzinfo is None
    assert s.gps[0] == pytest.approx(48 + 51 / 60 + 24.15 / 3600)
    assert s.gps[1] == pytest.approx(-(2 + 21 / 60)) and s.gps[2] is None


def test_lens_fallbacks_in_order() -> None:
    assert shot_info_from_exif({"LensModel": "A", "LensID": "B"}).lens == "A"
    s = shot_info_from_exif({"LensModel": "----", "LensID": "B 35mm", "Lens": "C"})
    assert s.lens == "B 35mm" and s.extra["lens_source"] == "LensID"
    assert shot_info_from_exif({"Lens": "C 50mm"}).lens == "C 50mm"
    xmp_attr = b'<x:xmpmeta><rdf:Description aux:Lens="XF23mmF1.4 R" exifEX:LensModel="Q"/>'
    s = shot_info_from_exif({}, xmp_attr)
    assert s.lens == "XF23mmF1.4 R" and s.extra["lens_source"] == "XMP aux:Lens"
    xmp_el = "<rdf:Description><exifEX:LensModel>Summicron 28 &amp; co</exifEX:LensModel>"
    assert shot_info_from_exif({}, xmp_el).lens == "Summicron 28 & co"
    # XMP packet carried inside the tags
    assert shot_info_from_exif({"XMLPacket": xmp_attr}).lens == "XF23mmF1.4 R"
    s = shot_info_from_exif({"LensSpecification": (R(24), R(70), R(28, 10), R(4))})
    assert s.lens == "24-70mm f/2.8-4" and s.extra["lens_source"] == "LensSpecification"
    assert (
        xmp_value(
            b"<aux:LensID>\n<rdf:Alt><rdf:li>ZZ</rdf:li></rdf:Alt></aux:LensID>", "aux:LensID"
        )
        == "ZZ"
    )


def test_equivalent_focal_from_focal_plane_resolution() -> None:
    # APS-C-like: 6000 px over 23.5 mm (unit 4 = mm) → crop ≈ 1.53
    tags = {
        "FocalLength": (23, 1),
        "FocalPlaneXResolution": (6000 * 1000, 23500),
        "FocalPlaneYResolution": (4000 * 1000, 15667),
        "FocalPlaneResolutionUnit": 4,
        "ExifImageWidth": 6000,
        "ExifImageHeight": 4000,
    }
    s = shot_info_from_exif(tags)
    diag = np.hypot(23.5, 15.667)
    assert s.extra["crop_factor"] == pytest.approx(43.2666 / diag, rel=1e-3)
    assert s.focal_length_35mm == pytest.approx(23 * 43.2666 / diag, rel=1e-3)
    # FocalLengthIn35mmFilm wins when present and non-zero
    assert shot_info_from_exif({**tags, "FocalLengthIn35mmFilm": 35}).focal_length_35mm == 35
    assert shot_info_from_exif({**tags, "FocalLengthIn35mmFilm": 0}).focal_length_35mm != 0


def test_apex_fallbacks() -> None:
    s = shot_info_from_exif({"ShutterSpeedValue": (6644, 1000), "ApertureValue": (3, 1)})
    assert s.exposure_time == pytest.approx(1 / 100, rel=1e-3)
    assert s.f_number == pytest.approx(2**1.5)


@pytest.mark.parametrize(
    "bad",
    [
        {"FNumber": (1, 0), "ExposureTime": "abc", "ISOSpeedRatings": b"\xff\xfe"},
        {"DateTimeOriginal": "0000:00:00 00:00:00", "Orientation": 42, "FocalLength": -3},
        {"DateTimeOriginal": "    :  :     :  :  ", "OffsetTimeOriginal": "+99:00"},
        {"GPSInfo": {"GPSLatitude": "garbage", "GPSLongitude": (1, 2, 3)}},
        {"GPSInfo": 1234, "LensSpecification": object(), "Make": 12, "Model": None},
        {"GPSInfo": {"GPSLatitude": (0, 1, 0, 1, 0, 1), "GPSLongitude": (0, 1, 0, 1, 0, 1)}},
        {"FocalPlaneXResolution": (0, 0), "FocalLength": (5, 1), "ExifImageWidth": "x"},
        {"Copyright": b"\x00\x00", "Software": float("nan"), "ExposureTime": float("inf")},
    ],
)
def test_garbage_never_raises(bad: dict) -> None:
    s = shot_info_from_exif(bad)
    assert s.f_number is None and s.exposure_time is None and s.iso is None
    assert s.datetime is None and s.gps is None and 1 <= s.orientation <= 8
    assert s.focal_length is None or s.focal_length > 0
    assert s.copyright is None and s.software is None


def test_datetime_variants() -> None:
    assert parse_exif_datetime("2022:07:04 18:31:05", "-05:00").utcoffset() == timedelta(hours=-5)
    assert parse_exif_datetime(b"2022:07:04 18:31:05\x00") == datetime(2022, 7, 4, 18, 31, 5)
    assert parse_exif_datetime("2022-07-04T18:31:05.5Z").tzinfo == UTC
    assert parse_exif_datetime("2022:13:04 18:31:05") is None


def test_exif_from_pil_jpeg_roundtrip(tmp_path) -> None:
    img = Image.fromarray(np.full((16, 24, 3), 128, np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "FUJIFILM"
    exif[0x0110] = "X100V"
    exif[0x0112] = 6
    ex = exif.get_ifd(ExifTags.IFD.Exif)
    ex[0x829A] = R(1, 100)
    ex[0x829D] = R(2, 1)
    ex[0x8827] = 160
    ex[0x920A] = R(23, 1)
    ex[0xA405] = 35
    ex[0x9003] = "2024:05:06 07:08:09"
    ex[0x9011] = "+02:00"
    ex[0xA434] = "XF23mm"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[1] = "N"
    gps[2] = (R(10), R(30), R(0))
    gps[3] = "E"
    gps[4] = (R(20), R(15), R(0))
    path = tmp_path / "x.jpg"
    img.save(path, exif=exif, quality=90)
    with Image.open(path) as im:
        tags = exif_from_pil(im)
    assert tags["Model"] == "X100V" and tags["LensModel"] == "XF23mm"
    assert isinstance(tags["GPSInfo"], dict) and tags["GPSInfo"]["GPSLatitudeRef"] == "N"
    s = shot_info_from_exif(tags)
    assert (s.make, s.model, s.lens, s.orientation) == ("FUJIFILM", "X100V", "XF23mm", 6)
    assert s.exposure_time == pytest.approx(0.01) and s.f_number == 2.0 and s.iso == 160
    assert s.focal_length == 23 and s.focal_length_35mm == 35
    assert s.datetime == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    assert s.gps == pytest.approx((10.5, 20.25, None))


def test_fraction_and_string_values() -> None:
    s = shot_info_from_exif({"exposure_time": Fraction(1, 8000), "fnumber": "1/0.5", "iso": "100"})
    assert s.exposure_time == pytest.approx(1 / 8000) and s.f_number == 2.0 and s.iso == 100
