"""Scene -> display: tone (filmic curve, local operator), looks (neutral, authentic, vibrant),
film styles and LUTs (.cube, HaldCLUT) in and out.

The develop pipeline calls ``tone_map`` on scene-linear RGB and then ``apply_look`` on the
display-linear result; both return display-linear [0, 1] float32 in the output space.
"""

from __future__ import annotations

from .looks import DESCRIPTIONS, PRESETS, add_grain, adjust_saturation, apply_look, preset
from .lut import (
    Lut,
    apply_lut,
    bake,
    load_lut,
    read_cube,
    read_image_lut,
    write_cube,
    write_hald,
)
from .styles import STYLES, apply_style
from .tone import inverse_tone_map, tone_map

__all__ = [
    "DESCRIPTIONS",
    "PRESETS",
    "STYLES",
    "Lut",
    "add_grain",
    "adjust_saturation",
    "apply_look",
    "apply_lut",
    "apply_style",
    "bake",
    "inverse_tone_map",
    "load_lut",
    "preset",
    "read_cube",
    "read_image_lut",
    "tone_map",
    "write_cube",
    "write_hald",
]
