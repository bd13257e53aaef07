"""Write a RawImage as a DNG 1.4 file (CFA or LinearRaw) that LibRaw, darktable and
RawTherapee open.

Tag layout per the Adobe DNG Specification 1.4/1.7 ch. 4 and 6, with TIFF/EP (ISO 12234-2)
capture tags in IFD0. Without a preview the raw image is IFD0; with a preview IFD0 holds the
8-bit RGB preview (NewSubFileType 1) and the raw image is its SubIFD (NewSubFileType 0), as
cameras and Adobe's converter write them. The data written is ``raw.data`` (the active area),
so ActiveArea is the whole image and DefaultCrop is relative to it, as in RawImage.

The EXIF values of ``raw.shot`` are written as TIFF/EP tags in IFD0 (ExposureTime, FNumber,
ISOSpeedRatings, DateTimeOriginal, FocalLength...), which LibRaw and exiftool read; no
separate Exif IFD is written.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..errors import OptionError
from ..output.atomic import atomic_path
from .image import RawImage
from .opcodes import serialize_opcode_list

__all__ = ["to_rational", "write_dng"]

# TIFF data types
BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL, DOUBLE = 1, 2, 3, 4, 5, 7, 10, 12


def to_rational(v: float, signed: bool = False) -> tuple[int, int]:
    """The smallest-denominator 32-bit fraction equal to ``v`` in float64, else the closest."""
    v = float(v)
    if not np.isfinite(v):
        raise OptionError(f"cannot store {v} as a DNG rational")
    hi = 2**31 - 1 if signed else 2**32 - 1
    best = None
    for max_den in (1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 2**31 - 1):
        f = Fraction(v).limit_denominator(max_den)
        if abs(f.numerator) > hi:
            # scale the denominator down so the numerator fits
            den = max(1, int(hi // max(abs(v), 1e-300)))
            f = Fraction(v).limit_denominator(min(max_den, den))
            if abs(f.numerator) > hi:
                raise OptionError(f"{v} is too large for a DNG rational")
        if f.numerator / f.denominator == v:
            return f.numerator, f.denominator
        best = f
    assert best is not None
    return best.numerator, best.denominator


def _rationals(values: Any, signed: bool) -> tuple[int, ...]:
    out: list[int] = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        out.extend(to_rational(v, signed))
    return tuple(out)


def _add_rational(tags: list, code: int, values: Any, signed: bool = False) -> None:
    vals = np.asarray(values, dtype=np.float64).ravel()
    tags.append(
        (code, SRATIONAL if signed else RATIONAL, vals.size, _rationals(vals, signed), True)
    )


def _add_levels_value(tags: list, code: int, values: Any) -> None:
    vals = np.asarray(values, dtype=np.float64).ravel()
    if np.all(vals == np.round(vals)) and np.all(vals >= 0) and np.all(vals < 2**32):
        tags.append((code, LONG, vals.size, tuple(int(v) for v in vals), True))
    else:
        _add_rational(tags, code, vals)


def _ascii(tags: list, code: int, s: str | None) -> None:
    if s:
        tags.append((code, ASCII, 0, str(s), True))


def _ifd0_tags(raw: RawImage) -> list[tuple]:
    """Tags that belong in IFD0: identity, colour (DNG ch. 6), capture (TIFF/EP)."""
    t: list[tuple] = []
    c = raw.color
    shot = raw.shot
    uses_v16 = any(op.id == 14 for ops in raw.opcodes.values() for op in ops)
    version = (1, 6, 0, 0) if uses_v16 else (1, 4, 0, 0)
    backward = (1, 6, 0, 0) if uses_v16 else (1, 3, 0, 0) if raw.opcodes else (1, 1, 0, 0)
    t.append((50706, BYTE, 4, bytes(version), True))
    t.append((50707, BYTE, 4, bytes(backward), True))
    _ascii(t, 271, shot.make)
    _ascii(t, 272, shot.model)
    _ascii(t, 315, shot.artist)
    _ascii(t, 33432, shot.copyright)
    ucm = raw.unique_camera_model or " ".join(x for x in (shot.make, shot.model) if x) or "oneinch"
    _ascii(t, 50708, ucm)
    t.append((274, SHORT, 1, int(shot.orientation or 1), True))
    for code, m in ((50721, c.color_matrix1), (50722, c.color_matrix2),
                    (50723, c.camera_calibration1), (50724, c.camera_calibration2),
                    (50964, c.forward_matrix1), (50965, c.forward_matrix2)):  # fmt: skip
        if m is not None:
            _add_rational(t, code, m, signed=True)
    if c.analog_balance is not None:
        _add_rational(t, 50727, c.analog_balance)
    if c.as_shot_neutral is not None:
        _add_rational(t, 50728, c.as_shot_neutral)
    elif c.as_shot_white_xy is not None:
        _add_rational(t, 50729, c.as_shot_white_xy)
    _add_rational(t, 50730, [c.baseline_exposure], signed=True)
    if c.illuminant1:
        t.append((50778, SHORT, 1, int(c.illuminant1), True))
    if c.illuminant2:
        t.append((50779, SHORT, 1, int(c.illuminant2), True))
    # TIFF/EP capture tags (ISO 12234-2 puts them in IFD0)
    if shot.exposure_time:
        _add_rational(t, 33434, [shot.exposure_time])
    if shot.f_number:
        _add_rational(t, 33437, [shot.f_number])
    if shot.iso:
        t.append((34855, SHORT, 1, int(min(65535, round(shot.iso))), True))
    if shot.datetime is not None:
        _ascii(t, 36867, shot.datetime.strftime("%Y:%m:%d %H:%M:%S"))
        off = shot.datetime.utcoffset()
        if off is not None:
            mins = int(off.total_seconds() // 60)
            sign = "+" if mins >= 0 else "-"
            _ascii(t, 36881, f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}")
    if shot.focal_length:
        _add_rational(t, 37386, [shot.focal_length])
    if shot.focal_length_35mm:
        t.append((41989, SHORT, 1, round(shot.focal_length_35mm), True))
    _ascii(t, 42036, shot.lens)
    return t


def _raw_tags(raw: RawImage) -> list[tuple]:
    """Tags of the raw IFD: CFA layout, levels, crop, noise profile, opcode lists."""
    t: list[tuple] = []
    h, w = raw.height, raw.width
    if raw.cfa is not None:
        ph, pw = raw.cfa.shape
        t.append((33421, SHORT, 2, (ph, pw), True))
        t.append(
            (33422, BYTE, ph * pw, bytes(int(v) for row in raw.cfa.pattern for v in row), True)
        )
        t.append((50710, BYTE, 3, bytes((0, 1, 2)), True))
        t.append((50711, SHORT, 1, 1, True))
    lv = raw.levels
    black = np.asarray(lv.black, dtype=np.float64)
    if black.ndim != 3:
        black = black.reshape(1, 1, -1)
    t.append((50713, SHORT, 2, (black.shape[0], black.shape[1]), True))
    _add_levels_value(t, 50714, black)
    if lv.black_delta_h is not None:
        _add_rational(t, 50715, lv.black_delta_h, signed=True)
    if lv.black_delta_v is not None:
        _add_rational(t, 50716, lv.black_delta_v, signed=True)
    white = np.asarray(lv.white, dtype=np.float64).ravel()
    t.append((50717, LONG, white.size, tuple(round(v) for v in white), True))
    if lv.linearization is not None:
        table = np.asarray(lv.linearization).ravel()
        t.append((50712, SHORT, table.size, tuple(int(v) for v in table), True))
    t.append((50829, LONG, 4, (0, 0, h, w), True))
    top, left, ch, cw = raw.default_crop if raw.default_crop else (0, 0, h, w)
    t.append((50719, LONG, 2, (int(left), int(top)), True))
    t.append((50720, LONG, 2, (int(cw), int(ch)), True))
    _add_rational(t, 50718, raw.default_scale)
    if raw.noise_profile is not None:
        npf = np.asarray(raw.noise_profile, dtype=np.float64).ravel()
        t.append((51041, DOUBLE, npf.size, tuple(float(v) for v in npf), True))
    for n, code in ((1, 51008), (2, 51009), (3, 51022)):
        ops = raw.opcodes.get(n)
        if ops:
            b = serialize_opcode_list(ops)
            t.append((code, UNDEFINED, len(b), b, True))
    return t


def write_dng(path: str | Path, raw: RawImage, *, preview: np.ndarray | None = None) -> None:
    """Write ``raw`` as an uncompressed DNG 1.4 at ``path`` (atomically: temp file + rename).

    ``raw.data`` must be uint16 (H, W) with a CFA pattern, or (H, W, 3) LinearRaw.
    ``preview`` (uint8 RGB (h, w, 3)) is stored as IFD0 with the raw image as its SubIFD.
    """
    data = np.asarray(raw.data)
    if data.dtype != np.uint16:
        if not np.issubdtype(data.dtype, np.integer) or data.min() < 0 or data.max() > 65535:
            raise OptionError("DNG data must be uint16 sensor values", path)
        data = data.astype(np.uint16)
    if data.ndim == 2:
        if raw.cfa is None:
            raise OptionError("a 2-D mosaic needs a CFA pattern", path)
        photometric, spp = 32803, 1
    elif data.ndim == 3 and data.shape[2] == 3:
        photometric, spp = 34892, 3
    else:
        raise OptionError(f"cannot write data of shape {data.shape} as DNG", path)
    data = np.ascontiguousarray(data)
    ifd0 = _ifd0_tags(raw)
    rawt = _raw_tags(raw)
    software = raw.shot.software or "oneinch"
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, byteorder="<") as tw:
        if preview is not None:
            pv = np.ascontiguousarray(preview)
            if pv.dtype != np.uint8 or pv.ndim != 3 or pv.shape[2] != 3:
                raise OptionError("preview must be uint8 RGB (h, w, 3)", path)
            tw.write(
                pv, photometric="rgb", subfiletype=1, subifds=1, software=software,
                extratags=ifd0, metadata=None, rowsperstrip=pv.shape[0],
            )  # fmt: skip
            tw.write(
                data, photometric=photometric, subfiletype=0, extratags=rawt,
                metadata=None, planarconfig="contig" if spp == 3 else None,
                rowsperstrip=data.shape[0],
            )  # fmt: skip
        else:
            tw.write(
                data, photometric=photometric, subfiletype=0, software=software,
                extratags=ifd0 + rawt, metadata=None,
                planarconfig="contig" if spp == 3 else None, rowsperstrip=data.shape[0],
            )  # fmt: skip
