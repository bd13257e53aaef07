"""Tile-based coarse-to-fine burst alignment (HDR+).

Hasinoff, Sharlet, Geiss, Adams, Barron, Kainz, Chen, Levoy, "Burst photography for high dynamic
range and low-light imaging on mobile cameras", SIGGRAPH Asia 2016, §4; parameters of the IPOL
reference (Monod, Delon, Veit, IPOL 2021 #336): align on the 2×2-binned grey image, a 4-level
Gaussian pyramid with downsampling factors [1, 2, 4, 4] (fine → coarse), tiles [16, 16, 16, 8],
search radius [1, 4, 4, 4], L1 distance at the finest level and L2 at coarser ones; each level
starts from the best of three upsampled coarser displacements (the nearest coarse tile and its
nearest neighbours across x and y, §4 "upsampling"), and a 2-D quadratic fitted to the 3×3 L2
cost surface around the best displacement gives a sub-pixel estimate (supplement).

Tiles overlap by half (step = tile / 2). Displacements are in grey-image pixels (= 2 raw pixels,
so the CFA phase is kept) and map the reference to the alternate frame: ``alt(p + d) ≈ ref(p)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit, prange

FACTORS = (1, 2, 4, 4)
TILES = (16, 16, 16, 8)
RADII = (1, 4, 4, 4)
NORMS = ("l1", "l2", "l2", "l2")


@dataclass(frozen=True)
class Alignment:
    """Per-tile displacement of one alternate frame on the finest tile grid.

    ``dy``/``dx`` (ny, nx) int32 are the integer displacements; ``fy``/``fx`` (ny, nx) float32
    their sub-pixel parts (within ±1, usually ±0.5); tile (i, j) covers grey pixels
    [i*step, i*step + tile) × [j*step, j*step + tile).
    """

    dy: np.ndarray
    dx: np.ndarray
    fy: np.ndarray
    fx: np.ndarray
    tile: int
    step: int
    cost: np.ndarray | None = None  # (ny, nx) L2 cost at (dy, dx)


def bayer_planes(mosaic: np.ndarray) -> np.ndarray:
    """(H, W) Bayer mosaic -> (4, H/2, W/2) planes in raster order of the 2×2 cell."""
    m = np.asarray(mosaic, dtype=np.float32)
    h, w = (m.shape[0] // 2) * 2, (m.shape[1] // 2) * 2
    m = m[:h, :w]
    return np.ascontiguousarray(
        np.stack([m[0::2, 0::2], m[0::2, 1::2], m[1::2, 0::2], m[1::2, 1::2]])
    )


def from_planes(planes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`bayer_planes`."""
    _, h, w = planes.shape
    out = np.empty((2 * h, 2 * w), np.float32)
    out[0::2, 0::2], out[0::2, 1::2] = planes[0], planes[1]
    out[1::2, 0::2], out[1::2, 1::2] = planes[2], planes[3]
    return out


def grey(planes: np.ndarray) -> np.ndarray:
    """The 2×2-binned grey image (mean of the four Bayer samples), HDR+ §4."""
    return np.ascontiguousarray(planes.mean(axis=0, dtype=np.float32))


def pyramid(img: np.ndarray, factors: tuple[int, ...] = FACTORS) -> list[np.ndarray]:
    """Gaussian-ish pyramid: box-filtered decimation by each factor in turn (level 0 = img)."""
    levels = []
    cur = np.ascontiguousarray(img, dtype=np.float32)
    for f in factors:
        if f > 1:
            h, w = max(1, cur.shape[0] // f), max(1, cur.shape[1] // f)
            cur = cv2.resize(cur[: h * f, : w * f], (w, h), interpolation=cv2.INTER_AREA)
        levels.append(np.ascontiguousarray(cur, dtype=np.float32))
    return levels


def grid_shape(h: int, w: int, tile: int) -> tuple[int, int]:
    """Number of half-overlapping tiles covering an (h, w) image (last tile may hang over)."""
    step = tile // 2
    return max(1, -(-(h - tile) // step) + 1), max(1, -(-(w - tile) // step) + 1)


# ---------------------------------------------------------------------------------------------
# block matching: numba kernel and its plain-numpy reference


@njit(cache=True, inline="always")
def _clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


@njit(cache=True)
def _tile_cost(ref, alt, y0, x0, dy, dx, tile, l1):
    h, w = alt.shape
    rh, rw = ref.shape
    s = 0.0
    for i in range(tile):
        ry = _clamp(y0 + i, 0, rh - 1)
        ay = _clamp(y0 + i + dy, 0, h - 1)
        for j in range(tile):
            rx = _clamp(x0 + j, 0, rw - 1)
            ax = _clamp(x0 + j + dx, 0, w - 1)
            d = ref[ry, rx] - alt[ay, ax]
            s += abs(d) if l1 else d * d
    return s


@njit(parallel=True, cache=True)
def _match_numba(ref, alt, cand, tile, radius, l1):
    """For each tile pick the best candidate start (cand (ny, nx, K, 2)), then search ±radius.

    Returns best (ny, nx, 2) int32 and the L2 costs (ny, nx, 3, 3) around the best.
    """
    ny, nx, k = cand.shape[0], cand.shape[1], cand.shape[2]
    step = tile // 2
    best = np.zeros((ny, nx, 2), np.int32)
    around = np.zeros((ny, nx, 3, 3), np.float64)
    for t in prange(ny * nx):
        i = t // nx
        j = t % nx
        y0 = i * step
        x0 = j * step
        by = cand[i, j, 0, 0]
        bx = cand[i, j, 0, 1]
        bc = _tile_cost(ref, alt, y0, x0, by, bx, tile, l1)
        for c in range(1, k):
            cy = cand[i, j, c, 0]
            cx = cand[i, j, c, 1]
            cc = _tile_cost(ref, alt, y0, x0, cy, cx, tile, l1)
            if cc < bc:
                bc, by, bx = cc, cy, cx
        sy, sx = by, bx
        for oy in range(-radius, radius + 1):
            for ox in range(-radius, radius + 1):
                cc = _tile_cost(ref, alt, y0, x0, sy + oy, sx + ox, tile, l1)
                if cc < bc:
                    bc, by, bx = cc, sy + oy, sx + ox
        best[i, j, 0] = by
        best[i, j, 1] = bx
        for oy in range(3):
            for ox in range(3):
                around[i, j, oy, ox] = _tile_cost(ref, alt, y0, x0, by + oy - 1, bx + ox - 1,
                                                  tile, False)
    return best, around


def _costs_numpy(ref: np.ndarray, alt: np.ndarray, d: np.ndarray, tile: int,
                 l1: bool) -> np.ndarray:
    """Cost of every tile at displacement d (ny, nx, 2): plain-numpy reference."""
    ny, nx = d.shape[:2]
    step = tile // 2
    r = np.arange(tile)
    ys = (np.arange(ny) * step)[:, None, None, None] + r[None, None, :, None]  # (ny,1,T,1)
    xs = (np.arange(nx) * step)[None, :, None, None] + r[None, None, None, :]  # (1,nx,1,T)
    ry = np.clip(ys, 0, ref.shape[0] - 1)
    rx = np.clip(xs, 0, ref.shape[1] - 1)
    ay = np.clip(ys + d[:, :, 0, None, None], 0, alt.shape[0] - 1)
    ax = np.clip(xs + d[:, :, 1, None, None], 0, alt.shape[1] - 1)
    diff = ref[ry, rx].astype(np.float64) - alt[ay, ax]
    return (np.abs(diff) if l1 else diff * diff).sum(axis=(2, 3))


def _match_numpy(ref: np.ndarray, alt: np.ndarray, cand: np.ndarray, tile: int, radius: int,
                 l1: bool) -> tuple[np.ndarray, np.ndarray]:
    """Plain-numpy reference of :func:`_match_numba` (same tie-breaking: first minimum wins)."""
    ny, nx, k = cand.shape[:3]
    best = cand[:, :, 0].astype(np.int64)
    bc = _costs_numpy(ref, alt, best, tile, l1)
    for c in range(1, k):
        cc = _costs_numpy(ref, alt, cand[:, :, c], tile, l1)
        better = cc < bc
        best[better] = cand[:, :, c][better]
        bc = np.where(better, cc, bc)
    start = best.copy()
    for oy in range(-radius, radius + 1):
        for ox in range(-radius, radius + 1):
            d = start + np.array([oy, ox])
            cc = _costs_numpy(ref, alt, d, tile, l1)
            better = cc < bc
            best[better] = d[better]
            bc = np.where(better, cc, bc)
    around = np.zeros((ny, nx, 3, 3))
    for oy in range(3):
        for ox in range(3):
            around[:, :, oy, ox] = _costs_numpy(ref, alt, best + np.array([oy - 1, ox - 1]),
                                                tile, False)
    return best.astype(np.int32), around


def match(ref: np.ndarray, alt: np.ndarray, cand: np.ndarray, tile: int, radius: int,
          l1: bool, *, use_numba: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Block matching of half-overlapping tiles; see :func:`_match_numba`."""
    ref = np.ascontiguousarray(ref, np.float32)
    alt = np.ascontiguousarray(alt, np.float32)
    cand = np.ascontiguousarray(cand, np.int32)
    if use_numba:
        return _match_numba(ref, alt, cand, tile, radius, l1)
    return _match_numpy(ref, alt, cand, tile, radius, l1)


def _quad_basis() -> np.ndarray:
    """(6, 9) least-squares operator of q(y, x) = c + b·u + ½uᵀAu on the 3×3 offsets."""
    yy, xx = np.mgrid[-1:2, -1:2].astype(np.float64)
    y, x = yy.ravel(), xx.ravel()
    basis = np.stack([np.ones(9), y, x, 0.5 * y * y, y * x, 0.5 * x * x], axis=1)
    return np.linalg.pinv(basis)


QUAD_LSQ = _quad_basis()
SUBPIXEL_LIMIT = 1.0  # offsets beyond ±1 px mean the fit left its 3×3 support: clamp


def _quad_solve(p: np.ndarray, limit: float) -> tuple[float, float]:
    """Minimum of the fitted quadratic from its parameters [c, by, bx, Ayy, Axy, Axx]."""
    ayy, axy, axx = p[3], p[4], p[5]
    det = ayy * axx - axy * axy
    if ayy <= 0.0 or axx <= 0.0 or det <= 1e-12 * (ayy * axx + 1e-300):
        return 0.0, 0.0
    uy = -(axx * p[1] - axy * p[2]) / det
    ux = -(ayy * p[2] - axy * p[1]) / det
    uy = min(max(uy, -limit), limit)
    ux = min(max(ux, -limit), limit)
    return uy, ux


_quad_solve_numba = njit(cache=True)(_quad_solve)


@njit(parallel=True, cache=True)
def _subpixel_numba(around, lsq, limit):
    ny, nx = around.shape[0], around.shape[1]
    fy = np.zeros((ny, nx), np.float32)
    fx = np.zeros((ny, nx), np.float32)
    for t in prange(ny * nx):
        i = t // nx
        j = t % nx
        p = np.zeros(6)
        for k in range(6):
            s = 0.0
            for a in range(3):
                for b in range(3):
                    s += lsq[k, 3 * a + b] * around[i, j, a, b]
            p[k] = s
        uy, ux = _quad_solve_numba(p, limit)
        fy[i, j] = uy
        fx[i, j] = ux
    return fy, fx


def _subpixel_numpy(around: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Plain-numpy reference of :func:`_subpixel_numba`."""
    p = np.einsum("kn,...n->...k", QUAD_LSQ, around.reshape(*around.shape[:-2], 9))
    ayy, axy, axx = p[..., 3], p[..., 4], p[..., 5]
    det = ayy * axx - axy * axy
    ok = (ayy > 0) & (axx > 0) & (det > 1e-12 * (ayy * axx + 1e-300))
    safe = np.where(ok, det, 1.0)
    uy = np.where(ok, -(axx * p[..., 1] - axy * p[..., 2]) / safe, 0.0)
    ux = np.where(ok, -(ayy * p[..., 2] - axy * p[..., 1]) / safe, 0.0)
    return (np.clip(uy, -limit, limit).astype(np.float32),
            np.clip(ux, -limit, limit).astype(np.float32))


def subpixel(around: np.ndarray, *, use_numba: bool = True,
             limit: float = SUBPIXEL_LIMIT) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel offsets (fy, fx) of the minimum of the 3×3 L2 costs ``around`` (ny, nx, 3, 3).

    Hasinoff et al. 2016, supplement "sub-pixel alignment": a 2-D quadratic
    ½uᵀAu + bᵀu + c is least-squares fitted to the nine L2 distances around the best integer
    displacement and its minimum u = −A⁻¹b taken (clamped to ±``limit``; 0 where A is not
    positive definite, i.e. the cost surface has no minimum there: flat or edge-only tiles).
    """
    c = np.ascontiguousarray(around, np.float64)
    if use_numba:
        return _subpixel_numba(c, QUAD_LSQ, float(limit))
    return _subpixel_numpy(c, float(limit))


# ---------------------------------------------------------------------------------------------
# Lucas–Kanade refinement of the sub-pixel estimate: numba kernel and plain-numpy reference

LK_ITERATIONS = 3


@njit(cache=True, inline="always")
def _bilinear(img, y, x):
    h, w = img.shape
    y = min(max(y, 0.0), h - 1.0)
    x = min(max(x, 0.0), w - 1.0)
    y0 = min(int(y), h - 2) if h > 1 else 0
    x0 = min(int(x), w - 2) if w > 1 else 0
    fy = y - y0
    fx = x - x0
    y1 = min(y0 + 1, h - 1)
    x1 = min(x0 + 1, w - 1)
    top = img[y0, x0] + fx * (img[y0, x1] - img[y0, x0])
    bot = img[y1, x0] + fx * (img[y1, x1] - img[y1, x0])
    return top + fy * (bot - top)


@njit(parallel=True, cache=True)
def _refine_numba(ref, alt, disp, tile, iters):
    ny, nx = disp.shape[0], disp.shape[1]
    rh, rw = ref.shape
    step = tile // 2
    out = disp.copy()
    for t in prange(ny * nx):
        i = t // nx
        j = t % nx
        y0 = i * step
        x0 = j * step
        hyy = 0.0
        hyx = 0.0
        hxx = 0.0
        gys = np.empty((tile, tile))  # the tile's gradients, once for all iterations
        gxs = np.empty((tile, tile))
        for a in range(tile):
            ry = min(y0 + a, rh - 1)
            ryp = min(ry + 1, rh - 1)
            rym = max(ry - 1, 0)
            for b in range(tile):
                rx = min(x0 + b, rw - 1)
                rxp = min(rx + 1, rw - 1)
                rxm = max(rx - 1, 0)
                gy = 0.5 * (ref[ryp, rx] - ref[rym, rx])
                gx = 0.5 * (ref[ry, rxp] - ref[ry, rxm])
                gys[a, b] = gy
                gxs[a, b] = gx
                hyy += gy * gy
                hyx += gy * gx
                hxx += gx * gx
        det = hyy * hxx - hyx * hyx
        tr = hyy + hxx
        if tr <= 0.0 or det <= 1e-3 * tr * tr:
            continue  # flat or single-edge tile: translation not determined, keep the fit
        dy = disp[i, j, 0]
        dx = disp[i, j, 1]
        for _ in range(iters):
            by = 0.0
            bx = 0.0
            for a in range(tile):
                ry = min(y0 + a, rh - 1)
                for b in range(tile):
                    rx = min(x0 + b, rw - 1)
                    e = _bilinear(alt, y0 + a + dy, x0 + b + dx) - ref[ry, rx]
                    by += gys[a, b] * e
                    bx += gxs[a, b] * e
            ddy = (hxx * by - hyx * bx) / det
            ddx = (hyy * bx - hyx * by) / det
            dy -= ddy
            dx -= ddx
        if abs(dy - disp[i, j, 0]) <= 1.0 and abs(dx - disp[i, j, 1]) <= 1.0:
            out[i, j, 0] = dy
            out[i, j, 1] = dx
    return out


def _bilinear_numpy(img: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    h, w = img.shape
    y = np.clip(y, 0.0, h - 1.0)
    x = np.clip(x, 0.0, w - 1.0)
    y0 = np.minimum(y.astype(np.int64), max(h - 2, 0))
    x0 = np.minimum(x.astype(np.int64), max(w - 2, 0))
    fy, fx = y - y0, x - x0
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    img = img.astype(np.float64)
    top = img[y0, x0] + fx * (img[y0, x1] - img[y0, x0])
    bot = img[y1, x0] + fx * (img[y1, x1] - img[y1, x0])
    return top + fy * (bot - top)


def _refine_numpy(ref: np.ndarray, alt: np.ndarray, disp: np.ndarray, tile: int,
                  iters: int) -> np.ndarray:
    """Plain-numpy reference of :func:`_refine_numba`."""
    ny, nx = disp.shape[:2]
    rh, rw = ref.shape
    step = tile // 2
    r = np.arange(tile)
    ry = np.minimum((np.arange(ny) * step)[:, None, None, None] + r[None, None, :, None], rh - 1)
    rx = np.minimum((np.arange(nx) * step)[None, :, None, None] + r[None, None, None, :], rw - 1)
    ry, rx = np.broadcast_arrays(ry, rx)
    ref64 = ref.astype(np.float64)
    gy = 0.5 * (ref64[np.minimum(ry + 1, rh - 1), rx] - ref64[np.maximum(ry - 1, 0), rx])
    gx = 0.5 * (ref64[ry, np.minimum(rx + 1, rw - 1)] - ref64[ry, np.maximum(rx - 1, 0)])
    hyy, hyx, hxx = ((gy * gy).sum((2, 3)), (gy * gx).sum((2, 3)), (gx * gx).sum((2, 3)))
    det = hyy * hxx - hyx * hyx
    tr = hyy + hxx
    ok = (tr > 0) & (det > 1e-3 * tr * tr)
    safe = np.where(ok, det, 1.0)
    d = disp.astype(np.float64).copy()
    ys = (np.arange(ny) * step)[:, None, None, None] + r[None, None, :, None]
    xs = (np.arange(nx) * step)[None, :, None, None] + r[None, None, None, :]
    for _ in range(iters):
        e = _bilinear_numpy(alt, ys + d[..., 0, None, None], xs + d[..., 1, None, None])
        e = e - ref64[ry, rx]
        by, bx = (gy * e).sum((2, 3)), (gx * e).sum((2, 3))
        d[..., 0] -= np.where(ok, (hxx * by - hyx * bx) / safe, 0.0)
        d[..., 1] -= np.where(ok, (hyy * bx - hyx * by) / safe, 0.0)
    keep = ok & (np.abs(d - disp).max(axis=-1) <= 1.0)
    return np.where(keep[..., None], d, disp).astype(disp.dtype)


def refine(ref: np.ndarray, alt: np.ndarray, disp: np.ndarray, tile: int,
           iterations: int = LK_ITERATIONS, *, use_numba: bool = True) -> np.ndarray:
    """Gauss–Newton (Lucas–Kanade) refinement of per-tile translations (ny, nx, 2), float.

    Lucas & Kanade 1981; inverse-compositional form (Baker & Matthews 2004, §3.2): the
    reference tile's gradients and 2×2 Hessian are fixed, the alternate is sampled bilinearly at
    the current displacement and the update subtracted. An addition to HDR+: the quadratic fit
    of the cost surface is biased toward whole pixels ("pixel locking") on textured tiles, the
    iteration is not. Tiles whose gradients do not fix both directions (flat, single edge) or
    that move by more than 1 px keep their input displacement.
    """
    ref = np.ascontiguousarray(ref, np.float32)
    alt = np.ascontiguousarray(alt, np.float32)
    disp = np.ascontiguousarray(disp, np.float64)
    if use_numba:
        return _refine_numba(ref, alt, disp, tile, iterations)
    return _refine_numpy(ref, alt, disp, tile, iterations)


def _candidates(coarse: np.ndarray, coarse_tile: int, factor: int, ny: int, nx: int,
                tile: int) -> np.ndarray:
    """Three upsampled displacements per fine tile (nearest coarse tile + x and y neighbours)."""
    cny, cnx = coarse.shape[:2]
    cstep, step = coarse_tile // 2, tile // 2
    cy = ((np.arange(ny) * step + tile / 2) / factor - coarse_tile / 2) / cstep
    cx = ((np.arange(nx) * step + tile / 2) / factor - coarse_tile / 2) / cstep
    iy = np.clip(np.rint(cy).astype(int), 0, cny - 1)
    ix = np.clip(np.rint(cx).astype(int), 0, cnx - 1)
    jy = np.clip(np.where(cy >= iy, iy + 1, iy - 1), 0, cny - 1)
    jx = np.clip(np.where(cx >= ix, ix + 1, ix - 1), 0, cnx - 1)
    up = coarse * factor
    c0 = up[iy[:, None], ix[None, :]]
    c1 = up[jy[:, None], ix[None, :]]
    c2 = up[iy[:, None], jx[None, :]]
    return np.rint(np.stack([c0, c1, c2], axis=2)).astype(np.int32)


def align(ref_pyr: list[np.ndarray], alt_pyr: list[np.ndarray], *, use_numba: bool = True,
          tiles: tuple[int, ...] = TILES, radii: tuple[int, ...] = RADII,
          factors: tuple[int, ...] = FACTORS, lk_iterations: int = LK_ITERATIONS) -> Alignment:
    """Coarse-to-fine alignment of one alternate frame to the reference (both pyramids).

    At the finest level the quadratic sub-pixel estimate is refined by ``lk_iterations``
    Lucas–Kanade steps (:func:`refine`; 0 keeps the HDR+ quadratic fit alone).
    """
    n = len(ref_pyr)
    disp: np.ndarray | None = None
    for lev in range(n - 1, -1, -1):
        ref, alt, tile = ref_pyr[lev], alt_pyr[lev], tiles[lev]
        ny, nx = grid_shape(*ref.shape, tile)
        if disp is None:
            cand = np.zeros((ny, nx, 1, 2), np.int32)
        else:
            cand = _candidates(disp, tiles[lev + 1], factors[lev + 1], ny, nx, tile)
        best, around = match(ref, alt, cand, tile, radii[lev], NORMS[lev] == "l1",
                             use_numba=use_numba)
        fy, fx = subpixel(around, use_numba=use_numba)
        disp = best.astype(np.float32) + np.stack([fy, fx], axis=-1)
    assert disp is not None
    if lk_iterations > 0:
        disp = refine(ref_pyr[0], alt_pyr[0], disp, tiles[0], lk_iterations,
                      use_numba=use_numba)
        frac = np.clip(disp - best, -SUBPIXEL_LIMIT, SUBPIXEL_LIMIT).astype(np.float32)
        fy, fx = frac[..., 0], frac[..., 1]
    return Alignment(dy=best[..., 0].copy(), dx=best[..., 1].copy(), fy=fy, fx=fx,
                     tile=tiles[0], step=tiles[0] // 2, cost=around[:, :, 1, 1].copy())


def fit_global(a: Alignment, iterations: int = 5) -> np.ndarray:
    """Robust affine fit of the displacement field: model (ny, nx, 2) in grey pixels.

    Iteratively refit on tiles within 2, 1, 0.5, 0.25 px of the previous fit (camera shake is
    nearly a similarity transform; moving subjects and flat tiles are outliers; the refined
    sub-pixel estimates are good to a few hundredths of a pixel on textured tiles).
    """
    ny, nx = a.dy.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    basis = np.stack([np.ones(ny * nx), yy.ravel(), xx.ravel()], axis=1)
    tot = np.stack([(a.dy + a.fy).ravel(), (a.dx + a.fx).ravel()], axis=1).astype(np.float64)
    keep = np.ones(ny * nx, bool)
    coef = np.zeros((3, 2))
    for it in range(iterations):
        if keep.sum() < 3:
            break
        coef = np.linalg.lstsq(basis[keep], tot[keep], rcond=None)[0]
        res = np.abs(tot - basis @ coef).max(axis=1)
        keep = res < max(2.0 / 2**it, 0.25)
    return (basis @ coef).reshape(ny, nx, 2).astype(np.float32)


def with_global_prior(a: Alignment, ref: np.ndarray, alt: np.ndarray, sigma2: np.ndarray,
                      *, k: float = 3.0, own_subpixel: bool = True,
                      use_numba: bool = True) -> Alignment:
    """Prefer the global (affine) displacement wherever it explains a tile as well as its own.

    An addition to HDR+: handheld shake is smooth, so where the tile's L2 cost at the global
    model is within ``k`` standard deviations of the noise-only cost fluctuation (std ≈
    √8·σ²·T for a T×T tile of grey noise variance σ²) of its own best cost, the tile takes the
    model's displacement and its exact sub-pixel part; tiles that really move keep their own
    displacement and, with ``own_subpixel``, their own sub-pixel estimate (else 0).
    """
    if a.cost is None:
        return a
    model = fit_global(a)
    mint = np.rint(model).astype(np.int32)
    _, around = match(ref, alt, mint[:, :, None, :], a.tile, 0, False, use_numba=use_numba)
    cost_model = around[:, :, 1, 1]
    tol = k * np.sqrt(8.0) * np.asarray(sigma2, np.float64) * a.tile
    take = cost_model <= a.cost + tol
    frac = (model - mint).astype(np.float32)
    return Alignment(
        dy=np.where(take, mint[..., 0], a.dy).astype(np.int32),
        dx=np.where(take, mint[..., 1], a.dx).astype(np.int32),
        fy=np.where(take, frac[..., 0], a.fy if own_subpixel else 0.0).astype(np.float32),
        fx=np.where(take, frac[..., 1], a.fx if own_subpixel else 0.0).astype(np.float32),
        tile=a.tile, step=a.step, cost=np.where(take, cost_model, a.cost),
    )


def tile_means(img: np.ndarray, tile: int) -> np.ndarray:
    """Mean of every half-overlapping tile (ny, nx) of a 2-D image (edges clamp)."""
    ny, nx = grid_shape(*img.shape, tile)
    zero = np.zeros((ny, nx, 1, 2), np.int32)
    step = tile // 2
    h, w = img.shape
    ph, pw = (ny - 1) * step + tile, (nx - 1) * step + tile
    padded = np.pad(img, ((0, max(0, ph - h)), (0, max(0, pw - w))), mode="edge")[:ph, :pw]
    del zero
    c = np.cumsum(np.cumsum(np.pad(padded.astype(np.float64), ((1, 0), (1, 0))), 0), 1)
    ys = np.arange(ny) * step
    xs = np.arange(nx) * step
    s = (c[ys[:, None] + tile, xs[None, :] + tile] - c[ys[:, None], xs[None, :] + tile]
         - c[ys[:, None] + tile, xs[None, :]] + c[ys[:, None], xs[None, :]])
    return s / (tile * tile)
