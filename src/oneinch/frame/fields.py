"""The text of a frame: fields from ShotInfo, user overrides, and ``{a|b}`` slot templates.

A slot is text with fields in braces; ``{location|lens}`` takes the first non-empty field.
A slot whose fields are all empty renders as nothing (the line is dropped).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import OptionError
from ..raw.image import ShotInfo
from .makes import camera_name, display_model, normalise_make

FIELD_NAMES = (
    "make", "model", "camera", "lens", "lens_make", "focal", "focal_actual", "focal35",
    "aperture", "shutter", "iso", "exposure", "datetime", "date", "time", "location",
    "altitude", "artist", "copyright", "software",
)  # fmt: skip


def _num(x: float, digits: int = 1) -> str:
    r = round(x, digits)
    return f"{r:.0f}" if abs(r - round(r)) < 1e-9 else f"{r:.{digits}f}"


def format_focal(mm: float | None) -> str:
    return f"{_num(mm, 0 if mm >= 10 else 1)}mm" if mm and mm > 0 else ""


def format_aperture(n: float | None) -> str:
    return f"f/{_num(n, 1)}" if n and n > 0 else ""


def format_shutter(t: float | None) -> str:
    """'1/100s' below 0.3 s (nearest integer denominator), '0.5s', '2s', '1.3s' above."""
    if not t or not math.isfinite(t) or t < 1e-7 or t > 1e7:  # beyond any real shutter
        return ""
    if t < 0.3:
        return f"1/{round(1.0 / t)}s"
    return f"{_num(t, 1)}s"


def format_iso(iso: float | None) -> str:
    return f"ISO{round(iso)}" if iso and iso > 0 else ""


def format_location(gps: tuple[float, float, float | None] | None) -> str:
    """33°51'36"S 151°12'36"E (whole seconds)."""
    if not gps:
        return ""

    def dms(v: float, pos: str, neg: str) -> str:
        hemi = pos if v >= 0 else neg
        total = round(abs(v) * 3600)
        d, rem = divmod(total, 3600)
        m, s = divmod(rem, 60)
        return f"{d}°{m:02d}'{s:02d}\"{hemi}"

    return f"{dms(gps[0], 'N', 'S')} {dms(gps[1], 'E', 'W')}"


def shot_fields(
    shot: ShotInfo,
    overrides: Mapping[str, Any] | None = None,
    *,
    date_format: str = "%Y.%m.%d %H:%M",
    focal: str = "equivalent",
) -> dict[str, str]:
    """Field name → display text. ``focal`` is 'equivalent' (35 mm equivalent when known),
    'actual' or 'both' ('23mm (35mm eq.)'). Overrides replace base fields before the composite
    ones (camera, exposure) are built, so ``lens=...`` or ``aperture=f/2`` flow through."""
    ov = {str(k).strip().lower(): "" if v is None else str(v) for k, v in (overrides or {}).items()}
    unknown = sorted(set(ov) - set(FIELD_NAMES))
    if unknown:
        raise OptionError(
            f"unknown frame field(s) {', '.join(unknown)}; known: {', '.join(FIELD_NAMES)}"
        )
    dt: datetime | None = shot.datetime
    f: dict[str, str] = {
        "make": normalise_make(shot.make) or "",
        "model": display_model(shot.make, shot.model) or "",
        "lens": shot.lens or "",
        "lens_make": str(shot.extra.get("lens_make") or ""),
        "focal_actual": format_focal(shot.focal_length),
        "focal35": format_focal(shot.focal_length_35mm),
        "aperture": format_aperture(shot.f_number),
        "shutter": format_shutter(shot.exposure_time),
        "iso": format_iso(shot.iso),
        "datetime": dt.strftime(date_format) if dt else "",
        "date": dt.strftime(date_format.split(" ")[0]) if dt else "",
        "time": dt.strftime("%H:%M") if dt else "",
        "location": format_location(shot.gps),
        "altitude": f"{shot.gps[2]:.0f}m" if shot.gps and shot.gps[2] is not None else "",
        "artist": shot.artist or "",
        "copyright": shot.copyright or "",
        "software": shot.software or "",
    }
    eq, act = f["focal35"], f["focal_actual"]
    if focal == "actual":
        f["focal"] = act or eq
    elif focal == "both" and eq and act and eq != act:
        f["focal"] = f"{act} ({eq} eq.)"
    else:
        f["focal"] = eq or act
    f.update({k: v for k, v in ov.items() if k not in ("camera", "exposure")})
    if "make" in ov or "model" in ov:
        f["camera"] = " ".join(p for p in (f["make"], f["model"]) if p)
    else:
        f["camera"] = camera_name(shot.make, shot.model) or ""
    f["exposure"] = " ".join(p for p in (f["focal"], f["aperture"], f["shutter"], f["iso"]) if p)
    for k in ("camera", "exposure"):
        if k in ov:
            f[k] = ov[k]
    return f


_SLOT_RE = re.compile(r"\{([^{}]*)\}")


def expand(slot: str, fields: Mapping[str, str]) -> str:
    """Fill ``{field}`` / ``{a|b|c}`` (first non-empty) / ``{a|"literal"}``; empty if every
    field in the slot is empty. Unknown field names raise OptionError."""
    any_filled = False
    has_fields = False

    def sub(m: re.Match[str]) -> str:
        nonlocal any_filled, has_fields
        has_fields = True
        for alt in m.group(1).split("|"):
            alt = alt.strip()
            if len(alt) >= 2 and alt[0] == alt[-1] == '"':
                any_filled = True
                return alt[1:-1]
            if alt not in fields:
                raise OptionError(f"unknown frame field {{{alt}}} in slot {slot!r}")
            if fields[alt]:
                any_filled = True
                return fields[alt]
        return ""

    text = _SLOT_RE.sub(sub, slot)
    if has_fields and not any_filled:
        return ""
    return " ".join(text.split())


def expand_slot(
    slot: str | tuple[str, ...] | list[str], fields: Mapping[str, str], separator: str = "  ·  "
) -> str:
    """A slot given as text, or as a list of parts joined by ``separator`` (empty parts
    dropped)."""
    if isinstance(slot, str):
        return expand(slot, fields)
    return separator.join(p for p in (expand(s, fields) for s in slot) if p)
