"""EXIF watermark frames: layouts from TOML templates, fields from ShotInfo, logos and fonts.

``render(image, shot, layout)`` frames an upright photo; ``frame_file(in, out, layout)`` does
it for a finished JPEG/PNG/TIFF/HEIC keeping EXIF and ICC.
"""

from .fields import FIELD_NAMES, shot_fields
from .files import frame_file, output_path
from .makes import camera_name, normalise_make
from .render import Rendered, render, render_detailed
from .templates import KINDS, Template, list_templates, load_template

__all__ = [
    "FIELD_NAMES",
    "KINDS",
    "Rendered",
    "Template",
    "camera_name",
    "frame_file",
    "list_templates",
    "load_template",
    "normalise_make",
    "output_path",
    "render",
    "render_detailed",
    "shot_fields",
]
