"""Frame templates: TOML data describing a layout's kind, colours, fonts, proportions and slots.

Built-in templates live in ``oneinch/data/frames/*.toml``; users add or shadow them in
``<config>/frames/*.toml`` or pass a file. Schema (every key optional except ``kind``)::

    kind = "banner"            # banner | border | blur | square | text
    description = "..."
    logo = "auto"              # auto (user logo, else built-in mark) | mark | none | path
    date_format = "%Y.%m.%d %H:%M"
    focal = "equivalent"       # equivalent | actual | both
    [colours]  background, primary, secondary, divider, shadow   ("#rrggbb")
    [fonts]    primary, secondary   ("Family:weight" or a file, or a list of fallbacks: the
               first that resolves is used; OptionError when none does)
    [geometry] kind-specific proportions (see DEFAULT_GEOMETRY)
    separator = "  ·  "        # joins the non-empty parts of a slot given as a list
    [slots]    left_primary, left_secondary, right_primary, right_secondary (banner)
               primary, secondary (the centred kinds)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import ImageColor

from ..errors import InputError, OptionError
from .config import fonts_dir, frames_dir
from .fonts import find_font

KINDS = ("banner", "border", "blur", "square", "text")

# Proportions. 'banner', 'border', 'margin', 'text_area' are fractions of the photo's short side
# (long side for 'square'); sizes inside the text area are fractions of its height.
DEFAULT_GEOMETRY: dict[str, dict[str, float]] = {
    "banner": {
        "banner": 0.11, "padding": 0.55, "primary_size": 0.24, "secondary_size": 0.18,
        "line_gap": 0.10, "logo_height": 0.40, "divider_width": 0.012, "divider_height": 0.50,
        "gap": 0.22, "min_middle": 0.8,
    },
    "border": {
        "border": 0.035, "text_area": 0.11, "primary_size": 0.22, "secondary_size": 0.16,
        "line_gap": 0.10, "logo_height": 0.30, "gap": 0.18, "padding": 0.3,
    },
    "blur": {
        "margin": 0.07, "text_area": 0.12, "primary_size": 0.22, "secondary_size": 0.16,
        "line_gap": 0.10, "logo_height": 0.30, "gap": 0.18, "padding": 0.3,
        "blur": 0.04, "darken": 0.72, "shadow": 0.02, "corner": 0.012,
    },
    "square": {
        "margin": 0.04, "text_area": 0.08, "primary_size": 0.24, "secondary_size": 0.18,
        "line_gap": 0.10, "logo_height": 0.32, "gap": 0.18, "padding": 0.3,
    },
    "text": {"text_area": 0.055, "primary_size": 0.36, "padding": 0.4, "line_gap": 0.0,
             "secondary_size": 0.3, "logo_height": 0.0, "gap": 0.0},
}  # fmt: skip

DEFAULT_COLOURS = {
    "background": "#ffffff",
    "primary": "#1a1a1a",
    "secondary": "#808080",
    "divider": "#c8c8c8",
    "shadow": "#000000",
}
DEFAULT_FONTS = {
    "primary": ("Roboto:bold", "DejaVu Sans:bold", "Noto Sans:bold", "Liberation Sans:bold"),
    "secondary": ("Roboto:regular", "DejaVu Sans:regular", "Noto Sans:regular"),
}
SLOT_NAMES = {
    "banner": ("left_primary", "left_secondary", "right_primary", "right_secondary"),
    **{k: ("primary", "secondary") for k in ("border", "blur", "square", "text")},
}
_TOP_KEYS = {"kind", "name", "description", "logo", "date_format", "focal", "colours", "colors",
             "fonts", "geometry", "slots", "separator"}  # fmt: skip


@dataclass(frozen=True)
class Template:
    """A parsed frame template (see the module docstring for the TOML schema)."""

    name: str
    kind: str
    description: str = ""
    logo: str = "auto"
    date_format: str = "%Y.%m.%d %H:%M"
    focal: str = "equivalent"
    colours: dict[str, str] = field(default_factory=dict)
    fonts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    geometry: dict[str, float] = field(default_factory=dict)
    slots: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    separator: str = "  ·  "
    source: str = ""

    def with_values(self, **kw: Any) -> Template:
        return replace(self, **kw)


def parse_template(data: dict[str, Any], name: str, source: str = "") -> Template:
    """Validate a template mapping; OptionError names the source and the bad key."""
    where = source or name

    def bad(msg: str) -> OptionError:
        return OptionError(f"frame template: {msg}", where)

    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise bad(f"unknown key(s) {', '.join(sorted(unknown))}")
    for sec in ("colours", "colors", "fonts", "geometry", "slots"):
        if sec in data and not isinstance(data[sec], dict):
            raise bad(f"[{sec}] must be a table, not {data[sec]!r}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise bad(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    colours = dict(DEFAULT_COLOURS)
    for k, v in dict(data.get("colours", data.get("colors", {}))).items():
        if k not in DEFAULT_COLOURS:
            raise bad(f"unknown colour {k!r} (known: {', '.join(DEFAULT_COLOURS)})")
        try:
            ImageColor.getrgb(str(v))
        except ValueError:
            raise bad(f"colour {k} = {v!r} is not a colour") from None
        colours[k] = str(v)
    fonts = dict(DEFAULT_FONTS)
    for k, v in dict(data.get("fonts", {})).items():
        if k not in DEFAULT_FONTS:
            raise bad(f"unknown font slot {k!r} (known: primary, secondary)")
        if not isinstance(v, str | list):
            raise bad(f"font {k} = {v!r} must be a name or a list of names")
        vals = (v,) if isinstance(v, str) else tuple(str(x) for x in v)
        if not vals:
            raise bad(f"font {k} = [] names no font")
        if source.startswith("built-in:"):
            # ours: portable across systems, so the defaults stay behind our choice (one font
            # file is used per line; there is no per-glyph fallback)
            fonts[k] = vals + tuple(x for x in DEFAULT_FONTS[k] if x not in vals)
        else:
            # the user's: a font that resolves nowhere is an error, never silently Roboto;
            # a list gives the user's own fallbacks, the first that resolves is used
            if all(find_font(x) is None for x in vals):
                raise bad(f"font {k} = {v!r} not found (a .ttf/.otf/.ttc file, or a "
                          f"'Family:weight' installed or in {fonts_dir()})")
            fonts[k] = vals
    geometry = dict(DEFAULT_GEOMETRY[kind])
    for k, v in dict(data.get("geometry", {})).items():
        if k not in geometry:
            raise bad(f"unknown geometry key {k!r} for kind {kind} (known: {', '.join(geometry)})")
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v < 10:
            raise bad(f"geometry {k} = {v!r} must be a number in [0, 10)")
        geometry[k] = float(v)
    slots: dict[str, str | tuple[str, ...]] = {}
    for k, v in dict(data.get("slots", {})).items():
        if k not in SLOT_NAMES[kind]:
            raise bad(f"unknown slot {k!r} for kind {kind} (known: {', '.join(SLOT_NAMES[kind])})")
        slots[k] = tuple(str(x) for x in v) if isinstance(v, list) else str(v)
    focal = str(data.get("focal", "equivalent"))
    if focal not in ("equivalent", "actual", "both"):
        raise bad(f"focal must be equivalent, actual or both, not {focal!r}")
    return Template(
        name=str(data.get("name", name)),
        kind=kind,
        description=str(data.get("description", "")),
        logo=str(data.get("logo", "auto")),
        date_format=str(data.get("date_format", "%Y.%m.%d %H:%M")),
        focal=focal,
        colours=colours,
        fonts=fonts,
        geometry=geometry,
        slots=slots,
        separator=str(data.get("separator", "  ·  ")),
        source=source,
    )


def read_template(path: str | Path) -> Template:
    """Load a template file."""
    p = Path(path).expanduser()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("frame template not found", p) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read frame template ({e})", p) from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"frame template is not valid TOML ({e})", p) from None
    except RecursionError:  # tomllib recurses per nesting level
        raise InputError("frame template is not valid TOML (nested too deeply)", p) from None
    return parse_template(data, p.stem, str(p))


def _builtin_dir() -> Any:
    return resources.files("oneinch") / "data" / "frames"


def list_templates() -> dict[str, str]:
    """Name → description of every template: built-in, then the user's (which may shadow)."""
    out: dict[str, str] = {}
    for entry in sorted(_builtin_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            out[entry.name[:-5]] = str(data.get("description", ""))
    user = frames_dir()
    if user.is_dir():
        for p in sorted(user.glob("*.toml")):
            try:
                out[p.stem] = str(tomllib.loads(p.read_text("utf-8")).get("description", ""))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
                out[p.stem] = "(unreadable)"
    return out


def load_template(name_or_path: str | Path | Template) -> Template:
    """A template by name (user folder first, then built-in) or by file path."""
    if isinstance(name_or_path, Template):
        return name_or_path
    s = str(name_or_path)
    if s.endswith(".toml") or "/" in s or "\\" in s:
        return read_template(s)
    user = frames_dir() / f"{s}.toml"
    if user.is_file():
        return read_template(user)
    entry = _builtin_dir() / f"{s}.toml"
    if entry.is_file():
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        return parse_template(data, s, f"built-in:{s}")
    raise OptionError(f"unknown frame layout {s!r}; known: {', '.join(list_templates())}")
