"""Six film styles — vivid, natural, bw-natural, bw-hc, sepia, blue — as pure per-pixel functions
on display-linear RGB (so each is exactly a 3D LUT and can be exported as one).

A style is a few numbers (``Style``): a saturation factor around luminance, an S-curve amount on
a perceptual (gamma 2.2) encoding of luminance applied by scaling RGB (hue kept), and for the
monochrome styles a channel mixer and a two-colour tone (shadow tint → highlight tint).

Monochrome weights imitate black-and-white film spectral sensitivity rather than the eye's
luminance (Rec. 709: 0.2126, 0.7152, 0.0722): orthopanchromatic emulsions are relatively more
sensitive to blue and less to deep red (Ilford, "Spectral sensitivity" curves of FP4+/HP5+ data
sheets; Hunt, *The Reproduction of Colour*, 6th ed., §20.4). bw-hc models the same film behind a
red (Wratten 25-like) filter: skies darken, skin lightens, contrast is steep.

These are oneinch's own designs with the characters of the filters the Xiaomi 12S Ultra offers;
no vendor LUT was consulted or used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _aot as aot
from .._jit import njit, prange
from ..errors import OptionError
from ..isp.spaces import SPACES, luminance_weights

GAMMA = 2.2  # perceptual encoding the S-curve works in


@dataclass(frozen=True)
class Style:
    """Numbers that define a style. Tints are linear RGB, normalised to luminance 1."""

    description: str
    saturation: float = 1.0
    vibrance: float = 0.0
    contrast: float = 0.0  # S-curve amount (negative flattens)
    pivot: float = 0.46  # S-curve pivot in the gamma-2.2 encoding (0.46 ≈ display grey 0.18)
    black: float = 0.0  # display black point crush (linear)
    mixer: tuple[float, float, float] | None = None  # monochrome channel weights (sum 1)
    shadow_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    highlight_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


STYLES: dict[str, Style] = {
    "vivid": Style("punchy colour: saturation ×1.28, +vibrance 0.15, S-curve 0.35",
                   saturation=1.28, vibrance=0.15, contrast=0.35, black=0.004),
    "natural": Style("soft colour: saturation ×0.88, gentler curve (−0.2)",
                     saturation=0.88, contrast=-0.2),
    "bw-natural": Style("panchromatic black and white: mixer R .27 G .56 B .17, S-curve 0.2",
                        contrast=0.2, mixer=(0.27, 0.56, 0.17)),
    "bw-hc": Style("high-contrast black and white, red filter: mixer R .55 G .40 B .05, "
                   "S-curve 0.9, deeper blacks", contrast=0.9, black=0.012,
                   mixer=(0.55, 0.40, 0.05)),
    "sepia": Style("warm-toned monochrome: panchromatic mixer, brown shadows to cream highlights",
                   contrast=0.15, mixer=(0.27, 0.56, 0.17),
                   shadow_tint=(1.35, 0.93, 0.62), highlight_tint=(1.10, 0.99, 0.85)),
    "blue": Style("blue-toned monochrome (cyanotype-like): panchromatic mixer, blue shadows",
                  contrast=0.15, mixer=(0.27, 0.56, 0.17),
                  shadow_tint=(0.62, 0.93, 1.55), highlight_tint=(0.90, 1.00, 1.12)),
}


def get_style(name: str) -> Style:
    try:
        return STYLES[name]
    except KeyError:
        raise OptionError(f"unknown style {name!r} (one of {', '.join(STYLES)})") from None


def _norm_tint(t: tuple[float, float, float], w: np.ndarray) -> np.ndarray:
    t = np.asarray(t, np.float64)
    return (t / float(t @ w)).astype(np.float32)


def _s_norm(a: float, p: float) -> tuple[float, float]:
    lo, hi = np.tanh(-a * p), np.tanh(a * (1 - p))
    return float(lo), float(hi)


def style_params(name: str, space: str = "srgb") -> tuple[np.ndarray, np.ndarray]:
    """Pack a style into (float params[10], tints[2, 3]) for the kernel."""
    st = get_style(name)
    if space not in SPACES:
        raise OptionError(f"unknown colour space {space!r}")
    w = luminance_weights(space)
    mono = st.mixer is not None
    mix = np.asarray(st.mixer if mono else w, np.float64)
    a = 4.0 * abs(st.contrast)
    lo, hi = _s_norm(a, st.pivot) if a > 1e-6 else (0.0, 1.0)
    params = np.array([st.saturation, st.vibrance, np.sign(st.contrast) * a, st.pivot, lo, hi,
                       st.black, 1.0 if mono else 0.0, 0.0, 0.0], np.float32)
    tints = np.stack([_norm_tint(st.shadow_tint, w), _norm_tint(st.highlight_tint, w)])
    return np.concatenate([params, mix.astype(np.float32), w.astype(np.float32)]), tints


@njit(cache=True, inline="always")
def _s_curve(v: float, a: float, p: float, lo: float, hi: float) -> float:
    """Normalised tanh S-curve through (0,0) and (1,1); a < 0 applies its inverse (flatter)."""
    if a == 0.0:
        return v
    if a > 0.0:
        return min(max((np.tanh(a * (v - p)) - lo) / (hi - lo), 0.0), 1.0)
    # inverse of the a>0 curve with |a|: v = (tanh(|a|(x-p)) - lo)/(hi-lo) solved for x
    t = v * (hi - lo) + lo
    t = min(max(t, -0.999999), 0.999999)
    return min(max(p + np.arctanh(t) / (-a), 0.0), 1.0)


@njit(cache=True, inline="always")
def _style_pixel(r, g, b, prm, tints):
    sat, vib, a, p, lo, hi, black, mono = prm[0], prm[1], prm[2], prm[3], prm[4], prm[5], \
        prm[6], prm[7]
    mr, mg, mb = prm[10], prm[11], prm[12]
    wr, wg, wb = prm[13], prm[14], prm[15]
    r = min(max(r, 0.0), 1.0)
    g = min(max(g, 0.0), 1.0)
    b = min(max(b, 0.0), 1.0)
    if mono > 0.5:
        y = mr * r + mg * g + mb * b
        v = _s_curve(y ** (1.0 / 2.2), a, p, lo, hi)
        y2 = v**2.2
        if black > 0.0:
            y2 = max(y2 - black, 0.0) / (1.0 - black)
        # tint fades from the shadow colour to the highlight colour, then to paper white
        t = min(max(y2, 0.0), 1.0)
        fade = t * t
        tr = tints[0, 0] * (1 - t) + tints[1, 0] * t
        tg = tints[0, 1] * (1 - t) + tints[1, 1] * t
        tb = tints[0, 2] * (1 - t) + tints[1, 2] * t
        tr = tr + fade * (1.0 - tr)
        tg = tg + fade * (1.0 - tg)
        tb = tb + fade * (1.0 - tb)
        return min(max(y2 * tr, 0.0), 1.0), min(max(y2 * tg, 0.0), 1.0), \
            min(max(y2 * tb, 0.0), 1.0)
    y = wr * r + wg * g + wb * b
    if y <= 1e-9:
        return 0.0, 0.0, 0.0
    # saturation and vibrance around luminance, gamut-limited by reducing the factor
    mx = max(r, g, b)
    mn = min(r, g, b)
    s_now = (mx - mn) / mx if mx > 0 else 0.0
    f = sat * (1.0 + vib * (1.0 - s_now) * (1.0 - s_now))
    dr, dg, db = r - y, g - y, b - y
    if f > 1.0:
        for d in (dr, dg, db):
            if d > 1e-9:
                f = min(f, max((1.0 - y) / d, 1.0))
            elif d < -1e-9:
                f = min(f, max(y / -d, 1.0))
    r, g, b = y + f * dr, y + f * dg, y + f * db
    # S-curve on luminance, applied as a ratio so hue is kept
    v = _s_curve(y ** (1.0 / 2.2), a, p, lo, hi)
    y2 = v**2.2
    if black > 0.0:
        y2 = max(y2 - black, 0.0) / (1.0 - black)
    k = y2 / y
    r, g, b = r * k, g * k, b * k
    m = max(r, g, b)
    if m > 1.0:  # keep hue: pull towards the (clipped) luminance instead of per-channel clipping
        yy = min(y2, 1.0)
        t = (m - 1.0) / (m - yy) if m - yy > 1e-9 else 1.0
        r, g, b = r + t * (yy - r), g + t * (yy - g), b + t * (yy - b)
    return min(max(r, 0.0), 1.0), min(max(g, 0.0), 1.0), min(max(b, 0.0), 1.0)


@aot.entry
@njit(parallel=True, cache=True, nogil=True)
def _style_kernel(rgb, out, prm, tints, strength):  # pragma: no cover - numba
    h, w = rgb.shape[0], rgb.shape[1]
    for i in prange(h):
        for j in range(w):
            r, g, b = rgb[i, j, 0], rgb[i, j, 1], rgb[i, j, 2]
            sr, sg, sb = _style_pixel(r, g, b, prm, tints)
            out[i, j, 0] = r + strength * (sr - r)
            out[i, j, 1] = g + strength * (sg - g)
            out[i, j, 2] = b + strength * (sb - b)


def apply_style(rgb: np.ndarray, name: str, strength: float = 1.0,
                space: str = "srgb") -> np.ndarray:
    """Display-linear RGB [0, 1] in ``space`` -> styled display-linear RGB; ``strength`` 0..1
    blends the original (0) with the full style (1)."""
    if not 0.0 <= strength <= 1.0:
        raise OptionError(f"style strength {strength} is outside 0..1")
    prm, tints = style_params(name, space)
    x = np.ascontiguousarray(rgb, dtype=np.float32)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) RGB, got shape {x.shape}")
    out = np.empty_like(x)
    aot.pixels_in_two(_style_kernel, x, out, prm, tints, float(strength))
    return out
