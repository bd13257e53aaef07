"""Write finished photos: JPEG, TIFF (8/16-bit) and PNG (8/16-bit), with ICC profile and EXIF.

Every file is written through :func:`oneinch.output.atomic.atomic_path` (temp file + rename),
so an encoder failure never leaves a partial file.

Choices:
- JPEG (ITU-T T.81 via libjpeg in Pillow): quality 92, 4:4:4 chroma by default, optimised
  Huffman tables; ICC in APP2, EXIF in APP1.
- TIFF (TIFF 6.0): Deflate (Adobe TIFF Technical Note 2; 32946/8 "Adobe Deflate") with the
  horizontal-differencing predictor (TIFF 6.0 §14). Deflate+predictor compresses 16-bit photos
  better than LZW, every TIFF reader decodes it, and tifffile encodes it with the standard
  library (LZW would need imagecodecs). ICC in tag 34675; EXIF and GPS as real sub-IFDs
  (tags 34665, 34853) appended after tifffile has written the image.
- PNG (ISO/IEC 15948, PNG 3rd ed.): 8-bit through Pillow; 16-bit RGB through OpenCV, then the
  iCCP (§11.3.3.3) and eXIf (§11.3.6.1) chunks are inserted right after IHDR with their CRCs.
- Quantisation is round-to-nearest with clipping (NaN -> 0). Dither is off by default: one
  8-bit step is below visibility in photographic content, JPEG's own quantisation noise
  already breaks up contours, dither noise costs 10-20% in JPEG size and prevents exact
  round trips. ``dither='ordered'`` (8x8 Bayer, Bayer 1973) or ``'tpdf'`` (triangular,
  Lipshitz et al. 1992) is there for smooth 8-bit gradients (skies in PNG).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import tifffile
from PIL import Image, TiffImagePlugin

from ..errors import InputError, OptionError, OutputError
from ..isp import spaces
from ..photo import Photo
from ..recipe import Output
from .atomic import atomic_path
from .formats import SUFFIX_ALIASES, SUFFIXES
from .icc import icc_profile
from .metadata import IFD_EXIF, IFD_GPS, build_exif

SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}  # Pillow's codes
DITHERS = (None, "ordered", "tpdf")
_BLOCK_VALUES = 1 << 19  # values per quantisation block (4 MB of float64 scratch)


# image formats that are not written: a file with their suffix is refused, not filled with
# JPEG bytes (the default when the suffix names no format)
OTHER_IMAGE_SUFFIXES: dict[str, str] = {
    ".gif": "GIF", ".webp": "WebP", ".bmp": "BMP", ".jp2": "JPEG 2000", ".j2k": "JPEG 2000",
    ".exr": "OpenEXR", ".hdr": "Radiance HDR", ".psd": "Photoshop", ".tga": "TGA",
    ".ppm": "PPM", ".pgm": "PGM", ".ico": "ICO", ".dng": "DNG", ".raw": "raw",
}


def format_from_path(path: str | Path) -> str | None:
    """'jpeg' | 'tiff' | 'png' | 'heif' | 'avif' | 'jxl' from the file suffix
    (case-insensitive), None when unknown."""
    return SUFFIXES.get(Path(path).suffix.lower())


def _bayer(n: int = 8) -> np.ndarray:
    """n x n ordered-dither thresholds in (-0.5, 0.5) (Bayer 1973 recursive index matrix)."""
    m = np.zeros((1, 1), dtype=np.int64)
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return ((m + 0.5) / m.size - 0.5).astype(np.float32)


Converter = Callable[[np.ndarray], np.ndarray]


def _space_converter(src: str, dst: str) -> Converter | None:
    """Encoded ``src`` -> encoded ``dst`` through linear light and XYZ D50, clipping to gamut."""
    if src == dst:
        return None
    m = (spaces.xyz_d50_to_rgb(dst) @ spaces.rgb_to_xyz_d50(src)).astype(np.float32)
    t_src, t_dst = spaces.SPACES[src].transfer, spaces.SPACES[dst].transfer

    def convert(block: np.ndarray) -> np.ndarray:
        lin = spaces.decode(block, t_src)
        return spaces.encode(lin @ m.T, t_dst)

    return convert


def quantize(
    rgb: np.ndarray,
    bits: int,
    *,
    dither: str | None = None,
    convert: Converter | None = None,
    bgr: bool = False,
) -> np.ndarray:
    """Float [0, 1] (H, W, C) -> C-contiguous uint8/uint16, round to nearest, clipped.

    Works in row blocks so that a 50 MP image needs only the output array plus a few MB of
    scratch. ``convert`` maps a float block first (space conversion); ``bgr`` reverses the
    channels (for OpenCV). Dither (8-bit only): None, 'ordered' or 'tpdf'.
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, not {bits}")
    if dither not in DITHERS:
        raise OptionError(f"unknown dither {dither!r} (none, ordered or tpdf)")
    h, w, c = rgb.shape
    dtype = np.uint8 if bits == 8 else np.uint16
    top = 255.0 if bits == 8 else 65535.0
    if rgb.dtype in (np.uint8, np.uint16):  # quantised by develop(dtype=...)
        if rgb.dtype == dtype and convert is None and dither is None:
            return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if bgr else rgb  # SIMD channel swap
        rgb = rgb.astype(np.float32) / np.float32(np.iinfo(rgb.dtype).max)
    out = np.empty((h, w, c), dtype=dtype)
    rows = max(1, _BLOCK_VALUES // max(1, w * c))
    tile = _bayer() if dither == "ordered" and bits == 8 else None
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        block = rgb[r0:r1]
        if convert is not None:
            block = convert(block)
        # float64 scratch per block: float32 * 65535 is off by up to 1/256 code (ulp at 65535)
        x = np.multiply(block, top, dtype=np.float64)
        if tile is not None:
            ty = np.arange(r0, r1) % 8
            tx = np.arange(w) % 8
            x += tile[ty[:, None], tx[None, :]][:, :, None]
        elif dither == "tpdf" and bits == 8:
            rng = np.random.default_rng(r0)  # deterministic: same photo, same bytes
            x += rng.random(x.shape)
            x -= rng.random(x.shape)
        np.fmax(x, 0.0, out=x)  # fmax/fmin also turn NaN into the bound
        np.fmin(x, top, out=x)
        np.rint(x, out=x)
        out[r0:r1] = x[..., ::-1] if bgr else x
    return out


def _resolve(photo: Photo, output: Output) -> tuple[str, int]:
    fmt = output.format
    if fmt in ("heif", "avif", "jxl"):
        from .modern import check

        bits = check(output)
    else:
        bits = output.bits or (16 if fmt == "tiff" else 8)
    if fmt in ("jpeg", "uhdr") and bits != 8:
        raise OptionError("JPEG is 8-bit only (bits 16 needs tiff or png)")
    if fmt in ("tiff", "png") and bits not in (8, 16):
        raise OptionError(f"{fmt} is 8 or 16-bit, not {bits}")
    if output.subsampling not in SUBSAMPLING:
        raise OptionError(
            f"unknown subsampling {output.subsampling!r} (one of {', '.join(SUBSAMPLING)})"
        )
    rgb = photo.rgb
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        shape = getattr(rgb, "shape", None)
        raise InputError(f"photo must be (H, W, 3) RGB, got shape {shape}", photo.source)
    if photo.space not in spaces.SPACES:
        raise InputError(f"unknown colour space {photo.space!r}", photo.source)
    return fmt, bits


# --- encoders: each writes one format to a binary file object ---------------------------------


def _encode_jpeg(fh: BinaryIO, rgb: np.ndarray, output: Output, icc: bytes, exif: bytes) -> None:
    """libjpeg-turbo through OpenCV, two bands at once on large images (see output.jpeg)."""
    from .jpeg import encode_jpeg

    fh.write(encode_jpeg(rgb, quality=output.quality, subsampling=output.subsampling,
                         icc=icc, exif=exif))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _iccp_chunk(icc: bytes, name: str) -> bytes:
    """iCCP: Latin-1 name (1-79 bytes), NUL, compression method 0, zlib stream."""
    label = name.encode("latin-1", "replace")[:79] or b"ICC"
    return _png_chunk(b"iCCP", label + b"\0\0" + zlib.compress(icc, 9))


def insert_png_chunks(png: bytes, chunks: list[bytes]) -> bytes:
    """Insert ready-made chunks right after IHDR (where iCCP and eXIf must precede IDAT)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG stream starting with IHDR")
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:]


def _encode_png(
    fh: BinaryIO, pixels: np.ndarray, output: Output, icc: bytes, exif: bytes, title: str
) -> None:
    if pixels.dtype == np.uint8:
        # zlib level 3: ~4x faster than Pillow's default 6 on photos for ~10% more bytes
        img = Image.fromarray(pixels, "RGB")
        img.save(fh, "PNG", icc_profile=icc, exif=exif, compress_level=3)
        return
    # 16-bit: ``pixels`` is BGR already (see quantize(bgr=True)).
    ok, buf = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OutputError("OpenCV could not encode the 16-bit PNG")
    raw_exif = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    chunks = [_iccp_chunk(icc, title), _png_chunk(b"eXIf", raw_exif)]
    fh.write(insert_png_chunks(buf.tobytes(), chunks))


def _sub_ifd_bytes(tags: dict[int, object], group: int, offset: int) -> bytes:
    """One little-endian TIFF IFD (entries + data, next-IFD 0) meant to sit at file ``offset``."""
    ifd = TiffImagePlugin.ImageFileDirectory_v2(group=group)
    for tag, value in tags.items():
        ifd[tag] = value
    return ifd.tobytes(offset)


# tifffile refuses to write the ExifIFD/GPSInfo pointers itself, so IFD0 gets a LONG placeholder
# one code below each (same place in the ascending tag order) that is renamed when patched.
_PLACEHOLDER = {IFD_EXIF: IFD_EXIF - 1, IFD_GPS: IFD_GPS - 1}


def _patch_tiff_sub_ifds(
    fh: BinaryIO, start: int, sub_ifds: dict[int, Callable[[int], bytes]]
) -> None:
    """Append EXIF/GPS sub-IFDs after the classic little-endian TIFF written at ``start`` and
    turn IFD0's placeholder entries into pointers to them (offsets relative to the header)."""
    fh.seek(start)
    head = fh.read(8)
    if head[:4] != b"II*\0":
        raise OutputError("unexpected TIFF header from tifffile")
    ifd0 = struct.unpack("<I", head[4:8])[0]
    fh.seek(start + ifd0)
    (count,) = struct.unpack("<H", fh.read(2))
    entries = fh.read(12 * count)
    where = {}
    for i in range(count):
        tag = struct.unpack("<H", entries[12 * i : 12 * i + 2])[0]
        where[tag] = start + ifd0 + 2 + 12 * i
    for tag, build in sub_ifds.items():
        fh.seek(0, io.SEEK_END)
        end = fh.tell()
        if (end - start) % 2:
            fh.write(b"\0")  # IFDs start on a word boundary
            end += 1
        fh.write(build(end - start))
        fh.seek(where[_PLACEHOLDER[tag]])
        fh.write(struct.pack("<HHII", tag, 4, 1, end - start))
    fh.seek(0, io.SEEK_END)


def _encode_tiff(
    fh: BinaryIO, pixels: np.ndarray, photo: Photo, space: str, icc: bytes, software: str
) -> None:
    exif = build_exif(photo.shot, software=software, space=space)  # TIFF has its own size tags
    exif_tags = dict(exif.get_ifd(IFD_EXIF))
    gps_tags = dict(exif.get_ifd(IFD_GPS))
    shot = photo.shot
    extratags: list[tuple[int, str, int, object, bool]] = [(274, "H", 1, 1, True)]
    ifd0 = ((271, shot.make), (272, shot.model), (315, shot.artist), (33432, shot.copyright))
    for tag, value in ifd0:
        if value:
            extratags.append((tag, "s", 0, str(value), True))
    big = pixels.nbytes > 3_900_000_000  # BigTIFF: keep to IFD0 tags, no sub-IFD patching
    sub_ifds: dict[int, Callable[[int], bytes]] = {}
    if exif_tags and not big:
        extratags.append((_PLACEHOLDER[IFD_EXIF], "I", 1, 0, True))
        sub_ifds[IFD_EXIF] = lambda off: _sub_ifd_bytes(exif_tags, IFD_EXIF, off)
    if gps_tags and not big:
        extratags.append((_PLACEHOLDER[IFD_GPS], "I", 1, 0, True))
        sub_ifds[IFD_GPS] = lambda off: _sub_ifd_bytes(gps_tags, IFD_GPS, off)
    start = fh.tell()
    tifffile.imwrite(
        fh,
        pixels,
        photometric="rgb",
        compression="zlib",
        # with the predictor, level 1 is no larger than 3 or 6 on developed 16-bit photos
        # (measured: 250 vs 252 MB at 50 MP; 39.6 vs 39.8 MB on the Pocket 4K DNG) and 30 % faster
        compressionargs={"level": 1},
        predictor=2,
        maxworkers=min(2, os.cpu_count() or 1),  # strips compressed on both cores
        iccprofile=icc,
        software=software,
        datetime=shot.datetime.strftime("%Y:%m:%d %H:%M:%S") if shot.datetime else None,
        extratags=extratags,
        metadata=None,
        resolution=(72, 72),
        resolutionunit="INCH",
        bigtiff=big,
    )
    if sub_ifds:
        _patch_tiff_sub_ifds(fh, start, sub_ifds)


def encode_to(
    fh: BinaryIO,
    photo: Photo | list[Photo],
    output: Output,
    *,
    dither: str | None = None,
    software: str = "oneinch",
) -> None:
    """Encode ``photo`` as ``output`` says into a seekable binary file object.

    ``[photo]`` (a one-element list): handed over; emptied once quantised (see :func:`write`).
    """
    held = photo if isinstance(photo, list) else None
    photo = _unwrap(photo)
    fmt, bits = _resolve(photo, output)
    if fmt in ("uhdr", "heif", "avif", "jxl"):
        _encode_new(fh, photo, output, fmt, software)
        return
    # output.size is develop's job (geometry.resize_long_edge, before the frame): not redone here.
    convert = _space_converter(photo.space, output.space)
    icc = icc_profile(output.space)
    bgr = fmt == "png" and bits == 16
    pixels = quantize(photo.rgb, bits, dither=dither, convert=convert, bgr=bgr)
    if held is not None:  # from here on only the metadata is needed: free the float image
        held.clear()
        photo = replace(photo, rgb=pixels[:1, :1].astype(np.float32))
    if fmt == "jpeg":
        _encode_jpeg(fh, pixels, output, icc, _exif(photo, pixels, output.space, software, True))
    elif fmt == "png":
        title = spaces.SPACES[output.space].title
        exif = _exif(photo, pixels, output.space, software, False)
        _encode_png(fh, pixels, output, icc, exif, title)
    elif fmt == "tiff":
        _encode_tiff(fh, pixels, photo, output.space, icc, software)
    else:  # Output validates the format; this is a guard for new formats
        raise OptionError(f"no encoder for format {fmt!r}")


def _encode_new(fh: BinaryIO, photo: Photo, output: Output, fmt: str, software: str) -> None:
    """Ultra HDR (output.uhdr) and HEIF/AVIF/JPEG XL (output.modern)."""
    if fmt == "uhdr":
        from .uhdr import HDR_KEY, encode_uhdr

        hdr = photo.extra.get(HDR_KEY)
        if hdr is None:
            raise OptionError(
                "uhdr needs the HDR rendition: oneinch.output.uhdr.with_hdr(photo, "
                "hdr_rendition(raw, recipe, photo)) or uhdr.develop_uhdr_file()"
            )
        fh.write(encode_uhdr(photo, hdr, output, software=software))
        return
    from .metadata import exif_bytes
    from .modern import encode_modern

    size = (photo.width, photo.height)
    exif = exif_bytes(photo.shot, software=software, size=size, space=output.space)
    encode_modern(fh, photo, output, icc_profile(output.space), exif)


def _exif(photo: Photo, pixels: np.ndarray, space: str, software: str, jpeg: bool) -> bytes:
    size = (pixels.shape[1], pixels.shape[0])
    return build_exif(photo.shot, software=software, size=size, space=space, jpeg=jpeg).tobytes()


def encode_bytes(
    photo: Photo, output: Output, *, dither: str | None = None, software: str = "oneinch"
) -> bytes:
    """The encoded file as bytes (for the browser app / HTTP responses)."""
    buf = io.BytesIO()
    encode_to(buf, photo, output, dither=dither, software=software)
    return buf.getvalue()


def _unwrap(photo: Photo | list[Photo]) -> Photo:
    return photo[0] if isinstance(photo, list) else photo


def write(
    photo: Photo | list[Photo],
    path: str | Path,
    output: Output | None = None,
    *,
    dither: str | None = None,
    software: str = "oneinch",
) -> Path:
    """Write ``photo`` to ``path`` atomically and return the path.

    ``output`` defaults to the format of the suffix in the photo's own space. A known suffix
    that contradicts ``output.format`` is an OptionError (no JPEG bytes in a .png file).
    Missing or unwritable folder -> OutputError naming the path.

    ``photo`` may be handed over in a one-element list (``[photo]``, the caller keeping no
    other reference): the writer then empties the list as soon as the image is quantised, so
    the float image is freed before the encoder allocates its own buffers (a 50 MP float32
    image is 600 MB; the 8-bit pixels, 150 MB).
    """
    target, output = _checked(_unwrap(photo), path, output)
    with atomic_path(target) as tmp:
        try:
            fh = open(tmp, "w+b")  # read back for the TIFF sub-IFD pointers
        except OSError as e:
            raise OutputError(f"cannot write ({e.strerror})", target) from None
        with fh:
            encode_to(fh, photo, output, dither=dither, software=software)
    return target


def _checked(photo: Photo, path: str | Path, output: Output | None) -> tuple[Path, Output]:
    """(the target path, the output options) once they agree (see :func:`write`): bad options
    fail before any temp file is made."""
    target = check_target(path, output)
    if output is None:
        output = Output(format=format_from_path(target) or "jpeg", space=photo.space)
    _resolve(photo, output)
    return target, output


def check_target(path: str | Path, output: Output | None = None) -> Path:
    """``path`` as a Path once its suffix agrees with ``output`` (any known one when None):
    an image format that is not written, a suffix that names no image format, or one that
    names another format than ``output.format``, is an OptionError naming the file (before
    anything is developed). A name without a suffix takes ``output.format``."""
    target = Path(path)
    other = OTHER_IMAGE_SUFFIXES.get(target.suffix.lower())
    if other is not None:
        raise OptionError(f"{other} is not written here (jpeg, tiff, png, heif, avif, jxl; "
                          "uhdr as .jpg)", target)
    by_suffix = format_from_path(target)
    if by_suffix is None and target.suffix:  # (no JPEG bytes in out.txt; a name without
        # a suffix takes the output's format)
        raise OptionError(f"{target.suffix!r} is not an image format's suffix (.jpg, .tif, "
                          ".png, .heic, .avif, .jxl)", target)
    if output is not None and by_suffix is not None and \
            SUFFIX_ALIASES.get(output.format, output.format) != by_suffix:
        raise OptionError(
            f"file suffix says {by_suffix} but the output format is {output.format}", target
        )
    return target


def write_jpeg_rows(photo: Photo, rows, path: str | Path, output: Output | None = None, *,
                    software: str = "oneinch") -> Path:
    """Write the JPEG a streamed develop encoded row by row (``rows``, an
    :class:`oneinch.output.jpeg.JpegRows` that ``develop(..., rows=)`` filled; ``photo``, that
    develop's Photo, gives the metadata) with the EXIF and ICC profile :func:`write` gives a
    JPEG, atomically. Returns the path."""
    target, output = _checked(photo, path, output)
    if output.format != "jpeg" or output.space != photo.space:
        raise OptionError("streamed rows make a JPEG in the develop's own colour space")
    exif = build_exif(photo.shot, software=software, size=(photo.width, photo.height),
                      space=output.space, jpeg=True).tobytes()
    data = rows.finish(icc=icc_profile(output.space), exif=exif)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target
