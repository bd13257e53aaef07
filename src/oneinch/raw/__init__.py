"""Reading what the sensor recorded: RawImage, open_raw, DNG writing and opcode lists."""

from .dng import write_dng
from .image import CameraColor, CFAPattern, Levels, Opcode, RawImage, ShotInfo
from .opcodes import parse_opcode_list, serialize_opcode_list
from .reader import describe, embedded_preview, open_raw

__all__ = [
    "CFAPattern",
    "CameraColor",
    "Levels",
    "Opcode",
    "RawImage",
    "ShotInfo",
    "describe",
    "embedded_preview",
    "open_raw",
    "parse_opcode_list",
    "serialize_opcode_list",
    "write_dng",
]
