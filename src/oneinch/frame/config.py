"""Where users keep their frames, logos and fonts: ``$XDG_CONFIG_HOME/oneinch`` (XDG Base
Directory Specification 0.8), else ``~/.config/oneinch``; ``ONEINCH_CONFIG`` overrides both."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    """The user's oneinch config folder (may not exist)."""
    env = os.environ.get("ONEINCH_CONFIG")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "oneinch"


def frames_dir() -> Path:
    return config_dir() / "frames"


def logos_dir() -> Path:
    return config_dir() / "logos"


def fonts_dir() -> Path:
    return config_dir() / "fonts"
