"""Camera maker names: "LEICA CAMERA AG" → "Leica", "NIKON CORPORATION" → "Nikon".

EXIF Make (tag 0x010F) is free text: each maker writes its legal name in its own case. We map
it to the short brand name people use, through an alias table, then by dropping corporate
suffixes. Users extend the table in ``<config>/makes.toml`` (``[aliases] "ACME OPTICAL" =
"Acme"``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from .config import config_dir

# Lower-case EXIF Make (or its first word) → brand name.
MAKE_ALIASES: dict[str, str] = {
    "leica camera ag": "Leica",
    "leica": "Leica",
    "nikon corporation": "Nikon",
    "nikon": "Nikon",
    "canon": "Canon",
    "sony": "Sony",
    "fujifilm": "Fujifilm",
    "fuji photo film co., ltd.": "Fujifilm",
    "fuji": "Fujifilm",
    "olympus imaging corp.": "Olympus",
    "olympus corporation": "Olympus",
    "olympus optical co.,ltd": "Olympus",
    "olympus": "Olympus",
    "om digital solutions": "OM System",
    "panasonic": "Panasonic",
    "xiaomi": "Xiaomi",
    "redmi": "Redmi",
    "apple": "Apple",
    "samsung": "Samsung",
    "google": "Google",
    "huawei": "Huawei",
    "honor": "Honor",
    "oppo": "OPPO",
    "oneplus": "OnePlus",
    "vivo": "vivo",
    "motorola": "Motorola",
    "hasselblad": "Hasselblad",
    "ricoh imaging company, ltd.": "Ricoh",
    "ricoh": "Ricoh",
    "pentax corporation": "Pentax",
    "pentax": "Pentax",
    "asahi optical co.,ltd": "Pentax",
    "eastman kodak company": "Kodak",
    "kodak": "Kodak",
    "gopro": "GoPro",
    "dji": "DJI",
    "sigma": "Sigma",
    "blackmagic design": "Blackmagic",
    "blackmagic": "Blackmagic",
    "lg electronics": "LG",
    "lge": "LG",
    "lg": "LG",
    "minolta co., ltd.": "Minolta",
    "konica minolta": "Konica Minolta",
    "phase one": "Phase One",
    "leaf": "Leaf",
    "zeiss": "Zeiss",
    "nokia": "Nokia",
    "htc": "HTC",
    "zte": "ZTE",
    "nothing": "Nothing",
}

_SUFFIXES = re.compile(
    r"[\s,.]+(camera|cameras|corporation|corp|co|company|ltd|limited|inc|ag|gmbh|imaging|"
    r"electronics|optical|digital|solutions|photo|film|kk|k\.k|s\.a|spa|llc|plc)\.?$",
    re.I,
)


def _user_aliases(folder: Path | None = None) -> dict[str, str]:
    path = (folder or config_dir()) / "makes.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    aliases = data.get("aliases", {})
    if not isinstance(aliases, Mapping):
        return {}
    return {str(k).strip().lower(): str(v) for k, v in aliases.items()}


def normalise_make(make: str | None, extra: Mapping[str, str] | None = None) -> str | None:
    """Brand name for an EXIF Make string, or None for a blank one."""
    if not make or not make.strip():
        return None
    table = {**MAKE_ALIASES, **_user_aliases(), **{k.lower(): v for k, v in (extra or {}).items()}}
    raw = " ".join(make.split())
    key = raw.lower()
    if key in table:
        return table[key]
    stripped = raw
    while True:
        new = _SUFFIXES.sub("", stripped)
        if new == stripped or not new:
            break
        stripped = new
    if stripped.lower() in table:
        return table[stripped.lower()]
    first = stripped.split()[0].lower().strip(",.")
    if first in table:
        return table[first]
    if stripped.isupper() and len(stripped) > 3:
        return stripped.title()
    return stripped


def display_model(make: str | None, model: str | None) -> str | None:
    """The model without the maker's name in front ('NIKON Z 6' → 'Z 6')."""
    if not model or not model.strip():
        return None
    m = " ".join(model.split())
    candidates = {c for c in (make, normalise_make(make)) if c}
    if make:
        candidates.add(make.split()[0])
    for c in sorted(candidates, key=len, reverse=True):
        if m.lower().startswith(c.lower() + " ") or m.lower().startswith(c.lower() + "-"):
            rest = m[len(c) :].lstrip(" -")
            if rest:
                return rest
    return m


def camera_name(make: str | None, model: str | None) -> str | None:
    """Brand + model as people say it: 'Leica M11', 'Nikon Z 6', 'Sony ILCE-7M3'."""
    brand = normalise_make(make)
    mod = display_model(make, model)
    if brand and mod:
        if mod.lower().startswith(brand.lower()):
            return mod
        return f"{brand} {mod}"
    return mod or brand
