"""EXIF for written photos: ShotInfo -> EXIF bytes, and any file's EXIF -> {tag name: value}.

Tags and IFDs follow CIPA DC-008-2023 (Exif 3.0): IFD0 (Make, Model, Orientation, DateTime,
Software, Artist, Copyright), the Exif IFD at 0x8769 (exposure, lens, dates with their UTC
offsets) and the GPS IFD at 0x8825 (§4.6.6). Pixels are already upright, so Orientation is 1.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, TiffImagePlugin

from ..errors import InputError
from ..raw.image import ShotInfo

IFD_EXIF = 0x8769
IFD_GPS = 0x8825

_T = ExifTags.Base
_G = ExifTags.GPS


def _rational(v: float, max_den: int = 1_000_000) -> TiffImagePlugin.IFDRational:
    """Nearest rational with a small denominator: 0.01 -> 1/100, 1.9 -> 19/10, 30 -> 30/1."""
    f = Fraction(float(v)).limit_denominator(max_den)
    while f.numerator > 0xFFFFFFFF:  # RATIONAL is two uint32
        max_den //= 10
        f = Fraction(float(v)).limit_denominator(max(max_den, 1))
    return TiffImagePlugin.IFDRational(f.numerator, f.denominator)


def _exif_time(t: dt.datetime) -> str:
    return t.strftime("%Y:%m:%d %H:%M:%S")


def _offset(t: dt.datetime) -> str | None:
    off = t.utcoffset()
    if off is None:
        return None
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def _dms(deg: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    """Degrees -> (d/1, m/1, s*10000/10000): 1e-4 arc-second (3 mm) resolution."""
    a = abs(deg)
    d = int(a)
    m = int((a - d) * 60)
    s = round((a - d - m / 60) * 3600 * 10000)
    if s >= 600000:  # rounding carried into the next minute
        s -= 600000
        m += 1
    if m >= 60:
        m -= 60
        d += 1
    r = TiffImagePlugin.IFDRational
    return (r(d, 1), r(m, 1), r(s, 10000))


def build_exif(
    shot: ShotInfo,
    *,
    software: str = "oneinch",
    size: tuple[int, int] | None = None,
    space: str | None = None,
    jpeg: bool = False,
) -> Image.Exif:
    """A Pillow ``Image.Exif`` holding ``shot`` in the proper IFDs (Orientation forced to 1).

    ``size`` = (width, height) adds PixelXDimension/PixelYDimension; ``space`` sets ColorSpace
    (1 = sRGB, 0xFFFF = uncalibrated, the ICC profile then says which); ``jpeg`` adds
    YCbCrPositioning (ComponentsConfiguration is left out: Pillow would type it BYTE, not
    UNDEFINED as Exif requires).
    """
    exif = Image.Exif()
    exif[_T.XResolution] = TiffImagePlugin.IFDRational(72, 1)
    exif[_T.YResolution] = TiffImagePlugin.IFDRational(72, 1)
    exif[_T.ResolutionUnit] = 2  # inch
    ifd0: dict[int, Any] = {
        _T.Make: shot.make,
        _T.Model: shot.model,
        _T.Software: software,
        _T.Artist: shot.artist,
        _T.Copyright: shot.copyright,
    }
    exif[_T.Orientation] = 1
    for tag, value in ifd0.items():
        if value:
            exif[tag] = str(value)

    ex = exif.get_ifd(IFD_EXIF)
    ex[_T.ExifVersion] = b"0232"
    ex[_T.FlashPixVersion] = b"0100"
    if space is not None:
        ex[_T.ColorSpace] = 1 if space == "srgb" else 0xFFFF
    if size is not None:
        ex[_T.ExifImageWidth] = int(size[0])
        ex[_T.ExifImageHeight] = int(size[1])
    if jpeg:
        exif[_T.YCbCrPositioning] = 1  # centred
    if shot.exposure_time is not None and shot.exposure_time > 0:
        ex[_T.ExposureTime] = _rational(shot.exposure_time)
    if shot.f_number is not None and shot.f_number > 0:
        ex[_T.FNumber] = _rational(shot.f_number, 1000)
    if shot.iso is not None and shot.iso > 0:
        iso = round(shot.iso)
        ex[_T.ISOSpeedRatings] = min(iso, 65535)  # PhotographicSensitivity, SHORT
        if iso > 65535:  # Exif 2.3+: the true value goes to RecommendedExposureIndex
            ex[_T.SensitivityType] = 2
            ex[_T.RecommendedExposureIndex] = iso
    if shot.focal_length is not None and shot.focal_length > 0:
        ex[_T.FocalLength] = _rational(shot.focal_length, 1000)
    if shot.focal_length_35mm is not None and shot.focal_length_35mm > 0:
        ex[_T.FocalLengthIn35mmFilm] = min(round(shot.focal_length_35mm), 65535)
    if shot.lens:
        ex[_T.LensModel] = str(shot.lens)
    if shot.datetime is not None:
        t = shot.datetime
        exif[_T.DateTime] = _exif_time(t)
        ex[_T.DateTimeOriginal] = _exif_time(t)
        ex[_T.DateTimeDigitized] = _exif_time(t)
        if t.microsecond:
            sub = f"{t.microsecond:06d}".rstrip("0")
            ex[_T.SubsecTimeOriginal] = sub
            ex[_T.SubsecTimeDigitized] = sub
        off = _offset(t)
        if off is not None:
            ex[_T.OffsetTime] = off
            ex[_T.OffsetTimeOriginal] = off
            ex[_T.OffsetTimeDigitized] = off

    if shot.gps is not None:
        lat, lon, alt = shot.gps
        if math.isfinite(lat) and math.isfinite(lon):
            gps = exif.get_ifd(IFD_GPS)
            gps[_G.GPSVersionID] = b"\x02\x03\x00\x00"
            gps[_G.GPSLatitudeRef] = "N" if lat >= 0 else "S"
            gps[_G.GPSLatitude] = _dms(lat)
            gps[_G.GPSLongitudeRef] = "E" if lon >= 0 else "W"
            gps[_G.GPSLongitude] = _dms(lon)
            if alt is not None and math.isfinite(alt):
                gps[_G.GPSAltitudeRef] = b"\x00" if alt >= 0 else b"\x01"
                gps[_G.GPSAltitude] = _rational(abs(alt), 1000)
    return exif


def exif_bytes(
    shot: ShotInfo,
    *,
    software: str = "oneinch",
    size: tuple[int, int] | None = None,
    space: str | None = None,
    jpeg: bool = False,
) -> bytes:
    """EXIF block for ``shot``: ``b"Exif\\0\\0"`` + little-endian TIFF structure.

    That is the APP1 payload JPEG needs and what Pillow's ``save(exif=...)`` takes for JPEG,
    PNG and WebP; a PNG eXIf chunk holds it without the 6-byte prefix.
    """
    return build_exif(shot, software=software, size=size, space=space, jpeg=jpeg).tobytes()


def _plain(v: Any) -> Any:
    """Pillow EXIF values -> plain Python (float for rationals, str without NULs)."""
    if isinstance(v, TiffImagePlugin.IFDRational):
        return float(v) if v.denominator else math.nan
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    if isinstance(v, str):
        return v.rstrip("\0").strip()
    return v


def _degrees(dms: Any, ref: Any, negative: str) -> float | None:
    try:
        d, m, s = (float(x) for x in dms)
    except (TypeError, ValueError):
        return None
    value = d + m / 60 + s / 3600
    return -value if str(ref).upper().startswith(negative) else value


def exif_to_dict(exif: Image.Exif) -> dict[str, Any]:
    """Flatten IFD0, the Exif IFD and the GPS IFD into {tag name: plain value}.

    Adds ``GPSLatitudeDecimal`` / ``GPSLongitudeDecimal`` / ``GPSAltitudeMeters`` (signed) when
    the GPS IFD has them.
    """
    out: dict[str, Any] = {}
    for tag, value in exif.items():
        if tag in (IFD_EXIF, IFD_GPS):
            continue
        out[ExifTags.TAGS.get(tag, f"Tag0x{tag:04X}")] = _plain(value)
    for tag, value in exif.get_ifd(IFD_EXIF).items():
        out[ExifTags.TAGS.get(tag, f"Tag0x{tag:04X}")] = _plain(value)
    gps = exif.get_ifd(IFD_GPS)
    for tag, value in gps.items():
        out[ExifTags.GPSTAGS.get(tag, f"GPSTag0x{tag:04X}")] = _plain(value)
    if "GPSLatitude" in out and "GPSLongitude" in out:
        lat = _degrees(out["GPSLatitude"], out.get("GPSLatitudeRef", "N"), "S")
        lon = _degrees(out["GPSLongitude"], out.get("GPSLongitudeRef", "E"), "W")
        if lat is not None and lon is not None:
            out["GPSLatitudeDecimal"] = lat
            out["GPSLongitudeDecimal"] = lon
    if "GPSAltitude" in out:
        ref = out.get("GPSAltitudeRef", b"\x00")
        below = ref in (1, b"\x01", "\x01")
        out["GPSAltitudeMeters"] = -out["GPSAltitude"] if below else out["GPSAltitude"]
    return out


def read_exif(path: str | Path) -> dict[str, Any]:
    """EXIF of a JPEG, PNG (eXIf), TIFF or WebP file as {tag name: value} (see exif_to_dict).

    Rationals become floats, strings lose trailing NULs. A file without EXIF gives {}.
    """
    p = Path(path)
    try:
        with Image.open(p) as im:
            exif = im.getexif()
            if not exif and im.format == "PNG":
                im.load()  # an eXIf chunk after IDAT is only seen once the image is read
                exif = im.getexif()
            return exif_to_dict(exif)
    except FileNotFoundError:
        raise InputError("file not found", p) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"cannot read EXIF ({e})", p) from None


def _parse_time(value: Any, offset: Any, subsec: Any) -> dt.datetime | None:
    try:
        t = dt.datetime.strptime(str(value)[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if subsec:
        digits = "".join(c for c in str(subsec) if c.isdigit())[:6]
        if digits:
            t = t.replace(microsecond=int(digits.ljust(6, "0")))
    if offset:
        try:
            o = str(offset).strip()
            sign = -1 if o.startswith("-") else 1
            h, m = o.lstrip("+-").split(":")
            t = t.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=int(h), minutes=int(m))))
        except ValueError:
            pass
    return t


def shot_from_exif(tags: dict[str, Any]) -> ShotInfo:
    """ShotInfo from a read_exif() dict (the inverse of exif_bytes for the fields it writes)."""

    def num(name: str) -> float | None:
        v = tags.get(name)
        if isinstance(v, tuple):
            v = v[0] if v else None
        try:
            f = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return f if math.isfinite(f) and f > 0 else None

    iso = num("RecommendedExposureIndex") or num("ISOSpeedRatings")
    gps = None
    if "GPSLatitudeDecimal" in tags:
        lat, lon = tags["GPSLatitudeDecimal"], tags["GPSLongitudeDecimal"]
        gps = (lat, lon, tags.get("GPSAltitudeMeters"))
    when = None
    if "DateTimeOriginal" in tags or "DateTime" in tags:
        key = "DateTimeOriginal" if "DateTimeOriginal" in tags else "DateTime"
        off = tags.get("OffsetTimeOriginal" if key == "DateTimeOriginal" else "OffsetTime")
        sub = tags.get("SubsecTimeOriginal" if key == "DateTimeOriginal" else "SubsecTime")
        when = _parse_time(tags[key], off, sub)
    orientation = tags.get("Orientation", 1)

    def text(name: str) -> str | None:
        v = tags.get(name)
        return str(v) if v not in (None, "") else None

    return ShotInfo(
        make=text("Make"),
        model=text("Model"),
        lens=text("LensModel"),
        focal_length=num("FocalLength"),
        focal_length_35mm=num("FocalLengthIn35mmFilm"),
        f_number=num("FNumber"),
        exposure_time=num("ExposureTime"),
        iso=iso,
        datetime=when,
        gps=gps,
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
        software=text("Software"),
        artist=text("Artist"),
        copyright=text("Copyright"),
    )
