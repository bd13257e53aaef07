"""Ultra HDR: an ordinary SDR JPEG plus a gain map JPEG that restores the HDR rendition.

Follows the Ultra HDR Image Format v1.1 (Android, 2023-2024; "gain map math" and "JPEG/R
container"), which adopts the Adobe gain map XMP (namespace ``hdrgm``, Adobe 2022 "Gain Map
Specification" 1.0) and ISO/TS 21496-1:2025 (binary gain map metadata):

Encoding (per pixel, linear light, SDR white = 1)::

    G = (Y_hdr + k_hdr) / (Y_sdr + k_sdr)                 k = OffsetHDR / OffsetSDR = 1/64
    r = clamp((log2 G - GainMapMin) / (GainMapMax - GainMapMin), 0, 1) ** Gamma
    code = round(255 r)                                    (8-bit, a JPEG of its own)

Decoding (weight W from the display's headroom, 1 at or above HDRCapacityMax)::

    log_boost = GainMapMin (1 - r^(1/Gamma)) + GainMapMax r^(1/Gamma)
    HDR = (SDR + k_sdr) * 2^(log_boost W) - k_hdr          (each RGB channel)

The file (JPEG/R): primary JPEG = SOI, JFIF, EXIF (APP1), XMP with hdrgm:Version and the
GContainer directory (APP1), ICC (APP2), ISO 21496-1 version block (APP2), MPF index (APP2,
CIPA DC-007-2009 §5.2: MP Index IFD with two MP entries), image, EOI; then the gain map JPEG =
SOI, XMP with the hdrgm values (APP1), ISO 21496-1 metadata (APP2), image, EOI. Viewers without
HDR support show the primary and ignore the rest.

The HDR rendition (:func:`hdr_rendition`) keeps the SDR look: it equals the SDR rendition
(display-linear, same tone curve, look, LUT, grain, sharpening) up to the scene exposure where
the SDR curve reaches display 0.5, then multiplies it by ``2^(h · s(e))`` where ``e`` is the
scene exposure of the pixel's max(R,G,B) norm and ``s`` a smoothstep that reaches 1 at
``white_ev + h`` scene stops: highlights map about one scene stop to one display stop and roll
off at the headroom ``h`` (``output.hdr_headroom``, stops above SDR white).
"""

from __future__ import annotations

import io
import math
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import InputError, OptionError, OutputError
from ..fileio import read_input_bytes
from ..isp import spaces
from ..photo import Photo
from ..recipe import Output, Recipe
from .atomic import atomic_path
from .icc import icc_profile
from .metadata import exif_bytes

OFFSET = 1.0 / 64.0  # k_sdr = k_hdr, as the Ultra HDR reference encoder
KNEE_DISPLAY = 0.5  # the HDR rendition equals the SDR one below this display-linear value
GAINMAP_QUALITY = 95
HDR_KEY = "hdr_linear"  # Photo.extra key holding the HDR rendition (display-linear, float32)

NS_X = "adobe:ns:meta/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_HDRGM = "http://ns.adobe.com/hdr-gain-map/1.0/"
NS_CONTAINER = "http://ns.google.com/photos/1.0/container/"
NS_ITEM = "http://ns.google.com/photos/1.0/container/item/"
XMP_ID = b"http://ns.adobe.com/xap/1.0/\0"
ISO_ID = b"urn:iso:std:iso:ts:21496:-1\0"
MPF_ID = b"MPF\0"
ICC_ID = b"ICC_PROFILE\0"


@dataclass(frozen=True)
class GainMapMetadata:
    """hdrgm / ISO 21496-1 values. Log2 units for min/max/capacity; one value per map channel
    (1 or 3). ``space`` is the base image's colour space when known (from its ICC profile)."""

    gain_map_min: tuple[float, ...]
    gain_map_max: tuple[float, ...]
    gamma: tuple[float, ...] = (1.0,)
    offset_sdr: tuple[float, ...] = (OFFSET,)
    offset_hdr: tuple[float, ...] = (OFFSET,)
    hdr_capacity_min: float = 0.0
    hdr_capacity_max: float = 1.0
    base_is_hdr: bool = False
    space: str | None = None

    @property
    def channels(self) -> int:
        return len(self.gain_map_min)

    def per_channel(self, name: str) -> np.ndarray:
        v = np.asarray(getattr(self, name), np.float64)
        return np.broadcast_to(v, (self.channels,)) if v.size == 1 else v


# ----------------------------------------------------------------------------- HDR rendition


def highlight_gain(norm: np.ndarray, tone, headroom: float) -> np.ndarray:
    """Per-pixel HDR/SDR display ratio from the scene norm max(R,G,B) (float32, >= 1).

    1 below the scene exposure where the SDR tone curve reaches display ``KNEE_DISPLAY``; then
    ``2^(headroom · smoothstep)`` up to ``tone.white_ev + headroom`` stops above grey."""
    from ..looks.tone import GREY, curve_np, curve_params

    white_ev = float(tone.white_ev)
    if tone.curve == "filmic":
        p = curve_params(tone)
        grid = np.linspace(-8.0, white_ev + 8.0, 4097)
        y, _ = curve_np(GREY * 2.0**grid, p)
        above = np.nonzero(y >= KNEE_DISPLAY)[0]
        e_knee = float(grid[above[0]]) if above.size else white_ev - 1.0
    else:  # 'linear' / 'none': display = scene
        e_knee = math.log2(KNEE_DISPLAY / GREY)
    e_top = max(white_ev + headroom, e_knee + 1.0)
    ev = np.log2(np.maximum(norm.astype(np.float32), 1e-8) / np.float32(GREY))
    t = np.clip((ev - e_knee) / (e_top - e_knee), 0.0, 1.0)
    s = t * t * (3.0 - 2.0 * t)
    return np.exp2(np.float32(headroom) * s).astype(np.float32)


def hdr_rendition(raw, recipe: Recipe | None = None, sdr: Photo | None = None) -> np.ndarray:
    """Display-linear HDR (H, W, 3) float32 in ``recipe.output.space``, SDR white = 1, values
    up to ``2^output.hdr_headroom``. Same look as the SDR rendition ``sdr`` (developed here
    when not given) below display 0.5, highlights extended (see the module docstring)."""
    from ..develop import develop

    r = recipe or Recipe()
    headroom = float(getattr(r.output, "hdr_headroom", 3.0))
    if sdr is None:
        sdr = develop(raw, r)  # type: ignore[assignment]
    scene = develop(raw, r, until="geometry")
    assert isinstance(scene, np.ndarray) and isinstance(sdr, Photo)
    if scene.shape != sdr.rgb.shape:
        raise OptionError(f"HDR rendition {scene.shape} does not match the SDR {sdr.rgb.shape}")
    gain = highlight_gain(np.max(scene, axis=2), r.tone, headroom)
    sdr_lin = spaces.decode(sdr.rgb, spaces.SPACES[sdr.space].transfer)
    return np.ascontiguousarray(sdr_lin * gain[..., None], dtype=np.float32)


def with_hdr(photo: Photo, hdr_linear: np.ndarray) -> Photo:
    """The photo with its HDR rendition attached (``extra['hdr_linear']``), for write()."""
    extra = dict(photo.extra)
    extra[HDR_KEY] = hdr_linear
    return replace(photo, extra=extra)


# ----------------------------------------------------------------------------- gain map math


def _luma(rgb: np.ndarray, space: str) -> np.ndarray:
    return rgb @ spaces.luminance_weights(space).astype(np.float32)


def compute_gainmap(
    sdr_linear: np.ndarray,
    hdr_linear: np.ndarray,
    space: str,
    *,
    channels: int = 1,
    gamma: float = 1.0,
    scale: int = 1,
    offset: float = OFFSET,
) -> tuple[np.ndarray, GainMapMetadata]:
    """Gain map (uint8, (h, w) or (h, w, 3)) and its metadata from linear SDR and HDR
    (Ultra HDR v1.1 "Gain map generation"). ``scale`` downsamples the map (area average of
    log2 gains); min/max boost are the map's own extremes, so nothing clips."""
    if channels not in (1, 3):
        raise OptionError(f"gain map channels must be 1 or 3, not {channels}")
    if not 0.1 <= gamma <= 10:
        raise OptionError(f"gain map gamma {gamma} is outside 0.1..10")
    if sdr_linear.shape != hdr_linear.shape:
        raise OptionError(f"SDR {sdr_linear.shape} and HDR {hdr_linear.shape} sizes differ")
    if channels == 1:
        s, h = _luma(sdr_linear, space), _luma(hdr_linear, space)
    else:
        s, h = sdr_linear, hdr_linear
    k = np.float32(offset)
    log_g = np.log2((np.maximum(h, 0) + k) / (np.maximum(s, 0) + k)).astype(np.float32)
    if scale > 1:
        hh, ww = log_g.shape[:2]
        size = (max(1, -(-ww // scale)), max(1, -(-hh // scale)))
        log_g = cv2.resize(log_g, size, interpolation=cv2.INTER_AREA)
    axes = (0, 1)
    lo = np.atleast_1d(log_g.min(axis=axes)).astype(np.float64)
    hi = np.atleast_1d(log_g.max(axis=axes)).astype(np.float64)
    hi = np.maximum(hi, lo + 1.0 / 64)  # a flat map still needs max > min
    rec = np.clip((log_g - lo.astype(np.float32)) / (hi - lo).astype(np.float32), 0, 1)
    if gamma != 1.0:
        rec = rec ** np.float32(gamma)
    codes = np.rint(rec * 255.0).astype(np.uint8)
    n = channels
    meta = GainMapMetadata(
        gain_map_min=tuple(float(v) for v in lo[:n]),
        gain_map_max=tuple(float(v) for v in hi[:n]),
        gamma=(float(gamma),) * n,
        offset_sdr=(float(offset),) * n,
        offset_hdr=(float(offset),) * n,
        hdr_capacity_min=0.0,
        hdr_capacity_max=float(max(hi.max(), 1.0 / 64)),
        space=space,
    )
    return np.ascontiguousarray(codes), meta


def apply_gainmap(
    sdr_linear: np.ndarray,
    gainmap: np.ndarray,
    meta: GainMapMetadata,
    display_boost: float | None = None,
) -> np.ndarray:
    """Linear SDR (H, W, 3) + decoded gain map -> linear HDR (Ultra HDR v1.1 "Applying the
    gain map"). ``display_boost`` (linear, >= 1) is the display's headroom; None = full HDR."""
    h, w = sdr_linear.shape[:2]
    g = np.asarray(gainmap)
    if g.ndim == 3 and meta.channels == 1:
        g = g[..., 0]
    if g.shape[:2] != (h, w):
        g = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)
    rec = g.astype(np.float32) / 255.0
    gam = meta.per_channel("gamma").astype(np.float32)
    lo = meta.per_channel("gain_map_min").astype(np.float32)
    hi = meta.per_channel("gain_map_max").astype(np.float32)
    if rec.ndim == 2:
        rec = rec[..., None]
    log_rec = rec ** (1.0 / gam) if np.any(gam != 1) else rec
    log_boost = lo * (1 - log_rec) + hi * log_rec
    if display_boost is None:
        weight = 1.0
    else:
        cmin, cmax = meta.hdr_capacity_min, meta.hdr_capacity_max
        span = max(cmax - cmin, 1e-6)
        weight = float(np.clip((math.log2(max(display_boost, 1e-6)) - cmin) / span, 0, 1))
    k_s = meta.per_channel("offset_sdr").astype(np.float32)
    k_h = meta.per_channel("offset_hdr").astype(np.float32)
    out = (sdr_linear + k_s) * np.exp2(log_boost * np.float32(weight)) - k_h
    return np.ascontiguousarray(out, dtype=np.float32)


# ----------------------------------------------------------------------------- metadata bytes


def _fmt(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:.1f}"


def gainmap_xmp(meta: GainMapMetadata) -> bytes:
    """The gain map image's XMP packet with all hdrgm values (Adobe gain map spec 1.0)."""
    singles = {"Version": "1.0", "BaseRenditionIsHDR": "True" if meta.base_is_hdr else "False"}
    singles["HDRCapacityMin"] = _fmt(meta.hdr_capacity_min)
    singles["HDRCapacityMax"] = _fmt(meta.hdr_capacity_max)
    fields = {
        "GainMapMin": meta.gain_map_min,
        "GainMapMax": meta.gain_map_max,
        "Gamma": meta.gamma,
        "OffsetSDR": meta.offset_sdr,
        "OffsetHDR": meta.offset_hdr,
    }
    attrs, elems = [], []
    for name, values in fields.items():
        if len(values) == 1:
            attrs.append(f'hdrgm:{name}="{_fmt(values[0])}"')
        else:
            lis = "".join(f"<rdf:li>{_fmt(v)}</rdf:li>" for v in values)
            elems.append(f"<hdrgm:{name}><rdf:Seq>{lis}</rdf:Seq></hdrgm:{name}>")
    attrs += [f'hdrgm:{k}="{v}"' for k, v in singles.items()]
    body = "".join(elems)
    return (
        f'<x:xmpmeta xmlns:x="{NS_X}" x:xmptk="oneinch">'
        f'<rdf:RDF xmlns:rdf="{NS_RDF}">'
        f'<rdf:Description rdf:about="" xmlns:hdrgm="{NS_HDRGM}" {" ".join(attrs)}>'
        f"{body}</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def primary_xmp(gainmap_length: int) -> bytes:
    """The primary image's XMP: hdrgm:Version and the GContainer directory (Primary, GainMap)."""
    return (
        f'<x:xmpmeta xmlns:x="{NS_X}" x:xmptk="oneinch">'
        f'<rdf:RDF xmlns:rdf="{NS_RDF}">'
        f'<rdf:Description rdf:about="" xmlns:Container="{NS_CONTAINER}" '
        f'xmlns:Item="{NS_ITEM}" xmlns:hdrgm="{NS_HDRGM}" hdrgm:Version="1.0">'
        "<Container:Directory><rdf:Seq>"
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="Primary" '
        'Item:Mime="image/jpeg"/></rdf:li>'
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="GainMap" '
        f'Item:Mime="image/jpeg" Item:Length="{int(gainmap_length)}"/></rdf:li>'
        "</rdf:Seq></Container:Directory>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def _fraction(v: float, signed: bool) -> tuple[int, int]:
    """Value -> (numerator, denominator) with a power-of-ten denominator that fits 32 bits."""
    den = 1_000_000
    while abs(v) * den > (0x7FFFFFFF if signed else 0xFFFFFFFF) and den > 1:
        den //= 10
    return round(v * den), den


def iso21496_bytes(meta: GainMapMetadata | None) -> bytes:
    """ISO/TS 21496-1 gain map metadata (big-endian): minimum_version u16, writer_version u16,
    then (full metadata only) flags u8 (bit 7 multichannel, bit 6 use base colour space),
    base/alternate HDR headroom u32 n/d, and per channel gain map min/max (s32/u32), gamma
    (u32/u32), base/alternate offsets (s32/u32). ``None`` -> the 4-byte version block the
    primary image carries."""
    out = struct.pack(">HH", 0, 0)
    if meta is None:
        return out
    flags = (0x80 if meta.channels == 3 else 0) | 0x40
    base_head = meta.hdr_capacity_max if meta.base_is_hdr else meta.hdr_capacity_min
    alt_head = meta.hdr_capacity_min if meta.base_is_hdr else meta.hdr_capacity_max
    out += struct.pack(">B", flags)
    out += struct.pack(">IIII", *_fraction(max(base_head, 0), False),
                       *_fraction(max(alt_head, 0), False))
    for c in range(meta.channels):
        vals = [
            (meta.per_channel("gain_map_min")[c], True),
            (meta.per_channel("gain_map_max")[c], True),
            (meta.per_channel("gamma")[c], False),
            (meta.per_channel("offset_sdr")[c], True),
            (meta.per_channel("offset_hdr")[c], True),
        ]
        for v, signed in vals:
            n, d = _fraction(float(v), signed)
            out += struct.pack(">iI" if signed else ">II", n, d)
    return out


def parse_iso21496(data: bytes) -> GainMapMetadata | None:
    """Inverse of :func:`iso21496_bytes`; None for the version-only block."""
    if len(data) < 4 or struct.unpack(">H", data[:2])[0] != 0:
        return None
    if len(data) < 5 + 16:
        return None
    flags = data[4]
    n = 3 if flags & 0x80 else 1
    bn, bd, an, ad = struct.unpack(">IIII", data[5:21])
    pos = 21
    chans: list[list[float]] = []
    for _ in range(n):
        if pos + 40 > len(data):
            raise ValueError("truncated ISO 21496-1 metadata")
        mn, md, xn, xd, gn, gd, sn, sd, hn, hd = struct.unpack(">iIiIIIiIiI", data[pos:pos + 40])
        pos += 40
        chans.append([mn / md, xn / xd, gn / gd, sn / sd, hn / hd])
    base_head, alt_head = bn / max(bd, 1), an / max(ad, 1)
    base_is_hdr = base_head > alt_head
    cols = list(zip(*chans, strict=True))
    return GainMapMetadata(
        gain_map_min=tuple(cols[0]),
        gain_map_max=tuple(cols[1]),
        gamma=tuple(cols[2]),
        offset_sdr=tuple(cols[3]),
        offset_hdr=tuple(cols[4]),
        hdr_capacity_min=min(base_head, alt_head),
        hdr_capacity_max=max(base_head, alt_head),
        base_is_hdr=base_is_hdr,
    )


def mpf_segment(primary_size: int, gainmap_size: int, gainmap_offset: int) -> bytes:
    """APP2 'MPF' segment: big-endian TIFF header, MP Index IFD (MPFVersion 0100,
    NumberOfImages 2, MPEntry), two 16-byte MP entries (CIPA DC-007-2009 §5.2.3). Offsets
    count from the TIFF header; the primary's is 0."""
    entries_offset = 8 + 2 + 3 * 12 + 4
    ifd = struct.pack(">H", 3)
    ifd += struct.pack(">HHI4s", 0xB000, 7, 4, b"0100")
    ifd += struct.pack(">HHII", 0xB001, 4, 1, 2)
    ifd += struct.pack(">HHII", 0xB002, 7, 32, entries_offset)
    ifd += struct.pack(">I", 0)
    # attribute: representative image (bit 29) + Baseline MP Primary Image type 0x030000
    mp = struct.pack(">IIIHH", 0x20030000, primary_size, 0, 0, 0)
    mp += struct.pack(">IIIHH", 0x00000000, gainmap_size, gainmap_offset, 0, 0)
    payload = MPF_ID + b"MM\0*" + struct.pack(">I", 8) + ifd + mp
    return _segment(0xE2, payload)


MPF_SEGMENT_SIZE = 4 + 4 + 8 + 2 + 36 + 4 + 32  # marker + length + payload


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise OutputError(f"JPEG segment of {len(payload)} bytes is too long")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _split_header(jpeg: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """Position right after the leading APPn/COM segments, and those segments
    (marker, start, end)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    pos, segs = 2, []
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            break
        length = struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        segs.append((marker, pos, pos + 2 + length))
        pos += 2 + length
    return pos, segs


def _insert_after_app(jpeg: bytes, segments: bytes) -> tuple[bytes, int]:
    pos, _ = _split_header(jpeg)
    return jpeg[:pos] + segments + jpeg[pos:], pos


# ----------------------------------------------------------------------------- writing


def _jpeg(pixels: np.ndarray, quality: int, subsampling: int, **kw) -> bytes:
    mode = "L" if pixels.ndim == 2 else "RGB"
    img = Image.fromarray(pixels, mode)
    for optimize in (True, False):
        buf = io.BytesIO()
        try:
            img.save(buf, "JPEG", quality=quality, subsampling=subsampling, optimize=optimize,
                     **kw)
            return buf.getvalue()
        except OSError:
            # Pillow sizes libjpeg's buffer at ~1 byte/pixel for optimised Huffman tables;
            # very noisy content overflows it ("Suspension not allowed here")
            if not optimize:
                raise
    raise AssertionError("unreachable")


def encode_uhdr(
    sdr: Photo,
    hdr_linear: np.ndarray,
    output: Output,
    *,
    software: str = "oneinch",
    channels: int = 1,
    gamma: float = 1.0,
    scale: int = 1,
) -> bytes:
    """The Ultra HDR JPEG bytes: primary from ``sdr`` (ICC + EXIF, as encode.py writes JPEG),
    gain map from the decoded primary and ``hdr_linear`` (display-linear in ``sdr.space``,
    SDR white = 1)."""
    from .encode import SUBSAMPLING, _space_converter, quantize

    space = output.space
    if hdr_linear.shape != sdr.rgb.shape:
        raise OptionError(
            f"HDR rendition {hdr_linear.shape} does not match the SDR photo {sdr.rgb.shape}"
        )
    if output.subsampling not in SUBSAMPLING:
        raise OptionError(f"unknown subsampling {output.subsampling!r}")
    pixels = quantize(sdr.rgb, 8, convert=_space_converter(sdr.space, space))
    size = (pixels.shape[1], pixels.shape[0])
    exif = exif_bytes(sdr.shot, software=software, size=size, space=space, jpeg=True)
    primary = _jpeg(pixels, output.quality, SUBSAMPLING[output.subsampling],
                    icc_profile=icc_profile(space), exif=exif)
    # the gain map is computed against what a decoder will see: the decoded primary
    with Image.open(io.BytesIO(primary)) as im:
        decoded = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    sdr_lin = spaces.decode(decoded, spaces.SPACES[space].transfer)
    hdr = np.maximum(np.asarray(hdr_linear, np.float32), 0)
    if sdr.space != space:
        m = (spaces.xyz_d50_to_rgb(space) @ spaces.rgb_to_xyz_d50(sdr.space)).astype(np.float32)
        hdr = np.maximum(hdr @ m.T, 0)
    codes, meta = compute_gainmap(sdr_lin, hdr, space, channels=channels, gamma=gamma,
                                  scale=scale)
    gm = _jpeg(codes, GAINMAP_QUALITY, 0)
    gm_xmp = _segment(0xE1, XMP_ID + gainmap_xmp(meta))
    gm_iso = _segment(0xE2, ISO_ID + iso21496_bytes(meta))
    gm = gm[:2] + gm_xmp + gm_iso + gm[2:]  # right after SOI (no JFIF needed)
    head = _segment(0xE1, XMP_ID + primary_xmp(len(gm)))
    head += _segment(0xE2, ISO_ID + iso21496_bytes(None))
    placeholder = b"\0" * MPF_SEGMENT_SIZE
    primary, at = _insert_after_app(primary, head + placeholder)
    mpf_at = at + len(head)
    tiff_header = mpf_at + 4 + len(MPF_ID)
    mpf = mpf_segment(len(primary), len(gm), len(primary) - tiff_header)
    assert len(mpf) == MPF_SEGMENT_SIZE
    primary = primary[:mpf_at] + mpf + primary[mpf_at + MPF_SEGMENT_SIZE :]
    return primary + gm


def write_uhdr(
    sdr: Photo,
    hdr_linear: np.ndarray,
    path: str | Path,
    output: Output | None = None,
    *,
    software: str = "oneinch",
    channels: int = 1,
    scale: int = 1,
) -> Path:
    """Write an Ultra HDR JPEG atomically (see :func:`encode_uhdr`)."""
    target = Path(path)
    out = output or Output(format="uhdr", space=sdr.space)
    data = encode_uhdr(sdr, hdr_linear, out, software=software, channels=channels, scale=scale)
    with atomic_path(target) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as e:
            raise OutputError(f"cannot write ({e.strerror})", target) from None
    return target


def develop_uhdr_file(src: str | Path, dst: str | Path, recipe: Recipe | None = None) -> Path:
    """open_raw -> develop (SDR) + hdr_rendition -> write_uhdr. No frame (see report)."""
    from ..develop import develop
    from ..raw import open_raw

    r = recipe or Recipe()
    raw = open_raw(src)
    sdr = develop(raw, r)
    assert isinstance(sdr, Photo)
    hdr = hdr_rendition(raw, r, sdr)
    return write_uhdr(sdr, hdr, dst, replace(r.output, format="uhdr"))


# ----------------------------------------------------------------------------- reading


def _segments(jpeg: bytes, start: int = 0) -> list[tuple[int, bytes]]:
    """(marker, payload) of the APPn segments of the JPEG starting at ``start``."""
    _, segs = _split_header(jpeg[start:])
    return [(m, jpeg[start + a + 4 : start + b]) for m, a, b in segs]


def _mpf_images(payload: bytes, tiff_at: int) -> list[tuple[int, int]]:
    """(absolute offset, size) of each image listed in an MPF APP2 payload."""
    t = payload[4:]
    e = ">" if t[:2] == b"MM" else "<"
    ifd = struct.unpack(e + "I", t[4:8])[0]
    (count,) = struct.unpack(e + "H", t[ifd : ifd + 2])
    entries_at, n = None, 0
    for i in range(count):
        tag, _, cnt, val = struct.unpack(e + "HHII", t[ifd + 2 + 12 * i : ifd + 14 + 12 * i])
        if tag == 0xB002:
            entries_at, n = val, cnt // 16
    if entries_at is None:
        return []
    out = []
    for i in range(n):
        at = entries_at + 16 * i
        _, size, off, _, _ = struct.unpack(e + "IIIHH", t[at : at + 16])
        out.append((0 if i == 0 else tiff_at + off, size))
    return out


def _hdrgm_from_xmp(xmp: bytes) -> dict[str, list[str]]:
    """hdrgm values from an XMP packet: attributes or rdf:Seq elements -> {name: [values]}."""
    try:
        root = ET.fromstring(xmp.strip(b"\0 \r\n\t").decode("utf-8", "replace"))
    except ET.ParseError as e:
        raise ValueError(f"bad XMP ({e})") from None
    out: dict[str, list[str]] = {}
    pre = "{" + NS_HDRGM + "}"
    for el in root.iter():
        for k, v in el.attrib.items():
            if k.startswith(pre):
                out[k[len(pre):]] = [v]
        if el.tag.startswith(pre):
            lis = [li.text or "" for li in el.iter("{" + NS_RDF + "}li")]
            out[el.tag[len(pre):]] = lis if lis else [el.text or ""]
    return out


def _meta_from_hdrgm(d: dict[str, list[str]]) -> GainMapMetadata:
    def vals(name: str, default: float | None = None) -> tuple[float, ...]:
        if name not in d:
            if default is None:
                raise ValueError(f"hdrgm:{name} missing")
            return (default,)
        return tuple(float(v) for v in d[name])

    return GainMapMetadata(
        gain_map_min=vals("GainMapMin", 0.0),
        gain_map_max=vals("GainMapMax"),
        gamma=vals("Gamma", 1.0),
        offset_sdr=vals("OffsetSDR", OFFSET),
        offset_hdr=vals("OffsetHDR", OFFSET),
        hdr_capacity_min=vals("HDRCapacityMin", 0.0)[0],
        hdr_capacity_max=vals("HDRCapacityMax")[0],
        base_is_hdr=d.get("BaseRenditionIsHDR", ["False"])[0].lower() == "true",
    )


def _space_from_icc(icc: bytes | None) -> str | None:
    if not icc:
        return None
    for name in spaces.SPACES:
        if icc == icc_profile(name):
            return name
    return None


def read_uhdr(path: str | Path) -> tuple[np.ndarray, np.ndarray, GainMapMetadata]:
    """(SDR primary uint8 (H, W, 3), gain map uint8 (h, w) or (h, w, 3), metadata).

    The gain map is found through the MPF index (or, failing that, the GContainer length);
    its hdrgm XMP is preferred, the ISO 21496-1 block used when there is no XMP. ``meta.space``
    is the primary's colour space when its ICC profile is one oneinch writes (else None)."""
    p = Path(path)
    data = read_input_bytes(p)
    try:
        segs = _segments(data)
    except ValueError:
        raise InputError("not a JPEG file", p) from None
    icc = b"".join(pl[14:] for m, pl in segs if m == 0xE2 and pl.startswith(ICC_ID))
    images: list[tuple[int, int]] = []
    pos = 2
    for m, pl in segs:
        seg_len = len(pl) + 4
        if m == 0xE2 and pl.startswith(MPF_ID):
            images = _mpf_images(pl, pos + 4 + len(MPF_ID))
        pos += seg_len
    if len(images) < 2:
        raise InputError("no gain map: not an Ultra HDR JPEG (no MPF secondary image)", p)
    gm_at, gm_size = images[1]
    gm_bytes = data[gm_at : gm_at + gm_size]
    if gm_bytes[:2] != b"\xff\xd8":
        raise InputError("the MPF index does not point at a JPEG gain map", p)
    meta = None
    try:
        for m, pl in _segments(gm_bytes):
            if m == 0xE1 and pl.startswith(XMP_ID):
                d = _hdrgm_from_xmp(pl[len(XMP_ID):])
                if "GainMapMax" in d:
                    meta = _meta_from_hdrgm(d)
            elif m == 0xE2 and pl.startswith(ISO_ID) and meta is None:
                meta = parse_iso21496(pl[len(ISO_ID):])
    except (ValueError, struct.error) as e:
        raise InputError(f"bad gain map metadata ({e})", p) from None
    if meta is None:
        raise InputError("gain map has no hdrgm XMP or ISO 21496-1 metadata", p)
    with Image.open(io.BytesIO(data)) as im:
        sdr = np.asarray(im.convert("RGB"))
    with Image.open(io.BytesIO(gm_bytes)) as im:
        gm = np.asarray(im.convert("L") if meta.channels == 1 else im.convert("RGB"))
    return sdr, gm, replace(meta, space=_space_from_icc(icc))


def reconstruct_hdr(
    sdr: np.ndarray,
    gainmap: np.ndarray,
    meta: GainMapMetadata,
    display_boost: float | None = None,
    space: str | None = None,
) -> np.ndarray:
    """Linear HDR (float32, SDR white = 1) from read_uhdr()'s pieces. The SDR's transfer is
    that of ``space`` (default ``meta.space``, else sRGB)."""
    name = space or meta.space or "srgb"
    if name not in spaces.SPACES:
        raise OptionError(f"unknown colour space {name!r}")
    lin = spaces.decode(np.asarray(sdr, np.float32) / 255.0, spaces.SPACES[name].transfer)
    return apply_gainmap(lin, gainmap, meta, display_boost)


def log_error_stops(a: np.ndarray, b: np.ndarray, floor: float = OFFSET) -> float:
    """RMS of log2((a + floor) / (b + floor)) over all pixels and channels, in stops.

    The reconstruction measure of the tests: 1 dB (20·log10 ratio) = 0.166 stops."""
    d = np.log2((np.maximum(a, 0) + floor) / (np.maximum(b, 0) + floor))
    return float(np.sqrt(np.mean(d.astype(np.float64) ** 2)))


STOPS_PER_DB = 1.0 / (20.0 * math.log10(2.0))  # 0.1661 stops per dB
