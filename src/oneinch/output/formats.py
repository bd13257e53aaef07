"""The output formats' file suffixes: the one table the CLI, batch runs, the browser app and
the encoders share (no imports: the command line reads it before any encoder loads)."""

from __future__ import annotations

# the suffix a format's files are given
FORMAT_SUFFIX: dict[str, str] = {
    "jpeg": ".jpg",
    "tiff": ".tif",
    "png": ".png",
    "uhdr": ".jpg",  # (an Ultra HDR file is a JPEG)
    "heif": ".heic",
    "avif": ".avif",
    "jxl": ".jxl",
}
# suffix (lower case) -> the format it names
SUFFIXES: dict[str, str] = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
    ".heic": "heif",
    ".heif": "heif",
    ".hif": "heif",
    ".avif": "avif",
    ".jxl": "jxl",
}
# formats whose files carry another format's suffix (an Ultra HDR file is a .jpg)
SUFFIX_ALIASES = {"uhdr": "jpeg"}
