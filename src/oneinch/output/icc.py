"""Matrix/TRC ICC display profiles for the output spaces, built byte by byte.

Follows ICC.1:2022 (profile version 4.4): 128-byte header, tag table, then tag data
(§7.2–7.3, 4-byte aligned). Tags: ``desc``/``cprt`` (multiLocalizedUnicodeType, §10.15),
``wtpt`` (XYZType, = PCS D50 for v4 display profiles, §9.2.55), ``chad`` (s15Fixed16ArrayType,
Bradford adaptation from the space's white to D50, Annex G; only for non-D50 spaces),
``rXYZ``/``gXYZ``/``bXYZ`` (the D50-adapted primaries, §9.2.42) and ``rTRC``/``gTRC``/``bTRC``
(parametricCurveType, §10.18) that equal the space's transfer function exactly.

Why v4 rather than v2.4: ``para`` curves (which state the sRGB / BT.709 / ROMM formulas exactly
instead of sampling them) are only defined for v4, and v4 matrix/TRC profiles with ``mluc``
text are read by LittleCMS 2 (Pillow's ImageCms), Chrome/Skia (skcms), Firefox (qcms),
Safari/ColorSync and Photoshop — Apple ships Display P3 exactly that way.
"""

from __future__ import annotations

import hashlib
import struct
from functools import cache

import numpy as np

from ..isp.spaces import D50_XY, SPACES, bradford, rgb_to_xyz_d50

# PCS illuminant as the spec encodes it (ICC.1:2022 §7.2.16): X=0xF6D6, Y=0x10000, Z=0xD32D.
PCS_D50_FIXED = (0xF6D6, 0x10000, 0xD32D)
_VERSION = 0x04400000  # 4.4.0.0
_DATE = (2024, 1, 1, 0, 0, 0)  # fixed: the same space always yields the same bytes
_COPYRIGHT = "No copyright, use freely (CC0)"

# parametricCurveType function 3: Y = (aX + b)^g for X >= d, Y = cX for X < d.
_PARA: dict[str, tuple[float, float, float, float, float]] = {
    # IEC 61966-2-1 sRGB decoding.
    "srgb": (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045),
    # ITU-R BT.709/BT.2020 inverse OETF (alpha = 1.09929682680944, beta = 0.018053968510807).
    "bt709": (
        1 / 0.45,
        1 / 1.09929682680944,
        0.09929682680944 / 1.09929682680944,
        1 / 4.5,
        4.5 * 0.018053968510807,
    ),
    # ROMM RGB (ISO 22028-2): gamma 1.8 with a linear toe of slope 16 below 1/512 linear.
    "romm": (1.8, 1.0, 0.0, 1 / 16, 16 / 512),
}


def _s15f16(v: float) -> int:
    """s15Fixed16Number (ICC.1:2022 §4.6) as a signed int."""
    return round(v * 65536.0)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _mluc(text: str) -> bytes:
    s = text.encode("utf-16-be")
    return struct.pack(">4sIII2s2sII", b"mluc", 0, 1, 12, b"en", b"US", len(s), 28) + s


def _xyz(fixed: tuple[int, int, int]) -> bytes:
    return struct.pack(">4sIiii", b"XYZ ", 0, *fixed)


def _sf32(m: np.ndarray) -> bytes:
    return struct.pack(">4sI9i", b"sf32", 0, *(_s15f16(v) for v in m.ravel()))


def _para(transfer: str) -> bytes:
    if transfer == "linear":
        return struct.pack(">4sIHHi", b"para", 0, 0, 0, _s15f16(1.0))
    g, a, b, c, d = _PARA[transfer]
    return struct.pack(">4sIHH5i", b"para", 0, 3, 0, *(_s15f16(v) for v in (g, a, b, c, d)))


def fixed_primaries(space: str) -> np.ndarray:
    """3x3 s15Fixed16 ints: columns rXYZ, gXYZ, bXYZ of ``rgb_to_xyz_d50(space)``.

    Each row is nudged by at most a few 1/65536 so that R+G+B = the PCS white exactly
    (white and greys map to neutral in every CMM); our D50 xy (0.3457, 0.3585) and the ICC's
    encoded D50 differ by 2e-4 in Z, below anything a colour test can see.
    """
    m = rgb_to_xyz_d50(space)
    pcs = np.array(PCS_D50_FIXED, dtype=np.float64) / 65536.0
    ours = m.sum(axis=1)
    fixed = np.rint(m * (pcs / ours)[:, None] * 65536.0).astype(np.int64)
    for row in range(3):
        err = PCS_D50_FIXED[row] - int(fixed[row].sum())
        fixed[row, int(np.argmax(np.abs(m[row])))] += err
    return fixed


def build_profile(space: str) -> bytes:
    """Assemble the profile for ``space`` (one of isp.spaces.SPACES); see the module docstring."""
    sp = SPACES[space]
    fx = fixed_primaries(space)
    trc = _para(sp.transfer)
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _mluc(f"oneinch {sp.title}")),
        (b"cprt", _mluc(_COPYRIGHT)),
        (b"wtpt", _xyz(PCS_D50_FIXED)),
        (b"rXYZ", _xyz(tuple(int(v) for v in fx[:, 0]))),
        (b"gXYZ", _xyz(tuple(int(v) for v in fx[:, 1]))),
        (b"bXYZ", _xyz(tuple(int(v) for v in fx[:, 2]))),
        (b"rTRC", trc),
        (b"gTRC", trc),
        (b"bTRC", trc),
    ]
    if sp.white != D50_XY:
        tags.append((b"chad", _sf32(bradford(sp.white, D50_XY))))

    table_len = 4 + 12 * len(tags)
    offset = 128 + table_len
    entries: list[bytes] = []
    blobs: list[bytes] = []
    seen: dict[bytes, int] = {}  # identical tag data is stored once (the three TRCs)
    for sig, data in tags:
        if data in seen:
            entries.append(struct.pack(">4sII", sig, seen[data], len(data)))
            continue
        seen[data] = offset
        entries.append(struct.pack(">4sII", sig, offset, len(data)))
        blob = _pad4(data)
        blobs.append(blob)
        offset += len(blob)
    body = struct.pack(">I", len(tags)) + b"".join(entries) + b"".join(blobs)
    size = 128 + len(body)

    header = struct.pack(
        ">I4sI4s4s4s6H4s4sI4s4sQI3i4s16s28s",
        size,
        b"\0\0\0\0",  # preferred CMM: none
        _VERSION,
        b"mntr",
        b"RGB ",
        b"XYZ ",
        *_DATE,
        b"acsp",
        b"\0\0\0\0",  # primary platform: none
        0,  # flags
        b"\0\0\0\0",  # device manufacturer
        b"\0\0\0\0",  # device model
        0,  # device attributes
        0,  # rendering intent: perceptual
        *PCS_D50_FIXED,
        b"\0\0\0\0",  # creator
        b"\0" * 16,  # profile ID, filled below
        b"\0" * 28,
    )
    assert len(header) == 128
    profile = bytearray(header + body)
    # Profile ID (§7.2.18): MD5 of the profile with flags, intent and ID fields zeroed
    # (they already are).
    profile[84:100] = hashlib.md5(bytes(profile)).digest()
    return bytes(profile)


@cache
def icc_profile(space: str) -> bytes:
    """The ICC v4.4 matrix/TRC display profile for output space ``space`` (cached)."""
    if space not in SPACES:
        raise ValueError(f"unknown colour space {space!r} (one of {', '.join(SPACES)})")
    return build_profile(space)
