"""develop(raw, recipe) -> Photo: the whole pipeline, one stage per line, in order.

Stages (names usable as ``until=``): levels, opcodes2, whitebalance, demosaic, denoise,
highlights, shading (OpcodeList2's lens shading where it is deferred: :func:`_defers_shading`),
opcodes3, color, exposure, geometry, tone, look, sharpen; the result is a Photo.
``until=NAME`` returns the float32 array right after that stage — tests, benchmarks and the
browser preview use it instead of private shortcuts.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from dataclasses import replace
from functools import partial

import numpy as np

from . import _aot as aot
from . import _jit
from ._jit import njit
from .errors import OneinchError, OptionError
from .isp import geometry, levels, sharpen, spaces
from .isp.highlights import Prescan, clip_levels, reconstruct
from .photo import Photo
from .raw.image import RawImage
from .recipe import WHITE_EV_MAX, Recipe

# 'auto' demosaic by size (quality vs time, bench/quality_demosaic.py): iterative residual
# interpolation (best, ~0.5 s/MP) up to 4 MP, residual interpolation (~0.1 s/MP) up to 16 MP,
# RCD (~0.03 s/MP) above.
AUTO_IRI_MAX_PIXELS = 4_000_000
AUTO_RI_MAX_PIXELS = 16_000_000
# 'auto' demosaic domain (bench/quality_demosaic_domain.py --noisy, displayed CPSNR against the
# truth through develop's front): the sRGB-encoded domain gains +1.3..2.3 dB at ISO 100 and
# +0.2..0.5 at 3200 (noise level 0.14); it gives 0..0.4 dB back at 6400 (0.21) and 0.2..0.9 at
# 12800 (0.33), where noise dominates the shadows and the encoding's curvature turns it into
# bias. Linear above ~ISO 4000 of the synthetic sensor. (Session 11, with the fine chroma
# band denoised, 4 Kodak crops, linear - sRGB: 3200 -0.16 dB, 4500 -0.05, 6400 +0.05, 12800
# +0.20: the crossover near ISO 5000, within the crops' spread of this threshold.)
DOMAIN_SRGB_MAX_NOISE = 0.16
TILE_MIN_PIXELS = 4_000_000  # tiled=None: strips of rows from this sensor size up
DEMOSAIC_MARGIN = 18  # rows of context demosaicing needs (RI: reach 17, RCD: fewer)
RCD_CONTEXT = 10  # rows RCD reads each side of an output row (its rolling pipeline's 9)
PIXEL_STRIP_ROWS = 96  # per-pixel passes: short strips keep numpy temporaries in cache and small
# a streamed strip keeps this many times isp.tiles.ROWS rows (768): its sensor margin (64 rows
# each side at 50 MP: demosaic, denoise, sharpening) is then 17 % of its sensor work, not 33 %,
# for ~150 MB more at 50 MP (measured: -6 % wall at ISO 100, -9 % at ISO 3200)
STREAM_ROWS_FACTOR = 2
# whole-image statistics (the local tone operator's grids, auto exposure) of a large raw come
# from the raw binned 4x4 or 2x2 (a prepass) when that keeps this long edge (twice the local
# operator's grid, looks.tone.LOCAL_LONG_EDGE): a develop then has no whole-image step after
# demosaicing but highlight reconstruction, and can stream (_develop_streamed)
PREPASS_MIN_EDGE = 1280

STAGES = (
    "levels",
    "opcodes2",
    "whitebalance",
    "demosaic",
    "denoise",
    "highlights",
    "shading",
    "opcodes3",
    "color",
    "exposure",
    "geometry",
    "tone",
    "look",
    "sharpen",
)


def develop(
    raw: RawImage,
    recipe: Recipe | None = None,
    *,
    until: str | None = None,
    tiled: bool | None = None,
    dtype: type | np.dtype | None = None,
    rows=None,
) -> Photo | np.ndarray:
    """Develop a RawImage into a display-referred Photo (or the array after stage ``until``).

    ``dtype`` uint8 or uint16: the Photo holds the encoded image already quantised (round to
    nearest, as :func:`oneinch.output.encode.quantize` does), written strip by strip — no
    full-size float output image, no separate quantisation pass. None: float32 in [0, 1].
    ``rows`` (with uint8; an :class:`oneinch.output.jpeg.JpegRows`): when the develop streams
    and is upright or mirrored, its rows go there as they are made, with no 8-bit image
    either; ``rows.started`` then tells, and the Photo's ``rgb`` is a placeholder of the
    image's shape that holds no memory (read-only zeros).

    ``tiled`` (None: from ``TILE_MIN_PIXELS`` up) runs the stages from demosaic on in strips
    of rows (:func:`develop_strips`): the same result within 1e-4, in bounded memory. The
    whole-image path below is the reference, and the one ``until`` uses.
    """
    from .isp import opcodes, whitebalance
    from .isp.demosaic import demosaic
    from .isp.denoise import denoise

    r = _headroom_white(raw, recipe or Recipe())
    bits = _bits(dtype)
    if until is not None and until not in STAGES and until != _SCENE:
        raise OptionError(f"unknown stage {until!r} (one of {', '.join(STAGES)})")
    space = r.output.space
    ops = raw.opcodes if r.opcodes.apply else {}
    apply_ops = partial(opcodes.apply_opcode_list, source=raw.path)
    at = _Stage(until)  # at(name, x) hands x on, or ends develop() with x when name == until
    try:
        if _front_in_strips(raw, r, until, tiled, ops):  # levels + WB per strip, too
            neutral = whitebalance.neutral(raw.color, r.white_balance, None, raw.cfa)
            gains = whitebalance.gains(neutral)
            front = partial(_front, lv=raw.levels, gains=gains, cfa=raw.cfa,
                            ops2=tuple(ops.get(2, ())), frame=raw.data.shape[:2],
                            source=raw.path)
            rgb = develop_strips([raw.data], raw, r, neutral, gains, front=front, bits=bits,
                                 rows=rows, to_scene=until == _SCENE)
            return rgb if until == _SCENE else _photo(rgb, raw, r, neutral)
        x = at("levels", levels.normalize(_opcodes1(raw, ops.get(1, ())), raw.levels))
        ops2 = tuple(ops.get(2, ()))
        defer = _defers_shading(raw, r)
        # deferred lens shading: the GainMaps' product, in DNG order, only for what reads the
        # whole mosaic (auto WB, the statistics); the pipeline goes on without it
        shaded = at("opcodes2", apply_ops(x, ops2, list_no=2, cfa=raw.cfa))
        x = x if defer else shaded
        neutral = whitebalance.neutral(raw.color, r.white_balance, shaded, raw.cfa)
        gains = whitebalance.gains(neutral)
        x = at("whitebalance", whitebalance.apply_gains(x, gains, raw.cfa))
        seen = x  # the statistics' mosaic: with the maps (their prepass, large raws only)
        if defer and _prepass_factor(raw) > 1:
            seen = whitebalance.apply_gains(shaded, gains, raw.cfa)
        del shaded
        if _use_strips(raw, r, until, tiled):
            stats = _statistics(seen, raw, r, neutral, gains)
            held, x, seen = [x], None, None  # develop_strips drops the mosaic once demosaiced
            rgb = develop_strips(held, raw, r, neutral, gains, bits=bits, rows=rows,
                                 stats=stats, to_scene=until == _SCENE)
            return rgb if until == _SCENE else _photo(rgb, raw, r, neutral)
        made_by = _made_by(raw, r)
        noise = _developed_noise(raw, r, gains)
        if noise is None and _needs_noise(raw, r):  # estimated once, on a central band
            noise = _estimate_noise(x, raw, r, gains)
        domain = demosaic_domain(r, noise)
        weight = _learned_weight(noise, domain)
        made_by = _weighted(made_by, weight)
        stats = _statistics(seen, raw, r, neutral, gains)
        seen = None
        x, crop = _demosaic(x, raw, r, demosaic, domain, weight)
        x = at("demosaic", x)
        # denoise before OpcodeList3: its noise model is the sensor's, on the mosaic's grid;
        # a FixVignetteRadial gain or a warp's resampling after it would change the noise
        # (2x vignette, ISO 3200, 4 Kodak: +1.07 dB, corners +2.5, against after)
        exact = _bin_factor(raw, r) > 1
        if _filters(r, noise, exact):
            shade = None if defer else _Shading.of(raw, ops2, x.shape[:2], exact=exact)
            x = _unshaded(denoise, x, shade, 0, False, r.denoise, noise_profile=noise,
                          iso=raw.shot.iso, demosaic_method=made_by, binned=exact)
        x = at("denoise", x)
        # highlights on the sensor's values and grid: before the gains of deferred lens
        # shading and of OpcodeList3 (FixVignetteRadial), which lift unclipped values past
        # the uniform clip level, and before a warp's resampling
        x = at("highlights", reconstruct(x, _clip(raw, gains), r.highlights.mode))
        if defer:
            x = x * _Shading(raw, ops2, x.shape[:2], exact=exact).rows(0, x.shape[0])
        x = at("shading", x)
        x = at("opcodes3", apply_ops(x, ops.get(3, ()), list_no=3, cfa=None))
        x = at("color", camera_colour(x, raw, neutral, r))
        gain = _exposure_gain(raw, r, stats.sample if stats.sample is not None else x)
        x = at("exposure", x if gain == 1.0 else x * gain)
        x = lens_corrections(x, raw, r)
        x = geometry.scale_aspect(geometry.crop(x, crop), raw.default_scale)
        x = geometry.orient(x, raw.shot.orientation)
        x = at("geometry", geometry.resize_long_edge(x, r.output.size))
        if until == _SCENE:
            return Scene(x, raw, r, neutral, stats, gain)
        x = _display(x, r, stats.local(r, space, gain), at)
    except _Stop as stop:
        return stop.array
    except OneinchError as e:  # stages do not know the file: name it here
        if e.path is None and raw.path:
            raise type(e)(e.detail, raw.path) from None
        raise
    return _photo(x if bits is None else _quantize(x, bits), raw, r, neutral)


def _display(x: np.ndarray, r: Recipe, local: tuple | None, at) -> np.ndarray:
    """The whole image's display stages: tone, look, sharpen, the output's transfer function
    (a new array; ``x`` is left as it is)."""
    from .looks.looks import apply_look
    from .looks.tone import tone_map

    space = r.output.space
    x = at("tone", tone_map(x, r.tone, space, local=local))
    x = at("look", apply_look(x, r.look, space))
    x = at("sharpen", sharpen.sharpen(x, r.sharpen.amount, r.sharpen.radius,
                                      r.sharpen.threshold))
    return spaces.encode(x, spaces.SPACES[space].transfer)


_SCENE = "scene"  # develop()'s until= for develop_scene: stop before the display stages
# the recipe's sections that render() may change: what a Scene holds is made without them
DISPLAY_SECTIONS = ("tone", "look", "sharpen", "frame")


class Scene:
    """A raw developed up to its display stages (:func:`develop_scene`): the scene-referred
    linear image in the output's space, exposed, at the output's size and orientation
    (``rgb``, float32; every render reads it: not to be written), with what :func:`render`
    needs to finish it: the raw, the recipe it was made with, the white balance's neutral,
    the whole-image statistics (the local tone operator's source) and the exposure gain.

    render() gives the Photo develop() gives under any recipe that differs from the scene's
    only in tone, look, sharpen, frame or the output's encoding (format, quality, bits): an
    editor re-renders a look or a tone slider from here instead of developing the raw again.
    The same display stages as develop()'s whole-image path: equal to it, and to the strips
    within their 1e-4. One exception: the local tone operator (tone.local, tone.detail) of a
    large raw reads its grids from a binned prepass of the raw (_statistics) that a scene
    keeps only when its own recipe had the operator on; else render() reads them from the
    scene's image, as develop() does for a smaller raw."""

    def __init__(self, rgb: np.ndarray, raw: RawImage, recipe: Recipe, neutral: np.ndarray,
                 stats: _Statistics, gain: float) -> None:
        self.rgb, self.raw, self.recipe = rgb, raw, recipe
        self.neutral, self.stats, self.gain = neutral, stats, gain

    def renders_exactly(self, recipe: Recipe) -> bool:
        """Whether render(self, recipe) is develop()'s image (within the strips' 1e-4): not
        when ``recipe`` turns the local tone operator on for a raw large enough for the
        binned prepass its grids come from, and this scene was made without it."""
        t = recipe.tone
        local = t.curve == "filmic" and (t.local > 0 or t.detail != 0)
        return not local or self.stats.scene is not None or _prepass_factor(self.raw) == 1

    @property
    def nbytes(self) -> int:
        """Memory the scene holds beyond the raw (the image and the statistics' own)."""
        held = [self.rgb, self.stats.scene, self.stats.sample]
        return sum(a.nbytes for a in held if a is not None)


def scene_key(recipe: Recipe) -> tuple:
    """What a Scene made with ``recipe`` depends on: the recipe without its display sections
    and with only the output's size and space (equal keys: one scene serves both)."""
    from dataclasses import fields

    rest = tuple(getattr(recipe, f.name) for f in fields(recipe)
                 if f.name not in DISPLAY_SECTIONS and f.name != "output")
    return (*rest, recipe.output.size, recipe.output.space)


def develop_scene(raw: RawImage, recipe: Recipe | None = None) -> Scene:
    """Develop ``raw`` up to its display stages (a :class:`Scene`), for :func:`render`."""
    return develop(raw, recipe, until=_SCENE)


def render(scene: Scene, recipe: Recipe | None = None, *,
           dtype: type | np.dtype | None = None) -> Photo:
    """The Photo of ``scene`` under ``recipe`` (default: the scene's own): the display stages
    only (tone, look, sharpen, the output's transfer function), exactly as develop() would
    run them. ``recipe`` may differ from the scene's in :data:`DISPLAY_SECTIONS` and the
    output's encoding; anything else (white balance, exposure, size, ...) is an OptionError:
    develop the raw again. ``dtype``: as develop()'s."""
    r = scene.recipe if recipe is None else _headroom_white(scene.raw, recipe)
    if scene_key(r) != scene_key(scene.recipe):
        raise OptionError("the recipe changes more than the display (tone, look, sharpen, "
                          "frame, encoding): develop the raw again, not render its scene")
    try:
        x = _display(scene.rgb, r, scene.stats.local(r, r.output.space, scene.gain),
                     _Stage(None))
    except OneinchError as e:
        if e.path is None and scene.raw.path:
            raise type(e)(e.detail, scene.raw.path) from None
        raise
    bits = _bits(dtype)
    return _photo(x if bits is None else _quantize(x, bits), scene.raw, r, scene.neutral)


def _bits(dtype: type | np.dtype | None) -> int | None:
    if dtype is None or np.dtype(dtype) == np.float32:
        return None
    if np.dtype(dtype) in (np.uint8, np.uint16):
        return 8 * np.dtype(dtype).itemsize
    raise OptionError(f"develop's dtype is float32, uint8 or uint16, not {np.dtype(dtype)}")


def _quantize(x: np.ndarray, bits: int) -> np.ndarray:
    from .output.encode import quantize

    return quantize(x, bits)


def _photo(rgb: np.ndarray, raw: RawImage, r: Recipe, neutral: np.ndarray) -> Photo:
    return Photo(
        rgb=rgb,
        space=r.output.space,
        shot=replace(raw.shot, orientation=1),
        source=raw.path,
        extra={"recipe": r.hash(), "neutral": [float(v) for v in neutral]},
    )


def _front(data: np.ndarray, row: int = 0, *, lv, gains: np.ndarray, cfa, ops2: tuple = (),
           frame: tuple[int, int] | None = None, source: str | None = None) -> np.ndarray:
    """Levels, OpcodeList2 and white balance of the stored values of rows ``row..`` (the same
    per-pixel operations as on the whole image: exact per strip when the black level is
    uniform and the opcodes are pointwise, placed by their origin in the ``frame``)."""
    from .isp import opcodes, whitebalance

    x = levels.normalize(data, lv)
    if ops2:
        x = opcodes.apply_opcode_list(x, ops2, list_no=2, cfa=cfa, source=source,
                                      origin=(int(row), 0), frame=frame)
    return whitebalance.apply_gains(x, gains, cfa)


def _front_in_strips(raw: RawImage, r: Recipe, until: str | None, tiled: bool | None,
                     ops: dict) -> bool:
    """Levels, OpcodeList2 and WB can run per strip (no full-size float mosaic: 200 MB and
    two full-size passes less at 50 MP) when nothing before demosaic is whole-image: no
    OpcodeList1, pointwise OpcodeList2 (the lens-shading GainMaps of phones and GoPros), a
    uniform black level, no linearisation table, a Bayer mosaic, and a WB that does not look
    at the image (not 'auto')."""
    from .isp import opcodes

    return (
        _use_strips(raw, r, until, tiled)
        and not raw.is_linear
        and not ops.get(1)
        and opcodes.pointwise(ops.get(2, ()))
        and r.white_balance.mode != "auto"
        and raw.levels.linearization is None
        and levels.uniform_black(raw.levels)
        and np.asarray(raw.levels.white).size == 1
        and getattr(raw.data, "ndim", 0) == 2
    )


def develop_strips(
    held: list[np.ndarray],
    raw: RawImage,
    r: Recipe,
    neutral: np.ndarray,
    gains: np.ndarray,
    front=None,
    bits: int | None = None,
    rows=None,
    stats: _Statistics | None = None,
    to_scene: bool = False,
) -> np.ndarray | Scene:
    """develop() from demosaic to the encoded output, in strips of rows (isp.tiles.map_rows).

    An integer output at full size (:func:`_streams`) is made in one pass, with no full-size
    float image (:func:`_develop_streamed`). Otherwise the same stages in the same order, three
    passes over one full-size float32 buffer: (1) demosaic + denoise per strip, with enough
    overlap that every kept row is exact; (2) highlight reconstruction, in place (its
    chromaticity field is whole-image, at 1024 px), then colour and exposure per strip (auto
    exposure from the same sparse sample as the reference, or the prepass's:
    :func:`_statistics`); (3) geometry, then tone (local-operator grids once, from the whole
    image or the prepass), look, sharpen and the transfer function per strip, written back
    into the same buffer, compacted to the cropped size. Peak memory: the mosaic, the buffer
    and a few strips.
    ``front``: when given, ``held`` holds the stored sensor values and ``front(strip, row)``
    (levels, OpcodeList2 and white balance) runs per strip before demosaicing. ``bits`` (8 or
    16): each output strip is quantised as it is made, into a new integer image (see
    :func:`develop`; ``rows``: its row sink). Lens shading that :func:`_defers_shading`:
    ``held`` (or the front) is without it, and its gain multiplies each strip after the
    highlight reconstruction; ``stats``: the statistics of the mosaic with it, when ``held``
    is a mosaic (else made here from the front's). ``to_scene``: stop before the display pass
    and return the :class:`Scene` (the image converted to the output space and exposed).
    """
    from .isp import tiles
    from .isp.demosaic import demosaic
    from .isp.denoise import denoise
    from .isp.denoise import margin as denoise_margin
    from .isp.denoise import prepare as denoise_prepare
    from .looks import _fused
    from .looks.looks import apply_look
    from .looks.tone import local_setup, tone_map

    mosaic = held.pop()  # white-balanced mosaic (or linear RGB); the only reference to it
    space, cfa = r.output.space, raw.cfa
    factor = _bin_factor(raw, r)
    method = _auto_method(raw, r)

    rows_out = round(mosaic.shape[0] / factor)
    width_out = mosaic.shape[1] if raw.is_linear or factor == 1 else mosaic.shape[1] // factor
    made_by = _made_by(raw, r)
    ops2 = tuple(raw.opcodes.get(2, ())) if r.opcodes.apply else ()
    deferred = _Shading(raw, ops2, (rows_out, width_out), exact=factor > 1) \
        if _defers_shading(raw, r) else None
    whole = front  # the front in DNG order (the statistics read what it makes)
    if deferred is not None and front is not None:  # the sensor's strips: without the maps
        front = partial(_front, **{**front.keywords, "ops2": ()})
    noise = _developed_noise(raw, r, gains)
    if noise is None and _needs_noise(raw, r):  # estimated once, on a central band
        noise = _estimate_noise(mosaic, raw, r, gains, front)
    domain = demosaic_domain(r, noise)
    weight = _learned_weight(noise, domain)
    made_by = _weighted(made_by, weight)

    dm = _demosaic_margin(raw, method, factor)
    height = mosaic.shape[0]

    def exact_rows(m: np.ndarray, row: int) -> tuple[int, int] | None:
        """The rows of strip ``m`` (mosaic rows ``row``...) that a demosaic with ``dm`` rows
        of context makes exact: all but the ``dm`` at each side cut from the image. Its later
        stages read no others (their margins come on top of ``dm``), so iri-cnn runs its
        network on these only (isp.demosaic's ``rows``)."""
        r0 = dm if row > 0 else 0
        r1 = m.shape[0] - dm if row + m.shape[0] < height else m.shape[0]
        return (r0, r1) if r0 < r1 else None

    def dem(m: np.ndarray, row: int) -> np.ndarray:
        if factor > 1:
            return _binned(m, row, front, cfa, factor)
        if front is not None and m.dtype == np.uint16 and not front.keywords["ops2"]:
            lv, g = front.keywords["lv"], front.keywords["gains"]
            if method == "rcd":  # levels, WB (and the encoding) read inside RCD
                return rcd_stored(m, lv, g, cfa, domain=domain)
        if front is not None:
            m = front(m, row)
        if raw.is_linear:
            return m
        return demosaic(m, cfa, method, quad_mode=r.demosaic.quad_bayer, domain=domain,
                        weight=weight, rows=exact_rows(m, row))

    binned = factor > 1
    filters = _filters(r, noise, binned)
    shade = None if not filters or deferred is not None else _Shading.of(
        raw, ops2, (rows_out, width_out), exact=binned)  # (OpcodeList2's GainMaps)

    def clean(rgb: np.ndarray, m: np.ndarray, row: int) -> np.ndarray:  # denoise
        # row0 puts denoise's patch grid where the whole-image run has it, so strips join
        # exactly
        if not filters:
            return rgb
        prepared.join()
        fresh = (rgb.dtype == np.float32 and rgb.flags.c_contiguous
                 and not np.may_share_memory(rgb, m))
        return _unshaded(denoise, rgb, shade, row // factor, fresh, r.denoise,
                         noise_profile=noise, iso=raw.shot.iso, demosaic_method=made_by,
                         row0=row // factor, binned=binned)  # (in place when fresh)

    def sensor(m: np.ndarray, row: int) -> np.ndarray:  # demosaic, denoise (opcodes3: none)
        # the RCD and denoise kernels release the GIL (nogil=True): one thread per strip, two
        # strips at once
        with _threads(1):
            return clean(dem(m, row), m, row)

    walk = None
    if (front is not None and mosaic.dtype == np.uint16 and not front.keywords["ops2"]
            and factor == 1 and method == "rcd"):
        lv, g = front.keywords["lv"], front.keywords["gains"]

        def walk(m: np.ndarray, lo: int, hi: int, carry: tuple | None, hand: tuple | None
                 ) -> tuple:
            """sensor() of rows lo..hi of the whole mosaic ``m``, RCD reading the rows
            around them (no edge of its own), but for its first rows, which ``carry`` =
            (lo, RCD rows) holds when the strip above it came first in a walk; also a copy
            of its RCD rows ``hand`` = (r0, r1) for the next one (before denoise overwrites
            them)."""
            with _threads(1):
                rgb = np.empty((hi - lo, m.shape[1], 3), np.float32)
                c0 = lo  # the first row to demosaic
                if carry is not None and carry[0] == lo:
                    c0 = min(hi, lo + len(carry[1]))
                    rgb[: c0 - lo] = carry[1][: c0 - lo]
                if c0 < hi:
                    rcd_stored(m, lv, g, cfa, domain=domain, rows=(c0, hi), out=rgb[c0 - lo :])
                handed = None if hand is None else (
                    hand[0], rgb[hand[0] - lo : hand[1] - lo].copy())
                return clean(rgb, m, lo), handed

    # the noise spectrum every strip's denoise shares (~40 ms, once a process per camera and
    # method), made on another thread while the first strips demosaic (nogil kernels)
    def prepare() -> None:
        with contextlib.suppress(Exception):  # an error here: the strips' denoise meets it
            denoise_prepare(r.denoise, noise, made_by, binned)  # again, and reports it

    prepared = threading.Thread(target=prepare, name="oneinch-denoise-prepare")
    prepared.start()
    margin = dm + denoise_margin(r.denoise, noise, binned)
    clip = _clip(raw, gains)
    profile = _profile(raw, r)  # resolved once for every strip
    fused = _fused.supports(r)
    mat = _colour_matrix(raw, neutral, r, profile) if fused else None
    s_amount, s_radius, s_thr = r.sharpen.amount, r.sharpen.radius, r.sharpen.threshold
    s_margin = int(4 * max(0.3, float(s_radius))) + 2 if s_amount > 0 else 0
    crop = _box_div(raw.default_crop, factor)
    if stats is None:
        stats = _statistics(mosaic, raw, r, neutral, gains, whole)
    if _streams(raw, r, bits, factor, mat, (rows_out, width_out), crop, s_margin, stats):
        gain = _exposure_gain(raw, r, stats.sample)
        local = stats.local(r, space, gain) or local_setup(
            np.zeros((1, 1, 3), np.float32), r.tone, space)  # (no local operator)
        return _develop_streamed(mosaic, sensor, margin - (dm if walk else 0),
                                 r, clip, crop, s_margin, bits, walk=walk, mat=mat,
                                 gain=gain, local=local,
                                 orientation=raw.shot.orientation,
                                 rows=rows if bits == 8 else None, shading=deferred)
    x = tiles.empty((rows_out, width_out, 3))  # the sensor pass's output
    if not aot.available():  # its pages, faulted in on the other core while the JIT loads
        tiles.prefault(x)  # (with compiled-ahead kernels nothing loads: the strips fault
        # them in as they write, on both cores; prefaulting then only competes, +0.2 s)
    # highlight reconstruction's read pass, made per strip while the strip is in cache
    pre = Prescan((rows_out, width_out), clip) if r.highlights.mode == "reconstruct" else None
    x = tiles.map_rows(
        mosaic, sensor, margin=margin * factor, align=8, scale=1.0 / factor,
        rows=tiles.ROWS * factor,  # binned previews: strips of ROWS output rows, too
        out=x,
        kept=None if pre is None else (lambda rows, first: pre.add(rows, first)),
    )
    del mosaic
    reconstruct(x, clip, r.highlights.mode, out=x, prescan=pre)
    if deferred is not None:  # lens shading, after the highlights (a uniform clip level)

        def shade_rows(s: np.ndarray, row: int) -> np.ndarray:
            s *= deferred.rows(row, s.shape[0])
            return s

        tiles.map_rows(x, _one_thread(shade_rows), out=x, rows=PIXEL_STRIP_ROWS)
    sample = stats.sample
    if sample is None and r.exposure.auto:  # auto_exposure_ev's sample of the image
        step = max(1, int(np.sqrt(x.shape[0] * x.shape[1] / 250_000)))
        sample = camera_colour(np.ascontiguousarray(x[::step, ::step]), raw, neutral, r,
                               profile)
    gain = _exposure_gain(raw, r, sample)

    def scene(s: np.ndarray, _row: int) -> np.ndarray:  # color, exposure
        c = camera_colour(s, raw, neutral, r, profile)
        return c if gain == 1.0 else c * gain

    # the fused display pass (looks._fused) converts colour itself when the profile is a
    # matrix: no separate scene pass over the full-size buffer
    if mat is None:
        tiles.map_rows(x, _one_thread(scene), out=x, rows=PIXEL_STRIP_ROWS)
    x = geometry.orient(geometry.crop(x, crop), raw.shot.orientation)  # (a view when upright)
    x = geometry.resize_long_edge(x, r.output.size)  # (linear: commutes with the matrix)
    if to_scene:  # a new array either way, not the working buffer a next develop may reuse
        if mat is None:  # (converted and exposed by the scene pass)
            rgb = np.array(x, np.float32, order="C")
        else:  # the whole path's order: colour, then the gain
            from .isp import color

            rgb = np.ascontiguousarray(color.apply_matrix(x, mat), np.float32)
            if gain != 1.0:
                rgb *= np.float32(gain)
        return Scene(rgb, raw, r, neutral, stats, gain)
    local = stats.local(r, space, gain) or local_setup(
        x, r.tone, space, matrix=mat, gain=gain if mat is not None else 1.0)
    h = x.shape[0]
    transfer = spaces.SPACES[space].transfer

    def display(s: np.ndarray, row: int) -> np.ndarray:  # tone, look, sharpen, encode
        # in place only when map_rows hands over copies (out=x); else s is a view of x that
        # the neighbouring strips read as their margins
        t = tone_map(s, r.tone, space, local=local, row0=row, full_height=h,
                     out=s if bits is None else None)
        t = apply_look(t, r.look, space)
        e = spaces.encode(sharpen.sharpen(t, s_amount, s_radius, s_thr), transfer)
        return e if bits is None else _quantize(e, bits)

    out, consumed = x, None
    if bits is not None:  # x a memory map: the integer image over the start of its memory,
        # its pages released as they are passed (tiles.reuse_buffers' heap x: a new image)
        itype = np.uint8 if bits == 8 else np.uint16
        out = tiles.alias(x, x.shape, itype)
        consumed = _releaser(x, out)
    elif not x.flags.c_contiguous:  # cropped view: write compacted into the same memory
        out = x.base.reshape(-1)[: x.size].reshape(x.shape) if x.base is not None else None
    if fused:  # colour, exposure, tone, look, sharpen, encode (, quantise): one pass a strip
        if s_margin >= PIXEL_STRIP_ROWS:
            raise OptionError(f"sharpen radius {s_radius} is too large")
        odt = np.float32 if bits is None else (np.uint8 if bits == 8 else np.uint16)
        in_place = bits is None and out is not None  # map_rows hands each strip a copy

        def fused_display(s: np.ndarray, row: int) -> np.ndarray:
            a = row if row == 0 else row + s_margin  # the strip's own first row
            keep = (a - row, min(h, a + PIXEL_STRIP_ROWS) - row)
            return _fused.display_strip(s, r, local, row, h, odt, matrix=mat, gain=gain,
                                        out=s if in_place else None, keep=keep)

        run = fused_display
    else:
        run = _one_thread(display)
    res = tiles.map_rows(x, run, out=out, margin=s_margin, rows=PIXEL_STRIP_ROWS,
                         consumed=consumed, mutates=bits is None)  # float: tone in place
    if consumed is not None:
        consumed(x.shape[0])
    return res


def _streams(raw: RawImage, r: Recipe, bits: int | None, factor: int, mat: np.ndarray | None,
             shape: tuple[int, int], crop: tuple | None, s_margin: int,
             stats: _Statistics) -> bool:
    """Whether :func:`_develop_streamed` covers the develop: an integer output at full sensor
    size, colour by a matrix in the fused display pass, and no whole-image step but
    highlight reconstruction, whose field's reduction the strips can sum
    (:func:`highlights.streamable`: any image over 1024 px). Auto exposure and the local
    tone operator are whole-image statistics: from the prepass (``stats``) or not at all."""
    from .isp import highlights

    h, w = geometry.crop_box(shape, crop)[2:]
    return (
        bits is not None
        and factor == 1
        and mat is not None
        and (not r.output.size or max(h, w) <= r.output.size)
        and (not r.exposure.auto or stats.sample is not None)
        and ((r.tone.local == 0 and r.tone.detail == 0) or stats.scene is not None)
        and (r.highlights.mode != "reconstruct" or highlights.streamable(*shape))
        and s_margin < PIXEL_STRIP_ROWS
    )


def _develop_streamed(mosaic: np.ndarray, sensor, margin: int, r: Recipe, clip: np.ndarray,
                      crop: tuple | None, s_margin: int, bits: int, *, mat: np.ndarray,
                      gain: np.float32, local: tuple, orientation: int = 1, rows=None,
                      walk=None, shading: _Shading | None = None) -> np.ndarray:
    """develop_strips in one pass: each strip of rows goes from the sensor to its encoded
    integer rows (demosaic, denoise, highlights, colour, tone, look, sharpen) while it is in
    cache, with no full-size float image: peak memory is the mosaic, the output and the
    strips in flight.

    Each strip is demosaiced and denoised with ``s_margin`` more rows than it keeps, so that
    the sharpening's context is at hand. Highlight reconstruction is the one whole-image step
    left (its chromaticity and brightness fields, :mod:`.isp.highlights`): every strip adds
    its rows to a :class:`Prescan`; a strip with a value near a clip within ``s_margin + 2 *
    SPREAD`` rows of its own (the rows a rebuilt pixel can reach through the clip confidence
    and the sharpening) keeps its sensor rows, in a full-size image only those strips touch,
    and is displayed after the reconstruction, which reads no other rows. The worker that adds
    the last strip to the scan makes the fields and rebuilds those rows while the other still
    shows its own strips (the tail of a 50 MP develop had the reconstruction on one core, the
    other idle); then both show the deferred strips, in parts. The result is that
    of the two-pass develop_strips (the same functions on the same values). A rotated or
    mirrored image is displayed in the sensor's layout and written where ``orientation`` puts
    it (tone and look are per pixel, the sharpening's kernel is symmetric: the same values,
    but for the order of float sums). ``rows`` (a JpegRows; upright or mirrored images): the
    rows go there instead of into an image, and a placeholder of its shape is returned.
    ``walk`` (RCD from the stored values; else ``sensor`` on each strip's rows): the strips
    go to the workers in walks down the image (:class:`.isp.tiles.Walks`), each handing the
    next the RCD rows the two share, so that a row is demosaiced once but where a walk starts
    (50 MP: 6 of 8 strips take their overlap of 176 rows; RCD's CPU -17 %). ``shading``: the
    deferred lens shading, multiplied into the rows each display reads (after the highlights).
    """
    from concurrent.futures import ThreadPoolExecutor

    from .isp import highlights, tiles
    from .looks import _fused

    h, w = mosaic.shape[:2]
    top, left, hh, ww = geometry.crop_box((h, w), crop)
    rebuild = r.highlights.mode == "reconstruct"
    fi = highlights._block_factor(h, w) if rebuild else 0
    reach = s_margin + 2 * highlights.SPREAD  # rows a rebuilt value can change the output of
    align = math.lcm(8, fi) if fi else 8  # (Prescan: strips on the field's blocks)
    extra = -(-(margin + reach) // 8) * 8  # sensor rows read around a strip's own
    odt = np.uint8 if bits == 8 else np.uint16
    o = int(orientation or 1)
    o = o if 1 <= o <= 8 else 1
    upright = o in (1, 2, 3, 4)
    shape = (hh, ww, 3) if upright else (ww, hh, 3)
    if rows is not None and upright and rows.start(hh, ww):  # no image: rows to the sink
        out = np.broadcast_to(np.zeros((1, 1, 3), odt), shape)
    else:
        rows = None
        out = tiles.empty(shape, odt)
    dst = geometry.unoriented_view(out, o)  # (hh, ww, 3)
    direct = dst is out and rows is None  # display_strip writes the kept rows into it
    x = tiles.empty((h, w, 3)) if rebuild else None  # rows written: deferred strips' only
    pre = Prescan((h, w), clip, area=True) if rebuild else None

    def show(src: np.ndarray, r0: int, a: int, b: int) -> None:
        """Encode sensor rows a..b (of those cropped) from ``src``, sensor rows r0..."""
        oa, ob = max(a, top), min(b, top + hh)
        if oa >= ob:
            return
        ia, ib = max(top, oa - s_margin), min(top + hh, ob + s_margin)
        seg = src[ia - r0 : ib - r0, left : left + ww]
        if shading is not None:
            seg = seg * shading.rows(ia, ib - ia)[:, left : left + ww]
        res = _fused.display_strip(seg, r, local,
                                   ia - top, hh, odt, matrix=mat, gain=gain,
                                   out=out[ia - top : ib - top] if direct else None,
                                   keep=(oa - ia, ob - ia))
        if rows is not None:
            part = res[oa - ia : ob - ia]
            part = part[::-1] if o in (3, 4) else part
            rows.add(np.ascontiguousarray(part[:, ::-1] if o in (2, 3) else part),
                     hh - (ob - top) if o in (3, 4) else oa - top)
        elif not direct:
            dst[oa - top : ob - top] = res[oa - ia : ob - ia]

    def first_pass(a: int, b: int, carry: tuple | None, hand: tuple | None
                   ) -> tuple | None:
        """Rows a..b shown, or deferred to the second passes; returns the RCD rows ``hand``
        asks for, or None."""
        lo, hi = max(0, a - extra), min(h, b + extra)
        if walk is None:
            rgb, handed = sensor(mosaic[lo:hi], lo), None
        else:
            rgb, handed = walk(mosaic, lo, hi, carry, hand)
        show_or_defer(a, b, lo, rgb)
        return handed

    bounds = tiles.strip_bounds(h, STREAM_ROWS_FACTOR * tiles.ROWS, align)
    walks = tiles.Walks(len(bounds))
    workers = max(1, tiles.WORKERS)
    lock = threading.Lock()
    held: list[tuple] = []  # the deferred strips: (a, b, context rows above, below)
    passed = [0]  # strips whose rows are in the highlight scan
    rebuilt = threading.Event()  # set once the second passes are known (or on an error)
    jobs: list[tuple[int, int]] = []  # the second passes: rows of deferred strips to show
    failed: list[BaseException] = []

    def show_or_defer(a: int, b: int, lo: int, rgb: np.ndarray) -> None:
        if rebuild:
            pre.add(rgb[a - lo : b - lo], a)
            e0, e1 = max(0, a - reach), min(h, b + reach)
            near = partial(highlights._clip_mask, clip=clip, frac=highlights.SOFT_LO)
            deferred = bool((pre.last[a:b] >= 0).any() or near(rgb[e0 - lo : a - lo]).any()
                            or near(rgb[b - lo : e1 - lo]).any())
            if deferred:
                x[a:b] = rgb[a - lo : b - lo]  # shown once the fields are known
                above = rgb[max(0, a - s_margin) - lo : a - lo].copy()
                below = rgb[b - lo : min(h, b + s_margin) - lo].copy()
            with lock:
                if deferred:
                    held.append((a, b, above, below))
                passed[0] += 1
                last = passed[0] == len(bounds)
            if last:  # every row is in the scan: the fields now, while the other worker
                reconstruct_held()  # still shows its strip
            if deferred:
                return
        else:
            reconstruct(rgb, clip, r.highlights.mode, out=rgb)  # per pixel
        with _threads(1):
            show(rgb, lo, a, b)

    def reconstruct_held() -> None:
        """The highlight fields from the whole scan, the deferred strips' rows rebuilt in
        ``x``, and their second passes queued: each cut in parts (whole MCU rows of 8) for
        both workers, one of which may still be showing its last strip."""
        try:
            deferred = sorted(held, key=lambda d: d[0])
            if not deferred:
                return
            starts, ends = {d[0] for d in deferred}, {d[1] for d in deferred}
            for a, b, above, below in deferred:  # the context rows of strips shown already
                if a not in ends:
                    x[a - len(above) : a] = above
                if b not in starts:
                    x[b : b + len(below)] = below
            if pre.result(x, clip) is None:  # (every row was added, on the blocks)
                raise AssertionError("streamed strips left rows out of the highlight scan")
            with _threads(1):  # (as a strip: the other worker may still be running one)
                reconstruct(x, clip, "reconstruct", out=x, prescan=pre)
            n = 2 * workers
            parts = [(a + (b - a) * k // n // 8 * 8,
                      b if k + 1 == n else a + (b - a) * (k + 1) // n // 8 * 8)
                     for a, b, *_ in deferred for k in range(n)]
            with lock:
                jobs.extend(p for p in parts if p[0] < p[1])
        finally:
            rebuilt.set()

    def second_passes() -> None:
        """The deferred strips' parts, once the fields are known, until none is left."""
        rebuilt.wait()
        while True:
            with lock:
                if failed or not jobs:
                    return
                a, b = jobs.pop(0)
            with _threads(1):
                show(x, 0, a, b)

    def walker() -> None:
        """First passes down a walk of strips, each handing the next its RCD rows, then
        second passes."""
        i, carry = None, None
        try:
            while (j := walks.claim(i)) is not None:
                if j != (-1 if i is None else i + 1):
                    carry = None  # (a new walk)
                a, b = bounds[j]
                hand = (max(0, b - extra), min(h, b + extra)) if j + 1 < len(bounds) else None
                carry = first_pass(a, b, carry, hand)
                i = j
            if rebuild:
                second_passes()
        except BaseException as e:
            with lock:
                failed.append(e)
            walks.stop()
            rebuilt.set()  # (a worker waiting for the fields: there will be none)
            raise

    with ThreadPoolExecutor(workers) as pool:
        done = [pool.submit(walker) for _ in range(workers)]
        for f in done:
            f.result()
    return out


def _releaser(x: np.ndarray, out: np.ndarray | None):
    """consumed(row) for map_rows writing ``out`` over the start of x's memory map: the pages
    of x rows < row that lie past the end of ``out`` are handed back (peak memory falls
    as the integer image is made: a 50 MP float image is 600 MB, its 8-bit encoding 150 MB)."""
    from .isp import tiles

    off = tiles.map_offset(x)
    if out is None or off is None:
        return None
    end_out = out.nbytes
    stride = x.strides[0]

    def consumed(row: int) -> None:
        tiles.release(x, end_out, off + row * stride)

    return consumed


def _one_thread(fn):
    """``fn`` run with numba's parallel kernels on one thread (numba.set_num_threads is per
    calling thread): map_rows already keeps both cores busy with two strips, and nested
    parallel regions would put 4 threads on 2 cores. Only for stages whose numba kernels
    release the GIL (nogil=True): a kernel holding it serialises the strips, and is better
    left its own parallel threads."""

    def run(s: np.ndarray, row: int) -> np.ndarray:
        with _threads(1):
            return fn(s, row)

    return run


class _threads:
    """Context: numba's thread count for the calling thread (no-op when map_rows runs one
    strip at a time)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.old = 0
        self.serial = aot.serial() if n == 1 else None  # compiled-ahead kernels may serve

    def __enter__(self) -> None:
        from .isp import tiles

        if self.serial is not None:
            self.serial.__enter__()
        if tiles.WORKERS > 1 and _jit.loaded():  # (not loaded: no JIT kernel runs in here)
            import numba

            self.old = numba.get_num_threads()
            numba.set_num_threads(min(self.n, numba.config.NUMBA_NUM_THREADS))

    def __exit__(self, *exc: object) -> None:
        if self.old:
            import numba

            numba.set_num_threads(self.old)
        if self.serial is not None:
            self.serial.__exit__(*exc)


def _use_strips(raw: RawImage, r: Recipe, until: str | None, tiled: bool | None) -> bool:
    """Strips need: no stop stage, a Bayer (or linear) sensor, and no whole-image step the
    strip passes do not model (OpcodeList3, lensfun, non-square pixels, grain)."""
    if (until is not None and until != _SCENE) or tiled is False:
        return False
    if tiled is None and raw.height * raw.width < TILE_MIN_PIXELS:
        return False
    sx, sy = (float(v) for v in raw.default_scale)
    local = raw.is_linear or _bin_factor(raw, r) > 1 or _in_strips(_auto_method(raw, r))
    return (
        local
        and (raw.is_linear or (raw.cfa is not None and raw.cfa.kind == "bayer"))
        and not (r.opcodes.apply and raw.opcodes.get(3))
        and (raw.is_dng or r.lens.mode != "auto")
        and abs(sx - sy) < 1e-6
        # (a scene's display runs whole, in render(): these do not choose its path)
        and (until == _SCENE or (r.look.grain <= 0 and r.tone.curve == "filmic"))
    )


# LinearRaw DNGs (phones, raw converters) hold RGB that the camera demosaiced by a method of
# its own: their noise is correlated as a demosaic correlates it. Denoise models it with
# RCD's spectrum. Until session 15 it was modelled as white (as a sensor without a CFA would
# give). bench/quality_denoise.py --linear, 24 Kodak + McMaster synthetic raws, gain over no
# filtering, white model -> this: demosaiced by malvar, ISO 100 -0.62 -> +0.43 dB, 800 +1.50
# -> +2.53, 3200 +3.45 -> +4.41; by rcd -0.30 -> +0.81, +2.34 -> +2.88, +4.79 -> +5.41; and
# on truly white noise (raws binned 2x2) +0.14 -> +0.30, +0.88 -> +1.61, +3.32 -> +3.62.
# Without a NoiseProfile (estimated, see _estimate_noise), demosaiced by malvar: ISO 100
# -3.88 -> -2.41, 800 +1.16 -> +1.99, 3200 +2.68 -> +3.31; better in 8 of the 9 cases (by
# rcd at 3200: +2.93 -> +2.73). The estimator overrates the noise of these small textured
# images at low ISO either way.
LINEAR_RAW_NOISE_MODEL = "rcd"


def _made_by(raw: RawImage, r: Recipe) -> str | None:
    """The demosaic method whose noise spectrum denoise models: the one used ('xtrans',
    'quad:METHOD' for a remosaiced Quad-Bayer, see isp.denoise._cfa_of),
    ``LINEAR_RAW_NOISE_MODEL`` for LinearRaw (demosaiced in the camera), or None when the
    RGB is not interpolated (binned previews: white noise per site)."""
    if raw.is_linear:
        return LINEAR_RAW_NOISE_MODEL
    if _bin_factor(raw, r) > 1:
        return None
    if raw.cfa is not None and raw.cfa.kind == "xtrans":
        return "xtrans"  # its own method whatever the name (isp.denoise models it as such)
    if raw.cfa is not None and raw.cfa.kind == "quad" and r.demosaic.quad_bayer == "remosaic":
        return f"quad:{_auto_method(raw, r)}"  # remosaic, then the method ('bin' averages:
        # the noise stays white per site of the half-size Bayer mosaic the method demosaics)
    return _auto_method(raw, r)


def _in_strips(method: str) -> bool:
    """Every Bayer demosaic method runs in strips, each strip given the rows of context its
    method needs (:func:`_demosaic_margin`). Until session 19 iri and the learned stages that
    start from it were developed whole, on the belief that iri's iterations stop on a
    whole-image criterion; they are a fixed count, combined per pixel, and the seams came from
    strips with RI's 18 rows of context where iri's influence reaches ~100 (at 50 MP, whole:
    iri-lr 5.8 GB peak RSS)."""
    from .isp.demosaic import strip_context

    return strip_context(method) is not None


def _demosaic_margin(raw: RawImage, method: str, factor: int) -> int:
    """Rows of mosaic around a strip that its demosaic reads (:func:`demosaic_context`);
    binned and linear raws are not demosaiced."""
    if raw.is_linear or factor > 1:
        return DEMOSAIC_MARGIN
    return demosaic_context(method)


def demosaic_context(method: str) -> int:
    """Rows of context a strip of ``method`` is given: ``DEMOSAIC_MARGIN``, or more for a
    method whose reach is longer (isp.demosaic.strip_context: iri 96, iri-lr 88, iri-cnn 128)."""
    from .isp.demosaic import strip_context

    return max(DEMOSAIC_MARGIN, strip_context(method) or 0)


def _auto_method(raw: RawImage, r: Recipe) -> str:
    method = r.demosaic.method
    if method == "auto":
        method = auto_demosaic(raw.height * raw.width)
    return method


class _Stop(Exception):  # control flow, not an error
    def __init__(self, array: np.ndarray) -> None:
        self.array = array


class _Stage:
    def __init__(self, until: str | None) -> None:
        self.until = until

    def __call__(self, name: str, x: np.ndarray) -> np.ndarray:
        if name == self.until:
            raise _Stop(x)
        return x


def _demosaic(x: np.ndarray, raw: RawImage, r: Recipe, demosaic, domain: str,
              weight: float = 1.0) -> tuple:
    """Demosaic (or bin for small outputs); returns (rgb, default crop in its pixels).
    ``weight``: the learned methods' share of their corrections (:func:`_learned_weight`)."""
    if raw.is_linear:
        return x, raw.default_crop
    factor = _bin_factor(raw, r)
    if factor > 1:
        return _bin(x, raw.cfa, factor), _box_div(raw.default_crop, factor)
    rgb = demosaic(x, raw.cfa, _auto_method(raw, r), quad_mode=r.demosaic.quad_bayer,
                   domain=domain, weight=weight)
    return rgb, raw.default_crop


def _learned_weight(noise: np.ndarray | None, domain: str = "srgb") -> float:
    """The share of iri-lr's / iri-cnn's learned corrections at this noise profile (in
    white-balanced units) for a demosaic in ``domain``: isp.demosaic.learned_weight of
    isp.denoise.noise_level."""
    if noise is None:
        return 1.0
    from .isp.demosaic import learned_weight
    from .isp.denoise import noise_level

    return learned_weight(noise_level(noise), domain)


def _weighted(made_by: str | None, w: float) -> str | None:
    """``made_by`` with the learned methods' weight ``w``, when below 1 ('iri-lr@0.55'), so
    that denoise models the noise of the method as it ran (isp.denoise._cfa_of)."""
    from .isp.demosaic import LEARNED

    if made_by is None or w >= 1.0 or made_by.split(":")[-1] not in LEARNED:
        return made_by
    return f"{made_by}@{w:.2f}"


def demosaic_domain(r: Recipe, noise: np.ndarray | None) -> str:
    """The domain demosaicing works in: the recipe's, or for 'auto' 'srgb' unless the noise
    level at middle grey (isp.denoise.noise_level of the (3, 2) profile in white-balanced
    units) is above ``DOMAIN_SRGB_MAX_NOISE``; 'srgb' when the noise is unknown."""
    if r.demosaic.domain != "auto":
        return r.demosaic.domain
    if noise is None:
        return "srgb"
    from .isp.denoise import noise_level

    return "srgb" if noise_level(noise) <= DOMAIN_SRGB_MAX_NOISE else "linear"


def _needs_noise(raw: RawImage, r: Recipe) -> bool:
    """Whether a raw without a noise profile needs one estimated: for denoise, or to choose
    the 'auto' demosaic domain."""
    return r.denoise.mode != "off" or (r.demosaic.domain == "auto" and not raw.is_linear
                                         and _bin_factor(raw, r) == 1)


ESTIMATE_ROWS = 1024  # rows of the image the noise estimate reads


def _central_band(height: int, step: int) -> tuple[int, int]:
    """The ``ESTIMATE_ROWS`` rows (or all) around the middle, from a multiple of ``step``."""
    mid, half = (height // 2) // step * step, (ESTIMATE_ROWS // 2) // step * step
    return max(0, mid - half), min(height, mid + half)


def _estimate_bands(height: int, step: int) -> list[tuple[int, int]]:
    """Row ranges (start, stop) the noise estimate reads, each starting on a multiple of
    ``step``: ``ESTIMATE_ROWS`` in all, as four bands at the centres of the image's quarters
    when it has twice that many rows or more (a scene whose middle is all texture or all clip
    still has flat blocks in the others: a textured middle third had the estimate 2-5x the
    true noise with one central band), else one central band (then half the image or more)."""
    if height < 2 * ESTIMATE_ROWS:
        return [_central_band(height, step)]
    rows = -(-(ESTIMATE_ROWS // 4) // step) * step
    out = []
    for q in range(4):
        lo = ((2 * q + 1) * height // 8 - rows // 2) // step * step
        out.append((lo, lo + rows))
    return out


def _estimate_noise(mosaic: np.ndarray, raw: RawImage, r: Recipe, gains: np.ndarray,
                    front=None) -> np.ndarray:
    """(3, 2) noise profile of the image denoise receives, estimated on ``ESTIMATE_ROWS`` rows
    (:func:`_estimate_bands`): a mosaic's on the mosaic itself
    (isp.denoise.estimate_mosaic_noise, white noise; then as :func:`_developed_noise` makes a
    profile of the sensor's), a binned preview's on its binned pixels (estimate_binned_noise),
    LinearRaw's on its RGB (estimate_noise_profile, calibrated for white noise; the central
    band)."""
    from .isp.denoise import (
        estimate_binned_noise,
        estimate_mosaic_noise,
        estimate_noise_profile,
    )

    # rows start on a multiple of the CFA's period (X-Trans: 6) and of 8 (4x4 binning)
    step = math.lcm(8, raw.cfa.shape[0] if raw.cfa is not None else 1)
    rows = _estimate_bands(mosaic.shape[0], step)
    factor = _bin_factor(raw, r)
    if factor > 1:  # a Bayer preview: measured on its own binned pixels (white noise; a
        # quarter or a sixteenth of the pixels the sub-images have)
        binned = [_binned(mosaic[a:b], a, front, raw.cfa, factor) for a, b in rows]
        return estimate_binned_noise(binned, _clip(raw, gains))
    if not raw.is_linear and raw.cfa is not None:
        bands = [mosaic[a:b] if front is None else front(mosaic[a:b], a) for a, b in rows]
        return _as_developed(estimate_mosaic_noise(bands, raw.cfa, _clip(raw, gains)), raw, r)
    # LinearRaw: the estimator reads the noise as it is in the image (white-noise
    # calibration), the denoise then models it as demosaiced. Calibrated as demosaiced too, the
    # estimate rose ~1.9x in sigma and lost at ISO 100-800 (bench/quality_denoise.py --linear,
    # demosaiced by malvar: ISO 100 -2.41 -> -5.82 dB, 800 +1.99 -> +0.76, 3200 +3.31 ->
    # +4.49)
    a, b = _central_band(mosaic.shape[0], step)
    band = mosaic[a:b]
    return estimate_noise_profile(band if front is None else front(band, a),
                                  demosaic_method=None)


def _opcodes1(raw: RawImage, ops1: tuple) -> np.ndarray:
    """OpcodeList1 acts on stored values, in the stored image's frame (DNG 1.7 ch. 7)."""
    if not ops1:
        return raw.data
    from .isp.opcodes import apply_opcode_list

    top, left, *_ = raw.tags.get("active_area", (0, 0, raw.height, raw.width))
    frame = raw.tags.get("stored_size")
    return apply_opcode_list(
        raw.data.astype(np.float32),
        ops1,
        list_no=1,
        cfa=raw.cfa,
        source=raw.path,
        origin=(int(top), int(left)),
        frame=frame,
    )


def _bin_factor(raw: RawImage, recipe: Recipe) -> int:
    """Preview path: sensor pixels per output pixel along each axis, binned instead of
    demosaiced (no interpolation; less work for every later stage).

    1: full size (demosaic). 2: the output is at most half the sensor -> each 2x2 Bayer quad
    becomes one RGB pixel (:func:`bin2x2`). 4: the output is at most a quarter of the sensor
    (and the sensor's sides are multiples of 4) -> each 2x2 block of same-colour samples is
    averaged into a half-size Bayer mosaic (:func:`bin_bayer2x2`), then binned 2x2."""
    if raw.cfa is None or raw.cfa.kind != "bayer":
        return 1
    return recipe.output.bin_factor(max(raw.height, raw.width),
                                    raw.height % 4 == 0 and raw.width % 4 == 0)


def _bin(mosaic: np.ndarray, cfa, factor: int) -> np.ndarray:
    if factor == 4:
        mosaic = bin_bayer2x2(mosaic)
    return bin2x2(mosaic, cfa)


def bin_bayer2x2(mosaic: np.ndarray) -> np.ndarray:
    """Bayer mosaic (H, W) -> half-size Bayer mosaic of the same pattern: every sample is the
    mean of the 2x2 block of same-colour samples (period 2) it stands for. Sides: multiples
    of 4 (a trailing partial block is dropped)."""
    h, w = (mosaic.shape[0] // 4) * 4, (mosaic.shape[1] // 4) * 4
    m = np.asarray(mosaic[:h, :w], dtype=np.float32).reshape(h // 4, 2, 2, w // 4, 2, 2)
    # axes: (block row, same-colour pair row, phase row, block col, pair col, phase col)
    out = (m[:, 0, :, :, 0, :] + m[:, 0, :, :, 1, :]) + (m[:, 1, :, :, 0, :] + m[:, 1, :, :, 1, :])
    out *= np.float32(0.25)
    return np.ascontiguousarray(out.reshape(h // 2, w // 2))


def rcd_stored(data: np.ndarray, lv, gains: np.ndarray, cfa, domain: str = "linear",
               rows: tuple[int, int] | None = None, out: np.ndarray | None = None
               ) -> np.ndarray:
    """RCD of stored Bayer values with levels and white balance applied as samples are read:
    ``demosaic(apply_gains(levels.normalize(data), gains), cfa, 'rcd', domain=domain)``
    without the float mosaic (the same constants as levels.normalize; equal to float
    rounding). 'srgb': uint16 samples are encoded through a table per colour, and the
    interpolated values decoded as they are written. ``rows`` = (y0, y1): those rows of
    that result only (read with RCD's context rows around them), into ``out`` when given."""
    from .isp._demosaic_rcd import rcd_bayer

    b = float(np.asarray(lv.black).flat[0])
    s = float(np.float32(1.0 / max(float(np.asarray(lv.white).flat[0]) - b, 1e-6)))
    ry, rx = (int(v[0]) for v in np.nonzero(cfa.array() == 0))
    kw = dict(black=b, scale=s, gains=np.asarray(gains, np.float64), encoded=domain == "srgb")
    if rows is None:
        return rcd_bayer(data, (ry, rx), **kw, out=out)
    y0, y1 = rows  # the slab of stored rows they read (an even first row: the same phase)
    s0, s1 = max(0, y0 - RCD_CONTEXT) & ~1, min(data.shape[0], y1 + RCD_CONTEXT)
    return rcd_bayer(data[s0:s1], (ry, rx), **kw, rows=(y0 - s0, y1 - s0), out=out)


def bin_stored(data: np.ndarray, lv, gains: np.ndarray, cfa, factor: int) -> np.ndarray:
    """Stored Bayer values (uint16, uniform black, one white) -> binned white-balanced RGB:
    ``bin(apply_gains(levels.normalize(data), gains), factor)`` in one pass (levels and gains
    are affine per sample, so they commute with the averaging; equal to float rounding)."""
    black = float(np.asarray(lv.black).flat[0])
    scale = 1.0 / max(float(np.asarray(lv.white).flat[0]) - black, 1e-6)
    colour = np.array(cfa.pattern, dtype=np.int64)
    g = np.asarray(gains, dtype=np.float64).reshape(3) * scale
    return _bin_stored_nb(data, np.float64(black), g, colour, int(factor))


@aot.entry
@njit(cache=True, nogil=True)
def _bin_stored_nb(data, black, g, colour, factor):  # pragma: no cover - numba
    # per output row: the factor sensor rows are summed into three int32 accumulators (one a
    # colour; exact: at most 8 uint16 samples of one colour a row pass, 16 a pixel), the two
    # column phases of each sensor row into the two colours its CFA phase names, in one pass
    # along the row (the loads are interleaved, which LLVM vectorises; a pass per column phase
    # with strided loads took 2-3x the time: 50 MP, factor 4, 40 -> 13 ms of compute). The
    # pattern lookup is per row, not per sample
    h, w = data.shape[0] // factor, data.shape[1] // factor
    out = np.empty((h, w, 3), np.float32)
    sums = np.zeros((3, w), np.int32)
    cnt = np.zeros(3)
    for c in range(3):
        for dy in range(2):
            for dx in range(2):
                if colour[dy, dx] == c:
                    cnt[c] += (factor // 2) * (factor // 2)
    mul, off = g / cnt, black * g  # (sum / cnt - black) * g = sum * mul - off
    for y in range(h):
        sums[:] = 0
        for dy in range(factor):
            row = data[y * factor + dy]
            even = sums[colour[dy & 1, 0]]
            odd = sums[colour[dy & 1, 1]]
            if factor == 4:
                for x in range(w):
                    even[x] += np.int32(row[4 * x]) + np.int32(row[4 * x + 2])
                    odd[x] += np.int32(row[4 * x + 1]) + np.int32(row[4 * x + 3])
            elif factor == 2:
                for x in range(w):
                    even[x] += np.int32(row[2 * x])
                    odd[x] += np.int32(row[2 * x + 1])
            else:
                for x in range(w):
                    for dx in range(0, factor, 2):
                        even[x] += np.int32(row[x * factor + dx])
                        odd[x] += np.int32(row[x * factor + dx + 1])
        for x in range(w):
            for c in range(3):
                out[y, x, c] = sums[c, x] * mul[c] - off[c]
    return out


class _Shading:
    """The gain OpcodeList2's GainMaps (lens shading) put on each colour of the demosaiced
    image. Deferred (:func:`_defers_shading`), it multiplies the image after the highlights.
    Otherwise the maps are on the mosaic and multiplied the sensor's noise with the signal:
    denoise then models the noise of ``x / gain`` (the sensor's NoiseProfile) and multiplies
    its result back (a GoPro HERO7's maps reach 1.6-2x in the corners: the noise there was
    that much above the model, and was left). The gains are sampled on a grid of ``STEP``
    output pixels and at the outermost pixels (isp.shading.colour_gain), and interpolated
    linearly per strip; ``exact`` (binned previews, few pixels): evaluated at every pixel's
    centre instead. Against that, the grid is within 1.2e-3 on a HERO7, 6e-3 (mean 5e-4) on a
    map 4x as steep (2x in the corners of 384 x 256)."""

    # output pixels between grid points: 16 where the maps' points are 64 px apart or more
    # (a HERO7's, 136: 1.2e-3 at 16, 5e-4 at 8, and 4x the points to evaluate, 50 ms), else
    # 8 (the steep map: 1.3e-2 at 16)
    STEP, FINE_STEP, FINE_BELOW = 16, 8, 64.0

    def __init__(self, raw: RawImage, ops2: tuple, shape: tuple[int, int],
                 exact: bool = False) -> None:
        from .isp import shading

        self.shape = shape  # of the whole image denoise sees, which spans the mosaic (binned
        h, w = shape  # previews and Quad-Bayer 'bin': fewer pixels over the same frame)
        fh, fw = raw.data.shape[:2]
        self.ops2, self.exact, self.frame = ops2, exact, (fh, fw)
        step = (self.STEP if shading.map_spacing_px(ops2, (fh, fw)) * min(h / fh, w / fw)
                >= self.FINE_BELOW else self.FINE_STEP)
        self.hc, self.wc = max(2, -(-h // step)), max(2, -(-w // step))
        # grid points at the centres of hc x wc equal cells of the image (the alignment
        # cv2.resize assumes), in frame (mosaic) coordinates: pixel centres scale by fh / h
        # and, first and last, the outermost pixels' centres: a strip's gains are linear
        # between them and the grid (not held at the grid's first and last points: 2 % off
        # in the corners of a map that doubles over the frame)
        yo = np.concatenate([[0.5], (np.arange(self.hc) + 0.5) * (h / self.hc), [h - 0.5]])
        xo = np.concatenate([[0.5], (np.arange(self.wc) + 0.5) * (w / self.wc), [w - 0.5]])
        self.yo, self.xo = yo, xo
        self.pattern = None if raw.is_linear or raw.cfa is None else raw.cfa.pattern
        self.full = shading.colour_gain(ops2, self.pattern, (fh, fw), self._frame(yo, 0),
                                        self._frame(xo, 1))
        self.grid = None if self.full is None else self.full[1:-1, 1:-1]

    def _frame(self, centres: np.ndarray, axis: int) -> np.ndarray:
        """Frame (mosaic) coordinates of image positions ``centres`` (pixel i's centre is
        i + 0.5) along ``axis``: pixel centres scale by frame / image size."""
        return centres * (self.frame[axis] / self.shape[axis]) - 0.5

    @classmethod
    def of(cls, raw: RawImage, ops2: tuple, shape: tuple[int, int], exact: bool = False
           ) -> _Shading | None:
        """None when no GainMap applies, or its gains stay within 2 % of each other."""
        if not ops2 or not any(getattr(op, "name", None) == "GainMap" for op in ops2):
            return None
        s = cls(raw, ops2, shape, exact)
        g = s.grid
        if g is None or float(g.max()) <= 1.02 * float(g.min()):
            return None
        return s

    def rows(self, row0: int, n: int) -> np.ndarray:
        """(n, width, 3) float32 gains of output rows row0 .. row0 + n."""
        import cv2

        from .isp import shading

        if self.exact:
            return shading.colour_gain(
                self.ops2, self.pattern, self.frame,
                self._frame(row0 + np.arange(n) + 0.5, 0),
                self._frame(np.arange(self.shape[1]) + 0.5, 1))
        y = row0 + np.arange(n) + 0.5  # rows: linear between the points yo (edges included)
        i0 = np.clip(np.searchsorted(self.yo, y, side="right") - 1, 0, self.yo.size - 2)
        span = np.maximum(self.yo[i0 + 1] - self.yo[i0], 1e-6)  # (1-row images: 0)
        wy = np.clip((y - self.yo[i0]) / span, 0.0, 1.0).astype(np.float32)
        wy = wy[:, None, None]
        a = self.full[i0] * (1.0 - wy) + self.full[i0 + 1] * wy  # (n, wc + 2, 3)
        # columns: cv2's resize between the grid's cell centres (it holds the first and last
        # beyond them), then the edge columns linear to the outermost pixels' centres
        out = cv2.resize(np.ascontiguousarray(a[:, 1:-1]), (self.shape[1], n),
                         interpolation=cv2.INTER_LINEAR)
        xo, w = self.xo, self.shape[1]
        for edge, inner, cols in ((0, 1, np.arange(0, int(np.ceil(xo[1] - 0.5)))),
                                  (-1, -2, np.arange(int(np.floor(xo[-2] - 0.5)) + 1, w))):
            if cols.size:
                t = np.clip((cols + 0.5 - xo[edge]) / (xo[inner] - xo[edge] or 1e-6), 0, 1)
                t = t.astype(np.float32)
                t = t[None, :, None]
                out[:, cols] = a[:, edge, None] * (1.0 - t) + a[:, inner, None] * t
        return out


def _filters(r: Recipe, noise: np.ndarray | None, binned: bool) -> bool:
    """Whether denoise filters anything: not 'off', and not 'auto' below its floor
    (:func:`oneinch.isp.denoise.choose_tier`; an unknown noise level is estimated, then
    filtered)."""
    from .isp.denoise import choose_tier

    if r.denoise.mode == "off":
        return False
    return noise is None or choose_tier(r.denoise, noise, binned) is not None


def _unshaded(denoise, rgb: np.ndarray, shade: _Shading | None, first: int, in_place: bool,
              settings, **kw) -> np.ndarray:
    """``denoise(rgb, settings, **kw)`` of the image without its lens shading (rows first.. of
    the image :class:`_Shading` describes): divided by the GainMaps' gain before, multiplied
    after. ``in_place``: ``rgb`` may be overwritten (and holds the result)."""
    if shade is None:
        return denoise(rgb, settings, out=rgb if in_place else None, **kw)
    g = shade.rows(first, rgb.shape[0])
    x = np.divide(rgb, g, out=rgb if in_place else None, dtype=np.float32)
    y = denoise(x, settings, out=x, **kw)
    y *= g
    return y


DEFER_MAX_SITE_SPREAD = 0.005  # same-colour CFA sites' gains (isp.shading.site_spread)
DEFER_MIN_MAP_SPACING = 8.0  # frame pixels between the maps' points


def _defers_shading(raw: RawImage, r: Recipe) -> bool:
    """Whether lens shading is applied after the highlights rather than before demosaicing.

    DNG puts OpcodeList2 (a phone's or GoPro's lens-shading GainMaps) on the mosaic. Their
    gain is smooth (bilinear between points ~100 px apart), so it commutes with demosaicing
    and denoising but for the gain's slope across their few-pixel reach, and applied to the
    RGB after them it spares the per-sample front (RCD then reads the stored values), the
    division around denoise (whose noise model is the sensor's, before the maps), and it puts
    the highlight reconstruction where the clip level is uniform: with the maps first, a
    GoPro HERO7's unclipped sky near the top edge (gains up to 1.3) had crossed it. Only when
    OpcodeList2 is GainMaps alone on a CFA mosaic, with no OpcodeList1 (OpcodeList3 comes
    after the shading stage, in the mosaic's frame), points at least
    ``DEFER_MIN_MAP_SPACING`` px apart, and the sites of one
    colour (the greens) getting gains within ``DEFER_MAX_SITE_SPREAD`` of each other: a
    colour then takes their mean (isp.shading.colour_gain), which leaves a green imbalance
    of at most about half of that for the demosaic to see (GoPro HERO6 0.41 %, HERO7 0.29 %).
    """
    from .isp import shading

    ops = raw.opcodes if r.opcodes.apply else {}
    ops2 = tuple(ops.get(2, ()))
    if (not ops2 or ops.get(1) or raw.is_linear or raw.cfa is None
            or not all(getattr(op, "name", None) == "GainMap" for op in ops2)):
        return False
    frame = raw.data.shape[:2]
    return (shading.map_spacing_px(ops2, frame) >= DEFER_MIN_MAP_SPACING
            and shading.site_spread(ops2, raw.cfa.pattern, frame) <= DEFER_MAX_SITE_SPREAD)


def demosaiced(raw: RawImage, recipe: Recipe) -> np.ndarray:
    """``develop(raw, recipe, until="demosaic")`` with the lens shading in, as DNG orders it,
    also where the develop defers it (:func:`_defers_shading`): camera RGB for measurements
    (a chart's patches)."""
    x = np.asarray(develop(raw, recipe, until="demosaic"))
    if _defers_shading(raw, recipe):
        x = x * _Shading(raw, tuple(raw.opcodes[2]), x.shape[:2],
                         exact=_bin_factor(raw, recipe) > 1).rows(0, x.shape[0])
    return x


def _developed_noise(raw: RawImage, r: Recipe, gains: np.ndarray) -> np.ndarray | None:
    """The (3, 2) noise profile of the image denoise receives, in white-balanced units: the
    sensor's, divided as binning averages samples, by the preview's binning
    (:func:`binned_noise`) or by Quad-Bayer 'bin' (each site the mean of a 2x2 block of one
    colour: a quarter of the variance, every colour). None without a profile."""
    return _as_developed(_noise_in_wb_units(raw, gains), raw, r)


def _as_developed(sensor: np.ndarray | None, raw: RawImage, r: Recipe) -> np.ndarray | None:
    """:func:`_developed_noise` of the sensor's (3, 2) profile in white-balanced units."""
    noise = binned_noise(sensor, _bin_factor(raw, r))
    if (noise is not None and raw.cfa is not None and raw.cfa.kind == "quad"
            and r.demosaic.quad_bayer == "bin"):
        return noise / 4.0
    return noise


def _gains_only(front, m: np.ndarray) -> bool:
    """The stored values ``m`` can be binned by :func:`_bin_stored_shaded`: a front (uniform
    black level) whose OpcodeList2 holds GainMaps or nothing."""
    return (front is not None and m.dtype == np.uint16
            and all(getattr(op, "name", None) == "GainMap" for op in front.keywords["ops2"]))


def _binned(m: np.ndarray, row: int, front, cfa, factor: int) -> np.ndarray:
    """``_bin(front(m, row), cfa, factor)`` (``m`` as it is without a front): in one pass over
    the stored values when :func:`_gains_only` allows (:func:`_bin_stored_shaded`)."""
    if _gains_only(front, m):  # levels, WB and binning: one pass (and GainMaps at the bins)
        return _bin_stored_shaded(m, row, front, cfa, factor)
    return _bin(m if front is None else front(m, row), cfa, factor)


def _bin_stored_shaded(m: np.ndarray, row: int, front, cfa, factor: int) -> np.ndarray:
    """``_bin(front(m, row), cfa, factor)`` for a front whose OpcodeList2 holds only GainMaps:
    :func:`bin_stored` (levels, white balance, binning in one pass over the stored values),
    then each colour times its maps' gain at the bin's centre (isp.shading.colour_gain), where
    the front multiplied every sample by its own gain before binning. The maps are smooth
    (bilinear between points ~100 px apart): a bin's mean gain is its centre's, but for the
    covariance of the samples and the gain's slope inside it (GoPro HERO7, 2x2 and 4x4 bins:
    relative difference 5e-5 on average, 7e-4 at most). The front and binning it spares
    made its 1000 px preview 0.19 s against 0.08 without opcodes; now 0.12."""
    from .isp import shading

    out = bin_stored(m, front.keywords["lv"], front.keywords["gains"], cfa, factor)
    ops2 = front.keywords["ops2"]
    if ops2:
        c = (factor - 1) / 2
        frame = front.keywords["frame"] or m.shape[:2]
        out *= shading.colour_gain(ops2, cfa.pattern, frame,
                                   row + np.arange(out.shape[0]) * factor + c,
                                   np.arange(out.shape[1]) * factor + c)
    return out


def binned_noise(noise: np.ndarray | None, factor: int) -> np.ndarray | None:
    """The (3, 2) noise profile [S, O] (variance = S·x + O) after binning by ``factor``: the
    mean of n independent samples of one mean has 1/n of their variance, so S and O are
    divided by n. bin2x2 averages the two greens of a quad (n = 2 for G, 1 for R and B);
    binning 4 first averages 4 same-colour samples (n = 8 for G, 4 for R and B)."""
    if noise is None or factor == 1:
        return noise
    n = np.array([1.0, 2.0, 1.0]) * (4.0 if factor == 4 else 1.0)
    return np.asarray(noise, np.float64) / n[:, None]


def bin2x2(mosaic: np.ndarray, cfa) -> np.ndarray:
    """Bayer mosaic (H, W) -> half-size RGB: R, mean of the two G, B of each 2x2 quad."""
    h, w = (mosaic.shape[0] // 2) * 2, (mosaic.shape[1] // 2) * 2
    m = mosaic[:h, :w]
    quads = [m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2]]
    colours = [cfa.pattern[0][0], cfa.pattern[0][1], cfa.pattern[1][0], cfa.pattern[1][1]]
    out = np.empty((h // 2, w // 2, 3), np.float32)
    g = [q for q, c in zip(quads, colours, strict=True) if c == 1]
    out[..., 1] = (g[0] + g[1]) * np.float32(0.5)
    out[..., 0] = quads[colours.index(0)]
    out[..., 2] = quads[colours.index(2)]
    return out


def _box_div(
    box: tuple[int, int, int, int] | None, factor: int
) -> tuple[int, int, int, int] | None:
    if box is None or factor == 1:
        return box
    return tuple(int(v) // factor for v in box)  # type: ignore[return-value]


def lens_corrections(rgb: np.ndarray, raw: RawImage, recipe: Recipe) -> np.ndarray:
    """lensfun corrections for camera raws whose body and lens are in its database.

    DNGs carry their own corrections as opcodes (applied above), so lensfun is used only for
    non-DNG raws, and only with ``lens.mode == 'auto'``.
    """
    if recipe.lens.mode != "auto" or raw.is_dng:
        return rgb
    s = raw.shot
    if not (s.make and s.model and s.lens and s.focal_length and s.f_number):
        return rgb
    try:
        from .isp.lens import lensfun_correct
    except ImportError:
        return rgb
    out = lensfun_correct(rgb, s.make, s.model, s.lens, s.focal_length, s.f_number)
    return rgb if out is None else out


def camera_colour(rgb: np.ndarray, raw: RawImage, neutral: np.ndarray, r: Recipe,
                  profile: tuple | None = None) -> np.ndarray:
    """White-balanced camera RGB -> linear output space through the camera profile (DNG 1.6
    ch. 6): matrices, then the HueSatMap (interpolated between the calibration illuminants) and
    LookTable in linear ProPhoto when the profile has them. ``profile``: ``_profile(raw, r)``
    resolved once by a caller that converts many strips (no DCP parsed per strip)."""
    from .isp import color, dcp

    space = r.output.space
    prof, cc, tables = profile or _profile(raw, r)
    if not tables:
        return color.apply_matrix(rgb, color.camera_to_output(cc, neutral, space))
    to_pp = spaces.xyz_d50_to_rgb("prophoto") @ color.camera_to_xyz_d50(cc, neutral)
    pp = color.apply_matrix(rgb, to_pp)
    cct, _ = color.xy_to_cct_tint(color.neutral_to_xy(cc, neutral))
    hsm = dcp.interpolate_maps(prof, color.interpolation_weight(cc, cct))
    if hsm is not None:
        pp = dcp.apply_hue_sat_map(pp, hsm)
    if prof.look_table is not None:
        pp = dcp.apply_hue_sat_map(pp, prof.look_table)
    return color.apply_matrix(pp, spaces.xyz_d50_to_rgb(space) @ spaces.rgb_to_xyz_d50("prophoto"))


def _profile(raw: RawImage, r: Recipe) -> tuple:
    """(DCP profile or None, CameraColor, whether the profile has HueSatMap/LookTable)."""
    from .isp import dcp

    prof, cc = None, raw.color
    if r.profile.dcp == "embedded" and raw.tags.get("profile"):
        prof = dcp.from_tags(raw.tags["profile"], raw.path)  # its matrices are raw.color's
    elif r.profile.dcp not in ("embedded", "matrix"):
        prof = dcp.read_dcp(r.profile.dcp)
        if prof.color_matrix1 is not None:
            cc = prof.camera_color(raw.color)
    tables = prof is not None and any(
        m is not None for m in (prof.hue_sat_map1, prof.hue_sat_map2, prof.look_table)
    )
    return prof, cc, tables


def _colour_matrix(raw: RawImage, neutral: np.ndarray, r: Recipe,
                   profile: tuple) -> np.ndarray | None:
    """camera_colour's 3x3 matrix when the profile is only a matrix (None: it has tables)."""
    from .isp import color

    _, cc, tables = profile
    return None if tables else color.camera_to_output(cc, neutral, r.output.space)


HEADROOM_MIN_STOPS = 0.5  # recorded highlights this far above the curve's white move it


_SATURATION: dict[int, tuple] = {}  # id(raw.data) -> (weakref to it, its saturation levels)


def _clip(raw: RawImage, gains: np.ndarray) -> np.ndarray:
    """The white-balanced clip level of each colour: its gain times the level it saturates at
    (levels.channel_saturation, found once per raw: a GoPro's green stops at 0.95 of
    WhiteLevel)."""
    import weakref

    from .isp.levels import channel_saturation

    key = id(raw.data)
    hit = _SATURATION.get(key)
    if hit is None or hit[0]() is not raw.data:
        for k in [k for k, (ref, _) in _SATURATION.items() if ref() is None]:
            del _SATURATION[k]
        sat = channel_saturation(raw.data, raw.levels, None if raw.is_linear else raw.cfa)
        try:
            hit = (weakref.ref(raw.data), sat)
        except TypeError:  # (an array type without weak references: not kept)
            return clip_levels(gains, sat)
        _SATURATION[key] = hit
    return clip_levels(gains, hit[1])


def _headroom_white(raw: RawImage, r: Recipe) -> Recipe:
    """The recipe with the tone curve's white point moved up over the highlights a camera
    recorded above it through its BaselineExposure (DNG 1.6 ch. 6: a cinema camera's or a
    phone's declared headroom; the Blackmagic Pocket 4K's +2.65 EV put 19 % of its samples
    above the default white, 2.5 stops over middle grey, where they clipped), at most by that
    BaselineExposure. The recorded top is the 99.9th percentile of the unclipped samples
    (below 0.97 of white: a clipped sky is reconstructed and clips as before), taken from the
    stored mosaic before any stage, so that every path (whole, strips, streamed, binned)
    develops with the same curve. Raws whose recorded range fits the curve (as the synthetic
    ones, whose source white lands at 1.0) are developed as before."""
    base = float(raw.color.baseline_exposure or 0.0) if r.exposure.baseline else 0.0
    if base <= 0.0 or r.tone.curve != "filmic":
        return r
    d = raw.data
    h, w = d.shape[:2]
    step = max(1, int(np.sqrt(h * w / 250_000)))
    sample = np.asarray(d[::step, ::step], np.float32)
    black = float(np.mean(raw.levels.black))
    white = float(np.max(raw.levels.white))
    if not white > black:
        return r
    v = (sample - black) / (white - black)
    v = v[(v > 0.0) & (v < 0.97)]
    if v.size < 100:
        return r
    from .looks.tone import GREY

    scene_top = _percentile(v, 99.9) * 2.0 ** (base + r.exposure.ev)
    # (never past the curve's range: a valid recipe would become an invalid one)
    stops = min(math.log2(max(scene_top, 1e-6) / GREY), r.tone.white_ev + base, WHITE_EV_MAX)
    if stops < r.tone.white_ev + HEADROOM_MIN_STOPS:
        return r
    return r.with_(tone={"white_ev": round(stops, 2)})


def _percentile(v: np.ndarray, q: float) -> float:
    """np.percentile(v, q) of a 1-D array (its default, linear interpolation between the two
    nearest ranks), by a partial sort: np.percentile sorts a copy and its first call imports
    numpy.ma (~7 ms of a preview's start)."""
    pos = q / 100.0 * (v.size - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, v.size - 1)
    part = np.partition(v, (lo, hi))
    a, b = float(part[lo]), float(part[hi])
    return a + (b - a) * (pos - lo)


def auto_demosaic(pixels: int) -> str:
    """The demosaic method 'auto' picks for an image of ``pixels`` sensor pixels."""
    if pixels <= AUTO_IRI_MAX_PIXELS:
        return "iri"
    return "ri" if pixels <= AUTO_RI_MAX_PIXELS else "rcd"


def exposure_ev(raw: RawImage, recipe: Recipe, image: np.ndarray | None = None) -> float:
    """Total exposure in stops: BaselineExposure (DNG 1.6 ch. 6) + the user's EV (+ auto)."""
    ev = recipe.exposure.ev
    if recipe.exposure.baseline:
        ev += float(raw.color.baseline_exposure or 0.0)
    if recipe.exposure.auto and image is not None:
        ev += auto_exposure_ev(image)
    return ev


def auto_exposure_ev(rgb: np.ndarray, target: float = 0.18) -> float:
    """EV that puts the scene's log-average luminance at middle grey, limited to ±3 stops."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))
    y = rgb[::step, ::step] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    y = y[(y > 1e-4) & np.isfinite(y)]
    if y.size == 0:
        return 0.0
    log_avg = float(np.exp(np.mean(np.log(y))))
    return float(np.clip(np.log2(target / max(log_avg, 1e-6)), -3.0, 3.0))


def _exposure_gain(raw: RawImage, recipe: Recipe, image: np.ndarray | None) -> np.float32:
    """2 ** exposure_ev (limited to +-16 stops); ``image``: auto exposure's (colour-converted)
    sample."""
    return np.float32(2.0 ** float(np.clip(exposure_ev(raw, recipe, image), -16.0, 16.0)))


class _Statistics:
    """Whole-image statistics of a large raw from its binned prepass (``PREPASS_MIN_EDGE``):
    ``sample``, auto exposure's sample (colour-converted, after highlight reconstruction, as
    the developed image's would be), and ``scene``, the local tone operator's source (the
    same, cropped and oriented as the output). None: from the developed image itself."""

    def __init__(self, sample: np.ndarray | None = None, scene: np.ndarray | None = None):
        self.sample, self.scene = sample, scene

    def local(self, r: Recipe, space: str, gain: float) -> tuple | None:
        """local_setup of the exposed scene (None: of the developed image)."""
        from .looks.tone import local_setup

        if self.scene is None:
            return None
        return local_setup(self.scene, r.tone, space, matrix=np.eye(3, dtype=np.float32),
                           gain=float(gain))


def _prepass_factor(raw: RawImage) -> int:
    """The bin factor of the statistics' prepass: 4 or 2 when the binned raw keeps a long edge
    of ``PREPASS_MIN_EDGE`` (a Bayer or linear raw), else 1 (none)."""
    if not (raw.is_linear or (raw.cfa is not None and raw.cfa.kind == "bayer")):
        return 1
    for k in (4, 2):
        if max(raw.height, raw.width) // k >= PREPASS_MIN_EDGE:
            return k
    return 1


def _statistics(mosaic: np.ndarray, raw: RawImage, r: Recipe, neutral: np.ndarray,
                gains: np.ndarray, front=None) -> _Statistics:
    """The binned prepass when the recipe has a whole-image statistic (auto exposure, the
    local tone operator) and the raw is large (:func:`_prepass_factor`): the white-balanced
    ``mosaic`` (or the stored values, with ``front``) binned k x k, its highlights
    reconstructed, converted to the output space. A local operator's grids are 640 px on the
    long edge (looks.tone.LOCAL_LONG_EDGE) and auto exposure reads ~250,000 pixels: the
    binned raw (2048 px at 50 MP) has what both need without the demosaiced image, so a
    develop need not keep the whole image before displaying it."""
    local = r.tone.curve == "filmic" and (r.tone.local > 0 or r.tone.detail != 0)
    k = _prepass_factor(raw)
    if not (r.exposure.auto or local) or k == 1:
        return _Statistics()
    if raw.is_linear:
        h, w = (mosaic.shape[0] // k) * k, (mosaic.shape[1] // k) * k
        small = mosaic[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))
    elif front is None or _gains_only(front, mosaic):
        small = _binned(mosaic, 0, front, raw.cfa, k)
    else:  # the front in bands of rows (on the bins' 4-row blocks), each binned
        small = np.concatenate([_bin(front(mosaic[a : a + 256], a), raw.cfa, k)
                                for a in range(0, mosaic.shape[0], 256)])
    small = reconstruct(np.ascontiguousarray(small, np.float32), _clip(raw, gains),
                        r.highlights.mode)
    scene = camera_colour(small, raw, neutral, r)
    step = max(1, int(np.sqrt(scene.shape[0] * scene.shape[1] / 250_000)))
    sample = np.ascontiguousarray(scene[::step, ::step]) if r.exposure.auto else None
    if local:
        scene = geometry.orient(geometry.crop(scene, _box_div(raw.default_crop, k)),
                                raw.shot.orientation)
    return _Statistics(sample, scene if local else None)


def _noise_in_wb_units(raw: RawImage, gains: np.ndarray) -> np.ndarray | None:
    """NoiseProfile (variance = S*x + O, x in [0,1]) per plane, scaled by the WB gains.

    After a gain g, a value x' = g*x has variance g^2 (S*x + O) = g*S*x' + g^2*O.
    Returns (3, 2) [S', O'] per colour, or None when the file has no profile.
    """
    prof = raw.noise_profile
    if prof is None or len(prof) == 0:
        return None
    p = np.asarray(prof, dtype=np.float64).reshape(-1, 2)
    if not (np.isfinite(p).all() and (p >= 0).all()):
        return None  # a corrupt profile: denoise estimates the noise from the image instead
    return profile_in_wb_units(p, gains)


def profile_in_wb_units(profile: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """(3, 2) [g*S, g^2*O] per colour of a per-colour [S, O] profile (one pair, or another
    count that fits no plane layout: the first pair for all three)."""
    p = np.asarray(profile, dtype=np.float64).reshape(-1, 2)
    if p.shape[0] != 3:  # one pair for all planes (DNG), or a count that fits no plane layout
        p = np.repeat(p[:1], 3, axis=0)
    g = np.asarray(gains, dtype=np.float64).reshape(3)
    return np.stack([g * p[:, 0], g * g * p[:, 1]], axis=1)


class _CallableModule(type(contextlib)):
    """``oneinch.develop`` names both this module and the package's ``develop`` function, and
    the import system binds a submodule to its package's attribute of the same name (whoever
    imports ``oneinch.develop`` first), so the module, reached that way, is the function:
    calling it develops, and ``inspect.signature`` follows ``__wrapped__`` to the function's."""

    def __call__(self, *args, **kwargs):
        return develop(*args, **kwargs)


__wrapped__ = develop
sys.modules[__name__].__class__ = _CallableModule
