"""DNG Camera Profiles (.dcp): read, write, and apply their HueSatMap / LookTable / ToneCurve.

A DCP is a TIFF-structured file whose header magic is 'RC' (bytes ``II RC`` or ``MM CR``)
instead of 42, holding one IFD of the DNG camera-profile tags (DNG 1.6 spec, ch. 4 "Camera
Profile tags", ch. 6 "Mapping Camera Color Space to CIE XYZ Space"; Adobe "DNG Camera Profile"
notes). Profiles embedded in a DNG use the same tags in IFD0 (:func:`from_tags`).

HueSatMap / LookTable (DNG 1.6 ch. 6 "Hue/Saturation Map" and ProfileLookTable): a table of
(hue shift in degrees, saturation scale, value scale) on a hue x saturation x value grid,
applied in HSV of linear ProPhoto RGB (the DNG "reference" RGB). Hue divisions wrap around
360°, saturation divisions span 0..1 in (satDivisions - 1) steps, value divisions 0..1 in
(valDivisions - 1) steps (one value division = a 2-D table); lookups are trilinear with hue
wrap. Data order is value-major, then hue, then saturation (saturation fastest). With
``encoding`` 1 (ProfileHueSatMapEncoding / ProfileLookTableEncoding = sRGB) the value axis
is indexed by the sRGB-encoded value.

Order in a DNG develop (spec ch. 6): camera -> XYZ D50 (ForwardMatrix) -> linear ProPhoto ->
HueSatMap (interpolated between the two calibrations like the matrices) -> LookTable ->
exposure -> ProfileToneCurve (on each RGB channel, 0..1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from ..raw.image import CameraColor

# DNG tag numbers (DNG 1.6 spec ch. 4)
TAGS = {
    "unique_camera_model": 50708,
    "color_matrix1": 50721,
    "color_matrix2": 50722,
    "illuminant1": 50778,
    "illuminant2": 50779,
    "calibration_signature": 50932,
    "profile_name": 50936,
    "hue_sat_map_dims": 50937,
    "hue_sat_map_data1": 50938,
    "hue_sat_map_data2": 50939,
    "tone_curve": 50940,
    "embed_policy": 50941,
    "copyright": 50942,
    "forward_matrix1": 50964,
    "forward_matrix2": 50965,
    "look_table_dims": 50981,
    "look_table_data": 50982,
    "hue_sat_map_encoding": 51107,
    "look_table_encoding": 51108,
    "baseline_exposure_offset": 51109,
    "default_black_render": 51110,
}
_BY_NUMBER = {v: k for k, v in TAGS.items()}
_TYPES = {1: ("B", 1), 2: ("s", 1), 3: ("H", 2), 4: ("I", 4), 5: ("II", 8), 7: ("B", 1),
          8: ("h", 2), 9: ("i", 4), 10: ("ii", 8), 11: ("f", 4), 12: ("d", 8)}


@dataclass(frozen=True)
class HueSatMap:
    """A 2.5-D HSV table. ``data``: float32 (val, hue, sat, 3) = (hue shift °, sat scale,
    value scale); ``encoding`` 0 = linear value axis, 1 = sRGB-encoded value axis."""

    data: np.ndarray
    encoding: int = 0

    @property
    def dims(self) -> tuple[int, int, int]:
        """(hue, sat, val) divisions, as in ProfileHueSatMapDims."""
        v, h, s, _ = self.data.shape
        return h, s, v

    @classmethod
    def identity(cls, hue: int = 90, sat: int = 30, val: int = 1) -> HueSatMap:
        d = np.zeros((val, hue, sat, 3), np.float32)
        d[..., 1:] = 1.0
        return cls(d)


@dataclass(frozen=True)
class DCP:
    """The profile tags of a DCP (or of a DNG's IFD0). Matrices are float64 3x3."""

    unique_camera_model: str | None = None
    profile_name: str | None = None
    color_matrix1: np.ndarray | None = None
    color_matrix2: np.ndarray | None = None
    forward_matrix1: np.ndarray | None = None
    forward_matrix2: np.ndarray | None = None
    illuminant1: int = 0
    illuminant2: int = 0
    hue_sat_map1: HueSatMap | None = None
    hue_sat_map2: HueSatMap | None = None
    look_table: HueSatMap | None = None
    tone_curve: np.ndarray | None = None  # (n, 2) float32 (input, output) in 0..1
    embed_policy: int | None = None  # 0 allow copying, 1 embed if used, 2 never, 3 no restr.
    copyright: str | None = None
    calibration_signature: str | None = None
    baseline_exposure_offset: float | None = None
    default_black_render: int | None = None
    extra: dict[int, object] = field(default_factory=dict)  # tags not interpreted here

    def camera_color(self, base: CameraColor | None = None) -> CameraColor:
        """The profile's matrices over ``base`` (its neutral, calibration, exposure kept)."""
        base = base or CameraColor()
        return replace(base, color_matrix1=self.color_matrix1, color_matrix2=self.color_matrix2,
                       forward_matrix1=self.forward_matrix1,
                       forward_matrix2=self.forward_matrix2, illuminant1=self.illuminant1,
                       illuminant2=self.illuminant2, source="dng")


# ----------------------------------------------------------------------------- reading


def _rational(vals: tuple, signed: bool) -> list[float]:
    return [n / d if d else 0.0 for n, d in zip(vals[0::2], vals[1::2], strict=True)]


def _parse_ifd(buf: bytes, path: str | Path, ifd_offset: int, bo: str) -> dict[int, object]:
    def need(off: int, n: int) -> None:
        if off < 0 or off + n > len(buf):
            raise InputError("truncated profile (an offset points past the end)", path)

    need(ifd_offset, 2)
    (count,) = struct.unpack_from(bo + "H", buf, ifd_offset)
    need(ifd_offset + 2, 12 * count)
    out: dict[int, object] = {}
    for i in range(count):
        tag, typ, n, raw = struct.unpack_from(bo + "HHI4s", buf, ifd_offset + 2 + 12 * i)
        if typ not in _TYPES:
            continue
        fmt, size = _TYPES[typ]
        total = size * n
        if total <= 4:
            data = raw[:total]
        else:
            (off,) = struct.unpack(bo + "I", raw)
            need(off, total)
            data = buf[off:off + total]
        if typ == 2:
            out[tag] = data.split(b"\0", 1)[0].decode("utf-8", "replace")
        elif typ in (5, 10):
            vals = struct.unpack(bo + ("I" if typ == 5 else "i") * (2 * n), data)
            out[tag] = _rational(vals, typ == 10)
        else:
            out[tag] = list(struct.unpack(bo + fmt * n, data))
    return out


def read_dcp(path: str | Path) -> DCP:
    """Read a .dcp file (DNG 1.6 ch. 4 profile tags; 'IIRC' or 'MMCR' header)."""
    p = Path(path)
    try:
        buf = p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read profile: {e.strerror or e}", p) from e
    if len(buf) < 8 or buf[:2] not in (b"II", b"MM"):
        raise InputError("not a DNG camera profile (no II/MM byte-order mark)", p)
    bo = "<" if buf[:2] == b"II" else ">"
    magic, ifd = struct.unpack_from(bo + "HI", buf, 2)
    if magic != 0x4352:
        raise InputError(f"not a DNG camera profile (magic {magic:#06x}, expected 'RC')", p)
    return from_tags(_parse_ifd(buf, p, ifd, bo), source=p)


def _matrix(v: object) -> np.ndarray | None:
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None  # not numbers: treat as absent (a corrupt profile tag)
    if a.size != 9 or not np.isfinite(a).all():
        return None  # 4-colour cameras (3x4) are not supported by the 3-colour pipeline
    return a.reshape(3, 3)


def _hsm(dims: object, data: object, encoding: object, source: object) -> HueSatMap | None:
    if dims is None or data is None:
        return None
    d = [int(x) for x in np.asarray(dims).reshape(-1)]
    if len(d) == 2:
        d.append(1)
    h, s, v = d[:3]
    arr = np.asarray(data, dtype=np.float32).reshape(-1)
    if min(h, s, v) < 1 or arr.size != h * s * v * 3:
        raise InputError(f"HueSatMap data has {arr.size} values for dims {d}", source)
    enc = int(np.asarray(encoding).reshape(-1)[0]) if encoding is not None else 0
    return HueSatMap(arr.reshape(v, h, s, 3), enc)


def _scalar(v: object) -> object:
    if v is None:
        return None
    if isinstance(v, (list, tuple, np.ndarray)):
        return v[0] if len(v) else None
    return v


def from_tags(tags: dict, source: object = None) -> DCP:
    """Profile from a {tag number or name: value} dict; corrupt values -> InputError."""
    try:
        return _from_tags(tags, source)
    except (ValueError, TypeError, OverflowError, IndexError) as e:
        raise InputError(f"corrupt camera profile tags ({e})",
                         str(source) if source is not None else None) from None


def _from_tags(tags: dict, source: object = None) -> DCP:
    """Profile from a {tag number or name: value} dict (a DCP's IFD or a DNG's IFD0 tags).

    Values may be lists, numpy arrays or (for matrices) nested sequences; strings for ASCII.
    """
    def get(name: str) -> object:
        v = tags.get(TAGS[name], tags.get(name))
        if isinstance(v, bytes):
            v = v.split(b"\0", 1)[0].decode("utf-8", "replace")
        return v

    curve = get("tone_curve")
    tc = None
    if curve is not None:
        a = np.asarray(curve, dtype=np.float32).reshape(-1)
        if a.size % 2 or a.size < 4:
            raise InputError("ProfileToneCurve needs at least two (x, y) pairs", source)
        tc = a.reshape(-1, 2)
    dims = get("hue_sat_map_dims")
    enc = get("hue_sat_map_encoding")
    beo = _scalar(get("baseline_exposure_offset"))
    known = set(TAGS.values()) | set(TAGS)
    return DCP(
        unique_camera_model=get("unique_camera_model"),  # type: ignore[arg-type]
        profile_name=get("profile_name"),  # type: ignore[arg-type]
        color_matrix1=_matrix(get("color_matrix1")),
        color_matrix2=_matrix(get("color_matrix2")),
        forward_matrix1=_matrix(get("forward_matrix1")),
        forward_matrix2=_matrix(get("forward_matrix2")),
        illuminant1=int(_scalar(get("illuminant1")) or 0),  # type: ignore[arg-type]
        illuminant2=int(_scalar(get("illuminant2")) or 0),  # type: ignore[arg-type]
        hue_sat_map1=_hsm(dims, get("hue_sat_map_data1"), enc, source),
        hue_sat_map2=_hsm(dims, get("hue_sat_map_data2"), enc, source),
        look_table=_hsm(get("look_table_dims"), get("look_table_data"),
                        get("look_table_encoding"), source),
        tone_curve=tc,
        embed_policy=None if get("embed_policy") is None else int(_scalar(get("embed_policy"))),  # type: ignore[arg-type]
        copyright=get("copyright"),  # type: ignore[arg-type]
        calibration_signature=get("calibration_signature"),  # type: ignore[arg-type]
        baseline_exposure_offset=None if beo is None else float(beo),  # type: ignore[arg-type]
        default_black_render=None if get("default_black_render") is None else int(
            _scalar(get("default_black_render"))),  # type: ignore[arg-type]
        extra={k: v for k, v in tags.items() if k not in known and isinstance(k, int)},
    )


# ----------------------------------------------------------------------------- writing


def _srational(values: np.ndarray, den: int = 10000) -> tuple[int, list[int]]:
    out: list[int] = []
    for v in np.asarray(values, dtype=np.float64).reshape(-1):
        out += [round(float(v) * den), den]
    return 10, out


def _entries(d: DCP) -> list[tuple[int, int, object]]:
    """(tag, type, values) for every set field, per the DNG spec's tag types."""
    e: list[tuple[int, int, object]] = []

    def ascii_(name: str, v: str | None) -> None:
        if v is not None:
            e.append((TAGS[name], 2, v.encode("utf-8") + b"\0"))

    ascii_("unique_camera_model", d.unique_camera_model)
    for name in ("color_matrix1", "color_matrix2", "forward_matrix1", "forward_matrix2"):
        m = getattr(d, name)
        if m is not None:
            e.append((TAGS[name], *_srational(m)))
    if d.illuminant1:
        e.append((TAGS["illuminant1"], 3, [int(d.illuminant1)]))
    if d.illuminant2:
        e.append((TAGS["illuminant2"], 3, [int(d.illuminant2)]))
    ascii_("calibration_signature", d.calibration_signature)
    ascii_("profile_name", d.profile_name)
    maps = [m for m in (d.hue_sat_map1, d.hue_sat_map2) if m is not None]
    if maps:
        if len(maps) == 2 and maps[0].data.shape != maps[1].data.shape:
            raise OutputError("HueSatMap 1 and 2 must have the same dimensions")
        e.append((TAGS["hue_sat_map_dims"], 4, list(maps[0].dims)))
        if d.hue_sat_map1 is not None:
            e.append((TAGS["hue_sat_map_data1"], 11, d.hue_sat_map1.data.reshape(-1)))
        if d.hue_sat_map2 is not None:
            e.append((TAGS["hue_sat_map_data2"], 11, d.hue_sat_map2.data.reshape(-1)))
        if maps[0].encoding:
            e.append((TAGS["hue_sat_map_encoding"], 4, [maps[0].encoding]))
    if d.tone_curve is not None:
        e.append((TAGS["tone_curve"], 11, np.asarray(d.tone_curve, np.float32).reshape(-1)))
    if d.embed_policy is not None:
        e.append((TAGS["embed_policy"], 4, [int(d.embed_policy)]))
    ascii_("copyright", d.copyright)
    if d.look_table is not None:
        e.append((TAGS["look_table_dims"], 4, list(d.look_table.dims)))
        e.append((TAGS["look_table_data"], 11, d.look_table.data.reshape(-1)))
        if d.look_table.encoding:
            e.append((TAGS["look_table_encoding"], 4, [d.look_table.encoding]))
    if d.baseline_exposure_offset is not None:
        e.append((TAGS["baseline_exposure_offset"], *_srational([d.baseline_exposure_offset])))
    if d.default_black_render is not None:
        e.append((TAGS["default_black_render"], 4, [int(d.default_black_render)]))
    return sorted(e, key=lambda t: t[0])


def dcp_bytes(d: DCP) -> bytes:
    """The profile as little-endian DCP bytes ('IIRC', one IFD, tags ascending)."""
    entries = _entries(d)
    ifd_size = 2 + 12 * len(entries) + 4
    data_off = 8 + ifd_size
    ifd = struct.pack("<H", len(entries))
    blob = b""
    for tag, typ, vals in entries:
        if typ == 2:
            payload = bytes(vals)  # type: ignore[arg-type]
            n = len(payload)
        else:
            fmt = {3: "H", 4: "I", 10: "i", 11: "f"}[typ]
            seq = list(np.asarray(vals).reshape(-1).tolist())
            payload = struct.pack("<" + fmt * len(seq), *seq)
            n = len(seq) // 2 if typ == 10 else len(seq)
        if len(payload) <= 4:
            ifd += struct.pack("<HHI", tag, typ, n) + payload.ljust(4, b"\0")
        else:
            if len(blob) % 2:
                blob += b"\0"  # TIFF: values start on a word boundary
            ifd += struct.pack("<HHII", tag, typ, n, data_off + len(blob))
            blob += payload
    ifd += struct.pack("<I", 0)
    return b"II" + struct.pack("<HI", 0x4352, 8) + ifd + blob


def write_dcp(path: str | Path, d: DCP) -> None:
    """Write ``d`` as a .dcp file (atomically: temp file + rename)."""
    from ..output.atomic import atomic_write_bytes

    atomic_write_bytes(Path(path), dcp_bytes(d))


# ----------------------------------------------------------------------------- applying


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hexcone HSV: hue in [0, 6), saturation (max - min) / max, value max (DNG's HSV)."""
    r, g, b = (rgb[..., i] for i in range(3))
    v = np.max(rgb, axis=-1)
    mn = np.min(rgb, axis=-1)
    c = v - mn
    s = np.where(v > 0, c / np.where(v > 0, v, 1), 0.0)
    safe = np.where(c > 0, c, 1)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = np.where(c > 0, np.mod(h, 6.0), 0.0)
    return h, s, v


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    h = np.mod(h, 6.0)
    i = np.floor(h)
    f = h - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


def lookup_hue_sat_map(m: HueSatMap, h: np.ndarray, s: np.ndarray, v: np.ndarray
                       ) -> np.ndarray:
    """Trilinear (hue-wrapping) table lookup at HSV (h in [0, 6)); returns (..., 3)."""
    nv, nh, ns, _ = m.data.shape
    data = m.data.astype(np.float64)
    vv = v
    if m.encoding == 1:
        from .spaces import encode

        vv = encode(np.clip(v, 0, 1).astype(np.float32), "srgb").astype(np.float64)
    fh = h * (nh / 6.0)
    h0 = np.floor(fh).astype(np.int64)
    wh = fh - h0
    h0 %= nh
    h1 = (h0 + 1) % nh
    fs = np.clip(s, 0, 1) * (ns - 1)
    s0 = np.minimum(np.floor(fs).astype(np.int64), max(ns - 2, 0))
    ws = fs - s0 if ns > 1 else np.zeros_like(fs)
    s1 = np.minimum(s0 + 1, ns - 1)
    fv = np.clip(vv, 0, 1) * (nv - 1)
    v0 = np.minimum(np.floor(fv).astype(np.int64), max(nv - 2, 0))
    wv = fv - v0 if nv > 1 else np.zeros_like(fv)
    v1 = np.minimum(v0 + 1, nv - 1)
    out = 0.0
    for vi, wvi in ((v0, 1 - wv), (v1, wv)):
        for hi, whi in ((h0, 1 - wh), (h1, wh)):
            for si, wsi in ((s0, 1 - ws), (s1, ws)):
                out = out + (wvi * whi * wsi)[..., None] * data[vi, hi, si]
    return out  # type: ignore[return-value]


def apply_hue_sat_map(rgb_prophoto_linear: np.ndarray, m: HueSatMap | None) -> np.ndarray:
    """Apply a HueSatMap or LookTable (DNG 1.6 ch. 6) to linear ProPhoto RGB (..., 3).

    Hue is shifted by the table's degrees, saturation scaled (limited to 1), value scaled;
    over-range values keep their ratio (the value axis is looked up clipped to 1).
    """
    x = np.asarray(rgb_prophoto_linear, dtype=np.float32)
    if m is None:
        return x.copy()
    flat = np.maximum(x.reshape(-1, 3).astype(np.float64), 0.0)
    out = np.empty_like(flat)
    for lo in range(0, flat.shape[0], 1 << 20):  # bounded temporaries on large images
        chunk = flat[lo:lo + (1 << 20)]
        h, s, v = rgb_to_hsv(chunk)
        t = lookup_hue_sat_map(m, h, s, v)
        h2 = h + t[..., 0] / 60.0
        s2 = np.clip(s * t[..., 1], 0.0, 1.0)
        v2 = v * t[..., 2]
        out[lo:lo + chunk.shape[0]] = hsv_to_rgb(h2, s2, v2)
    return out.reshape(x.shape).astype(np.float32)


def interpolate_maps(d: DCP, weight1: float) -> HueSatMap | None:
    """HueSatMap for an illuminant between the two calibrations (same weight as the matrices;
    ``color.interpolation_weight``): weight1 * map1 + (1 - weight1) * map2."""
    a, b = d.hue_sat_map1, d.hue_sat_map2
    if a is None or b is None:
        return a or b
    w = float(np.clip(weight1, 0, 1))
    return HueSatMap((w * a.data + (1 - w) * b.data).astype(np.float32), a.encoding)


def apply_tone_curve(rgb: np.ndarray, curve: np.ndarray | None) -> np.ndarray:
    """ProfileToneCurve: piecewise-linear (x, y) curve on each channel of display-range RGB
    (values outside 0..1 are clipped to it, as the curve is only defined there)."""
    x = np.asarray(rgb, dtype=np.float32)
    if curve is None:
        return x.copy()
    c = np.asarray(curve, dtype=np.float32).reshape(-1, 2)
    return np.interp(np.clip(x, 0, 1), c[:, 0], c[:, 1]).astype(np.float32)
