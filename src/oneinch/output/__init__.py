"""Writing finished photos: encoders (JPEG, TIFF, PNG), ICC profiles, EXIF.

Names load lazily: ``raw/`` imports ``output.atomic`` and must not pull in the encoders
(which import ``photo`` -> ``raw``) while it is itself being imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .encode import encode_bytes, format_from_path, quantize, write
    from .icc import icc_profile
    from .metadata import exif_bytes, read_exif, shot_from_exif

_WHERE = {
    "encode_bytes": "encode",
    "format_from_path": "encode",
    "quantize": "encode",
    "write": "encode",
    "icc_profile": "icc",
    "exif_bytes": "metadata",
    "read_exif": "metadata",
    "shot_from_exif": "metadata",
}

__all__ = [
    "encode_bytes",
    "exif_bytes",
    "format_from_path",
    "icc_profile",
    "quantize",
    "read_exif",
    "shot_from_exif",
    "write",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
