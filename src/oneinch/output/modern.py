"""HEIF, AVIF and JPEG XL: writing (8/10/12/16-bit, ICC, EXIF, CICP, HDR PQ/HLG) and reading.

Codecs:
- HEIF (ISO/IEC 23008-12, HEVC) through pillow-heif (libheif + x265): 8, 10 or 12-bit (bit
  depth per call), ICC ('colr' prof) and CICP ('colr' nclx, ITU-T H.273) both written, EXIF item.
- AVIF (AV1 Image File Format 1.1): 8, 10 or 12-bit, SDR or HDR, through imagecodecs (libavif),
  which writes CICP only: the ICC 'colr' property and the Exif item are then added to its box
  structure here (heif_add_metadata).
- JPEG XL (ISO/IEC 18181): 8-bit through pylibjxl (libjxl) with ICC and an Exif box; 16-bit
  through libjxl's encoder API (ctypes, the library bundled with imagecodecs) with the ICC
  profile kept as is (original colour space, no XYB) and an Exif box (ISO/IEC 18181-2 §9.1).

HDR (``output.transfer`` 'pq' or 'hlg', heif/avif only) writes the photo's HDR rendition
(``Photo.extra['hdr_linear']``, display-linear, SDR white = 1; see output.uhdr) with
ITU-R BT.2100 PQ (SDR white at 203 cd/m², ITU-R BT.2408) or HLG (SDR white at signal 0.75,
BT.2408), CICP transfer 16 or 18, no ICC.
"""

from __future__ import annotations

import ctypes
import functools
import io
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from ..errors import InputError, OptionError, OutputError
from ..fileio import read_input_bytes
from ..isp import spaces
from ..photo import Photo
from ..recipe import Output

MODERN = ("heif", "avif", "jxl")
SUFFIXES = {".heic": "heif", ".heif": "heif", ".hif": "heif", ".avif": "avif", ".jxl": "jxl"}
BITS = {"heif": (8, 10, 12), "avif": (8, 10, 12), "jxl": (8, 16)}

# ITU-T H.273 code points
CICP_PRIMARIES = {"srgb": 1, "p3": 12, "rec2020": 9}
CICP_TRANSFER = {"srgb": 13, "bt709": 1, "pq": 16, "hlg": 18}
CICP_MATRIX = {"srgb": 6, "p3": 6, "rec2020": 9}  # BT.601 as JPEG does; BT.2020 NCL
SPACE_FROM_PRIMARIES = {v: k for k, v in CICP_PRIMARIES.items()}

SDR_WHITE_NITS = 203.0  # ITU-R BT.2408 reference white
HLG_SDR_WHITE = 0.2650  # scene-linear E with HLG OETF(E) = 0.75 (BT.2408)


def default_bits(fmt: str, transfer: str = "sdr") -> int:
    """8-bit for SDR files, 10-bit for PQ/HLG."""
    return 10 if transfer != "sdr" else 8


def check(output: Output) -> int:
    """Validate a modern-format Output; return its bit depth."""
    fmt = output.format
    bits = output.bits or default_bits(fmt, output.transfer)
    if bits not in BITS[fmt]:
        allowed = ", ".join(str(b) for b in BITS[fmt])
        raise OptionError(f"{fmt} supports {allowed}-bit, not {bits}")
    if output.transfer != "sdr":
        if bits == 8:
            raise OptionError(f"HDR {output.transfer} needs 10 or 12 bits, not 8")
        if output.space not in CICP_PRIMARIES:
            raise OptionError(f"HDR {output.transfer} needs space srgb, p3 or rec2020")
    if fmt == "jxl" and bits == 16 and output.space != "srgb" and _libjxl() is None:
        raise OptionError("16-bit JPEG XL is sRGB only without libjxl (imagecodecs' bundled "
                          "library was not found); use bits 8 or space srgb")
    return bits


# ----------------------------------------------------------------------------- HDR signals


def pq_encode(linear: np.ndarray, sdr_white: float = SDR_WHITE_NITS) -> np.ndarray:
    """Display-linear (SDR white = 1) -> SMPTE ST 2084 / BT.2100 PQ signal [0, 1]."""
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    y = np.clip(np.asarray(linear, np.float64) * (sdr_white / 10000.0), 0, 1) ** m1
    return (((c1 + c2 * y) / (1 + c3 * y)) ** m2).astype(np.float32)


def pq_decode(signal: np.ndarray, sdr_white: float = SDR_WHITE_NITS) -> np.ndarray:
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    e = np.clip(np.asarray(signal, np.float64), 0, 1) ** (1 / m2)
    y = (np.maximum(e - c1, 0) / (c2 - c3 * e)) ** (1 / m1)
    return (y * 10000.0 / sdr_white).astype(np.float32)


_HLG_A, _HLG_B, _HLG_C = 0.17883277, 0.28466892, 0.55991073


def hlg_encode(linear: np.ndarray) -> np.ndarray:
    """Display-linear (SDR white = 1) -> BT.2100 HLG OETF signal, SDR white at 0.75."""
    e = np.clip(np.asarray(linear, np.float64) * HLG_SDR_WHITE, 0, 1)
    low = np.sqrt(3 * e)
    high = _HLG_A * np.log(np.maximum(12 * e - _HLG_B, 1e-12)) + _HLG_C
    return np.where(e <= 1 / 12, low, high).astype(np.float32)


def hlg_decode(signal: np.ndarray) -> np.ndarray:
    v = np.clip(np.asarray(signal, np.float64), 0, 1)
    e = np.where(v <= 0.5, v * v / 3, (np.exp((v - _HLG_C) / _HLG_A) + _HLG_B) / 12)
    return (e / HLG_SDR_WHITE).astype(np.float32)


def _codes(signal: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    x = np.rint(np.clip(np.nan_to_num(signal, nan=0.0), 0, 1) * np.float64(top))
    return np.ascontiguousarray(x.astype(np.uint8 if bits == 8 else np.uint16))


def _signal(photo: Photo, output: Output) -> np.ndarray:
    """Float [0, 1] signal in the output space: encoded SDR, or PQ/HLG of the HDR rendition."""
    from .encode import _space_converter

    if output.transfer == "sdr":
        convert = _space_converter(photo.space, output.space)
        return photo.rgb if convert is None else convert(photo.rgb)
    hdr = photo.extra.get("hdr_linear")
    if hdr is None:
        raise OptionError(
            f"transfer {output.transfer} needs the HDR rendition "
            "(oneinch.output.uhdr.with_hdr(photo, hdr_rendition(raw, recipe, photo)))"
        )
    hdr = np.maximum(np.asarray(hdr, np.float32), 0)
    if photo.space != output.space:
        m = spaces.xyz_d50_to_rgb(output.space) @ spaces.rgb_to_xyz_d50(photo.space)
        hdr = np.maximum(hdr @ m.astype(np.float32).T, 0)
    return pq_encode(hdr) if output.transfer == "pq" else hlg_encode(hdr)


def _cicp(output: Output) -> tuple[int, int, int]:
    tr = output.transfer
    if tr == "sdr":
        tr = spaces.SPACES[output.space].transfer
    return (
        CICP_PRIMARIES.get(output.space, 2),
        CICP_TRANSFER.get(tr, 2),
        CICP_MATRIX.get(output.space, 6),
    )


# ----------------------------------------------------------------------------- encoders


def encode_modern(
    fh: BinaryIO, photo: Photo, output: Output, icc: bytes, exif: bytes
) -> None:
    """Write ``photo`` as HEIF / AVIF / JPEG XL (``output.format``) to a binary file object.
    ``exif`` is the ``Exif\\0\\0``-prefixed block (output.metadata.exif_bytes)."""
    bits = check(output)
    pixels = _codes(_signal(photo, output), bits)
    hdr = output.transfer != "sdr"
    if output.format == "heif":
        data = _heif(pixels, bits, output, None if hdr else icc, exif)
    elif output.format == "avif":
        data = _avif(pixels, bits, output, None if hdr else icc, exif)
    elif output.format == "jxl":
        data = _jxl(pixels, bits, output, icc, exif)
    else:
        raise OptionError(f"no encoder for format {output.format!r}")
    fh.write(data)


def _heif(pixels: np.ndarray, bits: int, output: Output, icc: bytes | None, exif: bytes) -> bytes:
    import pillow_heif

    h, w = pixels.shape[:2]
    if bits == 8:
        hf = pillow_heif.from_bytes(mode="RGB", size=(w, h), data=pixels.tobytes())
    else:  # pillow-heif takes 16-bit samples and keeps the top ``bit_depth`` bits
        hf = pillow_heif.from_bytes(
            mode="RGB;16", size=(w, h), data=(pixels << (16 - bits)).astype(np.uint16).tobytes()
        )
    prim, trc, mat = _cicp(output)
    kw: dict[str, Any] = dict(
        quality=-1 if output.quality >= 100 else output.quality,
        chroma={"4:4:4": 444, "4:2:2": 422, "4:2:0": 420}.get(output.subsampling, 444),
        exif=exif,
        save_nclx_profile=True,
        color_primaries=prim,
        transfer_characteristics=trc,
        matrix_coefficients=mat,
        full_range_flag=1,
        bit_depth=bits,  # per call; not options.SAVE_HDR_TO_12_BIT, which is global
    )
    if icc:
        kw["icc_profile"] = icc
    buf = io.BytesIO()
    try:
        hf.save(buf, format="HEIF", **kw)
    except (RuntimeError, ValueError) as e:
        raise OutputError(f"HEIF encoder failed ({e})") from None
    # libheif writes one 'colr' box (the ICC one when given); add the nclx one, with the matrix
    # libheif converted RGB -> YCbCr with, so CICP-only readers get the colour space too
    return heif_add_metadata(buf.getvalue(), None, None, (prim, trc, mat))


def _avif(pixels: np.ndarray, bits: int, output: Output, icc: bytes | None, exif: bytes) -> bytes:
    import imagecodecs

    quality = min(max(output.quality, 0), 100)

    prim, trc, mat = _cicp(output)
    try:
        data = imagecodecs.avif_encode(
            pixels, quality, bitspersample=bits, primaries=prim, transfer=trc, matrix=mat,
            speed=6, pixelformat={"4:4:4": 1, "4:2:2": 2, "4:2:0": 3}.get(
                output.subsampling, 1),  # imagecodecs.AVIF.PIXEL_FORMAT.YUV444 ...
        )
    except Exception as e:  # imagecodecs raises its own AvifError
        raise OutputError(f"AVIF encoder failed ({e})") from None
    return heif_add_metadata(bytes(data), icc, exif)


def _jxl(pixels: np.ndarray, bits: int, output: Output, icc: bytes, exif: bytes) -> bytes:
    lossless = output.quality >= 100
    # libjxl's quality -> distance mapping (cjxl): q 90 -> 1.0, q 70 -> 2.8
    distance = 0.0 if lossless else max(0.1 + (100 - output.quality) * 0.09, 0.1)
    if bits == 8:
        import pylibjxl

        return bytes(pylibjxl.encode(pixels, effort=5, distance=distance, lossless=lossless,
                                     icc=icc, exif=exif))
    if _libjxl() is not None:
        return jxl_encode16(pixels, icc, exif, distance, lossless)
    import imagecodecs  # fallback: libjxl's enumerated sRGB, no ICC

    code = imagecodecs.jpegxl_encode(pixels, effort=5, distance=None if lossless else distance,
                                     lossless=lossless)
    return jxl_container(bytes(code), exif)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def jxl_container(codestream: bytes, exif: bytes | None) -> bytes:
    """Bare JPEG XL codestream -> ISO-BMFF container with an 'Exif' box (ISO/IEC 18181-2 §9.1;
    the Exif payload starts with a 4-byte offset to the TIFF header, 0 here)."""
    if codestream[:2] != b"\xff\x0a":
        return codestream  # already a container
    out = _box(b"JXL ", b"\r\n\x87\n") + _box(b"ftyp", b"jxl \0\0\0\0jxl ")
    if exif:
        tiff = exif[6:] if exif.startswith(b"Exif\0\0") else exif
        out += _box(b"Exif", b"\0\0\0\0" + tiff)
    return out + _box(b"jxlc", codestream)


# ----------------------------------------------------------------------------- libjxl (ctypes)
# pylibjxl writes 8-bit only and imagecodecs' jpegxl_encode has no ICC argument, so 16-bit
# JPEG XL goes straight through libjxl's public encoder API (jxl/encode.h, libjxl >= 0.9; the
# shared library bundled with imagecodecs): JxlEncoderSetICCProfile for the colour space and
# JxlEncoderAddBox for the 'Exif' box (ISO/IEC 18181-2 §9.1).


class _JxlBasicInfo(ctypes.Structure):
    """JxlBasicInfo of jxl/codestream_header.h (stable since libjxl 0.7)."""

    _fields_ = [
        ("have_container", ctypes.c_int32), ("xsize", ctypes.c_uint32),
        ("ysize", ctypes.c_uint32), ("bits_per_sample", ctypes.c_uint32),
        ("exponent_bits_per_sample", ctypes.c_uint32), ("intensity_target", ctypes.c_float),
        ("min_nits", ctypes.c_float), ("relative_to_max_display", ctypes.c_int32),
        ("linear_below", ctypes.c_float), ("uses_original_profile", ctypes.c_int32),
        ("have_preview", ctypes.c_int32), ("have_animation", ctypes.c_int32),
        ("orientation", ctypes.c_int32), ("num_color_channels", ctypes.c_uint32),
        ("num_extra_channels", ctypes.c_uint32), ("alpha_bits", ctypes.c_uint32),
        ("alpha_exponent_bits", ctypes.c_uint32), ("alpha_premultiplied", ctypes.c_int32),
        ("preview", ctypes.c_uint32 * 2), ("animation", ctypes.c_uint32 * 4),
        ("intrinsic_xsize", ctypes.c_uint32), ("intrinsic_ysize", ctypes.c_uint32),
        ("padding", ctypes.c_uint8 * 100),
    ]


class _JxlPixelFormat(ctypes.Structure):
    _fields_ = [("num_channels", ctypes.c_uint32), ("data_type", ctypes.c_int),
                ("endianness", ctypes.c_int), ("align", ctypes.c_size_t)]


_JXL_TYPE_UINT16 = 3
_JXL_NATIVE_ENDIAN = 0
_JXL_ENC_SUCCESS, _JXL_ENC_NEED_MORE_OUTPUT = 0, 2
_JXL_ENC_FRAME_SETTING_EFFORT = 0


@functools.cache
def _libjxl() -> ctypes.CDLL | None:
    """imagecodecs' bundled libjxl (the same library its jpegxl codec uses), else None."""
    try:  # importing the codec module loads libjxl with its own dependencies (rpath)
        import imagecodecs
        import imagecodecs._jpegxl
    except ImportError:
        return None
    libs = Path(imagecodecs.__file__).resolve().parent.parent / "imagecodecs.libs"
    found = sorted(p for p in libs.glob("libjxl-*.so*"))
    if not found:
        return None
    try:
        lib = ctypes.CDLL(str(found[0]))
    except OSError:
        return None
    vp, u8p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8)
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "JxlEncoderCreate": (vp, [vp]),
        "JxlEncoderDestroy": (None, [vp]),
        "JxlEncoderUseContainer": (ctypes.c_int, [vp, ctypes.c_int]),
        "JxlEncoderUseBoxes": (ctypes.c_int, [vp]),
        "JxlEncoderInitBasicInfo": (None, [ctypes.POINTER(_JxlBasicInfo)]),
        "JxlEncoderSetBasicInfo": (ctypes.c_int, [vp, ctypes.POINTER(_JxlBasicInfo)]),
        "JxlEncoderSetICCProfile": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_size_t]),
        "JxlEncoderFrameSettingsCreate": (vp, [vp, vp]),
        "JxlEncoderSetFrameDistance": (ctypes.c_int, [vp, ctypes.c_float]),
        "JxlEncoderSetFrameLossless": (ctypes.c_int, [vp, ctypes.c_int]),
        "JxlEncoderFrameSettingsSetOption": (ctypes.c_int, [vp, ctypes.c_int, ctypes.c_int64]),
        "JxlEncoderAddBox": (ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_char_p,
                                             ctypes.c_size_t, ctypes.c_int]),
        "JxlEncoderAddImageFrame": (ctypes.c_int, [vp, ctypes.POINTER(_JxlPixelFormat), vp,
                                                   ctypes.c_size_t]),
        "JxlEncoderCloseInput": (None, [vp]),
        "JxlEncoderProcessOutput": (ctypes.c_int, [vp, ctypes.POINTER(u8p),
                                                   ctypes.POINTER(ctypes.c_size_t)]),
        "JxlEncoderGetError": (ctypes.c_int, [vp]),
    }
    try:
        for name, (res, args) in sigs.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
    except AttributeError:
        return None
    return lib


def jxl_encode16(pixels: np.ndarray, icc: bytes, exif: bytes | None, distance: float,
                 lossless: bool, effort: int = 5, original: bool = True) -> bytes:
    """16-bit RGB (H, W, 3) uint16 -> JPEG XL container with the ICC profile and an Exif box
    (ISO/IEC 18181-2 §9.1: 4-byte TIFF-header offset, 0, then the TIFF structure)."""
    lib = _libjxl()
    if lib is None:
        raise OptionError("16-bit JPEG XL with ICC needs the libjxl bundled with imagecodecs")
    px = np.ascontiguousarray(pixels, np.uint16)
    h, w = px.shape[:2]
    enc = lib.JxlEncoderCreate(None)
    if not enc:
        raise OutputError("libjxl: cannot create an encoder")
    try:
        def ok(status: int, what: str) -> None:
            if status != _JXL_ENC_SUCCESS:
                raise OutputError(f"libjxl {what} failed (error {lib.JxlEncoderGetError(enc)})")

        ok(lib.JxlEncoderUseContainer(enc, 1), "UseContainer")
        ok(lib.JxlEncoderUseBoxes(enc), "UseBoxes")
        info = _JxlBasicInfo()
        lib.JxlEncoderInitBasicInfo(ctypes.byref(info))
        info.xsize, info.ysize, info.bits_per_sample = w, h, 16
        info.num_color_channels, info.uses_original_profile = 3, int(lossless or original)
        ok(lib.JxlEncoderSetBasicInfo(enc, ctypes.byref(info)), "SetBasicInfo")
        ok(lib.JxlEncoderSetICCProfile(enc, icc, len(icc)), "SetICCProfile")
        if exif:
            tiff = exif[6:] if exif.startswith(b"Exif\0\0") else exif
            box = b"\0\0\0\0" + tiff
            ok(lib.JxlEncoderAddBox(enc, b"Exif", box, len(box), 0), "AddBox")
        fs = lib.JxlEncoderFrameSettingsCreate(enc, None)
        ok(lib.JxlEncoderFrameSettingsSetOption(fs, _JXL_ENC_FRAME_SETTING_EFFORT, effort),
           "effort")
        if lossless:
            ok(lib.JxlEncoderSetFrameLossless(fs, 1), "SetFrameLossless")
        else:
            ok(lib.JxlEncoderSetFrameDistance(fs, distance), "SetFrameDistance")
        fmt = _JxlPixelFormat(3, _JXL_TYPE_UINT16, _JXL_NATIVE_ENDIAN, 0)
        ok(lib.JxlEncoderAddImageFrame(fs, ctypes.byref(fmt), px.ctypes.data, px.nbytes),
           "AddImageFrame")
        lib.JxlEncoderCloseInput(enc)
        out = bytearray()
        chunk = max(1 << 16, px.nbytes // 4)
        while True:
            buf = (ctypes.c_uint8 * chunk)()
            nxt = ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint8))
            avail = ctypes.c_size_t(chunk)
            status = lib.JxlEncoderProcessOutput(enc, ctypes.byref(nxt), ctypes.byref(avail))
            out += ctypes.string_at(buf, chunk - avail.value)
            if status == _JXL_ENC_SUCCESS:
                return bytes(out)
            if status != _JXL_ENC_NEED_MORE_OUTPUT:
                ok(status, "ProcessOutput")
    finally:
        lib.JxlEncoderDestroy(enc)


# ----------------------------------------------------------------------------- HEIF/AVIF boxes
# imagecodecs' libavif binding takes neither an ICC profile nor EXIF, and libheif writes a single
# 'colr' box (the ICC one when given), so the missing pieces are added to the box structure
# here: ISO/IEC 14496-12 (ISOBMFF) §4.2 boxes, §8.11 'meta' / 'iloc' / 'iinf' / 'iref', §12.1.5
# 'colr'; ISO/IEC 23008-12 (HEIF) §6.5.5 colour information (one 'nclx' and one ICC 'colr' per
# item), §9.3 'ipco' / 'ipma', Annex A Exif item (ExifDataBlock); AV1 Image File Format 1.1
# (AVIF is a HEIF/MIAF profile; its 'colr' rules are HEIF's).


@dataclass
class _Box:
    kind: bytes
    start: int  # file offset of the box header
    header: int  # header length (8 or 16)
    end: int

    def body(self, data: bytes) -> bytes:
        return data[self.start + self.header : self.end]


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[_Box]:
    """ISOBMFF boxes (§4.2: 32-bit size, type, 64-bit largesize when size = 1, 0 = to the end)."""
    end = len(data) if end is None else end
    out: list[_Box] = []
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            raise OutputError(f"HEIF/AVIF encoder output is not ISOBMFF (box {kind!r} at {at})")
        out.append(_Box(kind, at, header, at + size))
        at += size
    return out


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _uint(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at : at + size], "big") if size else 0


@dataclass
class _Iloc:
    """ItemLocationBox (ISOBMFF §8.11.3) fields, rewritten with the same field sizes."""

    version: int
    offset_size: int
    length_size: int
    base_offset_size: int
    index_size: int
    # item_ID, construction_method, data_reference_index, base_offset, [(index, offset, length)]
    items: list[tuple[int, int, int, int, list[tuple[int, int, int]]]]

    @classmethod
    def parse(cls, body: bytes) -> _Iloc:
        version = body[0]
        offset_size, length_size = body[4] >> 4, body[4] & 15
        base_offset_size, index_size = body[5] >> 4, (body[5] & 15 if version in (1, 2) else 0)
        at = 6
        idn = 2 if version < 2 else 4
        count = _uint(body, at, idn)
        at += idn
        items = []
        for _ in range(count):
            item_id = _uint(body, at, idn)
            at += idn
            method = 0
            if version in (1, 2):
                method = _uint(body, at, 2) & 15
                at += 2
            dri = _uint(body, at, 2)
            base = _uint(body, at + 2, base_offset_size)
            at += 2 + base_offset_size
            n = _uint(body, at, 2)
            at += 2
            extents = []
            for _ in range(n):
                index = _uint(body, at, index_size)
                at += index_size
                off = _uint(body, at, offset_size)
                length = _uint(body, at + offset_size, length_size)
                at += offset_size + length_size
                extents.append((index, off, length))
            items.append((item_id, method, dri, base, extents))
        return cls(version, offset_size, length_size, base_offset_size, index_size, items)

    def build(self) -> bytes:
        v = self.version
        idn = 2 if v < 2 else 4

        def put(value: int, size: int) -> bytes:
            if value >= 1 << (8 * size):
                raise OutputError("AVIF item location does not fit its iloc field")
            return value.to_bytes(size, "big") if size else b""

        out = bytes([self.offset_size << 4 | self.length_size,
                     self.base_offset_size << 4 | self.index_size])
        out += put(len(self.items), idn)
        for item_id, method, dri, base, extents in self.items:
            out += put(item_id, idn)
            if v in (1, 2):
                out += put(method, 2)
            out += put(dri, 2) + put(base, self.base_offset_size) + put(len(extents), 2)
            for index, off, length in extents:
                out += put(index, self.index_size) + put(off, self.offset_size)
                out += put(length, self.length_size)
        return _full_box(b"iloc", v, 0, out)


def _ipma_add(body: bytes, item_id: int, prop_index: int) -> bytes:
    """ItemPropertyAssociationBox (HEIF §9.3.3) with one more non-essential property for
    ``item_id`` (1-based index into 'ipco')."""
    version, flags = body[0], _uint(body, 1, 3)
    wide_ids, wide_idx = version >= 1, bool(flags & 1)
    if not wide_idx and prop_index > 127:
        raise OutputError("AVIF ipma cannot index more than 127 properties")
    at, count = 8, _uint(body, 4, 4)
    entries = []
    for _ in range(count):
        idn = 4 if wide_ids else 2
        iid = _uint(body, at, idn)
        n = body[at + idn]
        size = n * (2 if wide_idx else 1)
        assoc = body[at + idn + 1 : at + idn + 1 + size]
        at += idn + 1 + size
        if iid == item_id:
            assoc += prop_index.to_bytes(2 if wide_idx else 1, "big")
            n += 1
        entries.append(iid.to_bytes(idn, "big") + bytes([n]) + assoc)
    return _full_box(b"ipma", version, flags, struct.pack(">I", count) + b"".join(entries))


def heif_add_metadata(data: bytes, icc: bytes | None, exif: bytes | None,
                      cicp: tuple[int, int, int] | None = None) -> bytes:
    """Add an ICC 'colr' (type 'prof') property, an 'nclx' 'colr' property (``cicp``, full
    range; ISO/IEC 23008-12 §6.5.5 allows one of each) and an 'Exif' item (``cdsc`` reference
    to the primary item) to an AVIF or HEIF file; all item locations are moved to their new
    file offsets. Properties and items already present are kept as they are.
    The Exif item payload is the ExifDataBlock of HEIF Annex A.2.1: a 32-bit offset to the TIFF
    header (0) then the TIFF structure; it goes at the end of the last 'mdat'."""
    top = _boxes(data)
    metas = [b for b in top if b.kind == b"meta"]
    if len(metas) != 1:
        raise OutputError("HEIF/AVIF encoder output has no 'meta' box")
    meta = metas[0]
    kids = _boxes(data, meta.start + meta.header + 4, meta.end)
    by = {b.kind: b for b in kids}
    if not {b"pitm", b"iloc", b"iinf", b"iprp"} <= set(by):
        raise OutputError("HEIF/AVIF encoder output lacks pitm/iloc/iinf/iprp")
    pitm = by[b"pitm"].body(data)
    primary = _uint(pitm, 4, 2 if pitm[0] == 0 else 4)
    iloc = _Iloc.parse(by[b"iloc"].body(data))
    iinf = by[b"iinf"].body(data)
    iinf_n = 2 if iinf[0] == 0 else 4
    infes = _boxes(iinf, 4 + iinf_n)
    types = []
    for b in infes:
        v = iinf[b.start + 8]
        types.append(iinf[b.start + 12 + (2 if v == 2 else 4) + 2:][:4] if v >= 2 else b"")
    iprp = by[b"iprp"]
    ipco_ipma = {b.kind: b for b in _boxes(data, iprp.start + iprp.header, iprp.end)}
    ipco, ipma = ipco_ipma[b"ipco"], ipco_ipma[b"ipma"]
    props = _boxes(data, ipco.start + ipco.header, ipco.end)
    colr = {data[p.start + 8 : p.start + 12] for p in props if p.kind == b"colr"}

    ipco_body, ipma_body, n_props = ipco.body(data), ipma.body(data), len(props)
    if icc and not colr & {b"prof", b"rICC"}:
        ipco_body += _box(b"colr", b"prof" + icc)
        n_props += 1
        ipma_body = _ipma_add(ipma_body, primary, n_props)[8:]
    if cicp and b"nclx" not in colr:
        ipco_body += _box(b"colr", b"nclx" + struct.pack(">HHHB", *cicp, 0x80))
        n_props += 1
        ipma_body = _ipma_add(ipma_body, primary, n_props)[8:]
    ipma_box = _box(b"ipma", ipma_body)
    payload = b""
    new_id = None
    if exif and b"Exif" not in types:
        tiff = exif[6:] if exif.startswith(b"Exif\0\0") else exif
        payload = b"\0\0\0\0" + tiff
        new_id = max([it[0] for it in iloc.items] + [primary]) + 1
        if new_id > 0xFFFF and (iloc.version < 2 or iinf[0] == 0):
            raise OutputError("HEIF/AVIF item IDs too large for the Exif item")
    # mdat that receives the Exif payload: the last box when it is an mdat with a 32-bit size
    last = top[-1]
    grow = payload and last.kind == b"mdat" and last.header == 8
    if payload and not grow:
        tail = _box(b"mdat", payload)
    else:
        tail = payload

    def build_meta(shift: int) -> bytes:
        items = []
        for item_id, method, dri, base, extents in iloc.items:
            if method == 0 and dri == 0:  # file offsets: everything after 'meta' moves
                if iloc.offset_size == 0:
                    base = base + shift if base >= meta.end else base
                else:
                    extents = [(i, o + shift if base + o >= meta.end else o, n)
                               for i, o, n in extents]
            items.append((item_id, method, dri, base, extents))
        if new_id is not None:
            items.append((new_id, 0, 0, 0, [(0, exif_at + shift, len(payload))]))
        il = _Iloc(iloc.version, max(iloc.offset_size, 4), iloc.length_size or 4,
                   iloc.base_offset_size, iloc.index_size, items)
        out = b""
        for b in kids:
            if b.kind == b"iloc":
                out += il.build()
            elif b.kind == b"iinf" and new_id is not None:
                infe = _full_box(b"infe", 2 if new_id <= 0xFFFF else 3, 0,
                                 new_id.to_bytes(2 if new_id <= 0xFFFF else 4, "big")
                                 + b"\0\0Exif\0")
                n = len(infes) + 1
                out += _full_box(b"iinf", iinf[0], _uint(iinf, 1, 3),
                                 n.to_bytes(iinf_n, "big") + iinf[4 + iinf_n :] + infe)
            elif b.kind == b"iref" and new_id is not None:
                body = b.body(data)
                w = 2 if body[0] == 0 else 4
                out += _box(b"iref", body + _box(
                    b"cdsc", new_id.to_bytes(w, "big") + b"\0\1" + primary.to_bytes(w, "big")))
            elif b.kind == b"iprp":
                inner = b"".join(
                    _box(b"ipco", ipco_body) if c.kind == b"ipco"
                    else ipma_box if c.kind == b"ipma" else data[c.start : c.end]
                    for c in _boxes(data, iprp.start + iprp.header, iprp.end))
                out += _box(b"iprp", inner)
            else:
                out += data[b.start : b.end]
            if b.kind == b"iinf" and new_id is not None and b"iref" not in by:
                w = 2 if new_id <= 0xFFFF and primary <= 0xFFFF else 4
                out += _full_box(b"iref", 0 if w == 2 else 1, 0, _box(
                    b"cdsc", new_id.to_bytes(w, "big") + b"\0\1" + primary.to_bytes(w, "big")))
        return _box(b"meta", data[meta.start + meta.header : meta.start + meta.header + 4] + out)

    # offset of the Exif payload in the old layout (end of file, after the header of a new
    # mdat); like all data after 'meta' it then moves by the growth of 'meta'
    exif_at = len(data) + (0 if grow else 8)
    shift = len(build_meta(0)) - (meta.end - meta.start)
    new_meta = build_meta(shift)
    head, rest = data[: meta.start], data[meta.end :]
    if grow:
        size = last.end - last.start + len(payload)
        at = last.start - meta.end
        rest = rest[:at] + struct.pack(">I", size) + rest[at + 4 :] + payload
    else:
        rest += tail
    return head + new_meta + rest


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Decoded:
    """A decoded HEIF/AVIF/JXL: ``rgb`` float32 [0, 1] (the stored signal), its bit depth,
    ICC profile, EXIF block (``Exif\\0\\0``-prefixed or None) and CICP (primaries, transfer,
    matrix) when the file has an nclx colour box."""

    rgb: np.ndarray
    bits: int
    format: str
    icc: bytes | None
    exif: bytes | None
    cicp: tuple[int, int, int] | None


def _with_prefix(exif: bytes | None) -> bytes | None:
    if not exif:
        return None
    if exif.startswith(b"Exif\0\0"):
        return exif
    if exif[:4] in (b"MM\0*", b"II*\0"):
        return b"Exif\0\0" + exif
    if len(exif) > 8 and exif[4:8] in (b"MM\0*", b"II*\0"):  # 4-byte offset header (BMFF)
        return b"Exif\0\0" + exif[4 + struct.unpack(">I", exif[:4])[0] :]
    return exif


def _nclx_from_bmff(data: bytes) -> tuple[int, int, int] | None:
    at = data.find(b"colrnclx")
    if at < 0 or at + 14 > len(data):
        return None
    return struct.unpack(">HHH", data[at + 8 : at + 14])


def sniff(data: bytes) -> str | None:
    """'heif' | 'avif' | 'jxl' from the first bytes, None otherwise."""
    if data[:2] == b"\xff\x0a" or data[4:8] == b"JXL ":
        return "jxl"
    if data[4:8] == b"ftyp":
        brands = data[8:12] + data[16:64]
        if b"avif" in brands[:4] or b"avis" in brands[:4]:
            return "avif"
        if any(b in data[8:64] for b in (b"heic", b"heix", b"mif1", b"heim", b"heis")):
            return "avif" if b"avif" in data[8:64] else "heif"
    return None


def read_modern(path: str | Path) -> Decoded:
    """Decode a HEIF/HEIC, AVIF or JPEG XL file (any bit depth) with its ICC, EXIF and CICP."""
    p = Path(path)
    data = read_input_bytes(p)
    fmt = sniff(data)
    try:
        if fmt == "heif":
            return _read_heif(data)
        if fmt == "avif":
            return _read_avif(data)
        if fmt == "jxl":
            return _read_jxl(data)
    except InputError:
        raise
    except Exception as e:  # codec errors come in many library-specific types
        raise InputError(f"cannot decode {fmt} ({e})", p) from None
    raise InputError("not a HEIF, AVIF or JPEG XL file", p)


def _read_heif(data: bytes) -> Decoded:
    import pillow_heif

    hf = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)
    bits = int(hf.info.get("bit_depth", 8))
    a = np.asarray(hf)[..., :3]
    if a.dtype == np.uint8:
        rgb = a.astype(np.float32) / 255.0
    else:  # 10/12-bit samples arrive shifted to the top of 16 bits
        rgb = (a >> (16 - bits)).astype(np.float32) / float((1 << bits) - 1)
    nclx = hf.info.get("nclx_profile")
    cicp = None
    if nclx:
        cicp = (int(nclx["color_primaries"]), int(nclx["transfer_characteristics"]),
                int(nclx["matrix_coefficients"]))
    else:  # libheif reports one colour profile; with ICC and nclx both, the ICC one
        cicp = _nclx_from_bmff(data)
    return Decoded(np.ascontiguousarray(rgb), bits, "heif", hf.info.get("icc_profile") or None,
                   _with_prefix(hf.info.get("exif")), cicp)


def _read_avif(data: bytes) -> Decoded:
    import imagecodecs

    a = np.asarray(imagecodecs.avif_decode(data))[..., :3]
    icc = exif = None
    try:  # metadata through Pillow when it reads AVIF; without it the pixels still decode
        with Image.open(io.BytesIO(data)) as im:
            icc = im.info.get("icc_profile")
            exif = im.info.get("exif")
    except OSError:
        icc = exif = None
    if a.dtype == np.uint8:
        bits, rgb = 8, a.astype(np.float32) / 255.0
    else:
        bits = _avif_depth(data) or 10
        rgb = a.astype(np.float32) / float((1 << bits) - 1)
    return Decoded(np.ascontiguousarray(rgb), bits, "avif", icc or None, _with_prefix(exif),
                   _nclx_from_bmff(data))


def _avif_depth(data: bytes) -> int | None:
    """Bit depth from the 'pixi' property (MIAF) of an AVIF."""
    at = data.find(b"pixi")
    if at < 0 or at + 9 > len(data):
        return None
    return int(data[at + 9])


def _read_jxl(data: bytes) -> Decoded:
    import imagecodecs
    import pylibjxl

    a = np.asarray(imagecodecs.jpegxl_decode(data))
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    a = a[..., :3]
    bits = 8 if a.dtype == np.uint8 else 16
    top = 255.0 if bits == 8 else 65535.0
    rgb = a.astype(np.float32) / top if a.dtype != np.float32 else a
    _, meta = pylibjxl.decode(data, metadata=True)
    icc = meta.get("icc") or meta.get("icc_profile")
    return Decoded(np.ascontiguousarray(rgb), bits, "jxl", icc or None,
                   _with_prefix(meta.get("exif")), None)


def space_of(decoded: Decoded) -> str:
    """oneinch colour space of a decoded file: from its ICC profile when it is one of ours,
    else from its CICP primaries, else sRGB."""
    from .icc import icc_profile

    if decoded.icc:
        for name in spaces.SPACES:
            if decoded.icc == icc_profile(name):
                return name
    if decoded.cicp and decoded.cicp[0] in SPACE_FROM_PRIMARIES:
        return SPACE_FROM_PRIMARIES[decoded.cicp[0]]
    return "srgb"


def read_photo(path: str | Path) -> Photo:
    """A finished HEIF/AVIF/JXL file as a Photo (for ``oneinch frame``): SDR signal as stored,
    space from ICC/CICP, ShotInfo from its EXIF. PQ/HLG files are tone-mapped to SDR by a
    simple clip at SDR white (they are meant for HDR displays)."""
    from .metadata import exif_to_dict, shot_from_exif

    d = read_modern(path)
    space = space_of(d)
    rgb = d.rgb
    if d.cicp and d.cicp[1] in (16, 18):
        lin = pq_decode(rgb) if d.cicp[1] == 16 else hlg_decode(rgb)
        rgb = spaces.encode(np.minimum(lin, 1.0), spaces.SPACES[space].transfer)
    shot = None
    if d.exif:
        exif = Image.Exif()
        exif.load(d.exif)
        shot = shot_from_exif(exif_to_dict(exif))
    kw: dict[str, Any] = {"shot": shot} if shot is not None else {}
    return Photo(rgb=np.ascontiguousarray(rgb, np.float32), space=space, source=str(path), **kw)


def psnr_codes(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two float [0, 1] images."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
