"""Scene-referred linear RGB -> display-linear [0, 1]: a hue-preserving filmic curve and a local
tone operator.

Global curve
    A log-logistic ("sigmoid in log exposure") curve, as in Reinhard et al. 2002 (eq. 4, with an
    exponent) and the darktable *sigmoid* module (Jandren 2022)::

        y = k · n^c / (n^c + u),   k = 1 + u / W^c      (so that y(W) = 1)

    ``n`` is a per-pixel *norm* — max(R, G, B) — and RGB is scaled by y/n, so the ratios between
    channels (hue and saturation) are kept and nothing clips per channel (darktable filmic v4,
    "max RGB" norm, Pierre 2021). ``W = 0.18 · 2^white_ev`` is the scene value that reaches white,
    ``c = C0 · contrast`` the toe/mid-tone slope, and ``u`` is solved so that scene grey 0.18 maps
    to display ``grey`` (0.18 by default, i.e. sRGB code 118). Above display 0.8 a tanh shoulder
    rolls the curve off smoothly (slope-continuous), so W lands at 0.95 (sRGB 249) and brighter
    values approach 1 without a hard clip. Colours brighter than about
    ``white_ev − 0.5`` stops are blended towards neutral of the same display value ("path to
    white"), so very bright saturated lights go white instead of a flat, odd-hued blob.

    ``shadows`` and ``highlights`` add exposure (in stops) weighted by smooth masks of the norm's
    exposure below −1 EV and above ``white_ev − 1.5`` EV; ``black`` sets the display black point
    (positive crushes, negative lifts to a matte black), applied to y so hue is kept.

Local operator (``local``, ``detail``)
    Durand & Dorsey 2002 base/detail split of log2 luminance, with the edge-aware base from a
    self-guided filter (He, Sun & Tang 2013, Alg. 1) computed at low resolution and applied at
    full resolution through the guide (He & Sun 2015, "Fast guided filter"). The base is pulled
    towards the image's median log luminance by ``0.45 · local`` (a gentle range compression,
    gains capped at ±2 EV so it never looks like "violent HDR"); ``detail`` adds that fraction
    of the detail layer (local contrast).

Everything runs in one fused numba pass per pixel; ``tone_map_reference`` is the plain-numpy
version kept for tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .. import _aot as aot
from .._jit import njit, prange
from ..errors import OptionError
from ..isp.spaces import SPACES, luminance_weights
from ..recipe import Tone

GREY = 0.18  # scene middle grey
C0 = 1.3  # curve exponent at contrast 1.0 (log-log slope of the toe)
LOCAL_COMPRESSION = 0.45  # base-layer compression per unit of ``local``
LOCAL_MAX_EV = 2.0  # cap on the local operator's gain, in stops
LOCAL_EPS = 0.3  # guided-filter epsilon, in (log2 units)^2: edges above ~0.55 EV are kept
LOCAL_LONG_EDGE = 640  # long edge of the low-resolution grid the guided filter runs on
LOCAL_RADIUS = 0.035  # box radius as a fraction of the long edge
KNEE = 0.8  # display value where the tanh shoulder starts
CURVES = ("filmic", "linear", "none")


@dataclass(frozen=True)
class CurveParams:
    """The numbers the fused kernel needs, derived once from a Tone."""

    c: float
    u: float
    k: float
    white: float  # scene value that maps to 1.0
    grey_out: float
    black: float
    shadows: float
    highlights: float
    white_ev: float


def curve_params(tone: Tone) -> CurveParams:
    """Solve the log-logistic curve's ``u`` and ``k`` from grey and white anchors."""
    grey_out = float(getattr(tone, "grey", GREY))
    if not 0.02 <= grey_out <= 0.6:
        raise OptionError(f"tone.grey {grey_out} is outside 0.02..0.6")
    if not 0.5 <= tone.white_ev <= 10:
        raise OptionError(f"tone.white_ev {tone.white_ev} is outside 0.5..10 stops")
    if not 0.2 <= tone.contrast <= 3:
        raise OptionError(f"tone.contrast {tone.contrast} is outside 0.2..3")
    if not -0.2 <= tone.black <= 0.2:
        raise OptionError(f"tone.black {tone.black} is outside -0.2..0.2")
    white = GREY * 2.0**tone.white_ev
    ratio = GREY / white
    c = C0 * tone.contrast
    # the curve can only pass through (grey, grey_out) if (grey/W)^c < grey_out; keep a margin
    c_min = math.log(0.85 * grey_out) / math.log(ratio)
    c = max(c, c_min)
    gc = GREY**c
    u = gc * (1.0 - grey_out) / (grey_out - ratio**c)
    k = 1.0 + u / white**c
    return CurveParams(c, u, k, white, grey_out, float(tone.black), float(tone.shadows),
                       float(tone.highlights), float(tone.white_ev))


def _weights(space: str) -> np.ndarray:
    if space not in SPACES:
        raise OptionError(f"unknown colour space {space!r}")
    return luminance_weights(space).astype(np.float32)


# ----------------------------------------------------------------------------- local operator


def local_grids(rgb: np.ndarray, space: str = "srgb", *, matrix: np.ndarray | None = None,
                gain: float = 1.0) -> tuple[np.ndarray, np.ndarray, float]:
    """Low-resolution guided-filter coefficients (mean_a, mean_b) of log2 luminance, and the
    median log2 luminance (the anchor of the range compression). He, Sun & Tang 2013, Alg. 1.

    ``matrix``/``gain``: the grids of ``gain * matrix @ rgb`` (camera RGB not yet converted:
    the area resize is linear, so the conversion is applied to the small image only)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, LOCAL_LONG_EDGE / max(h, w))
    hs, ws = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(rgb, (ws, hs), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    if matrix is not None:
        m = np.asarray(matrix, np.float32) * np.float32(gain)
        small = np.ascontiguousarray(small, np.float32).reshape(-1, 3) @ m.T
    y = small.reshape(-1, 3) @ _weights(space)
    lum = np.log2(np.maximum(y, 1e-6)).reshape(hs, ws).astype(np.float32)
    r = max(1, round(LOCAL_RADIUS * max(hs, ws)))
    ksize = (2 * r + 1, 2 * r + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, ksize, borderType=cv2.BORDER_REFLECT)

    mean_i = box(lum)
    var = box(lum * lum) - mean_i * mean_i
    a = var / (var + LOCAL_EPS)
    b = mean_i - a * mean_i
    return (np.ascontiguousarray(box(a), np.float32), np.ascontiguousarray(box(b), np.float32),
            float(np.median(lum)))


@njit(cache=True, inline="always")
def _sample(grid: np.ndarray, fy: float, fx: float) -> float:
    """Bilinear sample with pixel-centre alignment and edge clamping."""
    hs, ws = grid.shape
    fy = min(max(fy, 0.0), hs - 1.0)
    fx = min(max(fx, 0.0), ws - 1.0)
    y0 = min(int(fy), hs - 1)
    x0 = min(int(fx), ws - 1)
    y1 = min(y0 + 1, hs - 1)
    x1 = min(x0 + 1, ws - 1)
    ty = fy - y0
    tx = fx - x0
    top = grid[y0, x0] * (1 - tx) + grid[y0, x1] * tx
    bot = grid[y1, x0] * (1 - tx) + grid[y1, x1] * tx
    return top * (1 - ty) + bot * ty


# ----------------------------------------------------------------------------- fused kernel


@njit(cache=True, inline="always")
def _smoothstep(e0: float, e1: float, x: float) -> float:
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


# no nnan/ninf: NaN inputs must behave as in the reference; the rest is safe for these formulas
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, inline="always", fastmath=_FAST, error_model="numpy")
def _curve(n: float, c: float, u: float, k: float, white: float, black: float, shadows: float,
           highlights: float, white_ev: float, gate: float) -> tuple[float, float]:
    """Norm -> (display value, exposure in EV of the adjusted norm).

    Without shadows/highlights the adjusted norm is ``n`` itself: p = n^c directly (no
    log2/exp2 round trip), and the EV (only used by the path to white, which starts at
    ``white_ev - 0.5``) is computed only for norms above ``gate`` (``0.125 · 2^white_ev``,
    just under that start); below it a value under the path's start is returned."""
    if shadows != 0.0 or highlights != 0.0:
        ev = math.log2(n / 0.18)
        if shadows != 0.0:
            ev += shadows / (1.0 + 2.0 ** (2.0 * (ev + 1.0)))
        if highlights != 0.0:
            ev += highlights / (1.0 + 2.0 ** (-2.0 * (ev - (white_ev - 1.5))))
        p = (0.18 * 2.0**ev) ** c
    else:
        p = n**c
        ev = white_ev - 1.0  # below the path to white (it starts at white_ev - 0.5)
        if n > gate:
            ev = math.log2(n / 0.18)
    y = k * p / (p + u)
    if y > KNEE:
        y = KNEE + (1.0 - KNEE) * math.tanh((y - KNEE) / (1.0 - KNEE))
    if black > 0.0:
        y = max(y - black, 0.0) / (1.0 - black)
    elif black < 0.0:
        y = -black + (1.0 + black) * y
    return min(y, 1.0), ev


@aot.entry
@njit(parallel=True, cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _tone_kernel(rgb, out, wts, c, u, k, white, black, shadows, highlights, white_ev,
                 use_local, ga, gb, lmed, compress, detail, full_h, row0):  # pragma: no cover
    h, w = rgb.shape[0], rgb.shape[1]
    hs, ws = ga.shape
    sy = hs / full_h  # rgb may be rows row0.. of a taller image (strips): grids span that image
    sx = ws / w
    gate = 0.125 * 2.0**white_ev  # 0.18 * 2^(white_ev - 0.5) = 0.127 * 2^white_ev
    for i in prange(h):
        fy = (row0 + i + 0.5) * sy - 0.5
        for j in range(w):
            r = max(rgb[i, j, 0], 0.0)
            g = max(rgb[i, j, 1], 0.0)
            b = max(rgb[i, j, 2], 0.0)
            if use_local:
                lum = math.log2(max(wts[0] * r + wts[1] * g + wts[2] * b, 1e-6))
                fx = (j + 0.5) * sx - 0.5
                base = _sample(ga, fy, fx) * lum + _sample(gb, fy, fx)
                gain = -compress * (base - lmed) + detail * (lum - base)
                gain = 2.0 ** min(max(gain, -2.0), 2.0)
                r *= gain
                g *= gain
                b *= gain
            n = max(r, g, b)
            if n <= 1e-10:
                out[i, j, 0] = max(-black, 0.0)
                out[i, j, 1] = max(-black, 0.0)
                out[i, j, 2] = max(-black, 0.0)
                continue
            y, ev = _curve(n, c, u, k, white, black, shadows, highlights, white_ev, gate)
            s = y / n
            t = _smoothstep(white_ev - 0.5, white_ev + 1.0, ev)
            out[i, j, 0] = min(r * s + t * (y - r * s), 1.0)
            out[i, j, 1] = min(g * s + t * (y - g * s), 1.0)
            out[i, j, 2] = min(b * s + t * (y - b * s), 1.0)


def _check(rgb: np.ndarray, tone: Tone) -> np.ndarray:
    if tone.curve not in CURVES:
        raise OptionError(f"unknown tone curve {tone.curve!r} (one of {', '.join(CURVES)})")
    if not 0 <= tone.local <= 1:
        raise OptionError(f"tone.local {tone.local} is outside 0..1")
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB, got shape {rgb.shape}")
    return np.ascontiguousarray(rgb, dtype=np.float32)


def _local_setup(rgb: np.ndarray, tone: Tone, space: str, matrix: np.ndarray | None = None,
                 gain: float = 1.0):
    detail = float(getattr(tone, "detail", 0.0))
    if tone.local > 0 or detail != 0:
        ga, gb, lmed = local_grids(rgb, space, matrix=matrix, gain=gain)
        return True, ga, gb, lmed, LOCAL_COMPRESSION * float(tone.local), detail
    z = np.zeros((1, 1), np.float32)
    return False, z, z, 0.0, 0.0, 0.0


def tone_map(rgb: np.ndarray, tone: Tone, space: str = "srgb", *,
             local: tuple | None = None, row0: int = 0, full_height: int | None = None,
             out: np.ndarray | None = None) -> np.ndarray:
    """Scene-linear RGB in ``space`` (grey ≈ 0.18) -> display-linear RGB in [0, 1] (float32).

    ``tone.curve``: 'filmic' (this module's curve), 'linear' (plain clip to [0, 1], no curve)
    or 'none' (returned unchanged, unclipped).
    Strips: ``rgb`` is rows ``row0..`` of an image ``full_height`` rows tall whose
    :func:`local_setup` is ``local`` (computed once on the whole image). ``out``: where to
    write (may be ``rgb``).
    """
    rgb = _check(rgb, tone)
    if tone.curve == "none":
        return rgb.copy()
    if tone.curve == "linear":
        return np.clip(rgb, 0.0, 1.0, out=out)
    p = curve_params(tone)
    use_local, ga, gb, lmed, compress, detail = local or _local_setup(rgb, tone, space)
    out = np.empty_like(rgb) if out is None else out
    # (a whole image outside a strip pass: its two halves of rows on the two cores)
    aot.pixels_in_two(_tone_kernel, rgb, out, _weights(space), p.c, p.u, p.k, p.white,
                      p.black, p.shadows, p.highlights, p.white_ev, use_local, ga, gb, lmed,
                      compress, detail, int(full_height or rgb.shape[0]), row0=int(row0))
    return out


def local_setup(rgb: np.ndarray, tone: Tone, space: str = "srgb", *,
                matrix: np.ndarray | None = None, gain: float = 1.0) -> tuple:
    """The local operator's whole-image state (grids, median) for :func:`tone_map` on strips.

    ``matrix``/``gain``: ``rgb`` is camera RGB that the strips convert themselves
    (``looks._fused.display_strip(..., matrix=, gain=)``); the state is that of
    ``gain * matrix @ rgb`` (within float rounding)."""
    if tone.curve != "filmic":
        return _local_setup(np.zeros((1, 1, 3), np.float32), Tone(local=0.0, detail=0.0), space)
    return _local_setup(rgb, tone, space, matrix, gain)


# ----------------------------------------------------------------------------- numpy reference


def _bilinear_np(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    hs, ws = grid.shape
    fy = np.clip((np.arange(h) + 0.5) * (hs / h) - 0.5, 0, hs - 1)
    fx = np.clip((np.arange(w) + 0.5) * (ws / w) - 0.5, 0, ws - 1)
    y0 = np.minimum(fy.astype(int), hs - 1)
    x0 = np.minimum(fx.astype(int), ws - 1)
    y1, x1 = np.minimum(y0 + 1, hs - 1), np.minimum(x0 + 1, ws - 1)
    ty, tx = (fy - y0)[:, None], (fx - x0)[None, :]
    top = grid[y0][:, x0] * (1 - tx) + grid[y0][:, x1] * tx
    bot = grid[y1][:, x0] * (1 - tx) + grid[y1][:, x1] * tx
    return top * (1 - ty) + bot * ty


def curve_np(n: np.ndarray, p: CurveParams) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised norm -> (display value, adjusted EV); the reference of ``_curve``."""
    n = np.asarray(n, np.float64)
    ev = np.log2(np.maximum(n, 1e-12) / GREY)
    if p.shadows:
        ev = ev + p.shadows / (1 + 2.0 ** (2 * (ev + 1)))
    if p.highlights:
        ev = ev + p.highlights / (1 + 2.0 ** (-2 * (ev - (p.white_ev - 1.5))))
    m = GREY * 2.0**ev
    pc = m**p.c
    y = p.k * pc / (pc + p.u)
    y = np.where(y > KNEE, KNEE + (1 - KNEE) * np.tanh((y - KNEE) / (1 - KNEE)), y)
    if p.black > 0:
        y = np.maximum(y - p.black, 0) / (1 - p.black)
    elif p.black < 0:
        y = -p.black + (1 + p.black) * y
    return np.minimum(y, 1.0), ev


def tone_map_reference(rgb: np.ndarray, tone: Tone, space: str = "srgb") -> np.ndarray:
    """Plain-numpy :func:`tone_map` (float64 inside), for tests."""
    rgb = _check(rgb, tone)
    if tone.curve == "none":
        return rgb.copy()
    if tone.curve == "linear":
        return np.clip(rgb, 0.0, 1.0)
    p = curve_params(tone)
    x = np.maximum(rgb.astype(np.float64), 0.0)
    use_local, ga, gb, lmed, compress, detail = _local_setup(rgb, tone, space)
    if use_local:
        h, w = x.shape[:2]
        lum = np.log2(np.maximum(x @ _weights(space).astype(np.float64), 1e-6))
        base = _bilinear_np(ga.astype(np.float64), h, w) * lum + _bilinear_np(
            gb.astype(np.float64), h, w)
        gain = np.clip(-compress * (base - lmed) + detail * (lum - base), -LOCAL_MAX_EV,
                       LOCAL_MAX_EV)
        x = x * (2.0**gain)[..., None]
    n = x.max(axis=2)
    y, ev = curve_np(n, p)
    s = np.where(n > 1e-10, y / np.maximum(n, 1e-10), 0.0)
    o = x * s[..., None]
    t = np.clip((ev - (p.white_ev - 0.5)) / 1.5, 0, 1)
    t = (t * t * (3 - 2 * t))[..., None]
    o = o + t * (y[..., None] - o)
    o = np.where((n > 1e-10)[..., None], o, max(-p.black, 0.0))
    return np.minimum(o, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- inverse


def inverse_tone_map(display: np.ndarray, tone: Tone, headroom_ev: float = 6.0, *,
                     path_to_white: bool = False) -> np.ndarray:
    """Invert the global filmic curve (no local operator): display-linear [0, 1] -> scene-linear.

    Used to treat display-referred images (Kodak PNGs, LUT export) as scenes. The forward map
    (:func:`tone_map` without ``local``/``detail``) sends a pixel of norm n = max(R, G, B) and
    channel ratios q = RGB / n to ``y(n) · ((1 − t(n)) · q + t(n))``, with y the curve and t the
    path-to-white blend (a smoothstep of the adjusted EV from ``white_ev − 0.5`` to
    ``white_ev + 1``). The display max is y(n), so n = y⁻¹(max) (the curve is monotone), and

    * ``path_to_white=False`` (the default, as before): q = display / max, i.e. the blend is
      ignored; ``tone_map(inverse_tone_map(x, t), t) ≈ x`` except within 0.5 EV of white.
    * ``path_to_white=True``: q = (display / max − t) / (1 − t), the exact inverse wherever the
      forward map is invertible, so ``tone_map(inverse(x)) = x`` for every x that tone_map can
      produce.

    What cannot be inverted: display values at or above the curve's value at ``white_ev +
    headroom_ev`` (clipped pixels carry no scene information) map to that scene value; where the
    blend is complete (t = 1, adjusted EV ≥ ``white_ev + 1``) every colour became neutral, so q
    is taken as 1 (grey); a crushed black (``tone.black`` > 0) maps to 0; and colours the forward
    map cannot produce (near white, more saturated than the blend allows: display / max < t)
    get the nearest ratios it can (q clipped at 0)."""
    x = np.clip(np.asarray(display, np.float64), 0.0, 1.0)
    if tone.curve != "filmic":
        return x.astype(np.float32)
    p = curve_params(tone)
    n_grid = GREY * 2.0 ** np.linspace(-16, p.white_ev + headroom_ev, 16384)
    y_grid, ev_grid = curve_np(n_grid, p)
    y_grid = np.maximum.accumulate(y_grid)  # monotone for np.interp
    keep = np.concatenate([[True], np.diff(y_grid) > 1e-12])
    y_grid, n_grid, ev_grid = y_grid[keep], n_grid[keep], ev_grid[keep]
    m = x.max(axis=-1)
    n = np.interp(m, y_grid, n_grid, left=0.0)
    ratio = x / np.maximum(m, 1e-12)[..., None]
    if path_to_white:
        t = np.clip((ev_grid - (p.white_ev - 0.5)) / 1.5, 0.0, 1.0)
        t = np.interp(m, y_grid, t * t * (3.0 - 2.0 * t))[..., None]
        blended = t > 1.0 - 1e-6
        ratio = np.where(blended, 1.0,
                         np.clip((ratio - t) / np.where(blended, 1.0, 1.0 - t), 0.0, 1.0))
    out = np.where((m > 1e-12)[..., None], ratio * n[..., None], 0.0)
    return out.astype(np.float32)
