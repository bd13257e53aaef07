"""Looks: display-linear colour finishing (saturation, vibrance, a film style, a LUT, grain) and
the named presets neutral, authentic and vibrant.

Presets (``PRESETS``) are partial Recipes: ``Recipe().with_(**PRESETS['authentic'])``. They set
the tone curve, the look and the sharpening, because a look is all three. The numbers:

=============  =========  ===========  ===========
field          neutral    authentic    vibrant
=============  =========  ===========  ===========
tone.contrast  1.0        1.12         1.0
tone.grey      0.18       0.165        0.215
tone.black     0.0        0.0          0.0
tone.shadows   0.0        −0.15        +0.25
tone.highlights 0.0       −0.35        −0.15
tone.white_ev  2.5        2.8          2.6
tone.local     0.0        0.0          0.25
tone.detail    0.0        0.0          0.60
look.saturation 1.0       1.04         1.08
look.vibrance  0.0        0.0          0.15
sharpen.amount 0.35       0.2          0.5
=============  =========  ===========  ===========

Authentic: a steeper curve with a slightly lower grey and darker shadows (Kodak-24 L* 5th
percentile 13.3 against neutral's 16.9), highlights pulled down a third of a stop and ~0.3 EV
more headroom so they are not crushed, no local operator (no flattened HDR), little
sharpening; saturation ×1.04 only makes up for the chroma a darker rendering loses, so mean
chroma stays that of neutral (measured +0 %). (Until session 22 a black point of 0.006 in
display-linear, sRGB code 18, crushed everything ~3 stops below grey to black: 25.6 % of the
GoPro HERO7's frame at or below code 6 against neutral's 4.3 %; now 8.5 %.)
Vibrant: brighter grey (+0.25 EV on screen), lifted shadows, a gentle local operator (0.25) with
a 60 % detail boost (more local contrast), saturation ×1.08 plus vibrance 0.15 for the muted
colours (mean chroma about +22 % with the brightening), more sharpening. Measured on Kodak-24 by
``bench/looks.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import _aot as aot
from ..errors import OptionError
from ..isp.spaces import SPACES, luminance_weights
from ..recipe import Look, Recipe
from .styles import _style_kernel, apply_style

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "neutral": {
        "tone": {"curve": "filmic", "contrast": 1.0, "grey": 0.18, "black": 0.0, "shadows": 0.0,
                 "highlights": 0.0, "white_ev": 2.5, "local": 0.0, "detail": 0.0},
        "look": {"name": "neutral", "saturation": 1.0, "vibrance": 0.0},
        "sharpen": {"amount": 0.35},
    },
    "authentic": {
        "tone": {"curve": "filmic", "contrast": 1.12, "grey": 0.165, "black": 0.0,
                 "shadows": -0.15, "highlights": -0.35, "white_ev": 2.8, "local": 0.0,
                 "detail": 0.0},
        "look": {"name": "authentic", "saturation": 1.04, "vibrance": 0.0},
        "sharpen": {"amount": 0.2},
    },
    "vibrant": {
        "tone": {"curve": "filmic", "contrast": 1.0, "grey": 0.215, "black": 0.0,
                 "shadows": 0.25, "highlights": -0.15, "white_ev": 2.6, "local": 0.25,
                 "detail": 0.6},
        "look": {"name": "vibrant", "saturation": 1.08, "vibrance": 0.15},
        "sharpen": {"amount": 0.5},
    },
}

DESCRIPTIONS = {
    "neutral": "faithful reference rendering: filmic curve, no colour or local-contrast changes",
    "authentic": "restrained colour, deep shadows, protected highlights, no HDR flattening, "
                 "little sharpening",
    "vibrant": "brighter, about +20% saturation, lifted shadows, more local contrast and "
               "sharpening",
}

GRAIN_SEED = 20220704  # fixed: the same photo gets the same grain every time
GRAIN_REFERENCE_EDGE = 1500.0  # grain is one pixel wide at this long edge, scaled beyond it


def preset(name: str, base: Recipe | None = None) -> Recipe:
    """The Recipe ``base`` (default ``Recipe()``) with the named look preset applied."""
    if name not in PRESETS:
        raise OptionError(f"unknown look {name!r} (one of {', '.join(PRESETS)})")
    return (base or Recipe()).with_(**PRESETS[name])


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise OptionError(f"unknown colour space {space!r}")


def adjust_saturation(rgb: np.ndarray, saturation: float = 1.0, vibrance: float = 0.0,
                      space: str = "srgb") -> np.ndarray:
    """Scale chroma around luminance by ``saturation × (1 + vibrance·(1−s)²)`` (s = HSV
    saturation, so vibrance favours muted colours), limited to the gamut by reducing the factor
    per pixel — never by clipping channels — so hue is kept."""
    if not 0 <= saturation <= 3 or not -1 <= vibrance <= 2:
        raise OptionError(f"saturation {saturation} / vibrance {vibrance} out of range")
    _check_space(space)
    w = luminance_weights(space).astype(np.float32)
    prm = np.concatenate([np.array([saturation, vibrance, 0, 0.46, 0, 1, 0, 0, 0, 0],
                                   np.float32), w, w])
    tints = np.ones((2, 3), np.float32)
    x = np.ascontiguousarray(rgb, dtype=np.float32)
    out = np.empty_like(x)
    aot.pixels_in_two(_style_kernel, x, out, prm, tints, 1.0)
    return out


def add_grain(rgb: np.ndarray, amount: float, space: str = "srgb",
              seed: int = GRAIN_SEED) -> np.ndarray:
    """Film-like luminance grain. Gaussian noise generated on a grid coarser by
    ``long_edge / 1500`` and upsampled (bicubic), so the grain has the same size relative to the
    picture at any output size; strongest in mid-tones (×4y(1−y) in gamma 2.2), deterministic."""
    if amount <= 0:
        return np.ascontiguousarray(rgb, dtype=np.float32).copy()
    if amount > 1:
        raise OptionError(f"grain {amount} is outside 0..1")
    x = np.ascontiguousarray(rgb, dtype=np.float32)
    h, w = x.shape[:2]
    cell = max(1.0, max(h, w) / GRAIN_REFERENCE_EDGE)
    hs, ws = max(2, round(h / cell)), max(2, round(w / cell))
    noise = np.random.default_rng(seed).standard_normal((hs, ws)).astype(np.float32)
    if (hs, ws) != (h, w):
        noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
        noise /= max(float(noise.std()), 1e-6)
    y = np.maximum(x @ luminance_weights(space).astype(np.float32), 1e-6)
    v = y ** (1 / 2.2)
    v2 = np.clip(v + 0.045 * amount * noise * 4 * v * (1 - v), 0, 1)
    k = (v2**2.2 / y)[..., None]
    return np.clip(x * k, 0, 1).astype(np.float32)


@lru_cache(maxsize=8)
def _cached_lut(path: str, mtime: float, layout: str):
    from .lut import load_lut

    return load_lut(path, layout=layout)


def _load(path: str, layout: str = "auto"):
    p = Path(path)
    try:
        mtime = p.stat().st_mtime
    except OSError:
        from ..errors import InputError

        raise InputError("LUT file not found", path) from None
    return _cached_lut(str(p), mtime, layout)


def apply_look(rgb: np.ndarray, look: Look, space: str = "srgb",
               grain: bool = True) -> np.ndarray:
    """Display-linear RGB [0, 1] in ``space`` -> finished display-linear RGB [0, 1].

    Order: saturation/vibrance, style (``look.style`` at ``look.style_strength``), LUT
    (``look.lut`` at ``look.lut_strength``, in ``look.lut_space``), grain (skipped when
    ``grain`` is False, e.g. to bake a look into a LUT).
    """
    _check_space(space)
    x = np.ascontiguousarray(rgb, dtype=np.float32)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) RGB, got shape {x.shape}")
    out = x
    if look.saturation != 1.0 or look.vibrance != 0.0:
        out = adjust_saturation(out, look.saturation, look.vibrance, space)
    if look.style:
        out = apply_style(out, look.style, look.style_strength, space)
    if look.lut:
        from .lut import apply_lut

        lut = _load(look.lut, getattr(look, "lut_layout", "auto"))
        out = apply_lut(out, lut, look.lut_strength, lut_space=getattr(look, "lut_space", "srgb"),
                        space=space)
    if grain and look.grain > 0:
        out = add_grain(out, look.grain, space)
    if out is x:
        out = x.copy()
    return np.clip(out, 0.0, 1.0, out=out)


def look_function(name: str, strength: float = 1.0,
                  space: str = "srgb") -> Callable[[np.ndarray], np.ndarray]:
    """A per-pixel display-linear -> display-linear function for a style or a look preset, as
    baked into exported LUTs; ``strength`` blends with the input.

    For a preset the input is taken to be a neutral rendering: the scene is the neutral tone
    map inverted *with* its path to white (:func:`~oneinch.looks.tone.inverse_tone_map`), then
    rendered by the preset's global tone curve (the local operator and sharpening are spatial:
    not in a LUT) and its look without grain. What the neutral rendering cannot have produced
    (clipped white, colours more saturated near white than its path to white allows) has no
    scene; there the input's difference from the neutral rendering of the nearest scene is
    carried over unchanged, so 'neutral' is exactly the identity and the function stays
    continuous."""
    from .styles import STYLES
    from .tone import inverse_tone_map, tone_map

    if not 0 <= strength <= 1:
        raise OptionError(f"strength {strength} is outside 0..1")
    if name in STYLES:
        return lambda x: apply_style(x, name, strength, space)
    if name not in PRESETS:
        raise OptionError(f"unknown look or style {name!r} (looks: {', '.join(PRESETS)}; "
                          f"styles: {', '.join(STYLES)})")
    neutral = preset("neutral")
    r = preset(name)
    tone = r.tone.__class__(**{**r.tone.__dict__, "local": 0.0, "detail": 0.0})

    def fn(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        scene = inverse_tone_map(x, neutral.tone, path_to_white=True)
        rest = x - apply_look(tone_map(scene, neutral.tone, space), neutral.look, space,
                              grain=False)
        y = apply_look(tone_map(scene, tone, space), r.look, space, grain=False) + rest
        return np.clip(x + np.float32(strength) * (y - x), 0.0, 1.0)

    return fn


def export_lut(name: str, path: str | Path, size: int = 33, level: int = 8,
               strength: float = 1.0, lut_space: str = "srgb") -> None:
    """Write a style or look preset as .cube (``size`` 33 or 65) or HaldCLUT .png/.tif
    (``level`` 8 or 12), chosen by the extension of ``path``."""
    from .lut import bake, parse_lut_space, write_cube, write_hald

    ext = Path(path).suffix.lower()
    prim, _ = parse_lut_space(lut_space)
    fn = look_function(name, strength, prim)
    title = f"oneinch {name}" + (f" {strength:g}" if strength != 1 else "")
    if ext == ".cube":
        write_cube(path, bake(fn, size, lut_space, prim, title))
    elif ext in (".png", ".tif", ".tiff"):
        write_hald(path, bake(fn, level * level, lut_space, prim, title), level)
    else:
        raise OptionError(f"export to .cube, .png or .tif, not {ext or 'no extension'}")
