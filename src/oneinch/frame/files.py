"""Frame finished files (JPEG, PNG, TIFF, HEIC/HEIF, WebP) from any camera.

Orientation (EXIF 0x0112) is applied to the pixels first, the frame drawn, and the output
keeps the input's EXIF metadata (camera and shot tags; Orientation reset to 1, pixel dimensions
updated; never a TIFF's pixel-layout tags), ICC profile and XMP.
JPEG is written at quality 95 with 4:4:4 chroma by default. The output appears atomically and
the input is never written to.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageOps

from ..errors import InputError, OptionError, OutputError
from ..output.atomic import atomic_path
from ..raw.exif import exif_from_pil, shot_info_from_exif
from .render import render
from .templates import Template

_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".heic": "HEIF",
    ".heif": "HEIF",
    ".avif": "AVIF",
    ".webp": "WEBP",
    ".jxl": "JXL",
}
_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            if hasattr(pillow_heif, "register_avif_opener"):
                pillow_heif.register_avif_opener()
        except Exception:  # pragma: no cover - pillow-heif is a dependency
            pass
        _heif_registered = True


def output_path(
    in_path: str | Path, out_dir: str | Path | None, layout: str, suffix: str | None = None
) -> Path:
    """``<out_dir>/<stem>_<layout><ext>``: the input's folder and extension by default."""
    src = Path(in_path)
    folder = Path(out_dir) if out_dir is not None else src.parent
    ext = suffix if suffix is not None else src.suffix.lower()
    if not ext.startswith("."):
        ext = "." + ext
    name = Path(layout).stem if layout.endswith(".toml") else layout
    return folder / f"{src.stem}_{name}{ext}"


def _is_raw(path: Path) -> bool:
    """A raw container the raw reader recognises by its own signature (ORF, RW2, RAF, CR3...).
    TIFF-signature files are told apart by their tags first (:func:`_check_tiff`)."""
    from ..raw.reader import sniff_raw_kind

    try:
        with open(path, "rb") as f:
            kind = sniff_raw_kind(f.read(64))
    except OSError:
        return False
    return kind is not None and kind != "tiff"


_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
                    13: 4}
# Tags only raw sensor data carries: DNGVersion; CFARepeatPatternDim, CFAPattern (TIFF/EP)
_RAW_TAGS = {50706, 33421, 33422}
_RAW_PHOTOMETRIC = {32803, 34892}  # CFA, LinearRaw (TIFF/EP, DNG 1.7 section 6)


def _tiff_entries(data: Any, bo: str, off: int, size: int) -> dict[int, tuple[int, ...]]:
    """The tags of the IFD at ``off`` (TIFF 6.0 section 2) → their integer values (SHORT,
    LONG and IFD types; other types map to ()). struct.error / ValueError past the end."""
    (n,) = struct.unpack_from(bo + "H", data, off)
    if off + 2 + 12 * n + 4 > size:
        raise ValueError(f"an IFD at byte {off} runs past the end")
    out: dict[int, tuple[int, ...]] = {}
    for i in range(n):
        e = off + 2 + 12 * i
        tag, typ, cnt = struct.unpack_from(bo + "HHI", data, e)
        nbytes = _TIFF_TYPE_SIZES.get(typ, 1) * cnt
        where = e + 8 if nbytes <= 4 else struct.unpack_from(bo + "I", data, e + 8)[0]
        if typ in (3, 4, 13) and cnt <= 1 << 20:
            if where + nbytes > size:
                raise ValueError(f"tag {tag} points past the end")
            code = "H" if typ == 3 else "I"
            out[tag] = struct.unpack_from(f"{bo}{cnt}{code}", data, where)
        else:
            out[tag] = ()
    return out


def _check_tiff(src: Path) -> None:
    """For a file with a TIFF signature: InputError if it is raw sensor data (a DNG, a
    TIFF-based camera raw: develop it) or if its first image's strips or tiles run past the
    end of the file (truncated), before a decoder reads them and libtiff prints to stderr."""
    size = src.stat().st_size
    with open(src, "rb") as f:
        try:  # mapped, not read: only the IFD pages are touched
            data: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            data = f.read()
    try:
        if data[:4] not in (b"II*\0", b"MM\0*"):
            return  # BigTIFF and others: left to the decoder
        bo = "<" if data[:2] == b"II" else ">"
        raw = data[8:10] == b"CR"  # Canon CR2
        ifd0: dict[int, tuple[int, ...]] | None = None
        problem = None
        todo, seen = [struct.unpack_from(bo + "I", data, 4)[0]], set()
        try:
            while todo and len(seen) < 64 and not raw:
                off = todo.pop(0)
                if off == 0 or off in seen:
                    continue
                seen.add(off)
                tags = _tiff_entries(data, bo, off, size)
                if ifd0 is None:
                    ifd0 = tags
                raw = bool(_RAW_TAGS & set(tags)) or bool(
                    set(tags.get(262, ())) & _RAW_PHOTOMETRIC)
                todo.extend(tags.get(330, ()))  # SubIFDs
                (nxt,) = struct.unpack_from(bo + "I", data, off + 2 + 12 * len(tags))
                todo.append(nxt)
        except (struct.error, ValueError) as e:
            problem = str(e) if isinstance(e, ValueError) else "an IFD runs past the end"
        if raw:
            raise InputError("a raw file: develop it with its frame "
                             "(`oneinch develop FILE --frame LAYOUT`)", src)
        if ifd0 is None:
            raise InputError(f"truncated or corrupt TIFF ({problem or 'no image'})", src)
        for offsets, counts in ((273, 279), (324, 325)):
            offs, cnts = ifd0.get(offsets, ()), ifd0.get(counts, ())
            end = max((o + c for o, c in zip(offs, cnts, strict=False)), default=0)
            if end > size:
                raise InputError(f"truncated TIFF: its image data runs to byte {end}, "
                                 f"the file has {size}", src)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


@contextlib.contextmanager
def _quiet_decoders(capture_c_stderr: bool) -> Iterator[list[str]]:
    """Pillow's warnings (e.g. 'Corrupt EXIF data') silenced, and with ``capture_c_stderr``
    what C libraries (libtiff) print to file descriptor 2 caught instead: the caller reports
    one line per file. The list yielded holds the caught lines once the block has ended.
    Process-wide while it lasts (a descriptor is), so it wraps only one file's decode."""
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not capture_c_stderr:
            yield lines
            return
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with tempfile.TemporaryFile() as tmp:
                os.dup2(tmp.fileno(), 2)
                try:
                    yield lines
                finally:
                    os.dup2(saved, 2)
                    tmp.seek(0)
                    text = tmp.read(4096).decode("utf-8", "replace")
                    lines.extend(ln.strip() for ln in text.splitlines() if ln.strip())
        finally:
            os.close(saved)


MAX_EXPANSION = 2000  # decoded bytes per file byte: deflate tops out near 1032:1 (RFC 1951)


def _check_declared_size(im: Image.Image, src: Path) -> None:
    """Refuse a file declaring far more pixels than its bytes can hold (bomb or truncation)
    before Pillow allocates them."""
    need = im.width * im.height * max(1, len(im.getbands()))
    have = src.stat().st_size
    if need > MAX_EXPANSION * have + 2**20:
        raise InputError(
            f"declares {im.width}x{im.height} pixels but has only {have} bytes "
            "(truncated or a decompression bomb)",
            src,
        )


def _open_image(src: Path) -> Image.Image:
    """Pillow's opener, or (JPEG XL, which Pillow does not read) our decoder as an 8-bit image
    carrying the file's ICC profile and EXIF in ``info`` like Pillow's own plugins do."""
    with open(src, "rb") as f:
        head = f.read(16)
    if head[:2] == b"\xff\x0a" or head[4:8] == b"JXL ":
        import numpy as np

        from ..output.modern import read_modern

        d = read_modern(src)
        im = Image.fromarray(np.clip(np.rint(d.rgb * 255.0), 0, 255).astype(np.uint8), "RGB")
        if d.icc:
            im.info["icc_profile"] = d.icc
        if d.exif:
            im.info["exif"] = d.exif
        return im
    return Image.open(src)


# IFD0 tags that describe the shot or the picture (EXIF 2.32 section 4.6.4 "TIFF Rev. 6.0
# attribute information", less the tags of the pixel layout), and the pointers to the Exif and
# GPS IFDs. A TIFF's getexif() is its whole first IFD: width, height, bits per sample, strips,
# compression... which, passed on, would describe the input's pixels, not the framed ones.
_METADATA_TAGS = (
    270,  # ImageDescription
    271,  # Make
    272,  # Model
    282, 283, 296,  # X/YResolution, ResolutionUnit
    305,  # Software
    306,  # DateTime
    315,  # Artist
    318, 319,  # WhitePoint, PrimaryChromaticities
    531,  # YCbCrPositioning
    33432,  # Copyright
    0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F,  # Windows XPTitle...XPSubject
)


def metadata_exif(exif: Image.Exif, width: int, height: int) -> Image.Exif:
    """Only the EXIF metadata of ``exif`` (a JPEG's APP1 or a TIFF's first IFD), for an image
    of ``width`` x ``height``: camera and shot tags, the Exif and GPS IFDs; Orientation 1
    (the pixels are upright), the Exif IFD's pixel dimensions updated."""
    out = Image.Exif()
    for tag in _METADATA_TAGS:
        if tag in exif:
            out[tag] = exif[tag]
    out[ExifTags.Base.Orientation] = 1
    for pointer in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        if pointer not in exif:
            continue
        try:
            ifd = dict(exif.get_ifd(pointer))
        except Exception:  # an unreadable sub-IFD is dropped, not fatal
            continue
        if pointer == ExifTags.IFD.Exif:
            ifd.pop(ExifTags.IFD.Interop, None)  # points into the input file
            if ExifTags.Base.ExifImageWidth in ifd or ExifTags.Base.ExifImageHeight in ifd:
                ifd[ExifTags.Base.ExifImageWidth] = width
                ifd[ExifTags.Base.ExifImageHeight] = height
        if ifd:
            out[pointer] = ifd
    return out


def frame_file(
    in_path: str | Path,
    out_path: str | Path,
    layout: str = "classic",
    template: Template | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    quality: int = 95,
    subsampling: str = "4:4:4",
) -> Path:
    """Frame one finished image file into ``out_path`` (format from its extension)."""
    _register_heif()
    src, dst = Path(in_path), Path(out_path)
    fmt = _FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise OptionError(
            f"unknown output format {dst.suffix!r} (use {', '.join(sorted(_FORMATS))})", dst
        )
    if not 1 <= int(quality) <= 100:
        raise OptionError(f"quality must be 1..100, not {quality}")
    if subsampling not in ("4:4:4", "4:2:2", "4:2:0"):
        raise OptionError(f"subsampling must be 4:4:4, 4:2:2 or 4:2:0, not {subsampling}")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise OptionError("output would overwrite the input", dst)
    try:
        with open(src, "rb") as f:
            is_tiff = f.read(4) in (b"II*\0", b"MM\0*")
        if is_tiff:
            _check_tiff(src)
        with _quiet_decoders(is_tiff) as said, _open_image(src) as im:
            _check_declared_size(im, src)
            im.load()
            tags = exif_from_pil(im)
            exif = im.getexif()
            icc = im.info.get("icc_profile")
            xmp = tags.get("XMLPacket")
            upright = ImageOps.exif_transpose(im)
    except FileNotFoundError:
        raise InputError("file not found", src) from None
    except IsADirectoryError:
        raise InputError("is a directory, not an image", src) from None
    except (OSError, ValueError, SyntaxError, TypeError, IndexError, KeyError, EOFError,
            ZeroDivisionError, struct.error, Image.DecompressionBombError) as e:
        if _is_raw(src):
            raise InputError("a raw file: develop it with its frame "
                             "(`oneinch develop FILE --frame LAYOUT`)", src) from None
        why = "; ".join(said[:1]) if is_tiff and said else str(e)
        raise InputError(f"cannot read image, truncated or corrupt ({why})", src) from None
    except MemoryError:
        raise InputError("image too large to decode in memory", src) from None
    shot = shot_info_from_exif(tags)
    try:
        framed = render(upright, shot, layout, template, overrides)
    except (InputError, OptionError) as e:  # render does not know the file: name it
        if e.path is None:
            raise type(e)(e.detail, src) from None
        raise
    except MemoryError:
        raise InputError("image too large to frame in memory", src) from None

    exif = metadata_exif(exif, framed.width, framed.height)
    try:
        params: dict[str, Any] = {"exif": exif.tobytes()}
    except Exception as e:  # Pillow cannot re-encode a tag of a corrupt type/count
        raise InputError(f"its EXIF cannot be re-written (corrupt tag: {e})", src) from None
    if icc:
        params["icc_profile"] = icc
    if fmt == "JPEG":
        params.update(
            quality=int(quality),
            subsampling={"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}[subsampling],
            optimize=True,
        )
        if isinstance(xmp, bytes | str) and xmp:
            params["xmp"] = xmp.encode() if isinstance(xmp, str) else xmp
    elif fmt in ("HEIF", "AVIF", "WEBP"):
        params["quality"] = int(quality)
    # TIFF: uncompressed, because Pillow's libtiff path drops the Exif sub-IFD
    try:
        with atomic_path(dst) as tmp:
            if fmt == "JXL":
                _save_jxl(tmp, framed, params, quality)
            else:
                framed.save(tmp, format=fmt, **params)
    except OutputError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise OutputError(f"cannot write {fmt} ({e})", dst) from None
    return dst


def _save_jxl(tmp: Path, framed: Image.Image, params: dict[str, Any], quality: int) -> None:
    """JPEG XL through output.modern (Pillow does not write it), ICC and EXIF kept."""
    import numpy as np

    from ..output.icc import icc_profile
    from ..output.modern import encode_modern
    from ..photo import Photo
    from ..recipe import Output

    rgb = np.asarray(framed.convert("RGB"), np.float32) / 255.0
    exif = params.get("exif", b"")
    if exif and not exif.startswith(b"Exif\0\0"):
        exif = b"Exif\0\0" + exif
    with open(tmp, "wb") as fh:
        encode_modern(fh, Photo(rgb=rgb), Output(format="jxl", quality=int(quality)),
                      params.get("icc_profile") or icc_profile("srgb"), exif)
