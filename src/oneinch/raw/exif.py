"""EXIF → ShotInfo: robust reading of the shot's tags as tifffile and Pillow name them.

Follows the EXIF 2.32 / 3.0 specification (CIPA DC-008-2019/2023): tag names, the rational
types, the ``YYYY:MM:DD HH:MM:SS`` date format with OffsetTime* and SubSecTime* (sec. 4.6.5),
GPS degrees/minutes/seconds with reference letters (sec. 4.6.6), APEX ShutterSpeedValue and
ApertureValue (Annex C) as fallbacks, and the 35 mm equivalent focal length through the
focal-plane resolution (crop factor = 43.27 mm / sensor diagonal). XMP fallbacks follow the
Adobe XMP specification part 2 (``aux:`` and ``exifEX:`` namespaces, CIPA DC-010).

Every reader here skips a value it cannot make sense of instead of raising: a garbage tag
leaves the field ``None``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .image import ShotInfo

__all__ = ["exif_from_pil", "parse_exif_datetime", "shot_info_from_exif", "xmp_value"]

# Tag ids for the tags we read, so dicts keyed by number work too (EXIF 2.32 tables 4-7).
_TAG_IDS: dict[int, str] = {
    0x010F: "Make",
    0x0110: "Model",
    0x0112: "Orientation",
    0x0131: "Software",
    0x0132: "DateTime",
    0x013B: "Artist",
    0x8298: "Copyright",
    0x829A: "ExposureTime",
    0x829D: "FNumber",
    0x8825: "GPSInfo",
    0x8827: "ISOSpeedRatings",
    0x8830: "SensitivityType",
    0x8832: "RecommendedExposureIndex",
    0x8833: "ISOSpeed",
    0x9003: "DateTimeOriginal",
    0x9004: "DateTimeDigitized",
    0x9011: "OffsetTimeOriginal",
    0x9010: "OffsetTime",
    0x9201: "ShutterSpeedValue",
    0x9202: "ApertureValue",
    0x920A: "FocalLength",
    0x9291: "SubSecTimeOriginal",
    0x9290: "SubSecTime",
    0xA002: "ExifImageWidth",
    0xA003: "ExifImageHeight",
    0xA20E: "FocalPlaneXResolution",
    0xA20F: "FocalPlaneYResolution",
    0xA210: "FocalPlaneResolutionUnit",
    0xA405: "FocalLengthIn35mmFilm",
    0xA431: "BodySerialNumber",
    0xA432: "LensSpecification",
    0xA433: "LensMake",
    0xA434: "LensModel",
    0xA435: "LensSerialNumber",
    0x0100: "ImageWidth",
    0x0101: "ImageLength",
    0x02BC: "XMLPacket",
}
_GPS_IDS: dict[int, str] = {
    0: "GPSVersionID",
    1: "GPSLatitudeRef",
    2: "GPSLatitude",
    3: "GPSLongitudeRef",
    4: "GPSLongitude",
    5: "GPSAltitudeRef",
    6: "GPSAltitude",
}
# Names that differ between writers (tifffile, Pillow, exiftool) → one spelling (lower case).
_ALIASES = {
    "photographicsensitivity": "isospeedratings",
    "subsectimeoriginal": "subsectimeoriginal",
    "subsectime": "subsectime",
    "pixelxdimension": "exifimagewidth",
    "pixelydimension": "exifimageheight",
    "imageheight": "imagelength",
    "gpsinfoifd": "gpsinfo",
    "gpstag": "gpsinfo",
    "focallengthin35mmformat": "focallengthin35mmfilm",
    "iso": "isospeedratings",
}

_FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27 mm
# FocalPlaneResolutionUnit (EXIF 2.32 table 7; 4 and 5 are common non-standard extensions).
_UNIT_MM = {1: 25.4, 2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}


def _key(name: Any) -> str | None:
    if isinstance(name, int):
        name = _TAG_IDS.get(name)
        if name is None:
            return None
    if not isinstance(name, str):
        return None
    k = name.strip().lower()
    for prefix in ("exif:", "exififd:", "ifd0:", "exif ", "image ", "exif."):
        if k.startswith(prefix):
            k = k[len(prefix) :]
    k = k.replace(" ", "").replace("_", "")
    return _ALIASES.get(k, k)


def _lookup(tags: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        items = list(tags.items())
    except Exception:
        return out
    for name, value in items:
        k = _key(name)
        if k is not None and k not in out and value is not None:
            out[k] = value
    return out


def _gps_lookup(gps: Any) -> dict[str, Any]:
    if not isinstance(gps, Mapping):
        return {}
    out: dict[str, Any] = {}
    for name, value in gps.items():
        if isinstance(name, int):
            name = _GPS_IDS.get(name)
        if isinstance(name, str):
            k = name.strip().lower()
            if not k.startswith("gps"):
                k = "gps" + k
            out.setdefault(k, value)
    return out


# ---------------------------------------------------------------------------- value coercion


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _to_float(v: Any) -> float | None:
    """A number from an int, float, IFDRational, (num, den), [x], b'1/100' or '1/100'."""
    try:
        if v is None or isinstance(v, bool):
            return None
        if isinstance(v, int | float):
            return _finite(float(v))
        if hasattr(v, "numerator") and hasattr(v, "denominator"):  # IFDRational, Fraction
            den = float(v.denominator)
            return None if den == 0 else _finite(float(v.numerator) / den)
        if isinstance(v, bytes | bytearray):
            v = bytes(v).split(b"\0", 1)[0].decode("ascii", "ignore")
        if isinstance(v, str):
            s = v.strip().lower().removesuffix("s").removesuffix("mm").strip()
            if "/" in s:
                num, den = s.split("/", 1)
                d = float(den)
                return None if d == 0 else _finite(float(num) / d)
            return _finite(float(s)) if s else None
        if hasattr(v, "tolist"):  # numpy scalar / array
            v = v.tolist()
            if not isinstance(v, list | tuple):
                return _to_float(v)
        if isinstance(v, list | tuple):
            if len(v) == 1:
                return _to_float(v[0])
            if len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
                return None if v[1] == 0 else _finite(v[0] / v[1])
    except (TypeError, ValueError, ArithmeticError, OverflowError):
        return None
    return None


def _to_floats(v: Any, count: int) -> list[float] | None:
    """``count`` numbers from a tuple of rationals, of (num, den) pairs or a flat num,den list."""
    try:
        if hasattr(v, "tolist"):
            v = v.tolist()
        if not isinstance(v, list | tuple):
            x = _to_float(v)
            return [x] if x is not None and count == 1 else None
        items = list(v)
        if len(items) == 2 * count and all(
            isinstance(x, int) and not isinstance(x, bool) for x in items
        ):
            items = [(items[2 * i], items[2 * i + 1]) for i in range(count)]
        if len(items) != count:
            return None
        vals = [_to_float(x) for x in items]
        if any(x is None for x in vals):
            return None
        return [float(x) for x in vals if x is not None]
    except (TypeError, ValueError):
        return None


def _to_str(v: Any) -> str | None:
    """Text from str or bytes: NULs become separators, whitespace and control chars trimmed."""
    try:
        if isinstance(v, bytes | bytearray):
            b = bytes(v)
            for prefix in (b"ASCII\0\0\0", b"UNICODE\0", b"\0\0\0\0\0\0\0\0"):
                if b.startswith(prefix):
                    b = b[8:]
            try:
                v = b.decode("utf-8")
            except UnicodeDecodeError:
                v = b.decode("latin-1")
        if isinstance(v, list | tuple) and v and all(isinstance(x, str) for x in v):
            v = ", ".join(v)
        if not isinstance(v, str):
            return None
        parts = [p.strip() for p in v.split("\0")]
        s = ", ".join(p for p in parts if p)
        s = "".join(ch for ch in s if ch.isprintable()).strip()
        return s or None
    except Exception:
        return None


def _to_int(v: Any) -> int | None:
    if isinstance(v, bytes | bytearray) and len(v) == 1:
        return v[0]
    x = _to_float(v)
    if x is None or x != int(x):
        return None
    return int(x)


# ---------------------------------------------------------------------------- date and time

_DT_RE = re.compile(
    r"^\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?"
    r"(?:[.,](\d+))?)?\s*(Z|[+\-]\d{1,2}:?\d{2})?\s*$"
)
_OFFSET_RE = re.compile(r"^\s*(Z|([+\-])(\d{1,2}):?(\d{2}))\s*$")


def _parse_offset(s: str | None) -> timezone | None:
    if not s:
        return None
    m = _OFFSET_RE.match(s)
    if not m:
        return None
    if m.group(1) == "Z":
        return UTC
    hours, minutes = int(m.group(3)), int(m.group(4))
    if hours > 14 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if m.group(2) == "-" else delta)


def parse_exif_datetime(value: Any, offset: Any = None, subsec: Any = None) -> datetime | None:
    """An EXIF date-time ('2022:07:04 18:31:05', sec. 4.6.5) with OffsetTime* ('+08:00') and
    SubSecTime* ('123' = 0.123 s) → datetime, aware when an offset is known; None if blank or
    invalid ('0000:00:00 00:00:00', '    :  :  ')."""
    s = _to_str(value)
    if not s:
        return None
    m = _DT_RE.match(s)
    if not m:
        return None
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    hh = int(m.group(4) or 0)
    mm = int(m.group(5) or 0)
    ss = int(m.group(6) or 0)
    frac = m.group(7)
    sub = _to_str(subsec)
    if not frac and sub and sub.isdigit():
        frac = sub
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz = _parse_offset(m.group(8)) or _parse_offset(_to_str(offset))
    if hh == 24 and mm == 0 and ss == 0:  # some cameras write 24:00:00
        hh, extra_day = 0, 1
    else:
        extra_day = 0
    try:
        dt = datetime(y, mo, d, hh, mm, min(ss, 59), micro, tzinfo=tz)
    except ValueError:
        return None
    return dt + timedelta(days=extra_day)


# ---------------------------------------------------------------------------- GPS


def _gps_coord(value: Any, ref: Any, limit: float, negative: str) -> float | None:
    dms = _to_floats(value, 3)
    if dms is None:
        deg = _to_float(value)  # some writers store decimal degrees
        if deg is None:
            return None
        dms = [deg, 0.0, 0.0]
    d, m, s = dms
    if d < 0 or m < 0 or s < 0 or m >= 60.0001 or s >= 60.0001 * 60:
        return None
    deg = d + m / 60.0 + s / 3600.0
    r = (_to_str(ref) or "").upper()[:1]
    if r == negative:
        deg = -deg
    if abs(deg) > limit:
        return None
    return deg


def _gps(gps_raw: Any) -> tuple[float, float, float | None] | None:
    g = _gps_lookup(gps_raw)
    if not g:
        return None
    lat = _gps_coord(g.get("gpslatitude"), g.get("gpslatituderef"), 90.0, "S")
    lon = _gps_coord(g.get("gpslongitude"), g.get("gpslongituderef"), 180.0, "W")
    if lat is None or lon is None:
        return None
    # 0/0 is what cameras write when they had no fix
    if lat == 0.0 and lon == 0.0:
        return None
    alt = _to_float(g.get("gpsaltitude"))
    if alt is not None:
        ref = _to_int(g.get("gpsaltituderef"))
        if ref == 1:
            alt = -alt
        if not -12000.0 < alt < 100000.0:
            alt = None
    return (lat, lon, alt)


# ---------------------------------------------------------------------------- XMP


def xmp_value(xmp: bytes | str | None, name: str) -> str | None:
    """The value of the XMP property ``name`` ('aux:Lens'), as an attribute or an element
    (simple value or the first ``rdf:li`` of an Alt/Seq), or None."""
    if not xmp:
        return None
    if isinstance(xmp, bytes | bytearray):
        text = bytes(xmp).decode("utf-8", "replace")
    elif isinstance(xmp, str):
        text = xmp
    else:
        return None
    n = re.escape(name)
    m = re.search(rf"\b{n}\s*=\s*\"([^\"]*)\"", text) or re.search(rf"\b{n}\s*=\s*'([^']*)'", text)
    if m is None:
        m = re.search(rf"<{n}(?:\s[^>]*)?>(.*?)</{n}>", text, re.S)
        if m is not None:
            inner = m.group(1)
            li = re.search(r"<rdf:li(?:\s[^>]*)?>(.*?)</rdf:li>", inner, re.S)
            if li is not None:
                inner = li.group(1)
            if "<" in inner:
                return None
            return _unescape(inner)
        return None
    return _unescape(m.group(1))


def _unescape(s: str) -> str | None:
    s = (
        s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )
    return _to_str(s)


# ---------------------------------------------------------------------------- lens


def _lens_from_spec(spec: list[float]) -> str | None:
    """'24-70mm f/2.8-4' from LensSpecification (min f, max f, min N at min f, min N at max f);
    0 (or 0/0) means unknown."""
    fmin, fmax, nmin, nmax = spec
    if not fmin or fmin <= 0:
        return None

    def num(x: float) -> str:
        return f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"

    focal = num(fmin) if not fmax or abs(fmax - fmin) < 0.05 else f"{num(fmin)}-{num(fmax)}"
    text = f"{focal}mm"
    if nmin and nmin > 0:
        ap = num(nmin) if not nmax or abs(nmax - nmin) < 0.05 else f"{num(nmin)}-{num(nmax)}"
        text += f" f/{ap}"
    return text


def _bad_lens(s: str | None) -> bool:
    if not s:
        return True
    low = s.strip().lower()
    return low in {"", "-", "----", "unknown", "n/a", "none", "0", "(0)"} or set(low) <= {"-", " "}


# ---------------------------------------------------------------------------- main entry


def _first(t: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in t:
            return t[n]
    return None


def _positive(x: float | None, hi: float = math.inf) -> float | None:
    return x if x is not None and 0 < x < hi else None


def _crop_factor(t: Mapping[str, Any]) -> float | None:
    cf = _positive(
        _to_float(_first(t, "cropfactor", "scalefactor35efl", "scalefactorto35mmequivalent")), 20
    )
    if cf is not None:
        return cf
    xres = _positive(_to_float(t.get("focalplanexresolution")))
    yres = _positive(_to_float(t.get("focalplaneyresolution"))) or xres
    unit = _to_int(t.get("focalplaneresolutionunit"))
    width = _positive(_to_float(_first(t, "exifimagewidth", "imagewidth")))
    height = _positive(_to_float(_first(t, "exifimageheight", "imagelength")))
    if xres is None or yres is None or width is None or height is None:
        return None
    per_unit = _UNIT_MM.get(unit if unit is not None else 2)
    if per_unit is None:
        return None
    diag = math.hypot(width / xres * per_unit, height / yres * per_unit)
    if diag <= 0:
        return None
    cf = _FULL_FRAME_DIAGONAL_MM / diag
    return cf if 0.1 < cf < 20 else None


def shot_info_from_exif(tags: Mapping[Any, Any], xmp: bytes | str | None = None) -> ShotInfo:
    """ShotInfo from EXIF/TIFF tags keyed by name (tifffile or Pillow spelling, any case) or id.

    Values may be ints, floats, (num, den) tuples, IFDRationals, bytes or str. ``xmp`` is the
    XMP packet (also taken from a 'XMLPacket'/'XMP' entry of ``tags``). Never raises on a
    malformed value: that field stays None. ``extra`` carries lens_make, lens_spec,
    lens_source, crop_factor, body_serial, subsec and the raw 'XMP' presence.
    """
    t = _lookup(tags if isinstance(tags, Mapping) else {})
    if xmp is None:
        raw_xmp = _first(t, "xmlpacket", "xmp", "xml:com.adobe.xmp")
        xmp = raw_xmp if isinstance(raw_xmp, bytes | bytearray | str) else None
    extra: dict[str, Any] = {}

    make = _to_str(t.get("make")) or xmp_value(xmp, "tiff:Make")
    model = _to_str(t.get("model")) or xmp_value(xmp, "tiff:Model")

    # Lens: LensModel, then maker/other tags, then XMP, then LensSpecification.
    lens = None
    for name, source in (
        ("lensmodel", "LensModel"),
        ("lensid", "LensID"),
        ("lens", "Lens"),
        ("lenstype", "LensType"),
        ("lensinfo", "LensInfo"),
    ):
        cand = _to_str(t.get(name))
        if not _bad_lens(cand) and not (cand or "").replace(".", "").isdigit():
            lens, extra["lens_source"] = cand, source
            break
    if lens is None:
        for name in ("aux:Lens", "exifEX:LensModel", "aux:LensID"):
            cand = xmp_value(xmp, name)
            if not _bad_lens(cand) and not (cand or "").isdigit():
                lens, extra["lens_source"] = cand, f"XMP {name}"
                break
    spec = _to_floats(t.get("lensspecification"), 4)
    if spec is None:
        spec = _to_floats(t.get("lensinfo"), 4)
    if spec is not None:
        extra["lens_spec"] = tuple(spec)
        if lens is None:
            lens = _lens_from_spec(spec)
            if lens:
                extra["lens_source"] = "LensSpecification"
    lens_make = _to_str(t.get("lensmake")) or xmp_value(xmp, "exifEX:LensMake")
    if lens_make:
        extra["lens_make"] = lens_make

    focal = _positive(_to_float(t.get("focallength")), 10000)
    f35 = _positive(_to_float(t.get("focallengthin35mmfilm")), 10000)
    if f35 is None and focal is not None:
        cf = _crop_factor(t)
        if cf is not None:
            extra["crop_factor"] = cf
            f35 = focal * cf

    fnum = _positive(_to_float(t.get("fnumber")), 1000)
    if fnum is None:
        av = _to_float(t.get("aperturevalue"))
        if av is not None and -2 < av < 30:
            fnum = 2.0 ** (av / 2.0)
    exposure = _positive(_to_float(t.get("exposuretime")), 1e6)
    if exposure is None:
        tv = _to_float(t.get("shutterspeedvalue"))
        if tv is not None and -20 < tv < 30:
            exposure = 2.0 ** (-tv)

    iso_raw = t.get("isospeedratings")
    iso = _positive(_to_float(iso_raw if not isinstance(iso_raw, list | tuple) else iso_raw[:1]))
    if iso is None or iso >= 65535:
        alt = _positive(_to_float(_first(t, "isospeed", "recommendedexposureindex")), 1e7)
        iso = alt or iso
    if iso is None:
        iso = _positive(_to_float(xmp_value(xmp, "exif:ISOSpeedRatings")), 1e7)

    dt = parse_exif_datetime(
        t.get("datetimeoriginal"), t.get("offsettimeoriginal"), t.get("subsectimeoriginal")
    )
    if dt is None:
        dt = parse_exif_datetime(
            t.get("datetimedigitized"), t.get("offsettimedigitized"), t.get("subsectimedigitized")
        )
    if dt is None:
        dt = parse_exif_datetime(t.get("datetime"), t.get("offsettime"), t.get("subsectime"))
    if dt is None:
        dt = parse_exif_datetime(
            xmp_value(xmp, "exif:DateTimeOriginal") or xmp_value(xmp, "xmp:CreateDate")
        )

    orientation = _to_int(t.get("orientation"))
    if orientation is None or not 1 <= orientation <= 8:
        orientation = 1

    gps = None
    try:
        gps = _gps(t.get("gpsinfo"))
    except Exception:
        gps = None

    serial = _to_str(t.get("bodyserialnumber"))
    if serial:
        extra["body_serial"] = serial
    for name, key in (("exifimagewidth", "width"), ("exifimageheight", "height")):
        v = _to_int(t.get(name))
        if v is not None and v > 0:
            extra[key] = v

    return ShotInfo(
        make=make,
        model=model,
        lens=lens,
        focal_length=focal,
        focal_length_35mm=f35,
        f_number=fnum,
        exposure_time=exposure,
        iso=iso,
        datetime=dt,
        gps=gps,
        orientation=orientation,
        software=_to_str(t.get("software")),
        artist=_to_str(t.get("artist")) or xmp_value(xmp, "dc:creator"),
        copyright=_to_str(t.get("copyright")) or xmp_value(xmp, "dc:rights"),
        extra=extra,
    )


# ---------------------------------------------------------------------------- Pillow


def _named(items: Iterable[tuple[int, Any]], names: Mapping[int, str]) -> dict[str, Any]:
    return {names.get(k, str(k)) if isinstance(k, int) else str(k): v for k, v in items}


def exif_from_pil(img: Any) -> dict[str, Any]:
    """IFD0 + Exif IFD + GPS IFD of a Pillow image, keyed by tag name ('GPSInfo' is a dict of
    GPS tag names); the XMP packet, when the file has one, under 'XMLPacket'. Works for JPEG,
    PNG, TIFF, WebP and HEIC/AVIF (after ``pillow_heif.register_heif_opener()``)."""
    from PIL import ExifTags

    out: dict[str, Any] = {}
    try:
        exif = img.getexif()
    except Exception:
        return out
    tag_names = {**_TAG_IDS, **ExifTags.TAGS}
    for k, v in exif.items():
        if k in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop):
            continue
        out[tag_names.get(k, str(k))] = v
    for ifd in (ExifTags.IFD.Exif,):
        try:
            out.update(_named(exif.get_ifd(ifd).items(), tag_names))
        except Exception:
            pass
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        if gps:
            out["GPSInfo"] = _named(gps.items(), ExifTags.GPSTAGS)
        else:
            out.pop("GPSInfo", None)
    except Exception:
        out.pop("GPSInfo", None)
    info = getattr(img, "info", {}) or {}
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
    if xmp is None and "XMLPacket" in out:
        xmp = out["XMLPacket"]
    if isinstance(xmp, bytes | bytearray | str) and xmp:
        out["XMLPacket"] = xmp
    return out
