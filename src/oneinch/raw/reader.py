"""open_raw(path): pixels through rawpy (LibRaw), DNG tags through tifffile.

Tag meanings follow the Adobe DNG Specification 1.7.0.0 (2023): ch. 4 (raw IFD, BlackLevel,
ActiveArea, DefaultCrop...), ch. 6 (colour tags), ch. 7 (opcode lists). Behaviour of LibRaw
0.22 on DNGs, measured on the files in ../shared/data (see tests/test_raw_reader.py):

- LinearizationTable: LibRaw's ``raw_image`` already holds the *linearised* values (the
  Blackmagic Pocket 4K 12-bit file decodes to values up to 65472 = table[4095]). So
  ``Levels.linearization`` is left None and the table is noted in ``tags``; BlackLevel and
  WhiteLevel apply to the linearised values, as the spec says.
- Lossy-JPEG DNG (Compression 34892, 8-bit): LibRaw maps the 8-bit samples through the
  MapPolynomial opcodes of OpcodeList2 to 16 bits (value = 65535·poly(x/255)). Those opcodes
  are therefore not put in ``RawImage.opcodes`` (listed in ``tags['opcodes_applied']``) and
  the levels become black 0, white 65535.
- GainMap (OpcodeList2) and WarpRectilinear (OpcodeList3) are *not* applied by LibRaw.
- LinearRaw DNGs come back from rawpy as an (H, W, 4) buffer whose 4th plane is empty; we
  keep the first SamplesPerPixel planes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import mmap
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tifffile

from ..errors import InputError, OneinchError, UnsupportedError
from .image import CameraColor, CFAPattern, Levels, Opcode, RawImage, ShotInfo
from .opcodes import parse_opcode_list

if TYPE_CHECKING:
    import rawpy

try:  # written in parallel by another engineer; keep working without it
    from .exif import shot_info_from_exif as _shot_info_from_exif
except ImportError:  # pragma: no cover
    _shot_info_from_exif = None

__all__ = ["MAX_PIXELS", "describe", "embedded_preview", "open_raw", "sniff_raw_kind"]

MAX_PIXELS = 1_000_000_000  # refuse anything declaring more than 1 gigapixel
MAX_BLACK_REPEAT = 8  # BlackLevelRepeatDim limit (DNG SDK kMaxBlackPattern)
# what reading a tag of an unexpected type/count raises (int(tuple), float('text'), ...)
_TAG_ERRORS = (TypeError, ValueError, IndexError, OverflowError)

# TIFF tag codes (TIFF 6.0, TIFF/EP, DNG 1.7)
T_SUBFILETYPE, T_WIDTH, T_LENGTH, T_BPS, T_COMPRESSION, T_PHOTOMETRIC = 254, 256, 257, 258, 259, 262
T_STRIP_OFFSETS, T_SPP, T_STRIP_COUNTS = 273, 277, 279
T_TILE_OFFSETS, T_TILE_COUNTS = 324, 325
PHOTOMETRIC_CFA, PHOTOMETRIC_LINEAR_RAW = 32803, 34892
COMPRESSION_VC5, COMPRESSION_LOSSY_JPEG = 9, 34892

_DNG_TAGS = {
    "ColorMatrix1": 50721,
    "ColorMatrix2": 50722,
    "CameraCalibration1": 50723,
    "CameraCalibration2": 50724,
    "AnalogBalance": 50727,
    "AsShotNeutral": 50728,
    "AsShotWhiteXY": 50729,
    "BaselineExposure": 50730,
    "CalibrationIlluminant1": 50778,
    "CalibrationIlluminant2": 50779,
    "ForwardMatrix1": 50964,
    "ForwardMatrix2": 50965,
    "NoiseProfile": 51041,
    "LinearizationTable": 50712,
    "BlackLevelRepeatDim": 50713,
    "BlackLevel": 50714,
    "BlackLevelDeltaH": 50715,
    "BlackLevelDeltaV": 50716,
    "WhiteLevel": 50717,
    "DefaultScale": 50718,
    "DefaultCropOrigin": 50719,
    "DefaultCropSize": 50720,
    "ActiveArea": 50829,
    "CFARepeatPatternDim": 33421,
    "CFAPattern": 33422,
    "CFAPlaneColor": 50710,
    "UniqueCameraModel": 50708,
    "DNGVersion": 50706,
    "OpcodeList1": 51008,
    "OpcodeList2": 51009,
    "OpcodeList3": 51022,
    "Orientation": 274,
}

# magic bytes -> kind (sniffed before anything else touches the file)
_MAGICS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (0, b"IIRO", "orf"),
    (0, b"IIRS", "orf"),
    (0, b"MMOR", "orf"),
    (0, b"IIU\x00", "rw2"),
    (0, b"FUJIFILM", "raf"),
    (6, b"HEAPCCDR", "crw"),
    (0, b"\x00MRM", "mrw"),
    (0, b"FOVb", "x3f"),
    (0, b"NOKIARAW", "nokia"),
    (0, b"ARRI\x12\x34\x56\x78", "ari"),
)
_RAW_FTYP_BRANDS = (b"crx ",)  # Canon CR3 (ISO-BMFF)


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """tifffile logs warnings on odd files; we report problems ourselves, in one line."""
    log = logging.getLogger("tifffile")
    old = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(old)


def _finished_image_kind(head: bytes) -> str | None:
    """The name of a finished-image format by its signature (what a user may hand to develop
    by mistake), else None."""
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim"):
        return "HEIF"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"
    if head[:2] == b"\xff\x0a" or head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "JPEG XL"
    return None


def sniff_raw_kind(head: bytes) -> str | None:
    """The container kind from the first bytes ('tiff', 'cr3', 'raf', ...) or None."""
    for off, magic, kind in _MAGICS:
        if head[off : off + len(magic)] == magic:
            return kind
    if head[4:8] == b"ftyp" and head[8:12] in _RAW_FTYP_BRANDS:
        return "cr3"
    return None


def _check_file(path: str | Path) -> tuple[Path, str, int]:
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", p)
    if p.is_dir():
        raise InputError("is a directory, not a raw file (`oneinch batch DIR -o OUT` develops a "
                         "folder)", p)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(64)
    except PermissionError:
        raise InputError("permission denied (cannot read the file)", p) from None
    except OSError as e:
        raise InputError(f"cannot read the file ({e.strerror or e})", p) from None
    if size == 0:
        raise InputError("file is empty", p)
    kind = sniff_raw_kind(head)
    if kind is None:
        photo = _finished_image_kind(head)
        if photo is not None:
            article = "an" if photo[0] in "AEIOU" else "a"
            raise InputError(f"{article} {photo} image, not a raw file (`oneinch frame` frames "
                             "finished photos)", p)
        if head[4:8] == b"ftyp":
            brand = head[8:12].decode("latin-1").strip()
            raise InputError(f"not a raw file (ISO-BMFF brand '{brand}', not a Canon CR3)", p)
        raise InputError(f"not a raw file (unrecognised header {head[:8]!r})", p)
    return p, kind, size


# ---------------------------------------------------------------- TIFF-level inspection


_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
               13: 4, 16: 8, 17: 8, 18: 8}


def _check_tag_extents(p: Path, size: int, max_ifds: int = 64) -> None:
    """Walk IFD0's chain and SubIFDs in the raw bytes (TIFF 6.0 §2) and refuse a tag whose value
    lies past the end of the file. tifffile drops such tags silently, but LibRaw still follows
    them (an OpcodeList pointing past the end made it spin), so they are caught here first."""
    with open(p, "rb") as f:
        try:  # mapped, not read: only the IFD pages are touched (a 50 MP DNG is 100 MB)
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            data = f.read()
    try:
        _walk_extents(p, data, size, max_ifds)
    except struct.error:
        raise InputError("truncated or corrupt TIFF/DNG: an IFD runs past the end", p) from None
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _walk_extents(p: Path, data: bytes, size: int, max_ifds: int) -> None:
    bo = "<" if data[:2] == b"II" else ">"
    todo = [struct.unpack_from(bo + "I", data, 4)[0]] if len(data) >= 8 else []
    seen: set[int] = set()
    while todo and len(seen) < max_ifds:
        off = todo.pop()
        if off in seen or off + 2 > size or off == 0:
            continue
        seen.add(off)
        (n,) = struct.unpack_from(bo + "H", data, off)
        if off + 2 + 12 * n + 4 > size:
            raise InputError(f"corrupt TIFF/DNG: an IFD at byte {off} runs past the end", p)
        for i in range(n):
            tag, typ, cnt, val = struct.unpack_from(bo + "HHII", data, off + 2 + 12 * i)
            nbytes = _TYPE_SIZES.get(typ, 1) * cnt
            if nbytes > 4 and val + nbytes > size:
                raise InputError(
                    f"truncated or corrupt: tag {tag} points past the end of the file "
                    f"({val + nbytes} > {size} bytes)",
                    p,
                )
            if tag == 330:  # SubIFDs
                if cnt == 1:
                    todo.append(val)
                elif nbytes <= size:
                    todo.extend(struct.unpack_from(bo + f"{min(cnt, 64)}I", data, val))
        todo.append(struct.unpack_from(bo + "I", data, off + 2 + 12 * n)[0])


def _walk_ifds(tf: tifffile.TiffFile) -> list[tifffile.TiffPage]:
    """IFD0, the next IFDs and their SubIFDs (two levels), in file order."""
    out: list[tifffile.TiffPage] = []
    seen: set[int] = set()

    def add(page: tifffile.TiffPage, depth: int) -> None:
        if page.offset in seen or len(out) > 64:
            return
        seen.add(page.offset)
        out.append(page)
        if depth >= 2:
            return
        for off in page.subifds or ():
            try:
                tf.filehandle.seek(off)
                add(tifffile.TiffPage(tf, index=0), depth + 1)
            except Exception:  # a broken SubIFD is reported by the size checks
                continue

    for i in range(64):
        try:
            page = tf.pages[i]
        except (IndexError, Exception):
            break
        if not isinstance(page, tifffile.TiffPage):
            break
        add(page, 0)
    return out


def _tag(page: tifffile.TiffPage | None, code: int) -> Any:
    if page is None:
        return None
    t = page.tags.get(code)
    return None if t is None else t


def _val(page: tifffile.TiffPage | None, code: int) -> Any:
    t = _tag(page, code)
    return None if t is None else t.value


def _num(tag: Any) -> np.ndarray | None:
    """A numeric tag as float64 array, RATIONAL/SRATIONAL pairs divided out."""
    if tag is None:
        return None
    v = tag.value
    if isinstance(v, bytes | bytearray):
        a = np.frombuffer(bytes(v), dtype=np.uint8).astype(np.float64)
    else:
        a = np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()
    if int(tag.dtype) in (5, 10):  # RATIONAL, SRATIONAL
        num, den = a[0::2], a[1::2]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(den != 0, num / np.where(den == 0, 1, den), 0.0)
    return a


def _ifd_pixels(page: tifffile.TiffPage) -> int:
    w = _val(page, T_WIDTH) or 0
    h = _val(page, T_LENGTH) or 0
    return int(w) * int(h)


def _payload(page: tifffile.TiffPage) -> tuple[tuple[int, ...], tuple[int, ...]]:
    offs = _val(page, T_TILE_OFFSETS) or _val(page, T_STRIP_OFFSETS) or ()
    cnts = _val(page, T_TILE_COUNTS) or _val(page, T_STRIP_COUNTS) or ()
    offs = (offs,) if isinstance(offs, int) else tuple(offs)
    cnts = (cnts,) if isinstance(cnts, int) else tuple(cnts)
    return offs, cnts


def _raw_ifd(pages: list[tifffile.TiffPage], is_dng: bool) -> tifffile.TiffPage | None:
    """The full-resolution raw IFD: NewSubFileType 0 and CFA/LinearRaw for a DNG."""
    if not pages:
        return None
    if is_dng:
        cands = [
            p
            for p in pages
            if int(_val(p, T_SUBFILETYPE) or 0) == 0
            and _val(p, T_PHOTOMETRIC) in (PHOTOMETRIC_CFA, PHOTOMETRIC_LINEAR_RAW)
        ]
        if not cands:
            cands = [p for p in pages if int(_val(p, T_SUBFILETYPE) or 0) == 0]
        if cands:
            return max(cands, key=_ifd_pixels)
    return max(pages, key=_ifd_pixels)


def _tiff_file(p: Path) -> tifffile.TiffFile:
    try:
        return tifffile.TiffFile(p)
    except Exception as e:
        raise InputError(f"corrupt TIFF structure ({_one_line(e)})", p) from None


def _tiff_precheck(p: Path, size: int) -> dict[str, Any]:
    """Read the TIFF structure; refuse huge, truncated or VC-5 files before decoding."""
    with _quiet_tifffile():
        tf = _tiff_file(p)
        with tf:
            pages = _walk_ifds(tf)
            if not pages:
                raise InputError("no readable image directory (corrupt or truncated TIFF)", p)
            ifd0 = pages[0]
            is_dng = _val(ifd0, _DNG_TAGS["DNGVersion"]) is not None
            for pg in pages:
                n = _ifd_pixels(pg)
                if n > MAX_PIXELS:
                    w, h = _val(pg, T_WIDTH), _val(pg, T_LENGTH)
                    raise InputError(
                        f"declares a {w}x{h} image ({n / 1e9:.2f} gigapixels, over the 1 "
                        "gigapixel limit)",
                        p,
                    )
            raw = _raw_ifd(pages, is_dng)
            comp = int(_val(raw, T_COMPRESSION) or 1) if raw is not None else 1
            if is_dng and comp == COMPRESSION_VC5:
                raise UnsupportedError(
                    "GoPro GPR (DNG with VC-5 wavelet compression, Compression=9) is not "
                    "decodable by LibRaw; convert it to a plain DNG first with GoPro's "
                    "gpr_tools (gpr_tools -i in.GPR -o out.DNG)",
                    p,
                )
            if is_dng:  # LibRaw applies OpcodeList2 itself: refuse corrupt lists before it runs
                _check_tag_extents(p, size)
                for pg in {id(x): x for x in (raw, ifd0) if x is not None}.values():
                    for code in (_DNG_TAGS[f"OpcodeList{n}"] for n in (1, 2, 3)):
                        v = _val(pg, code)
                        if v is not None:
                            parse_opcode_list(bytes(v), str(p))
            info: dict[str, Any] = {"is_dng": is_dng, "compression": comp}
            if raw is not None:
                offs, cnts = _payload(raw)
                if not offs or not cnts:
                    raise InputError("the raw image has no pixel data (header-only file)", p)
                if len(offs) != len(cnts):
                    raise InputError("corrupt strip/tile tables in the raw image", p)
                end = max(o + c for o, c in zip(offs, cnts, strict=True))
                if end > size:
                    raise InputError(
                        f"truncated: raw pixel data ends at byte {end} but the file has {size} "
                        "bytes",
                        p,
                    )
                info["payload_bytes"] = int(sum(cnts))
                info["raw_pixels"] = _ifd_pixels(raw)
                info["samples"] = int(_val(raw, T_SPP) or 1)
                info["plain"] = is_dng and _plain_cfa(raw)
        return info


def _one_line(e: BaseException) -> str:
    msg = e.args[0] if e.args else str(e)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    msg = " ".join(str(msg).split())
    return f"{type(e).__name__}: {msg}" if not msg else msg


# ---------------------------------------------------------------- DNG tags


class _DngTags:
    """DNG tags looked up in the raw IFD first, then IFD0 (where the colour tags live)."""

    def __init__(self, raw: tifffile.TiffPage, ifd0: tifffile.TiffPage) -> None:
        self.raw, self.ifd0 = raw, ifd0

    def tag(self, name: str) -> Any:
        code = _DNG_TAGS[name]
        t = _tag(self.raw, code)
        return t if t is not None else _tag(self.ifd0, code)

    def num(self, name: str) -> np.ndarray | None:
        return _num(self.tag(name))

    def matrix(self, name: str, rows: int = 3) -> np.ndarray | None:
        a = self.num(name)
        if a is None or a.size % 3:
            return None
        return a.reshape(-1, 3) if rows == 0 else a.reshape(a.size // 3, 3)

    def square(self, name: str) -> np.ndarray | None:
        a = self.num(name)
        if a is None:
            return None
        n = round(np.sqrt(a.size))
        return a.reshape(n, n) if n * n == a.size else None

    def raw_bytes(self, name: str) -> bytes | None:
        t = self.tag(name)
        return None if t is None else bytes(t.value)


# DNG camera-profile tags (DNG 1.6 ch. 6) handed to isp.dcp.from_tags: HueSatMap, LookTable,
# ProfileToneCurve, names and encodings.
_PROFILE_TAGS = (50708, 50721, 50722, 50778, 50779, 50932, 50936, 50937, 50938, 50939, 50940,
                 50941, 50942, 50964, 50965, 50981, 50982, 51107, 51108, 51109, 51110)


def _profile_tags(raw: tifffile.TiffPage, ifd0: tifffile.TiffPage) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for code in _PROFILE_TAGS:
        t = _tag(raw, code)
        t = t if t is not None else _tag(ifd0, code)
        if t is None:
            continue
        v = t.value
        if isinstance(v, bytes):
            v = v.split(b"\0", 1)[0].decode("latin-1")
        if isinstance(v, str):
            out[code] = v.strip("\0 ")
        else:
            num = _num(t)
            if num is not None:
                out[code] = num
    return out


def _dng_color(t: _DngTags) -> CameraColor:
    ill1 = t.num("CalibrationIlluminant1")
    ill2 = t.num("CalibrationIlluminant2")
    be = t.num("BaselineExposure")
    xy = t.num("AsShotWhiteXY")
    if xy is not None and (xy.size < 2 or not np.all((xy[:2] > 0) & (xy[:2] < 1))):
        xy = None
    bexp = float(be[0]) if be is not None and be.size and np.isfinite(be[0]) else 0.0
    return CameraColor(
        color_matrix1=_m33(t.matrix("ColorMatrix1")),
        color_matrix2=_m33(t.matrix("ColorMatrix2")),
        forward_matrix1=_m33(t.matrix("ForwardMatrix1")),
        forward_matrix2=_m33(t.matrix("ForwardMatrix2")),
        camera_calibration1=_m33(t.square("CameraCalibration1")),
        camera_calibration2=_m33(t.square("CameraCalibration2")),
        illuminant1=int(ill1[0]) if ill1 is not None and ill1.size else 0,
        illuminant2=int(ill2[0]) if ill2 is not None and ill2.size else 0,
        analog_balance=_v3(t.num("AnalogBalance")),
        as_shot_neutral=_v3(t.num("AsShotNeutral")),
        as_shot_white_xy=(float(xy[0]), float(xy[1])) if xy is not None else None,
        # DNG BaselineExposure beyond +-10 stops is not a real camera's: treat as corrupt
        baseline_exposure=bexp if abs(bexp) <= 10 else 0.0,
        source="dng",
    )


def _m33(m: np.ndarray | None) -> np.ndarray | None:
    """A 3x3 finite matrix, or None (3-colour pipeline; corrupt or 4-colour tags dropped)."""
    if m is None or m.shape != (3, 3) or not np.isfinite(m).all():
        return None
    return m


def _v3(v: np.ndarray | None) -> np.ndarray | None:
    """Three finite positive values (AsShotNeutral, AnalogBalance), or None."""
    if v is None or v.size != 3 or not np.all(np.isfinite(v) & (v > 0)):
        return None
    return v


def _dng_levels(t: _DngTags, spp: int, bps: int, height: int, width: int) -> Levels:
    dim = t.num("BlackLevelRepeatDim")
    rr, rc = (int(dim[0]), int(dim[1])) if dim is not None and dim.size >= 2 else (1, 1)
    if not (1 <= rr <= MAX_BLACK_REPEAT and 1 <= rc <= MAX_BLACK_REPEAT and 1 <= spp <= 4):
        rr, rc, spp = 1, 1, max(1, min(spp, 4))  # checked before anything is allocated
    black = t.num("BlackLevel")
    if black is None:
        black = np.zeros(rr * rc * spp)
    if black.size == 1:
        black = np.full(rr * rc * spp, black[0])
    if black.size != rr * rc * spp or not (
        1 <= rr <= MAX_BLACK_REPEAT and 1 <= rc <= MAX_BLACK_REPEAT
    ):
        rr, rc = 1, 1
        black = np.resize(black, spp)
    white = t.num("WhiteLevel")
    if white is None:
        white = np.full(spp, float(2**bps - 1))
    white = np.resize(white, spp)
    dh = t.num("BlackLevelDeltaH")
    dv = t.num("BlackLevelDeltaV")
    return Levels(
        black=black.reshape(rr, rc, spp).astype(np.float64),
        white=white.astype(np.float64),
        black_delta_h=dh if dh is not None and dh.size == width else None,
        black_delta_v=dv if dv is not None and dv.size == height else None,
    )


def _dng_cfa(t: _DngTags) -> CFAPattern | None:
    dim = t.num("CFARepeatPatternDim")
    pat = t.num("CFAPattern")
    if pat is None:
        return None
    rows, cols = (int(dim[0]), int(dim[1])) if dim is not None and dim.size >= 2 else (2, 2)
    if pat.size != rows * cols:
        return None
    plane = t.num("CFAPlaneColor")
    plane = plane.astype(int) if plane is not None else np.array([0, 1, 2])
    idx = pat.astype(int).reshape(rows, cols)
    if idx.max() >= plane.size:
        raise UnsupportedError(f"CFA pattern refers to colour plane {idx.max()}", None)
    colours = plane[idx]
    if colours.max() > 2:
        raise UnsupportedError("non-RGB CFA (e.g. CMYG) is not supported", None)
    return CFAPattern.from_array(colours)


def _opcode_lists(t: _DngTags, path: Path) -> dict[int, tuple[Opcode, ...]]:
    out: dict[int, tuple[Opcode, ...]] = {}
    for n in (1, 2, 3):
        b = t.raw_bytes(f"OpcodeList{n}")
        if b:
            out[n] = parse_opcode_list(b, str(path))
    return out


def _exif_tags(pages: list[tifffile.TiffPage]) -> tuple[dict[str, Any], bytes | None]:
    """IFD0 tags by name + Exif IFD + GPS IFD (as a dict 'GPSInfo'), and the XMP packet."""
    tags: dict[str, Any] = {}
    xmp = None
    if not pages:
        return tags, None
    ifd0 = pages[0]
    for tg in ifd0.tags.values():
        if tg.code in (T_STRIP_OFFSETS, T_STRIP_COUNTS, T_TILE_OFFSETS, T_TILE_COUNTS):
            continue
        if tg.name == "ExifTag" and isinstance(tg.value, dict):
            tags.update(tg.value)
        elif tg.name == "GPSTag" and isinstance(tg.value, dict):
            tags["GPSInfo"] = dict(tg.value)
        elif tg.name == "XMP":
            xmp = bytes(tg.value) if isinstance(tg.value, bytes | bytearray) else None
        elif not tg.name[0].isdigit():
            tags.setdefault(tg.name, tg.value)
    return tags, xmp


def _basic_shot(tags: Mapping[str, Any]) -> ShotInfo:  # pragma: no cover - fallback only
    def f(v: Any) -> float | None:
        try:
            if isinstance(v, tuple) and len(v) == 2:
                return v[0] / v[1] if v[1] else None
            return float(v)
        except (TypeError, ValueError):
            return None

    return ShotInfo(
        make=tags.get("Make"),
        model=tags.get("Model"),
        lens=tags.get("LensModel"),
        focal_length=f(tags.get("FocalLength")),
        f_number=f(tags.get("FNumber")),
        exposure_time=f(tags.get("ExposureTime")),
        iso=f(tags.get("ISOSpeedRatings")),
        orientation=int(tags.get("Orientation", 1) or 1),
    )


def _shot_info(tags: Mapping[str, Any], xmp: bytes | None) -> ShotInfo:
    if _shot_info_from_exif is not None:
        try:
            return _shot_info_from_exif(tags, xmp)
        except Exception:  # EXIF is informative; a broken field must not stop a develop
            pass
    return _basic_shot(tags)


def _libraw_shot(rp: rawpy.RawPy) -> dict[str, Any]:
    """EXIF-named values from LibRaw, for containers tifffile cannot read (CR3, RAF...)."""
    tags: dict[str, Any] = {}
    try:
        o = rp.other
        if o.iso_speed:
            tags["ISOSpeedRatings"] = float(o.iso_speed)
        if o.shutter_speed:
            tags["ExposureTime"] = float(o.shutter_speed)
        if o.aperture:
            tags["FNumber"] = float(o.aperture)
        if o.focal_length:
            tags["FocalLength"] = float(o.focal_length)
        if o.timestamp:
            tags["DateTimeOriginal"] = o.timestamp.strftime("%Y:%m:%d %H:%M:%S")
        if o.artist:
            tags["Artist"] = o.artist
        lens = rp.lens
        if lens.model:
            tags["LensModel"] = lens.model
    except Exception:
        pass
    return tags


# ---------------------------------------------------------------- LibRaw-only metadata


def _libraw_pattern(rp: rawpy.RawPy, path: Path) -> CFAPattern | None:
    pat = rp.raw_pattern
    if pat is None:
        return None
    desc = rp.color_desc.decode("ascii", "replace")
    lut = []
    for ch in desc:
        if ch not in "RGB":
            raise UnsupportedError(f"non-RGB colour filter array ({desc}) is not supported", path)
        lut.append("RGB".index(ch))
    return CFAPattern.from_array(np.asarray(lut)[np.asarray(pat, dtype=int)])


def libraw_color(rp: rawpy.RawPy) -> CameraColor:
    """CameraColor from LibRaw's tables (non-DNG raws): XYZ->camera matrix as D65 ColorMatrix1.

    ``rgb_xyz_matrix`` is LibRaw's (Coffin's dcraw) adobe_coeff table, i.e. the Adobe DNG
    ColorMatrix for D65; the neutral is the inverse of the camera's as-shot WB multipliers.
    """
    m = np.asarray(rp.rgb_xyz_matrix, dtype=np.float64)[:3, :3]
    cm = m if np.any(m) else None
    wb = np.asarray(rp.camera_whitebalance, dtype=np.float64)[:3]
    neutral = None
    if np.all(wb > 0) and np.isfinite(wb).all():
        neutral = wb[1] / wb
    return CameraColor(
        color_matrix1=cm,
        illuminant1=21 if cm is not None else 0,
        as_shot_neutral=neutral,
        source="libraw",
    )


def libraw_levels(rp: rawpy.RawPy, cfa: CFAPattern | None, samples: int) -> Levels:
    """Per-CFA-position black levels and white level as LibRaw reports them."""
    bl = np.asarray(rp.black_level_per_channel, dtype=np.float64)
    white = float(rp.white_level)
    if cfa is not None:
        pat = np.asarray(rp.raw_pattern, dtype=int)
        black = bl[pat][:, :, None]
        return Levels(black=black, white=np.array([white]))
    return Levels(
        black=np.resize(bl[:samples], samples)[None, None, :], white=np.full(samples, white)
    )


# ---------------------------------------------------------------- open_raw


def _open_libraw(p: Path) -> rawpy.RawPy:
    import rawpy  # (here: an uncompressed DNG is read without it, 5 ms of import saved)

    try:
        return rawpy.imread(str(p))
    except rawpy.LibRawError as e:
        raise InputError(f"LibRaw cannot read it ({_one_line(e)})", p) from None
    except OSError as e:
        raise InputError(f"cannot read the file ({e.strerror or e})", p) from None


def open_raw(path: str | Path) -> RawImage:
    """Read a camera raw or DNG into a RawImage; the input file is never modified.

    Raises InputError (missing, unreadable, empty, not a raw, truncated, header-only, over
    1 gigapixel, LibRaw errors) or UnsupportedError (VC-5 GPR, non-RGB CFA).
    """
    p, kind, size = _check_file(path)
    tinfo: dict[str, Any] = {}
    pages: list[tifffile.TiffPage] = []
    tf = None
    if kind in ("tiff", "orf", "rw2"):
        try:
            tinfo = _tiff_precheck(p, size)
        except _TAG_ERRORS as e:  # a tag of the wrong type or shape (hostile/corrupt file)
            raise InputError(f"corrupt TIFF tags ({_one_line(e)})", p) from None
    is_dng = bool(tinfo.get("is_dng"))

    if tinfo.get("plain"):
        return _open_plain_dng(p, kind, tinfo)
    import rawpy

    rp = _open_libraw(p)
    try:
        s = rp.sizes
        n = int(s.raw_height) * int(s.raw_width)
        if n > MAX_PIXELS:
            raise InputError(
                f"declares a {s.raw_width}x{s.raw_height} raw image (over the 1 gigapixel limit)",
                p,
            )
        # Any lossless raw needs at least ~1 bit per sample; lossy JPEG DNGs far less.
        samples = max(1, int(tinfo.get("samples", 1)))
        lossy = tinfo.get("compression") == COMPRESSION_LOSSY_JPEG
        min_bytes = n * samples // (64 if lossy else 8)
        have = int(tinfo.get("payload_bytes", size))
        if n == 0 or have < min_bytes:
            raise InputError(
                f"holds no real pixel data ({have} bytes for a {s.raw_width}x{s.raw_height} "
                "raw image: header-only or stripped file)",
                p,
            )
        try:
            raw_full = np.array(rp.raw_image, copy=True)
            cfa_lr = _libraw_pattern(rp, p) if raw_full.ndim == 2 else None
            lr_color = libraw_color(rp)
            lr_levels = libraw_levels(rp, cfa_lr, raw_full.shape[2] if raw_full.ndim == 3 else 1)
            visible = (s.top_margin, s.left_margin, s.height, s.width)
            lr_shot = _libraw_shot(rp)
            try:
                preview_available = rp.extract_thumb() is not None
            except rawpy.LibRawError:
                preview_available = False
        except rawpy.LibRawError as e:
            raise InputError(f"LibRaw cannot decode it ({_one_line(e)})", p) from None
        except NotImplementedError as e:  # rawpy: a CFA layout it does not describe
            raise InputError(f"unsupported sensor layout ({_one_line(e)})", p) from None
    finally:
        rp.close()

    if _all_zero(raw_full):
        raise InputError("holds no image data (all pixels are zero: header-only file)", p)

    tags: dict[str, Any] = {"container": kind, "preview_available": preview_available}
    if kind in ("tiff", "orf", "rw2"):
        with _quiet_tifffile():
            try:
                tf = tifffile.TiffFile(p)
                pages = _walk_ifds(tf)
            except Exception:
                pages = []
    try:
        exif, xmp = _exif_tags(pages)
        if not exif:
            exif = lr_shot
        shot = _shot_info(exif, xmp)
        if is_dng and pages:
            return _build_dng(p, pages, raw_full, shot, tags, tinfo)
    except _TAG_ERRORS as e:
        raise InputError(f"corrupt DNG tags ({_one_line(e)})", p) from None
    except OneinchError as e:  # e.g. from _dng_cfa, which does not know the file
        if e.path is None:
            raise type(e)(e.detail, p) from None
        raise
    finally:
        if tf is not None:
            tf.close()

    top, left, h, w = visible
    data = raw_full[top : top + h, left : left + w] if raw_full.ndim == 2 else raw_full
    if data.ndim == 3:
        data = data[..., :3]
    return RawImage(
        path=str(p),
        data=np.ascontiguousarray(data, dtype=np.uint16),
        cfa=cfa_lr,
        levels=lr_levels,
        color=lr_color,
        shot=shot,
        default_crop=None,
        is_dng=False,
        tags=tags,
    )


def _all_zero(a: np.ndarray) -> bool:
    """No sample above zero (a header-only or blanked file). For unsigned samples the maximum
    says it (a SIMD reduction: 1.7 ms at 50 MP, where ``any()`` casts every sample to bool:
    7.5 ms). Every 64th row is looked at first: a real picture has a sample above zero there,
    and the develop then reads the rest of a memory-mapped raw in parallel strips, not here
    (50 MP: 0.4 ms instead of 14-24 ms of page faults on one thread)."""
    if a.ndim >= 2 and a.shape[0] >= 256 and not _all_zero_full(a[::64]):
        return False
    return _all_zero_full(a)


def _all_zero_full(a: np.ndarray) -> bool:
    if a.dtype.kind == "u":
        return a.size == 0 or int(a.max()) == 0
    return not a.any()


def _mapped(raw: tifffile.TiffPage, p: Path) -> np.ndarray | None:
    """The raw IFD's samples as a read-only view of the file's pages (a memory map), when
    they lie in one contiguous run in native byte order within the file; else None (read
    them). The develop reads each sample once, strip by strip: straight from the page cache,
    with no copy and no fresh zeroed memory (50 MP, 100 MB: 78-90 ms to read into a new
    array, 10 ms to map and touch). The map is private, copy-on-write (``ACCESS_COPY``): a
    write would land in a private copy of its page, never in the file; and the array is
    writeable, as the kernels compiled ahead of time expect. (A file replaced while it is
    developed, as oneinch's own outputs are, by a rename, leaves the map on the old file; one
    truncated in place by another program ends the process with SIGBUS.)"""
    dtype = np.dtype(raw.parent.byteorder + "u2")
    if not raw.is_contiguous or not dtype.isnative or len(raw.shape) != 2:
        return None
    offset, nbytes = int(raw.dataoffsets[0]), int(sum(raw.databytecounts))
    h, w = raw.shape
    if nbytes != h * w * 2 or offset < 0:
        return None
    with open(p, "rb") as f:
        if offset + nbytes > os.fstat(f.fileno()).st_size:
            return None  # (truncated: the read reports it)
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        except (OSError, ValueError):  # a file system (or file) that cannot be mapped
            return None
    return np.frombuffer(mm, dtype, h * w, offset).reshape(h, w)


def _plain_cfa(raw: tifffile.TiffPage) -> bool:
    """An uncompressed 16-bit single-plane CFA raw IFD without a LinearizationTable: its stored
    values are read as they are (tifffile), which is what LibRaw's raw_image holds for such a
    file (measured equal on the GoPro DNGs and our own), without LibRaw's unpack and copy."""
    bps = _val(raw, T_BPS)
    bps = bps[0] if isinstance(bps, tuple) else bps
    return (
        int(_val(raw, T_COMPRESSION) or 1) == 1
        and _val(raw, T_PHOTOMETRIC) == PHOTOMETRIC_CFA
        and int(bps or 0) == 16
        and int(_val(raw, T_SPP) or 1) == 1
        and int(_val(raw, 284) or 1) == 1  # PlanarConfiguration
        and _val(raw, _DNG_TAGS["LinearizationTable"]) is None
    )


def _open_plain_dng(p: Path, kind: str, tinfo: Mapping[str, Any]) -> RawImage:
    """open_raw for a :func:`_plain_cfa` DNG: pixels and tags from tifffile alone."""
    with _quiet_tifffile():
        tf = _tiff_file(p)
    with tf:
        pages = _walk_ifds(tf)
        raw = _raw_ifd(pages, True)
        if raw is None:
            raise InputError("no raw image directory", p)
        try:
            raw_full = _mapped(raw, p)
            if raw_full is None:
                raw_full = raw.asarray()
        except Exception as e:
            raise InputError(f"cannot read the raw pixels ({_one_line(e)})", p) from None
        if raw_full.ndim != 2 or raw_full.dtype != np.uint16:
            raise InputError(f"unexpected raw pixel layout {raw_full.shape} {raw_full.dtype}", p)
        if _all_zero(raw_full):
            raise InputError("holds no image data (all pixels are zero: header-only file)", p)
        previews = any(
            pg is not raw and _val(pg, T_PHOTOMETRIC) in (2, 6) and _ifd_pixels(pg) > 0
            for pg in pages
        )
        tags: dict[str, Any] = {"container": kind, "preview_available": previews}
        try:
            exif, xmp = _exif_tags(pages)
            return _build_dng(p, pages, raw_full, _shot_info(exif, xmp), tags, tinfo)
        except _TAG_ERRORS as e:
            raise InputError(f"corrupt DNG tags ({_one_line(e)})", p) from None
        except OneinchError as e:
            if e.path is None:
                raise type(e)(e.detail, p) from None
            raise


def _build_dng(
    p: Path,
    pages: list[tifffile.TiffPage],
    raw_full: np.ndarray,
    shot: ShotInfo,
    tags: dict[str, Any],
    tinfo: Mapping[str, Any],
) -> RawImage:
    ifd0 = pages[0]
    raw = _raw_ifd(pages, True)
    assert raw is not None
    t = _DngTags(raw, ifd0)
    spp = int(_val(raw, T_SPP) or 1)
    bps_v = _val(raw, T_BPS)
    bps = int(bps_v[0] if isinstance(bps_v, tuple) else (bps_v or 16))
    full_h, full_w = int(_val(raw, T_LENGTH)), int(_val(raw, T_WIDTH))
    photometric = _val(raw, T_PHOTOMETRIC)
    if raw_full.shape[:2] != (full_h, full_w):
        raise InputError(
            f"LibRaw decoded {raw_full.shape[1]}x{raw_full.shape[0]} pixels but the raw IFD "
            f"declares {full_w}x{full_h}",
            p,
        )
    aa = t.num("ActiveArea")
    top, left, bottom, right = (0, 0, full_h, full_w)
    if aa is not None and aa.size == 4:
        top, left, bottom, right = (int(v) for v in aa)
        if not (0 <= top < bottom <= full_h and 0 <= left < right <= full_w):
            raise InputError(f"ActiveArea {tuple(aa.astype(int))} outside the raw image", p)
    if photometric == PHOTOMETRIC_LINEAR_RAW or raw_full.ndim == 3:
        if raw_full.ndim != 3:
            raise InputError("LinearRaw DNG decoded as a single plane", p)
        data = raw_full[top:bottom, left:right, :spp]
        cfa = None
    else:
        data = raw_full[top:bottom, left:right]
        cfa = _dng_cfa(t)
        if cfa is None:
            raise InputError("CFA DNG without a usable CFAPattern", p)
        cfa = cfa.shifted(top, left)
    h, w = data.shape[:2]
    levels = _dng_levels(t, spp, bps, h, w)
    opcodes = _opcode_lists(t, p)

    lin = t.num("LinearizationTable")
    if lin is not None:
        # Measured: LibRaw's raw_image already holds table[stored] (see module docstring).
        tags["linearization_table_entries"] = int(lin.size)
        tags["linearization_applied_by_libraw"] = True
    if tinfo.get("compression") == COMPRESSION_LOSSY_JPEG:
        applied = tuple(op for op in opcodes.get(2, ()) if op.name == "MapPolynomial")
        if applied:
            rest = tuple(op for op in opcodes[2] if op.name != "MapPolynomial")
            opcodes = {k: v for k, v in opcodes.items() if k != 2}
            if rest:
                opcodes[2] = rest
            tags["opcodes_applied"] = {2: applied}
        levels = Levels(
            black=np.zeros((1, 1, spp)), white=np.full(spp, 65535.0)
        )  # LibRaw rescales lossy 8-bit samples to 16 bits
        tags["lossy_jpeg_rescaled_by_libraw"] = True

    dco, dcs = t.num("DefaultCropOrigin"), t.num("DefaultCropSize")
    crop = None
    if dco is not None and dcs is not None and dco.size == 2 and dcs.size == 2:
        crop = (round(dco[1]), round(dco[0]), round(dcs[1]), round(dcs[0]))
        ct, cl, ch, cw = crop
        if ct < 0 or cl < 0 or ct + ch > h or cl + cw > w or ch <= 0 or cw <= 0:
            crop = None
            tags["default_crop_invalid"] = True
    ds = t.num("DefaultScale")
    scale = (float(ds[0]), float(ds[1])) if ds is not None and ds.size == 2 else (1.0, 1.0)
    if not all(np.isfinite(scale)) or min(scale) <= 0 or max(scale) / min(scale) > 4:
        scale = (1.0, 1.0)  # DefaultScale beyond 4:1 pixels is no real sensor: corrupt tag
        tags["default_scale_invalid"] = True
    npf = t.num("NoiseProfile")
    noise = npf.reshape(-1, 2) if npf is not None and npf.size >= 2 and npf.size % 2 == 0 else None
    ver = _val(ifd0, _DNG_TAGS["DNGVersion"])
    ver_t = tuple(int(b) for b in bytes(ver)) if ver is not None else None
    ucm = t.tag("UniqueCameraModel")
    orient = _val(ifd0, 274)
    if orient is not None and shot.orientation != int(orient):
        shot = _replace_orientation(shot, int(orient))
    tags["profile"] = _profile_tags(raw, ifd0)
    tags["raw_ifd_offset"] = int(raw.offset)
    tags["active_area"] = (top, left, bottom, right)
    tags["stored_size"] = (int(full_h), int(full_w))
    return RawImage(
        path=str(p),
        data=np.ascontiguousarray(data, dtype=np.uint16),
        cfa=cfa,
        levels=levels,
        color=_dng_color(t),
        shot=shot,
        default_crop=crop,
        default_scale=scale,
        noise_profile=noise,
        opcodes=opcodes,
        is_dng=True,
        dng_version=ver_t,
        unique_camera_model=str(ucm.value) if ucm is not None else None,
        bits_per_sample=bps,
        tags=tags,
    )


def _replace_orientation(shot: ShotInfo, orientation: int) -> ShotInfo:
    from dataclasses import replace

    return replace(shot, orientation=orientation if 1 <= orientation <= 8 else 1)


# ---------------------------------------------------------------- previews


def embedded_preview(path: str | Path) -> np.ndarray | None:
    """The file's embedded preview as uint8 RGB (H, W, 3), orientation not applied, or None.

    Tries LibRaw's thumbnail first, then the largest NewSubFileType=1 IFD through tifffile.
    """
    import rawpy
    from PIL import Image

    p, kind, _ = _check_file(path)
    try:
        with rawpy.imread(str(p)) as rp:
            th = rp.extract_thumb()
        if th.format == rawpy.ThumbFormat.JPEG:
            with Image.open(io.BytesIO(th.data)) as im:
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        arr = np.asarray(th.data)
        if arr.ndim == 3 and arr.shape[2] >= 3:
            return np.ascontiguousarray(arr[..., :3], dtype=np.uint8)
    except (rawpy.LibRawError, OSError, ValueError):
        pass
    if kind not in ("tiff", "orf", "rw2"):
        return None
    with _quiet_tifffile():
        try:
            with tifffile.TiffFile(p) as tf:
                pages = [
                    pg
                    for pg in _walk_ifds(tf)
                    if int(_val(pg, T_SUBFILETYPE) or 0) & 1
                    and _val(pg, T_PHOTOMETRIC) in (2, 6)
                    and int(_val(pg, T_SPP) or 1) == 3
                ]
                for pg in sorted(pages, key=_ifd_pixels, reverse=True):
                    img = _decode_preview_ifd(tf, pg)
                    if img is not None:
                        return img
        except Exception:
            return None
    return None


def _decode_preview_ifd(tf: tifffile.TiffFile, pg: tifffile.TiffPage) -> np.ndarray | None:
    from PIL import Image

    comp = int(_val(pg, T_COMPRESSION) or 1)
    offs, cnts = _payload(pg)
    if comp in (6, 7) and len(offs) == 1:
        tf.filehandle.seek(offs[0])
        buf = tf.filehandle.read(cnts[0])
        with Image.open(io.BytesIO(buf)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    if comp == 1 and int(_val(pg, T_BPS)[0] if isinstance(_val(pg, T_BPS), tuple) else 8) == 8:
        return np.ascontiguousarray(pg.asarray()[..., :3], dtype=np.uint8)
    return None


# ---------------------------------------------------------------- describe


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()] if v.ndim else _jsonable(v.item())
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float):
        return v if np.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, bytes):
        return f"<{len(v)} bytes>"
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, str | int | bool) or v is None:
        return v
    return str(v)


def describe(raw: RawImage) -> dict[str, Any]:
    """A JSON-serialisable summary of a RawImage (for ``oneinch inspect``)."""
    from .opcodes import opcode_summary

    c = raw.color
    shot = {
        k: getattr(raw.shot, k)
        for k in (
            "make", "model", "lens", "focal_length", "focal_length_35mm", "f_number",
            "exposure_time", "iso", "datetime", "gps", "orientation", "software", "artist",
            "copyright",
        )
    }  # fmt: skip
    lv = raw.levels
    out = {
        "path": raw.path,
        "camera": " ".join(x for x in (raw.shot.make, raw.shot.model) if x) or None,
        "unique_camera_model": raw.unique_camera_model,
        "dng_version": ".".join(map(str, raw.dng_version)) if raw.dng_version else None,
        "is_dng": raw.is_dng,
        "size": {"width": raw.width, "height": raw.height},
        "kind": "linear_raw" if raw.is_linear else "cfa",
        "cfa": None if raw.cfa is None else {"name": raw.cfa.name, "kind": raw.cfa.kind,
                                              "pattern": [list(r) for r in raw.cfa.pattern]},
        "bits_per_sample": raw.bits_per_sample,
        "levels": {
            "black": lv.black,
            "white": lv.white,
            "black_delta_h": lv.black_delta_h is not None,
            "black_delta_v": lv.black_delta_v is not None,
            "linearization": None if lv.linearization is None else int(lv.linearization.size),
        },
        "default_crop": raw.default_crop,
        "default_scale": raw.default_scale,
        "color": {
            "source": c.source,
            "illuminants": [c.illuminant1, c.illuminant2],
            "color_matrix1": c.color_matrix1,
            "color_matrix2": c.color_matrix2,
            "forward_matrix1": c.forward_matrix1,
            "forward_matrix2": c.forward_matrix2,
            "camera_calibration1": c.camera_calibration1,
            "camera_calibration2": c.camera_calibration2,
            "analog_balance": c.analog_balance,
            "baseline_exposure": c.baseline_exposure,
        },
        "white_balance": {
            "as_shot_neutral": c.as_shot_neutral,
            "as_shot_white_xy": c.as_shot_white_xy,
            "multipliers": None if c.as_shot_neutral is None
            else (c.as_shot_neutral[1] / np.asarray(c.as_shot_neutral)),
        },
        "noise_profile": raw.noise_profile,
        "opcodes": {f"OpcodeList{n}": [opcode_summary(op) for op in ops]
                    for n, ops in sorted(raw.opcodes.items())},
        "exif": shot,
        "tags": {k: v for k, v in raw.tags.items() if k != "opcodes_applied"},
    }  # fmt: skip
    applied = raw.tags.get("opcodes_applied")
    if applied:
        out["opcodes_applied_by_libraw"] = {
            f"OpcodeList{n}": [op.name for op in ops] for n, ops in applied.items()
        }
    return _jsonable(out)
