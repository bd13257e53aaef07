"""What the sensor recorded: RawImage and the small records it carries.

A RawImage holds sensor values exactly as stored (integers, before black subtraction), plus
everything needed to interpret them: CFA layout, levels, colour calibration (DNG 1.6 ch. 6
terms), noise profile, opcode lists and the shot's EXIF. ``isp.levels`` turns it into
normalised float32 (0 = black, 1 = white).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

_COLOUR = {"R": 0, "G": 1, "B": 2}


@dataclass(frozen=True)
class CFAPattern:
    """Colour filter array: ``pattern[y % h][x % w]`` is 0 (R), 1 (G) or 2 (B).

    ``kind`` is 'bayer' (2x2), 'xtrans' (6x6) or 'quad' (4x4 Quad-Bayer: 2x2 same-colour
    blocks arranged as a Bayer pattern, as on the Sony IMX989).
    """

    pattern: tuple[tuple[int, ...], ...]
    kind: str = "bayer"

    @classmethod
    def bayer(cls, name: str) -> CFAPattern:
        name = name.upper()
        if len(name) != 4 or sorted(name) != ["B", "G", "G", "R"]:
            raise ValueError(f"not a Bayer pattern name: {name!r} (RGGB, BGGR, GRBG or GBRG)")
        c = [_COLOUR[ch] for ch in name]
        return cls(((c[0], c[1]), (c[2], c[3])), "bayer")

    @classmethod
    def quad_bayer(cls, name: str = "RGGB") -> CFAPattern:
        b = cls.bayer(name).pattern
        rows = tuple(tuple(b[y // 2][x // 2] for x in range(4)) for y in range(4))
        return cls(rows, "quad")

    @classmethod
    def xtrans(cls) -> CFAPattern:
        """The Fujifilm X-Trans 6x6 layout (as on X-T1..X-T5, phase of LibRaw's xtrans[0][0])."""
        rows = ("GGRGGB", "GGBGGR", "BRGRBG", "GGBGGR", "GGRGGB", "RBGBRG")
        return cls(tuple(tuple(_COLOUR[ch] for ch in r) for r in rows), "xtrans")

    @classmethod
    def from_array(cls, arr: Any) -> CFAPattern:
        """From a small 2-D array of colour indices (0 R, 1 G, 2 B; 3 = second green -> 1)."""
        a = np.asarray(arr, dtype=int)
        a = np.where(a == 3, 1, a)
        h, w = a.shape
        kind = "bayer" if (h, w) == (2, 2) else "xtrans" if (h, w) == (6, 6) else "quad"
        return cls(tuple(tuple(int(v) for v in row) for row in a), kind)

    @property
    def name(self) -> str:
        if self.kind == "bayer":
            return "".join("RGB"[v] for row in self.pattern for v in row)
        return self.kind

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.pattern), len(self.pattern[0])

    def array(self) -> np.ndarray:
        return np.array(self.pattern, dtype=np.int8)

    def masks(self, height: int, width: int) -> np.ndarray:
        """Boolean (3, H, W): where each colour was sampled."""
        ph, pw = self.shape
        tile = self.array()
        full = np.tile(tile, (-(-height // ph), -(-width // pw)))[:height, :width]
        return np.stack([full == c for c in range(3)])

    def shifted(self, dy: int, dx: int) -> CFAPattern:
        """The pattern seen from a crop whose origin is (dy, dx) in this pattern's frame."""
        ph, pw = self.shape
        rows = tuple(
            tuple(self.pattern[(y + dy) % ph][(x + dx) % pw] for x in range(pw)) for y in range(ph)
        )
        return CFAPattern(rows, self.kind)


def as_pattern(pattern: CFAPattern | str) -> CFAPattern:
    """Accept a CFAPattern or a Bayer name ('RGGB', ...)."""
    return pattern if isinstance(pattern, CFAPattern) else CFAPattern.bayer(pattern)


@dataclass(frozen=True)
class CameraColor:
    """Colour calibration in DNG 1.6 chapter 6 terms. Matrices are float64 3x3 numpy arrays.

    ``color_matrix*`` map XYZ -> reference camera space; ``forward_matrix*`` map white-balanced
    camera -> XYZ D50. ``illuminant*`` are EXIF LightSource codes (17 StdA, 21 D65, 23 D50...).
    ``as_shot_neutral`` is the camera-space neutral (the inverse of the WB multipliers).
    ``source`` is 'dng' (tags) or 'libraw' (LibRaw's built-in tables for non-DNG raws).
    """

    color_matrix1: np.ndarray | None = None
    color_matrix2: np.ndarray | None = None
    forward_matrix1: np.ndarray | None = None
    forward_matrix2: np.ndarray | None = None
    camera_calibration1: np.ndarray | None = None
    camera_calibration2: np.ndarray | None = None
    illuminant1: int = 0
    illuminant2: int = 0
    analog_balance: np.ndarray | None = None
    as_shot_neutral: np.ndarray | None = None
    as_shot_white_xy: tuple[float, float] | None = None
    baseline_exposure: float = 0.0
    source: str = "dng"


@dataclass(frozen=True)
class ShotInfo:
    """What EXIF says about the shot. Every field may be missing (None)."""

    make: str | None = None
    model: str | None = None
    lens: str | None = None
    focal_length: float | None = None  # mm
    focal_length_35mm: float | None = None  # mm equivalent
    f_number: float | None = None
    exposure_time: float | None = None  # seconds
    iso: float | None = None
    datetime: datetime | None = None  # aware when an offset was recorded
    gps: tuple[float, float, float | None] | None = None  # lat, lon (degrees), altitude (m)
    orientation: int = 1  # EXIF 1..8
    software: str | None = None
    artist: str | None = None
    copyright: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Opcode:
    """One DNG opcode (DNG 1.7 ch. 7): id, spec version, flags and its parsed parameters.

    ``name`` is the spec's name ('GainMap', 'WarpRectilinear', ...); ``params`` holds the fields
    by their spec names (numpy arrays for tables and maps); ``optional`` is flag bit 0 and
    ``preview_skip`` flag bit 1. Unknown opcodes keep their raw bytes in params['data'].
    """

    id: int
    name: str
    version: int
    flags: int
    params: dict[str, Any]

    @property
    def optional(self) -> bool:
        return bool(self.flags & 1)

    @property
    def preview_skip(self) -> bool:
        return bool(self.flags & 2)


@dataclass(frozen=True)
class Levels:
    """Black and white levels as stored (DNG BlackLevel/RepeatDim/DeltaH/DeltaV, WhiteLevel).

    ``black`` has shape (repeat_rows, repeat_cols, samples); ``black_delta_h`` (W,) and
    ``black_delta_v`` (H,) are per-column/row additions over the active area; ``white`` has
    one value per sample. ``linearization`` maps stored values to linear ones before black.
    """

    black: np.ndarray
    white: np.ndarray
    black_delta_h: np.ndarray | None = None
    black_delta_v: np.ndarray | None = None
    linearization: np.ndarray | None = None


@dataclass(frozen=True)
class RawImage:
    """A decoded raw file.

    ``data`` is the active area as stored: (H, W) uint16 for a CFA mosaic, (H, W, 3) for
    LinearRaw (already demosaiced). ``cfa`` is None for LinearRaw. ``default_crop`` is
    (top, left, height, width) inside ``data``; ``default_scale`` (h, v) the DNG pixel aspect.
    ``opcodes`` maps list number (1, 2, 3) to parsed opcodes.
    """

    path: str
    data: np.ndarray
    cfa: CFAPattern | None
    levels: Levels
    color: CameraColor
    shot: ShotInfo
    default_crop: tuple[int, int, int, int] | None = None
    default_scale: tuple[float, float] = (1.0, 1.0)
    noise_profile: np.ndarray | None = None  # (planes, 2): variance = S*x + O, x in [0, 1]
    opcodes: dict[int, tuple[Opcode, ...]] = field(default_factory=dict)
    is_dng: bool = False
    dng_version: tuple[int, ...] | None = None
    unique_camera_model: str | None = None
    bits_per_sample: int = 16
    tags: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def is_linear(self) -> bool:
        return self.cfa is None
