"""Photo: a finished, display-referred image with what it needs to be written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .raw.image import ShotInfo


@dataclass(frozen=True)
class Photo:
    """``rgb`` is float32 (H, W, 3) in [0, 1], *encoded* with the transfer function of ``space``
    (isp.spaces.SPACES[space].transfer), i.e. what a display-referred file stores. A develop
    asked for an integer ``dtype`` gives the same values already quantised (uint8 or uint16,
    round to nearest of value x 255 / 65535): what the encoder would write, without the
    full-size float image.

    ``shot`` is the EXIF to carry over (orientation already applied to the pixels).
    ``source`` is the path it was developed from, ``extra`` free metadata (e.g. recipe hash).
    """

    rgb: np.ndarray
    space: str = "srgb"
    shot: ShotInfo = field(default_factory=ShotInfo)
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])
