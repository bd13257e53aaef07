"""HDR+ merge: per-tile, per-frequency Wiener shrinkage of aligned raw tiles.

Hasinoff et al., SIGGRAPH Asia 2016, §5 (and the IPOL 2021 #336 reference): each Bayer plane is
cut into 16×16 tiles overlapping by half, weighted by a raised-cosine window (the windows of
overlapping tiles sum to one, so the inverse transforms are simply added back), and moved to the
DFT domain. For every alternate frame z and frequency ω, D = T0 − Tz and

    A = |D|² / (|D|² + c·σ²),     T̃ = (1/N) Σ_z [Tz + A·(T0 − Tz)]

so frequencies that differ by much more than the noise (misalignment, motion) fall back to the
reference and no ghost appears. σ² is the noise variance of the tile's DFT coefficients from the
sensor's noise model (variance = S·x + O, x in [0, 1], as DNG NoiseProfile), times Σw² of the
window.

Sub-pixel displacements: by default (``resample="remosaic"``) every alternate is first resampled
on the reference's CFA grid at its sub-pixel displacement (warp.py: demosaic, cubic warp,
remosaic) and merged with zero displacement. The HDR+ route (``resample="tile"``) gathers tiles
at whole grey-pixel (2 raw pixel) displacements; its optional per-plane DFT phase ramp
(``subpixel=True``, Fourier shift theorem) is kept for comparison only: the Bayer planes are
aliased, and on textured scenes the ramp lowers the gain even with the true displacements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numba import njit, prange

from ..errors import InputError, OptionError, UnsupportedError
from ..isp import levels as levels_mod
from ..raw.image import Levels, RawImage
from . import align as al

TILE = 16
STEP = TILE // 2
PAD = STEP
C_WIENER = 32.0  # HDR+ §5 constant c for σ² per DFT coefficient as computed here (tuned)

# Output encoding of the merged mosaic: ~2 more bits than a 14-bit sensor, room for negative
# noise below black (merges keep the symmetric noise so later denoisers stay unbiased).
OUT_BLACK = 4096
OUT_WHITE = 65535


@dataclass(frozen=True)
class MergeInfo:
    """What a merge did: reference index, frames, mean shrinkage and the noise variance ratio."""

    reference: int
    frames: int
    noise_ratio: float  # merged / single-frame noise variance (≈ 1/N when nothing was rejected)
    mean_rejection: float  # mean Wiener A over alternate frames and frequencies (0 = all merged)


def raised_cosine(n: int = TILE) -> np.ndarray:
    """w(x) = ½ − ½·cos(2π(x + ½)/n): copies shifted by n/2 sum to exactly one."""
    x = np.arange(n, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * (x + 0.5) / n)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# tile gather and overlap-add: numba kernels and plain-numpy references


@njit(parallel=True, cache=True)
def _gather_numba(plane, i0, i1, nx, dy, dx, tile):
    h, w = plane.shape
    step = tile // 2
    out = np.empty((i1 - i0, nx, tile, tile), np.float32)
    for t in prange((i1 - i0) * nx):
        i = t // nx
        j = t % nx
        y0 = (i0 + i) * step + dy[i0 + i, j]
        x0 = j * step + dx[i0 + i, j]
        for a in range(tile):
            y = min(max(y0 + a, 0), h - 1)
            for b in range(tile):
                x = min(max(x0 + b, 0), w - 1)
                out[i, j, a, b] = plane[y, x]
    return out


def _gather_numpy(plane: np.ndarray, i0: int, i1: int, nx: int, dy: np.ndarray, dx: np.ndarray,
                  tile: int) -> np.ndarray:
    r = np.arange(tile)
    ys = (np.arange(i0, i1) * (tile // 2))[:, None] + dy[i0:i1]  # (n, nx)
    xs = (np.arange(nx) * (tile // 2))[None, :] + dx[i0:i1]
    yy = np.clip(ys[:, :, None, None] + r[None, None, :, None], 0, plane.shape[0] - 1)
    xx = np.clip(xs[:, :, None, None] + r[None, None, None, :], 0, plane.shape[1] - 1)
    return plane[yy, xx].astype(np.float32)


def gather(plane: np.ndarray, i0: int, i1: int, nx: int, dy: np.ndarray, dx: np.ndarray,
           tile: int = TILE, *, use_numba: bool = True) -> np.ndarray:
    """Tiles of rows [i0, i1) of the grid, each displaced by (dy, dx); borders clamp."""
    dy = np.ascontiguousarray(dy, np.int32)
    dx = np.ascontiguousarray(dx, np.int32)
    if use_numba:
        return _gather_numba(np.ascontiguousarray(plane, np.float32), i0, i1, nx, dy, dx, tile)
    return _gather_numpy(plane, i0, i1, nx, dy, dx, tile)


@njit(cache=True)
def _overlap_add_numba(out, tiles, i0):
    n, nx, tile = tiles.shape[0], tiles.shape[1], tiles.shape[2]
    step = tile // 2
    for i in range(n):
        for j in range(nx):
            y0 = (i0 + i) * step
            x0 = j * step
            for a in range(tile):
                for b in range(tile):
                    out[y0 + a, x0 + b] += tiles[i, j, a, b]


def _overlap_add_numpy(out: np.ndarray, tiles: np.ndarray, i0: int) -> None:
    n, nx, tile = tiles.shape[:3]
    step = tile // 2
    for i in range(n):
        for j in range(nx):
            y0, x0 = (i0 + i) * step, j * step
            out[y0 : y0 + tile, x0 : x0 + tile] += tiles[i, j]


def overlap_add(out: np.ndarray, tiles: np.ndarray, i0: int, *, use_numba: bool = True) -> None:
    """Add tiles (n, nx, T, T) of grid rows i0.. into ``out`` in place (out is our own buffer)."""
    if use_numba:
        _overlap_add_numba(out, np.ascontiguousarray(tiles, np.float32), i0)
    else:
        _overlap_add_numpy(out, tiles, i0)


def _tiles(plane: np.ndarray, i0: int, i1: int, nx: int, dy: np.ndarray, dx: np.ndarray,
           use_numba: bool) -> np.ndarray:
    """:func:`gather`, or a strided view of the plane when no tile moves or leaves it."""
    step = TILE // 2
    h, w = plane.shape
    if (not dy.any() and not dx.any() and (i1 - 1) * step + TILE <= h
            and (nx - 1) * step + TILE <= w):
        win = np.lib.stride_tricks.sliding_window_view(plane, (TILE, TILE))
        return win[i0 * step : (i1 - 1) * step + 1 : step, : (nx - 1) * step + 1 : step]
    return gather(plane, i0, i1, nx, dy, dx, TILE, use_numba=use_numba)


# ---------------------------------------------------------------------------------------------
# the merge on Bayer planes


def pad_planes(planes: np.ndarray, tile: int = TILE) -> np.ndarray:
    """Reflect-pad (P, h, w) planes by half a tile (plus up to the grid) so windows sum to one."""
    _, h, w = planes.shape
    step = tile // 2
    eh, ew = (-h) % step, (-w) % step
    return np.ascontiguousarray(
        np.pad(planes, ((0, 0), (step, step + eh), (step, step + ew)), mode="reflect")
    )


def merge_planes(
    ref: np.ndarray,
    alts: Sequence[np.ndarray],
    alignments: Sequence[al.Alignment],
    noise: np.ndarray,
    *,
    c: float = C_WIENER,
    subpixel: bool = False,
    fallback: Sequence[tuple[np.ndarray, al.Alignment]] | None = None,
    chunk_rows: int = 12,
    use_numba: bool = True,
    progress: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, float, float]:
    """Merge padded planes (P, hp, wp): returns (merged planes, noise variance ratio, mean A).

    ``noise`` is (P, 2) [S, O] per plane (variance = S·x + O); ``alignments`` give the
    displacements of each alternate on the TILE/STEP grid of the padded planes.

    ``fallback`` gives every alternate a second version (planes, alignment), e.g. the original
    planes at whole-pixel displacements next to the sub-pixel resampled ones: each tile takes
    the version whose windowed tile is closer (L2 summed over the planes) to the reference's.
    The two differ in noise only by interpolation, so the choice follows the larger structural
    error: demosaicking fails on detail beyond its reach (zone plates, fine stripes), where the
    whole-pixel tiles are the better guess.
    """
    p, hp, wp = ref.shape
    ny, nx = al.grid_shape(hp, wp, TILE)
    n = 1 + len(alts)
    w1 = raised_cosine(TILE)
    win = np.outer(w1, w1).astype(np.float32)
    win_energy = float((win.astype(np.float64) ** 2).sum())
    u = np.fft.fftfreq(TILE).astype(np.float32)[:, None]
    v = np.fft.rfftfreq(TILE).astype(np.float32)[None, :]
    zero = np.zeros((ny, nx), np.int32)
    out = np.zeros((p, hp, wp), np.float32)
    sum_a = 0.0
    sum_var = 0.0
    count = 0
    chunks = list(range(0, ny, chunk_rows))
    for k, i0 in enumerate(chunks):
        i1 = min(ny, i0 + chunk_rows)
        # phase ramps for the sub-pixel parts of every alternate (same for all planes)
        ramps = []
        for a in alignments:
            if subpixel:
                fy = a.fy[i0:i1, :, None, None]
                fx = a.fx[i0:i1, :, None, None]
                ramps.append(np.exp(2j * np.pi * (u * fy + v * fx)).astype(np.complex64))
            else:
                ramps.append(None)
        rts = [_tiles(ref[q], i0, i1, nx, zero, zero, use_numba) for q in range(p)]
        chosen: list[list[np.ndarray]] | None = None
        if fallback is not None:
            chosen = []
            for z, a in enumerate(alignments):
                fpl, fa = fallback[z]
                va = [_tiles(alts[z][q], i0, i1, nx, a.dy, a.dx, use_numba) for q in range(p)]
                vb = [_tiles(fpl[q], i0, i1, nx, fa.dy, fa.dx, use_numba) for q in range(p)]
                da = sum((((rts[q] - va[q]) * win) ** 2).sum(axis=(2, 3)) for q in range(p))
                db = sum((((rts[q] - vb[q]) * win) ** 2).sum(axis=(2, 3)) for q in range(p))
                pick = (db < da)[:, :, None, None]
                chosen.append([np.where(pick, vb[q], va[q]) for q in range(p)])
        for q in range(p):
            rt = rts[q]
            mean = rt.mean(axis=(2, 3))
            sigma2 = (noise[q, 0] * np.maximum(mean, 0.0) + noise[q, 1]) * win_energy
            csig = (c * sigma2)[:, :, None, None].astype(np.float32)
            r_hat = np.fft.rfft2(rt * win).astype(np.complex64)
            acc = r_hat.copy()
            sa = np.zeros(r_hat.shape, np.float32)
            s1a = np.zeros(r_hat.shape, np.float32)
            for z, a in enumerate(alignments):
                if chosen is not None:
                    zt = chosen[z][q]
                else:
                    zt = _tiles(alts[z][q], i0, i1, nx, a.dy, a.dx, use_numba)
                z_hat = np.fft.rfft2(zt * win).astype(np.complex64)
                if ramps[z] is not None:
                    z_hat *= ramps[z]
                d = r_hat - z_hat
                d2 = d.real * d.real + d.imag * d.imag
                aw = d2 / (d2 + csig + 1e-30)
                acc += z_hat + aw * d
                sa += aw
                s1a += (1.0 - aw) ** 2
            acc /= n
            sum_a += float(sa.sum(dtype=np.float64))
            sum_var += float((((1.0 + sa) ** 2 + s1a) / (n * n)).sum(dtype=np.float64))
            count += sa.size
            tiles = np.fft.irfft2(acc, s=(TILE, TILE)).astype(np.float32)
            overlap_add(out[q], tiles, i0, use_numba=use_numba)
        if progress is not None:
            progress((k + 1) / len(chunks))
    mean_a = sum_a / max(count * max(n - 1, 1), 1)
    ratio = sum_var / max(count, 1)
    return out, float(ratio), float(mean_a)


# ---------------------------------------------------------------------------------------------
# RawImage level


def check_frames(raws: Sequence[RawImage]) -> None:
    """Frames of one burst must share size, CFA and camera: InputError names the odd file."""
    if len(raws) < 1:
        raise OptionError("a burst needs at least one frame")
    first = raws[0]
    if first.cfa is None:
        raise UnsupportedError("burst merge needs CFA (mosaic) raws, not LinearRaw", first.path)
    if first.cfa.kind != "bayer":
        raise UnsupportedError(f"burst merge supports Bayer CFAs, not {first.cfa.kind}", first.path)
    cam0 = (first.shot.make, first.shot.model, first.unique_camera_model)
    for r in raws[1:]:
        if r.data.shape != first.data.shape:
            raise InputError(
                f"frame size {r.width}×{r.height} differs from {first.width}×{first.height} "
                f"of {first.path}", r.path)
        if r.cfa != first.cfa:
            got = r.cfa.name if r.cfa is not None else "LinearRaw"
            raise InputError(f"CFA {got} differs from {first.cfa.name} of {first.path}", r.path)
        cam = (r.shot.make, r.shot.model, r.unique_camera_model)
        if cam != cam0:
            raise InputError(
                f"camera {' '.join(str(x) for x in cam[:2])!r} differs from "
                f"{' '.join(str(x) for x in cam0[:2])!r} of {first.path}", r.path)


def normalized_planes(raw: RawImage) -> np.ndarray:
    """Levels-normalised (0 = black, 1 = white) Bayer planes (4, H/2, W/2) of a frame."""
    return al.bayer_planes(levels_mod.normalize(raw.data, raw.levels))


def plane_noise(raw: RawImage, planes: np.ndarray | None = None) -> np.ndarray:
    """(4, 2) [S, O] for the four Bayer planes: the NoiseProfile when present, else estimated."""
    prof = raw.noise_profile
    if prof is not None and np.size(prof) >= 2:
        pr = np.asarray(prof, np.float64).reshape(-1, 2)
        if pr.shape[0] == 1:
            return np.repeat(pr, 4, axis=0)
        colours = raw.cfa.array().ravel() if raw.cfa is not None else np.zeros(4, int)
        return np.stack([pr[min(int(ci), pr.shape[0] - 1)] for ci in colours])
    return estimate_noise(planes if planes is not None else normalized_planes(raw))


def estimate_noise(planes: np.ndarray, bins: int = 16) -> np.ndarray:
    """Fit variance = S·x + O per plane from one frame (Foi et al. 2008 style, simplified).

    The residual of each sample against the mean of its four plane neighbours has variance
    1.25·σ²(x) in flat regions; robust (median-based) variances per intensity bin, fitted by
    least squares with S, O ≥ 0.
    """
    out = np.zeros((planes.shape[0], 2))
    for q, pl in enumerate(planes):
        x = pl[1:-1, 1:-1]
        nb = 0.25 * (pl[:-2, 1:-1] + pl[2:, 1:-1] + pl[1:-1, :-2] + pl[1:-1, 2:])
        res = (x - nb).ravel()
        xm = nb.ravel()
        lo, hi = np.percentile(xm, [1, 99])
        edges = np.linspace(lo, hi, bins + 1)
        xs, vs = [], []
        for b in range(bins):
            m = (xm >= edges[b]) & (xm < edges[b + 1])
            if m.sum() < 200:
                continue
            mad = np.median(np.abs(res[m] - np.median(res[m])))
            xs.append(float(np.mean(xm[m])))
            vs.append((1.4826 * mad) ** 2 / 1.25)
        if len(xs) >= 2:
            a = np.stack([np.maximum(xs, 0.0), np.ones(len(xs))], axis=1)
            s, o = np.linalg.lstsq(a, np.asarray(vs), rcond=None)[0]
            out[q] = (max(s, 0.0), max(o, 1e-10))
        else:
            out[q] = (0.0, float(np.var(res)) / 1.25)
    return out


def pick_reference(planes: Sequence[np.ndarray], candidates: int = 3) -> int:
    """HDR+ §4: the sharpest of the first frames (largest mean gradient energy of the grey)."""
    best, score = 0, -1.0
    for i in range(min(candidates, len(planes))):
        g = al.grey(planes[i])
        s = float(np.mean(np.abs(np.diff(g, axis=0))) + np.mean(np.abs(np.diff(g, axis=1))))
        if s > score:
            best, score = i, s
    return best


def per_colour_profile(raw: RawImage, noise4: np.ndarray) -> np.ndarray:
    """The frame's NoiseProfile as (planes, 2), or the (4, 2) plane estimate as one row per
    colour (DNG NoiseProfile: one [S, O] per CFA colour plane)."""
    if raw.noise_profile is not None and np.size(raw.noise_profile) >= 2:
        return np.asarray(raw.noise_profile, np.float64).reshape(-1, 2)
    colours = raw.cfa.array().ravel() if raw.cfa is not None else np.zeros(4, int)
    return np.stack([np.asarray(noise4)[colours == ci].mean(axis=0) for ci in range(3)])


def encode_mosaic(mosaic: np.ndarray) -> np.ndarray:
    """Normalised float mosaic -> uint16 with black OUT_BLACK and white OUT_WHITE."""
    v = np.rint(OUT_BLACK + np.asarray(mosaic, np.float64) * (OUT_WHITE - OUT_BLACK))
    return np.clip(v, 0, OUT_WHITE).astype(np.uint16)


RESAMPLE = ("remosaic", "tile")


def _zero_alignment(a: al.Alignment) -> al.Alignment:
    z = np.zeros_like(a.dy)
    return al.Alignment(dy=z, dx=z, fy=z.astype(np.float32), fx=z.astype(np.float32),
                        tile=a.tile, step=a.step, cost=a.cost)


def resample_domain(ref_raw: RawImage, noise: np.ndarray) -> str:
    """The demosaic domain alternates are resampled in: develop's rule for 'auto'
    (develop.demosaic_domain) on the reference's noise in white-balanced units. The textured
    kodim01 burst (N = 8) merges +0.30 dB better in the sRGB domain at ISO 3200 and 0.45 dB
    worse at ISO 12800."""
    from ..develop import demosaic_domain, profile_in_wb_units
    from ..recipe import Recipe
    from . import warp

    g = warp.wb_gains(ref_raw.color.as_shot_neutral)
    return demosaic_domain(Recipe(), profile_in_wb_units(per_colour_profile(ref_raw, noise), g))


def _resampled_planes(raw: RawImage, a: al.Alignment, ref_raw: RawImage,
                      method: str, domain: str) -> np.ndarray:
    """Padded Bayer planes of an alternate resampled at its sub-pixel displacements."""
    from . import warp

    m = levels_mod.normalize(raw.data, raw.levels)
    h, w = (m.shape[0] // 2) * 2, (m.shape[1] // 2) * 2
    field = warp.dense_field(warp.tile_displacements(a), h // 2, w // 2, PAD, a.tile)
    assert raw.cfa is not None
    mos = warp.resample_alternate(m[:h, :w], raw.cfa, field,
                                  warp.wb_gains(ref_raw.color.as_shot_neutral), method=method,
                                  domain=domain)
    return pad_planes(al.bayer_planes(mos))


def merge_raws(
    raws: Sequence[RawImage],
    reference: int | str = "auto",
    *,
    c: float = C_WIENER,
    subpixel: bool = False,
    global_prior: bool = True,
    resample: str = "remosaic",
    resample_demosaic: str = "ri",
    use_numba: bool = True,
    progress: Callable[[float], None] | None = None,
) -> tuple[RawImage, MergeInfo]:
    """Align and merge a constant-exposure Bayer burst into one RawImage (HDR+ §4–5).

    The result carries the reference frame's metadata (colour, white balance, opcodes, EXIF),
    16-bit data with black 4096 and white 65535 (≈2 bits more than a 14-bit sensor) and a
    NoiseProfile scaled by the measured noise variance ratio of the merge.

    ``resample``: ``"remosaic"`` (default) resamples every alternate at its sub-pixel
    displacement on the reference's CFA grid (warp.py) before the merge; ``"tile"`` merges
    tiles at whole grey-pixel (2 raw pixel) displacements as HDR+ does (with ``subpixel`` the
    fractional part is applied as a per-plane DFT phase ramp). ``resample_demosaic`` is the
    demosaic used to resample (isp.demosaic.METHODS; ``rcd`` is ~8× faster than ``ri``, within
    ±0.5 dB of it: lower on kodim01/05, higher on kodim23 and the bench's demo scene).
    """
    if resample not in RESAMPLE:
        raise OptionError(f"resample {resample!r}: use one of {', '.join(RESAMPLE)}")
    check_frames(raws)
    planes = [normalized_planes(r) for r in raws]
    if reference == "auto":
        ref_i = pick_reference(planes)
    else:
        try:
            ref_i = int(reference)
        except (TypeError, ValueError):
            raise OptionError(f"reference {reference!r}: use auto or a frame index") from None
        if not 0 <= ref_i < len(raws):
            raise OptionError(f"reference {ref_i} is outside 0..{len(raws) - 1}")
    ref_raw = raws[ref_i]
    noise = plane_noise(ref_raw, planes[ref_i])
    padded = [pad_planes(pl) for pl in planes]
    del planes
    ref = padded[ref_i]
    others = [padded[i] for i in range(len(padded)) if i != ref_i]
    ref_pyr = al.pyramid(al.grey(ref))
    # grey = mean of 4 planes: its noise variance is a quarter of the planes' mean variance
    tm = al.tile_means(ref_pyr[0], TILE)
    sig2_grey = (noise[:, 0].mean() * np.maximum(tm, 0.0) + noise[:, 1].mean()) / 4.0
    aligns = []
    fallback: list[tuple[np.ndarray, al.Alignment]] = []
    for i, o in enumerate(others):
        alt_pyr = al.pyramid(al.grey(o))
        a = al.align(ref_pyr, alt_pyr, use_numba=use_numba)
        if global_prior:
            a = al.with_global_prior(a, ref_pyr[0], alt_pyr[0], sig2_grey, use_numba=use_numba)
        if resample == "remosaic":
            j = i if i < ref_i else i + 1
            fallback.append((o, a))
            others[i] = _resampled_planes(raws[j], a, ref_raw, resample_demosaic,
                                          resample_domain(ref_raw, noise))
            a = _zero_alignment(a)
        aligns.append(a)
        if progress is not None:
            progress(0.3 * (i + 1) / max(len(others), 1))

    def merge_progress(f: float) -> None:
        if progress is not None:
            progress(0.3 + 0.7 * f)

    if others:
        merged, ratio, mean_a = merge_planes(ref, others, aligns, noise, c=c, subpixel=subpixel,
                                             fallback=fallback or None, use_numba=use_numba,
                                             progress=merge_progress)
    else:
        merged, ratio, mean_a = ref, 1.0, 0.0
    h2, w2 = ref_raw.height // 2, ref_raw.width // 2
    mosaic = al.from_planes(merged[:, PAD : PAD + h2, PAD : PAD + w2])
    if mosaic.shape != ref_raw.data.shape:  # odd sizes: keep the reference's last row/column
        full = levels_mod.normalize(ref_raw.data, ref_raw.levels)
        full[: mosaic.shape[0], : mosaic.shape[1]] = mosaic
        mosaic = full
    prof = per_colour_profile(ref_raw, noise) * ratio
    out = replace(
        ref_raw,
        data=encode_mosaic(mosaic),
        levels=Levels(black=np.full((1, 1, 1), float(OUT_BLACK)),
                      white=np.array([float(OUT_WHITE)])),
        noise_profile=prof,
        bits_per_sample=16,
        is_dng=True,
    )
    return out, MergeInfo(reference=ref_i, frames=len(raws), noise_ratio=ratio,
                          mean_rejection=mean_a)
