"""Recipe: every setting of a develop, as small frozen dataclasses; TOML in and out.

Stages take the sub-settings they need (``recipe.white_balance``...), never the whole Recipe.
Field names are a public contract (sidecars on disk): add fields with defaults, never rename.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from numbers import Integral, Real
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_origin, get_type_hints

from .errors import InputError, OptionError

SPACES = ("srgb", "p3", "rec2020", "prophoto")
FORMATS = ("jpeg", "tiff", "png", "uhdr", "heif", "avif", "jxl")
TRANSFERS = ("sdr", "pq", "hlg")
# demosaic methods (isp.demosaic.METHODS is this tuple) and Quad-Bayer modes
DEMOSAIC_METHODS = ("auto", "bilinear", "malvar", "rcd", "ri", "iri", "iri-lr", "iri-cnn")
QUAD_MODES = ("remosaic", "bin")
DENOISE_MODES = ("auto", "off", "manual")  # (isp.denoise.MODES)
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")  # (output.encode.SUBSAMPLING's keys)
HIGHLIGHT_MODES = ("reconstruct", "clip")  # (isp.highlights.MODES)
TONE_CURVES = ("filmic", "linear", "none")  # (looks.tone.CURVES)
LOOK_NAMES = ("neutral", "authentic", "vibrant")  # (looks.looks.PRESETS' names)
LUT_LAYOUTS = ("auto", "hald", "tiles")  # (looks.lut.LAYOUTS)
WHITE_EV_MAX = 10.0  # tone.white_ev's range is 0.5..WHITE_EV_MAX (develop's headroom too)


def _within(name: str, value: object, lo: float, hi: float, unit: str = "") -> None:
    """OptionError unless ``value`` is a number in lo..hi (NaN is not)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise OptionError(f"{name} {value!r} is not a number") from None
    if not lo <= v <= hi:
        raise OptionError(f"{name} {value} is outside {lo:g}..{hi:g}{unit}")


def _allowed(hint: Any) -> set[Any]:
    """The types a field annotated ``hint`` (``float``, ``int | None``...) takes, None aside."""
    allowed = set(get_args(hint)) if get_origin(hint) is UnionType else {hint}
    allowed.discard(type(None))
    return allowed


@cache
def _field_types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _is_bool(value: Any) -> bool:
    """True or False, or NumPy's boolean scalar (told by name: no NumPy import here)."""
    t = type(value)
    return t is bool or (t.__module__ == "numpy" and t.__name__ in ("bool", "bool_"))


def _typed(name: str, value: Any, hint: Any) -> Any:
    """``value`` for the setting ``name`` annotated ``hint``, in the one form equal values share
    (so that equal recipes write the same TOML and hash equal), or OptionError naming it.

    A number (a NumPy scalar too) becomes its field's plain Python type: any real number for a
    float (1 -> 1.0, -0.0 -> 0.0), an integer or a whole float for an int (never truncated);
    a bool is not a number and a number is not a bool. A table gets its keys sorted. A string,
    table or boolean where a number belongs (or the like) would otherwise fail inside a stage as
    an internal error, or be taken for something else ("no" for true)."""
    allowed = _allowed(hint)
    if value is None and get_origin(hint) is UnionType and type(None) in get_args(hint):
        return None
    number = isinstance(value, Real) and not _is_bool(value)
    if float in allowed and number:
        return float(value) + 0.0
    if int in allowed and number:
        if isinstance(value, Integral):
            return int(value)
        if float(value).is_integer():
            return int(value)
        raise OptionError(f"{name} must be a whole number, not {_shown(value)}")
    if bool in allowed and _is_bool(value):
        return bool(value)
    if str in allowed and isinstance(value, str) and _is_text(value):
        return str(value)  # (a str subclass, e.g. numpy.str_, as str)
    if dict in {get_origin(a) for a in allowed} and isinstance(value, Mapping) and \
            all(isinstance(k, str) and isinstance(v, str) and _is_text(k) and _is_text(v)
                for k, v in value.items()):
        return {str(k): str(value[k]) for k in sorted(value)}
    what = ("a number" if float in allowed else "a whole number" if int in allowed else
            "true or false" if bool in allowed else "text" if str in allowed else
            "a table of text")
    raise OptionError(f"{name} must be {what}, not {_shown(value)}")


def _is_text(s: str) -> bool:
    """Whether ``s`` can be written to a (UTF-8) recipe file: no lone surrogates."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _normalise(section: Any) -> None:
    """Check each field of the frozen ``section`` and set it to its canonical form (_typed)."""
    prefix = _section_name(type(section))
    for key, hint in _field_types(type(section)).items():
        value = getattr(section, key)
        typed = _typed(f"{prefix}.{key}", value, hint)
        if typed is not value:
            object.__setattr__(section, key, typed)


def _section_name(cls: type) -> str:
    """The Recipe field a section class is: WhiteBalance -> 'white_balance'."""
    return "".join("_" + c.lower() if c.isupper() and i else c.lower()
                   for i, c in enumerate(cls.__name__))


@dataclass(frozen=True)
class WhiteBalance:
    """mode: 'as-shot' | 'auto' (grey-world/white-patch) | 'daylight' | 'kelvin'."""

    mode: str = "as-shot"
    kelvin: float | None = None
    tint: float = 0.0  # green-magenta, Adobe's units: + makes the photo magenta (Lightroom's)

    def __post_init__(self) -> None:
        _normalise(self)
        if self.mode not in ("as-shot", "auto", "daylight", "kelvin"):
            raise OptionError(
                f"unknown white balance {self.mode!r} (as-shot, auto, daylight, KELVIN[,TINT])"
            )
        if self.mode == "kelvin" and not (self.kelvin and 1500 <= self.kelvin <= 50000):
            raise OptionError(f"white balance temperature {self.kelvin} K is outside 1500..50000 K")
        _within("white_balance.tint", self.tint, -150, 150)


@dataclass(frozen=True)
class Demosaic:
    """method: 'auto' (by image size), 'bilinear', 'malvar', 'rcd', 'ri', 'iri', 'iri-lr'
    (iri with a learned correction), 'iri-cnn' (iri-lr refined by a small CNN). domain: 'srgb'
    interpolates the sRGB-encoded samples (better colour differences, isp.demosaic), 'linear'
    the linear ones, 'auto' (default) 'srgb' unless the image is very noisy
    (develop.demosaic_domain)."""

    method: str = "auto"
    quad_bayer: str = "remosaic"  # 'remosaic' | 'bin'
    domain: str = "auto"  # 'auto' | 'srgb' | 'linear'

    def __post_init__(self) -> None:
        _normalise(self)
        if self.method not in DEMOSAIC_METHODS:
            raise OptionError(f"unknown demosaic method {self.method!r} (one of "
                              f"{', '.join(DEMOSAIC_METHODS)})")
        if self.quad_bayer not in QUAD_MODES:
            raise OptionError(f"unknown quad_bayer mode {self.quad_bayer!r} (remosaic, bin)")
        if self.domain not in ("auto", "srgb", "linear"):
            raise OptionError(f"unknown demosaic domain {self.domain!r} (auto, srgb, linear)")


@dataclass(frozen=True)
class Denoise:
    """mode 'auto' follows the noise profile; 'off'; or 'manual' with ``strength`` 0..1."""

    mode: str = "auto"
    strength: float = 0.5
    luma: float = 1.0
    chroma: float = 1.0

    def __post_init__(self) -> None:
        _normalise(self)
        if self.mode not in DENOISE_MODES:
            raise OptionError(f"unknown denoise mode {self.mode!r} ({', '.join(DENOISE_MODES)})")
        _within("denoise.strength", self.strength, 0, 1)
        _within("denoise.luma", self.luma, 0, 100)  # multipliers of the strength
        _within("denoise.chroma", self.chroma, 0, 100)


@dataclass(frozen=True)
class Highlights:
    """mode: 'reconstruct' (from unclipped channels and neighbours) or 'clip'."""

    mode: str = "reconstruct"

    def __post_init__(self) -> None:
        _normalise(self)
        if self.mode not in HIGHLIGHT_MODES:
            raise OptionError(f"unknown highlights.mode {self.mode!r} "
                              f"(one of {', '.join(HIGHLIGHT_MODES)})")


@dataclass(frozen=True)
class Opcodes:
    """Apply the DNG OpcodeLists (1, 2, 3) the file carries."""

    apply: bool = True

    def __post_init__(self) -> None:
        _normalise(self)


@dataclass(frozen=True)
class Profile:
    """Camera profile: 'embedded' uses the DNG's own (matrices + HueSatMap/LookTable when
    present); a path to a .dcp file replaces it; 'matrix' ignores the profile's tables."""

    dcp: str = "embedded"

    def __post_init__(self) -> None:
        _normalise(self)


@dataclass(frozen=True)
class Lens:
    """mode 'auto' uses the DNG opcodes / lensfun when the lens is known; 'off'."""

    mode: str = "auto"

    def __post_init__(self) -> None:
        _normalise(self)
        if self.mode not in ("auto", "off"):
            raise OptionError(f"unknown lens mode {self.mode!r} (auto, off)")


@dataclass(frozen=True)
class Exposure:
    """ev: user exposure in stops, added to the DNG BaselineExposure when ``baseline``."""

    ev: float = 0.0
    baseline: bool = True
    auto: bool = False

    def __post_init__(self) -> None:
        _normalise(self)
        _within("exposure.ev", self.ev, -16, 16, " stops")


@dataclass(frozen=True)
class Tone:
    """Scene-referred -> display: filmic curve with highlight roll-off (looks.tone)."""

    curve: str = "filmic"  # 'filmic' | 'linear' (plain clip, for tests) | 'none'
    contrast: float = 1.0
    black: float = 0.0
    shadows: float = 0.0
    highlights: float = 0.0
    white_ev: float = 2.5  # scene stops above middle grey that map to display white
    local: float = 0.0  # strength of the local tone operator (0 = off)
    grey: float = 0.18  # display-linear value scene middle grey maps to (0.18 = sRGB 118)
    detail: float = 0.0  # local contrast: fraction of the detail layer added (0 = off)

    def __post_init__(self) -> None:  # (the same ranges: looks.tone.curve_params, tone_map)
        _normalise(self)
        if self.curve not in TONE_CURVES:
            raise OptionError(f"unknown tone curve {self.curve!r} "
                              f"(one of {', '.join(TONE_CURVES)})")
        _within("tone.contrast", self.contrast, 0.2, 3)
        _within("tone.black", self.black, -0.2, 0.2)
        _within("tone.shadows", self.shadows, -2, 2, " stops")
        _within("tone.highlights", self.highlights, -2, 2, " stops")
        _within("tone.white_ev", self.white_ev, 0.5, WHITE_EV_MAX, " stops")
        _within("tone.local", self.local, 0, 1)
        _within("tone.grey", self.grey, 0.02, 0.6)
        _within("tone.detail", self.detail, 0, 2)


@dataclass(frozen=True)
class Look:
    """name: a look preset ('neutral', 'authentic', 'vibrant'); style/lut with a strength."""

    name: str = "neutral"
    saturation: float = 1.0
    vibrance: float = 0.0
    style: str | None = None
    style_strength: float = 1.0
    lut: str | None = None
    lut_strength: float = 1.0
    grain: float = 0.0
    lut_space: str = "srgb"  # LUT input: srgb, p3, rec2020, prophoto (encoded) or e.g. srgb-linear
    lut_layout: str = "auto"  # image LUTs: 'auto' | 'hald' | 'tiles' (512x512 8x8 lookup.png)

    def __post_init__(self) -> None:  # (the same ranges: looks.looks, styles, lut)
        _normalise(self)
        if self.name not in LOOK_NAMES:
            raise OptionError(f"unknown look {self.name!r} (one of {', '.join(LOOK_NAMES)})")
        _within("look.saturation", self.saturation, 0, 3)
        _within("look.vibrance", self.vibrance, -1, 2)
        _within("look.style_strength", self.style_strength, 0, 1)
        _within("look.lut_strength", self.lut_strength, 0, 1)
        _within("look.grain", self.grain, 0, 1)
        space, _, linear = self.lut_space.partition("-")  # (looks.lut.parse_lut_space)
        if space not in SPACES or linear not in ("", "linear"):
            raise OptionError(f"unknown look.lut_space {self.lut_space!r} (one of "
                              f"{', '.join(SPACES)}, or e.g. srgb-linear)")
        if self.lut_layout not in LUT_LAYOUTS:
            raise OptionError(f"unknown look.lut_layout {self.lut_layout!r} "
                              f"(one of {', '.join(LUT_LAYOUTS)})")


@dataclass(frozen=True)
class Sharpen:
    """Unsharp mask on luminance. amount 0 = off; radius in pixels at output size."""

    amount: float = 0.35
    radius: float = 1.0
    threshold: float = 0.0

    def __post_init__(self) -> None:
        _normalise(self)
        _within("sharpen.amount", self.amount, 0, 5)
        _within("sharpen.radius", self.radius, 0, 10, " px")
        _within("sharpen.threshold", self.threshold, 0, 1)


@dataclass(frozen=True)
class Frame:
    """EXIF watermark frame; layout None = no frame."""

    layout: str | None = None
    template: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _normalise(self)


@dataclass(frozen=True)
class Output:
    """format: jpeg | tiff | png | uhdr (Ultra HDR gain-map JPEG) | heif | avif | jxl;
    space: srgb | p3 | rec2020 | prophoto; size: long edge px; bits 0 = the format's default.
    hdr_headroom: stops above SDR white of the HDR rendition (uhdr, and heif/avif with
    transfer 'pq' or 'hlg', which write that HDR rendition instead of the SDR one)."""

    format: str = "jpeg"
    quality: int = 92
    subsampling: str = "4:4:4"
    bits: int = 0  # 0 = the format's default (8 for jpeg/png, 16 for tiff)
    space: str = "srgb"
    size: int | None = None
    hdr_headroom: float = 3.0
    transfer: str = "sdr"  # 'sdr' | 'pq' | 'hlg' (heif/avif only: HDR with CICP)

    def __post_init__(self) -> None:
        _normalise(self)
        if self.format not in FORMATS:
            raise OptionError(f"unknown format {self.format!r} (one of {', '.join(FORMATS)})")
        if self.subsampling not in SUBSAMPLINGS:
            raise OptionError(f"unknown subsampling {self.subsampling!r} (one of "
                              f"{', '.join(SUBSAMPLINGS)})")
        if self.space not in SPACES:
            raise OptionError(f"unknown colour space {self.space!r} (one of {', '.join(SPACES)})")
        if not 1 <= self.quality <= 100:
            raise OptionError(f"quality {self.quality} is outside 1..100")
        if self.size is not None and not 16 <= self.size <= 100_000:
            raise OptionError(f"size {self.size} is outside 16..100000 pixels")
        if self.bits not in (0, 8, 10, 12, 16):
            raise OptionError(f"bits {self.bits} must be 8, 10, 12 or 16")
        if not 0.5 <= self.hdr_headroom <= 6:
            raise OptionError(f"hdr_headroom {self.hdr_headroom} is outside 0.5..6 stops")
        if self.transfer not in TRANSFERS:
            raise OptionError(
                f"unknown transfer {self.transfer!r} (one of {', '.join(TRANSFERS)})"
            )
        if self.transfer != "sdr" and self.format not in ("heif", "avif"):
            raise OptionError(f"transfer {self.transfer} needs format heif or avif")

    def bin_factor(self, long_edge: float, by_four: bool = True) -> int:
        """Sensor pixels a preview bins into one along each side, for a sensor of that long
        edge: 4 when ``size`` is at most a quarter of it (and ``by_four``: the sides allow),
        2 when at most half, else 1 (no ``size``: 1). (develop._bin_factor; the command's
        prefault estimates it from a file's size.)"""
        if not self.size:
            return 1
        if 4 * self.size <= long_edge and by_four:
            return 4
        return 2 if 2 * self.size <= long_edge else 1


@dataclass(frozen=True)
class Recipe:
    """Every setting of one develop. ``Recipe()`` is the default develop."""

    white_balance: WhiteBalance = WhiteBalance()
    opcodes: Opcodes = Opcodes()
    demosaic: Demosaic = Demosaic()
    denoise: Denoise = Denoise()
    highlights: Highlights = Highlights()
    profile: Profile = Profile()
    lens: Lens = Lens()
    exposure: Exposure = Exposure()
    tone: Tone = Tone()
    look: Look = Look()
    sharpen: Sharpen = Sharpen()
    frame: Frame = Frame()
    output: Output = Output()

    def __post_init__(self) -> None:
        for name, hint in _field_types(Recipe).items():
            value = getattr(self, name)
            if not isinstance(value, hint):
                raise OptionError(f"recipe section {name} must be a {hint.__name__}, not "
                                  f"{_shown(value)}")

    def with_(self, **sections: dict[str, Any]) -> Recipe:
        """Copy with some fields of some sections changed: ``r.with_(output={'size': 800})``."""
        changes = {}
        for name, values in sections.items():
            current = getattr(self, name, None) if name in _field_types(Recipe) else None
            if current is None or not dataclasses.is_dataclass(current):
                raise OptionError(f"unknown recipe section {name!r}")
            if not isinstance(values, Mapping):
                raise OptionError(f"recipe section {name} takes a table of settings (a dict), "
                                  f"not {_shown(values)}")
            known = {f.name for f in fields(current)}
            bad = set(values) - known
            if bad:
                raise OptionError(f"unknown setting {name}.{sorted(map(str, bad))[0]}")
            changes[name] = replace(current, **values)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            sec = dataclasses.asdict(getattr(self, f.name))
            out[f.name] = {k: v for k, v in sec.items() if v is not None}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> Recipe:
        hints = get_type_hints(cls)
        kwargs = {}
        for name, values in data.items():
            if name not in hints:
                raise InputError(f"unknown recipe section [{name}]", source)
            if not isinstance(values, dict):
                raise InputError(f"recipe section [{name}] must be a table", source)
            sec_cls = hints[name]
            known = {f.name for f in fields(sec_cls)}
            bad = set(values) - known
            if bad:
                raise InputError(f"unknown setting {name}.{sorted(bad)[0]}", source)
            try:
                kwargs[name] = sec_cls(**values)
            except OptionError as e:
                raise InputError(e.detail, source) from None
            except TypeError as e:
                raise InputError(f"bad value in [{name}]: {e}", source) from None
        return cls(**kwargs)

    def to_toml(self) -> str:
        return _dump_toml(self.to_dict())

    def save(self, path: str | Path) -> None:
        """Write the recipe as TOML to ``path``. Relative paths (relative to the current
        folder, as the API takes them) are written relative to the file's folder, which is
        how :meth:`load` reads them: unchanged when the file is in the current folder, with
        '..' when they lie outside its folder; absolute paths stay absolute."""
        from .output.atomic import atomic_write_bytes

        folder = os.path.dirname(os.fspath(path))
        r = self._with_paths(lambda p: _relative_to(p, folder)) if folder else self
        atomic_write_bytes(path, r.to_toml().encode())

    def _with_paths(self, move: Callable[[str], str]) -> Recipe:
        """The recipe with each relative path setting ``p`` (a LUT, a DCP, a frame template)
        replaced by ``move(p)``."""
        changes: dict[str, dict[str, str]] = {}
        for section, key in PATH_SETTINGS:
            value = getattr(getattr(self, section), key)
            if _names_a_file(section, value) and not os.path.isabs(value):
                changes.setdefault(section, {})[key] = move(value)
        return self.with_(**changes) if changes else self

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """The recipe in the TOML file ``path``. Relative paths in it (look.lut, profile.dcp,
        frame.template or a frame.layout naming a file) are relative to the file's folder, so
        a sidecar works from any current folder: they come back joined onto that folder as
        ``path`` names it (relative to the current folder if ``path`` is)."""
        import tomllib  # (here: 5 ms of every command's start otherwise)

        try:
            text = Path(path).read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except FileNotFoundError:
            raise InputError("recipe file not found", path) from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise InputError(f"not a valid TOML recipe ({e})", path) from None
        except RecursionError:  # tomllib recurses per nesting level
            raise InputError("not a valid TOML recipe (nested too deeply)", path) from None
        except OSError as e:
            raise InputError(f"cannot read recipe ({e.strerror})", path) from None
        folder = os.path.dirname(os.fspath(path))
        r = cls.from_dict(data, str(path))
        if not folder:
            return r
        try:
            return r._with_paths(lambda p: os.path.normpath(os.path.join(folder, p)))
        except OptionError as e:
            raise InputError(e.detail, path) from None

    def hash(self) -> str:
        import hashlib

        return hashlib.sha256(self.to_toml().encode()).hexdigest()[:16]


# settings that can name a file; relative ones in a recipe file are relative to its folder
PATH_SETTINGS = (("look", "lut"), ("profile", "dcp"), ("frame", "template"), ("frame", "layout"))


def _names_a_file(section: str, value: str | None) -> bool:
    """Whether a PATH_SETTINGS value is a file's path rather than a name or nothing."""
    if not value:
        return False
    if section == "profile":
        return value not in ("embedded", "matrix")
    if section == "frame":  # else a template's name (as frame.templates.load_template tells)
        return value.endswith(".toml") or "/" in value or "\\" in value
    return True


def _relative_to(path: str, folder: str) -> str:
    """``path`` (relative to the current folder) relative to ``folder`` instead."""
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # (Windows: another drive)
        return os.path.abspath(path)


def sidecar_path(raw_path: str | Path) -> Path:
    """``photo.dng`` -> ``photo.dng.oneinch.toml``."""
    p = Path(raw_path)
    return p.with_name(p.name + ".oneinch.toml")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


# TOML 1.0 basic strings: backslash, quote and the control characters U+0000..U+001F, U+007F
# must be escaped (tab may stay, but escaping it too is as valid and easier to read)
_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n",
                 "\f": "\\f", "\r": "\\r"}


def _toml_string(s: str) -> str:
    """``s`` as a TOML basic string (TOML 1.0, "String")."""
    out = []
    for ch in s:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _toml_key(k: str) -> str:
    """A bare key when TOML allows one (ASCII letters, digits, _ and -), else a quoted one."""
    return k if k and set(k) <= _BARE_KEY else _toml_string(k)


def _dump_toml(data: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)
