"""Iterated directional residual interpolation (``iri``) for Bayer mosaics.

Green: for each direction (horizontal rows, vertical columns) the residual interpolation of
Kiku, Monno, Tanaka, Okutomi 2013 ("Residual interpolation for color image demosaicking",
ICIP, sec. 3.1) is run along the line: 1-D linear interpolations of G and of the other colour X
(R or B) serve as guides; a 1-D guided filter (He, Sun, Tang 2010) fitted only at the samples
gives tentative X (guide G) and G (guide X); the residuals at the samples are linearly
interpolated along the line and added back. Following the iterative residual interpolation of
Ye & Ma 2015 ("Color image demosaicing using iterative residual interpolation", TIP, sec. III),
the estimates are fed back as the guides and the step repeated (4 times here); as in the
adaptive residual interpolation of Monno, Kiku, Tanaka, Okutomi 2015/2017 (ARI, sec. 3) the
iterations are combined per pixel by how smooth their residuals are. The directional
colour differences G - X are then combined with the four-direction gradient weights of
Pekkucuksen & Glotzbach 2010 (GBTF, sec. 2), as MLRI/ARI do.

R/B: residual interpolation guided by the final green (Kiku et al. 2013, sec. 3.2), the
tentative plane fitted to the samples by minimizing the Laplacian of the residual (MLRI, Kiku,
Monno, Tanaka, Okutomi 2014/2016; ``_demosaic_ri.mlri_sparse``) rather than by the 2-D sparse
guided filter (bench/quality_demosaic.py, Kodak-24 / McMaster-18: 40.31 / 36.26 with the guided
filter, 40.75 / 36.28 dB), and the residual is interpolated edge-directed instead of
bilinearly: first at the sites diagonal to the samples, then at the remaining sites from their
four axial neighbours, each neighbour weighted by 1 / (green gradient + residual gradient) in
its direction (the inverse-gradient weighting of GBTF/RCD applied to the residual).

Refinement: a colour-difference refinement pass (``refine_cd``) blended per pixel by a local
test of the colour-difference model (``refine_weight``).

All filters are OpenCV box/linear filters on an RGGB mosaic with a mirror margin (>= 24 px).
"""

from __future__ import annotations

import numpy as np

from .. import _aot as aot
from .._jit import numba
from ._demosaic_ri import _box, _f, _masks, mlri_sparse  # shared helpers (one source)

GREEN_RADIUS = 11  # half-length of the 1-D guided-filter window (pixels)
GREEN_ITERS = 4
CRIT_LEN = 5  # line window of the per-iteration residual criterion
CRIT_EPS = 1e-6
GREEN_EPS = 1e-4
EDGE_EPS = 1e-4


def _gf_line(
    guide: np.ndarray, p: np.ndarray, m: np.ndarray, r: int, eps: float, horiz: bool
) -> np.ndarray:
    """1-D guided filter along rows (``horiz``) or columns, fitted only where ``m`` > 0."""
    k = 2 * r + 1
    ky, kx = (1, k) if horiz else (k, 1)
    n = _box(m, ky, kx) + 1e-12
    gm = guide * m
    mi = _box(gm, ky, kx) / n
    mp = _box(p * m, ky, kx) / n
    cov = _box(gm * p, ky, kx) / n - mi * mp
    var = _box(gm * guide, ky, kx) / n - mi * mi
    a = cov / (var + eps)
    b = mp - a * mi
    return (_box(a, ky, kx) * guide + _box(b, ky, kx)) / np.float32(k)


def directional_difference(
    cfa: np.ndarray, horiz: bool, r: int = GREEN_RADIUS, iters: int = GREEN_ITERS
) -> np.ndarray:
    """G - X at every pixel from iterated residual interpolation along one direction.

    The iterations are combined per pixel (adaptive residual interpolation, Monno et al.
    2015/2017, sec. 3: the residual of a good estimate is smooth): iteration k gets weight
    1 / c_k^2, c_k = the line sum over 5 px of |1-D Laplacian of the residuals at the samples|.
    """
    h, w = cfa.shape
    mr, mg, mb = _masks(h, w)
    mx = mr + mb  # along a single row/column only one of R, B occurs
    k = np.array([[0.5, 1.0, 0.5]], np.float32)
    lap = np.array([[1.0, 0.0, -2.0, 0.0, 1.0]], np.float32)
    if not horiz:
        k = np.ascontiguousarray(k.T)
        lap = np.ascontiguousarray(lap.T)
    g_est = _f(cfa * mg, k)  # linear interpolation along the line, samples kept
    x_est = _f(cfa * mx, k)
    num = np.zeros((h, w), np.float64)
    den = np.zeros((h, w), np.float64)
    for _ in range(iters):
        tx = _gf_line(g_est, cfa, mx, r, GREEN_EPS, horiz)
        tg = _gf_line(x_est, cfa, mg, r, GREEN_EPS, horiz)
        rx = (cfa - tx) * mx
        rg = (cfa - tg) * mg
        x_est = tx + _f(rx, k)
        g_est = tg + _f(rg, k)
        crit = np.abs(_f(rx, lap)) * mx + np.abs(_f(rg, lap)) * mg
        crit = _box(crit, 1, CRIT_LEN) if horiz else _box(crit, CRIT_LEN, 1)
        wt = 1.0 / (crit.astype(np.float64) + CRIT_EPS) ** 2
        num += wt * (g_est - x_est)
        den += wt
    return (num / den).astype(np.float32)


def green_iri(cfa: np.ndarray) -> np.ndarray:
    """Full green plane: directional iterated RI differences combined by GBTF weights."""
    from oneinch.isp._demosaic_ri import green_gbtf

    dh = directional_difference_fast(cfa, True)
    dv = directional_difference_fast(cfa, False)
    return green_gbtf(cfa, diffs=(dh, dv))


_AXIAL = ((-1, 0), (1, 0), (0, -1), (0, 1))
_DIAG = ((-1, -1), (-1, 1), (1, -1), (1, 1))


@aot.entry
@numba.njit(parallel=True, cache=True, nogil=True)
def _wfill_numba(dp, gp, diag, eps):
    p = 3
    h = dp.shape[0] - 2 * p
    w = dp.shape[1] - 2 * p
    out = np.empty((h, w), np.float32)
    for y in numba.prange(h):
        yy = y + p
        for x in range(w):
            xx = x + p
            g0 = gp[yy, xx]
            num = 0.0
            den = 0.0
            for k in range(4):
                if diag:
                    dy = -1 if k < 2 else 1
                    dx = -1 if k % 2 == 0 else 1
                else:
                    dy = (-1, 1, 0, 0)[k]
                    dx = (0, 0, -1, 1)[k]
                d1 = dp[yy + dy, xx + dx]
                grad = (
                    abs(gp[yy + dy, xx + dx] - gp[yy - dy, xx - dx])
                    + abs(g0 - gp[yy + 2 * dy, xx + 2 * dx])
                    + abs(d1 - dp[yy - dy, xx - dx])
                    + eps
                )
                wt = 1.0 / grad
                num += wt * d1
                den += wt
            out[y, x] = num / den
    return out


def _weighted_fill(d: np.ndarray, g: np.ndarray, dirs: tuple, eps: float = EDGE_EPS) -> np.ndarray:
    """Mean of the 4 neighbours d[y+dy, x+dx], weighted by 1 / (gradient of g and d along it)
    (numba; ``_weighted_fill_reference`` is the numpy form)."""
    dp = np.pad(np.asarray(d, np.float32), 3, mode="reflect")
    gp = np.pad(np.asarray(g, np.float32), 3, mode="reflect")
    diag, e = dirs is _DIAG, np.float32(eps)
    h = dp.shape[0] - 6
    mid = h // 2  # output row y reads the padded rows y..y+6: halves on two threads
    halves = ((dp[: mid + 6], gp[: mid + 6], diag, e), (dp[mid:], gp[mid:], diag, e))
    if h < 64 or not aot.runs_alone(_wfill_numba, *halves):
        return _wfill_numba(dp, gp, diag, e)
    out = np.empty((h, dp.shape[1] - 6), np.float32)
    return aot.rows_in_two(_wfill_numba, *halves, out, mid)


def _weighted_fill_reference(
    d: np.ndarray, g: np.ndarray, dirs: tuple, eps: float = EDGE_EPS
) -> np.ndarray:
    """Mean of the 4 neighbours d[y+dy, x+dx], weighted by 1 / (gradient of g and d along it)."""
    p = 3
    dp = np.pad(d, p, mode="reflect")
    gp = np.pad(g, p, mode="reflect")
    h, w = d.shape

    def s(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
        return a[p + dy : p + dy + h, p + dx : p + dx + w]

    num = np.zeros_like(d)
    den = np.zeros_like(d)
    for dy, dx in dirs:
        grad = (
            np.abs(s(gp, dy, dx) - s(gp, -dy, -dx))
            + np.abs(g - s(gp, 2 * dy, 2 * dx))
            + np.abs(s(dp, dy, dx) - s(dp, -dy, -dx))
            + np.float32(eps)
        )
        wt = 1.0 / grad
        num += wt * s(dp, dy, dx)
        den += wt
    return num / den


def edge_directed_residual(res: np.ndarray, g: np.ndarray, diag_sites: np.ndarray) -> np.ndarray:
    """Fill a residual known on one 2x2 lattice: diagonal sites first, then axial sites."""
    out = res.copy()
    diag = _weighted_fill(res, g, _DIAG)
    out[diag_sites] = diag[diag_sites]
    axial = _weighted_fill(out, g, _AXIAL)
    h, w = res.shape
    gs = np.zeros((h, w), bool)
    gs[0::2, 1::2] = True
    gs[1::2, 0::2] = True
    out[gs] = axial[gs]
    return out


def rb_iri(
    cfa: np.ndarray, green: np.ndarray, tentatives: list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """R and B: green-guided residual interpolation (the tentative plane by the
    minimized-Laplacian fit, ``_demosaic_ri.mlri_sparse``) with edge-directed residual filling.

    ``tentatives``, if a list, receives the two tentative planes (R, B) for reuse.
    """
    h, w = cfa.shape
    mr, _, mb = _masks(h, w)
    out = []
    for m, other in ((mr, mb), (mb, mr)):
        tent = mlri_sparse(green, cfa * m, m)
        if tentatives is not None:
            tentatives.append(tent)
        resid = (cfa - tent) * m
        out.append(tent + edge_directed_residual(resid, green, other > 0))
    return out[0], out[1]


def refine_cd(
    cfa: np.ndarray, r: np.ndarray, g: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour-difference refinement in the spirit of Menon, Andriani, Calvagno 2007 (sec. III-C).

    (1) G at R/B sites = sample + edge-weighted mean of the axial colour differences G - X;
    (2) R/B at G sites = G + edge-weighted mean of the axial differences X - G;
    (3) R at B and B at R sites = G + edge-weighted mean of the diagonal differences X - G.
    """
    h, w = cfa.shape
    mr, mg, mb = _masks(h, w)
    r, g, b = r.copy(), g.copy(), b.copy()
    for m, x in ((mr, r), (mb, b)):
        d = _weighted_fill(g - x, g, _AXIAL)
        g = np.where(m > 0, cfa + d, g)
    for x in (r, b):
        d = _weighted_fill(x - g, g, _AXIAL)
        x[...] = np.where(mg > 0, g + d, x)
    for x, other in ((r, mb), (b, mr)):
        d = _weighted_fill(x - g, g, _DIAG)
        x[...] = np.where(other > 0, g + d, x)
    return r, g, b


REFINE_WINDOW = 91
REFINE_GAIN = 6.0
REFINE_POWER = 1.5  # tuned on both full sets: Kodak +0.47, McMaster +0.01 dB (unblended: -1.5)


def refine_weight(cfa: np.ndarray, green: np.ndarray, tentatives: list) -> np.ndarray:
    """Per-pixel weight in [0, 1] of the colour-difference refinement.

    Local test of the constant-colour-difference model against the residual-interpolation
    model (the idea of choosing per pixel by the local residual, Monno et al. 2015 ARI, sec. 3):
    on the R (B) samples of a window, the variance of X - G is compared with the mean square of
    the residual X - (a G + b) of the tentative planes (``tentatives``, as rb_iri gives them:
    ``mlri_sparse``; the gain and power were tuned with the guided filter's fit, which
    measured the same within 0.04 dB). Where the colour difference fits about as well as the
    linear model the refinement is applied, where it fits much worse it is not
    (weight = clip(gain * ratio, 0, 1) ** power, minimum over R and B).
    """
    h, w = cfa.shape
    mr, _, mb = _masks(h, w)
    k = REFINE_WINDOW
    out = None
    for i, m in enumerate((mr, mb)):
        n = _box(m, k, k) + 1e-9
        d = (cfa - green) * m
        mu = _box(d, k, k) / n
        var_cd = _box(d * d, k, k) / n - mu * mu
        e = (cfa - tentatives[i]) * m
        var_ri = _box(e * e, k, k) / n
        ratio = (var_ri + 1e-6) / (var_cd + 1e-6)
        out = ratio if out is None else np.minimum(out, ratio)
    return (np.clip(REFINE_GAIN * out, 0.0, 1.0) ** REFINE_POWER).astype(np.float32)


def iri_rggb(cfa: np.ndarray, refine: bool = True) -> np.ndarray:
    """Iterated directional RI green + edge-directed RI R/B on an RGGB mosaic (margin >= 24),
    then the colour-difference refinement blended in by ``refine_weight``."""
    c = np.ascontiguousarray(cfa, np.float32)
    g = green_iri(c)
    tents: list = []
    r, b = rb_iri(c, g, tents)
    base = np.stack([r, g, b], axis=-1)
    if not refine:
        return np.ascontiguousarray(base, dtype=np.float32)
    wgt = refine_weight(c, g, tents)[..., None]
    ref = np.stack(refine_cd(c, r, g, b), axis=-1)
    return np.ascontiguousarray(base + wgt * (ref - base), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# numba kernel of ``directional_difference`` (rows in parallel; the vertical pass runs on the
# transposed mosaic, which is RGGB again). Same arithmetic; box sums by running prefix sums
# over a reflect-101 extended row (as OpenCV's border), accumulated in float64.


@numba.njit(cache=True, inline="always")
def _refl(i, n):
    if i < 0:
        i = -i
    if i >= n:
        i = 2 * n - 2 - i
    return i


@numba.njit(cache=True, fastmath=True, nogil=True)
def _gf_row(guide, p, m, r, eps, out, pre, ab):
    """Row guided filter fitted where m > 0; box sums by prefix sums over the reflect-101
    extended row (pre: (5, n + 2r + 1), ab: (2, n + 2r + 1) scratch)."""
    n = guide.shape[0]
    k = 2 * r + 1
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    a4 = 0.0
    pre[:, 0] = 0.0
    for j in range(n + 2 * r):
        i = _refl(j - r, n)
        mm = m[i]
        gm = guide[i] * mm
        a0 += mm
        a1 += gm
        a2 += p[i] * mm
        a3 += gm * p[i]
        a4 += gm * guide[i]
        pre[0, j + 1] = a0
        pre[1, j + 1] = a1
        pre[2, j + 1] = a2
        pre[3, j + 1] = a3
        pre[4, j + 1] = a4
    for x in range(n):
        e = x + k
        inv = 1.0 / (pre[0, e] - pre[0, x] + 1e-12)
        mi = (pre[1, e] - pre[1, x]) * inv
        mp = (pre[2, e] - pre[2, x]) * inv
        cov = (pre[3, e] - pre[3, x]) * inv - mi * mp
        var = (pre[4, e] - pre[4, x]) * inv - mi * mi
        a = cov / (var + eps)
        ab[0, x] = a
        ab[1, x] = mp - a * mi
    b0 = 0.0
    b1 = 0.0
    pre[0, 0] = 0.0
    pre[1, 0] = 0.0
    for j in range(n + 2 * r):
        i = _refl(j - r, n)
        b0 += ab[0, i]
        b1 += ab[1, i]
        pre[0, j + 1] = b0
        pre[1, j + 1] = b1
    ik = 1.0 / k
    for x in range(n):
        e = x + k
        out[x] = ((pre[0, e] - pre[0, x]) * guide[x] + (pre[1, e] - pre[1, x])) * ik


@numba.njit(cache=True, inline="always")
def _interp_row(v, m, out):
    """Linear interpolation of a row sampled every other pixel, kernel [0.5, 1, 0.5]."""
    n = v.shape[0]
    for x in range(n):
        out[x] = v[x] * m[x] + 0.5 * (
            v[_refl(x - 1, n)] * m[_refl(x - 1, n)] + v[_refl(x + 1, n)] * m[_refl(x + 1, n)]
        )


@aot.entry
@numba.njit(parallel=True, cache=True, nogil=True)
def _dir_diff_rows(cfa, r, iters, eps, clen, ceps):
    h, w = cfa.shape
    out = np.empty((h, w), np.float32)
    nch = min(h, 64)  # row chunks: scratch buffers allocated once per chunk
    cr = clen // 2
    for ci in numba.prange(nch):
        c = np.empty(w)
        mg = np.empty(w)
        mx = np.empty(w)
        g_est = np.empty(w)
        x_est = np.empty(w)
        tx = np.empty(w)
        tg = np.empty(w)
        rx = np.empty(w)
        rg = np.empty(w)
        t1 = np.empty(w)
        crit = np.empty(w)
        num = np.empty(w)
        den = np.empty(w)
        pre = np.empty((5, w + 2 * r + 1))
        ab = np.empty((2, w))
        for y in range(ci * h // nch, (ci + 1) * h // nch):
            for x in range(w):
                c[x] = cfa[y, x]
                g = 1.0 if (y + x) % 2 == 1 else 0.0
                mg[x] = g
                mx[x] = 1.0 - g
                num[x] = 0.0
                den[x] = 0.0
            _interp_row(c, mg, g_est)
            _interp_row(c, mx, x_est)
            for _ in range(iters):
                _gf_row(g_est, c, mx, r, eps, tx, pre, ab)
                _gf_row(x_est, c, mg, r, eps, tg, pre, ab)
                for x in range(w):
                    rx[x] = (c[x] - tx[x]) * mx[x]
                    rg[x] = (c[x] - tg[x]) * mg[x]
                _interp_row(rx, mx, t1)
                for x in range(w):
                    x_est[x] = tx[x] + t1[x]
                _interp_row(rg, mg, t1)
                for x in range(w):
                    g_est[x] = tg[x] + t1[x]
                for x in range(w):
                    lx = rx[_refl(x - 2, w)] - 2.0 * rx[x] + rx[_refl(x + 2, w)]
                    lg = rg[_refl(x - 2, w)] - 2.0 * rg[x] + rg[_refl(x + 2, w)]
                    t1[x] = abs(lx) * mx[x] + abs(lg) * mg[x]
                for x in range(w):
                    acc = 0.0
                    for j in range(-cr, cr + 1):
                        acc += t1[_refl(x + j, w)]
                    crit[x] = acc
                for x in range(w):
                    wt = 1.0 / (crit[x] + ceps) ** 2
                    num[x] += wt * (g_est[x] - x_est[x])
                    den[x] += wt
            for x in range(w):
                out[y, x] = num[x] / den[x]
    return out


def directional_difference_fast(
    cfa: np.ndarray, horiz: bool, r: int = GREEN_RADIUS, iters: int = GREEN_ITERS
) -> np.ndarray:
    """numba version of ``directional_difference`` (same result to float rounding)."""
    c = np.ascontiguousarray(cfa if horiz else cfa.T, np.float32)
    args = (r, iters, GREEN_EPS, CRIT_LEN, CRIT_EPS)
    h = c.shape[0]
    mid = (h // 4) * 2
    if h < 64 or not aot.runs_alone(_dir_diff_rows, (c[:mid], *args), (c[mid:], *args)):
        d = _dir_diff_rows(c, *args)  # (the JIT's own threads, or a strip's one thread)
    else:
        # the ahead-of-time variant runs its row loop on one thread, and a whole image (under
        # develop's strip size) has no other thread beside it; its rows are independent (1-D
        # along the row, the CFA phase from the row's parity): two halves split at an even row
        # run on two threads (nogil), the same rows as one call
        d = aot.rows_in_two(_dir_diff_rows, (c[:mid], *args), (c[mid:], *args),
                            np.empty((h, c.shape[1]), np.float32), mid)
    return d if horiz else np.ascontiguousarray(d.T)
