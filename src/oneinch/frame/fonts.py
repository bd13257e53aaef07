"""Fonts for frames: an openly licensed TrueType/OpenType font, never Pillow's bitmap default.

A font is named ``"Family:weight"`` ('Roboto:bold', 'DejaVu Sans:regular') or given as a file
path. Search order: a path; the user's ``<config>/fonts``; fonts shipped by pip packages
(``font-roboto``, Apache-2.0); the system font folders (Debian ``fonts-dejavu-core``,
``fonts-noto-core``...). A name that resolves nowhere raises OptionError.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import ImageFont

from ..errors import OptionError
from .config import fonts_dir

_WEIGHT_SUFFIX = {
    "regular": ("Regular", "", "Book", "Roman"),
    "bold": ("Bold",),
    "medium": ("Medium", "SemiBold", "Bold"),
    "light": ("Light", "ExtraLight", "Thin", "Regular", ""),
    "italic": ("Italic", "Oblique"),
}

_SYSTEM_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "C:/Windows/Fonts",
)


def _pip_font_dirs() -> list[Path]:
    dirs = []
    try:
        import font_roboto  # Apache-2.0 Roboto, a declared dependency

        dirs.append(Path(font_roboto.font_directory))
    except Exception:  # pragma: no cover - optional
        pass
    return dirs


def _search_dirs() -> list[Path]:
    dirs = [fonts_dir(), *_pip_font_dirs()]
    dirs += [Path(d).expanduser() for d in _SYSTEM_DIRS]
    return [d for d in dirs if d.is_dir()]


@functools.lru_cache(maxsize=8)
def _index(dirs: tuple[Path, ...]) -> dict[str, Path]:
    """File stem (lower case, no spaces) → path, first folder wins."""
    out: dict[str, Path] = {}
    for d in dirs:
        for root, _, files in os.walk(d):
            for name in sorted(files):
                stem, ext = os.path.splitext(name)
                if ext.lower() in (".ttf", ".otf"):
                    out.setdefault(stem.lower().replace(" ", ""), Path(root) / name)
    return out


def find_font(spec: str) -> Path | None:
    """The file for 'Family:weight' or a path, or None."""
    p = Path(spec).expanduser()
    if p.suffix.lower() in (".ttf", ".otf", ".ttc") and p.is_file():
        return p
    family, _, weight = spec.partition(":")
    family = family.strip().replace(" ", "")
    weight = (weight or "regular").strip().lower()
    index = _index(tuple(_search_dirs()))
    for suffix in _WEIGHT_SUFFIX.get(weight, (weight.title(),)):
        for sep in ("-", "", "_"):
            key = f"{family}{sep}{suffix}".lower() if suffix else family.lower()
            if key in index:
                return index[key]
    return None


def resolve_font(specs: str | Sequence[str]) -> Path:
    """The first of ``specs`` that exists; OptionError naming all of them if none does."""
    names = [specs] if isinstance(specs, str) else list(specs)
    for s in names:
        found = find_font(s)
        if found is not None:
            return found
    raise OptionError(
        f"no font found for {', '.join(map(repr, names))}: install the pip package font-roboto "
        f"or Debian fonts-dejavu-core, or put a .ttf/.otf file in {fonts_dir()}"
    )


@functools.lru_cache(maxsize=64)
def _load(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def load_font(specs: str | Sequence[str], size_px: float) -> ImageFont.FreeTypeFont:
    """A FreeType font at ``size_px`` (em size in pixels, at least 4)."""
    path = resolve_font(tuple(specs) if not isinstance(specs, str) else specs)
    try:
        return _load(str(path), max(4, round(size_px)))
    except OSError as e:
        raise OptionError(f"cannot load font ({e})", path) from None
