"""Ratio Corrected Demosaicing (L. Sanz Rodriguez, 2017), numba kernel and numpy reference.

Steps follow the RCD description: (1) vertical/horizontal discrimination from local
directional high-pass energy, refined by the neighbourhood where it is more decisive;
(2) a 3x3 low-pass of the mosaic; (3) green at R/B as ratio-corrected (low-pass ratio)
directional estimates, gradient-weighted per direction, then blended by (1); (4) R/B at B/R
from diagonal colour differences, blended by a diagonal discrimination; (5) R/B at G from
axial colour differences. Works on an RGGB mosaic with even size and a >= 12 px mirror margin;
outputs within 10 px of the edge are not computed (the caller crops them).
"""

from __future__ import annotations

import numba
import numpy as np

EPS = 1e-5
_M = 10  # rows/cols at each edge left uncomputed


# --------------------------------------------------------------------------------------------
# numba kernel


@numba.njit(cache=True, inline="always")
def _energy(c, y, x, dy, dx):
    g1 = c[y - dy, x - dx] - c[y + dy, x + dx]
    g2 = c[y - 2 * dy, x - 2 * dx] - 2.0 * c[y, x] + c[y + 2 * dy, x + 2 * dx]
    return g1 * g1 + 0.25 * g2 * g2


@numba.njit(parallel=True, cache=True)
def _rcd_numba(c, top, left, oh, ow):
    h, w = c.shape
    vh = np.full((h, w), 0.5, np.float32)
    pq = np.full((h, w), 0.5, np.float32)
    lpf = np.zeros((h, w), np.float32)
    pl = np.zeros((3, h, w), np.float32)  # planes: unit-stride neighbour reads
    # step 1, 2: per-pixel directional energies first, then 3-tap sums (fewer loads)
    ev = np.zeros((h, w), np.float32)
    eh = np.zeros((h, w), np.float32)
    ep = np.zeros((h, w), np.float32)
    eq = np.zeros((h, w), np.float32)
    for y in numba.prange(2, h - 2):
        for x in range(2, w - 2):
            ev[y, x] = _energy(c, y, x, 1, 0)
            eh[y, x] = _energy(c, y, x, 0, 1)
            if (y + x) % 2 == 0:
                ep[y, x] = _energy(c, y, x, 1, 1)
                eq[y, x] = _energy(c, y, x, 1, -1)
    for y in numba.prange(3, h - 3):
        for x in range(3, w - 3):
            v = ev[y - 1, x] + ev[y, x] + ev[y + 1, x] + EPS
            hh = eh[y, x - 1] + eh[y, x] + eh[y, x + 1] + EPS
            vh[y, x] = v / (v + hh)
            if (y + x) % 2 == 0:  # R/B site: diagonal discrimination
                p = ep[y - 1, x - 1] + ep[y, x] + ep[y + 1, x + 1] + EPS
                q = eq[y - 1, x + 1] + eq[y, x] + eq[y + 1, x - 1] + EPS
                pq[y, x] = p / (p + q)
            lp = (
                0.25 * c[y, x]
                + 0.125 * (c[y - 1, x] + c[y + 1, x] + c[y, x - 1] + c[y, x + 1])
                + 0.0625 * (c[y - 1, x - 1] + c[y - 1, x + 1] + c[y + 1, x - 1] + c[y + 1, x + 1])
            )
            lpf[y, x] = max(lp, 0.0)
    # step 3: green
    for y in numba.prange(4, h - 4):
        for x in range(4, w - 4):
            ci = c[y, x]
            if (y + x) % 2 == 1:
                pl[1, y, x] = ci
                continue
            gn = (
                EPS
                + abs(c[y - 1, x] - c[y + 1, x])
                + abs(ci - c[y - 2, x])
                + abs(c[y - 1, x] - c[y - 3, x])
                + abs(c[y - 2, x] - c[y - 4, x])
            )
            gs = (
                EPS
                + abs(c[y - 1, x] - c[y + 1, x])
                + abs(ci - c[y + 2, x])
                + abs(c[y + 1, x] - c[y + 3, x])
                + abs(c[y + 2, x] - c[y + 4, x])
            )
            gw = (
                EPS
                + abs(c[y, x - 1] - c[y, x + 1])
                + abs(ci - c[y, x - 2])
                + abs(c[y, x - 1] - c[y, x - 3])
                + abs(c[y, x - 2] - c[y, x - 4])
            )
            ge = (
                EPS
                + abs(c[y, x - 1] - c[y, x + 1])
                + abs(ci - c[y, x + 2])
                + abs(c[y, x + 1] - c[y, x + 3])
                + abs(c[y, x + 2] - c[y, x + 4])
            )
            l2 = 2.0 * lpf[y, x] + EPS
            en = c[y - 1, x] * l2 / (EPS + lpf[y, x] + lpf[y - 2, x])
            es = c[y + 1, x] * l2 / (EPS + lpf[y, x] + lpf[y + 2, x])
            ew = c[y, x - 1] * l2 / (EPS + lpf[y, x] + lpf[y, x - 2])
            ee = c[y, x + 1] * l2 / (EPS + lpf[y, x] + lpf[y, x + 2])
            v_est = (gs * en + gn * es) / (gn + gs)
            h_est = (ge * ew + gw * ee) / (gw + ge)
            cen = vh[y, x]
            nb = 0.25 * (vh[y - 1, x - 1] + vh[y - 1, x + 1] + vh[y + 1, x - 1] + vh[y + 1, x + 1])
            d = nb if abs(0.5 - cen) < abs(0.5 - nb) else cen
            pl[1, y, x] = v_est + d * (h_est - v_est)
    # step 4: R/B at B/R sites (diagonal colour differences)
    for y in numba.prange(6, h - 6):
        for x in range(6, w - 6):
            if (y + x) % 2 == 1:
                continue
            ch = 0 if y % 2 == 0 else 2  # sampled channel
            oc = 2 - ch  # channel to estimate
            pl[ch, y, x] = c[y, x]
            g0 = pl[1, y, x]
            acc_p = 0.0
            acc_q = 0.0
            wsum_p = 0.0
            wsum_q = 0.0
            for sy in (-1, 1):
                for sx in (-1, 1):
                    y1 = y + sy
                    x1 = x + sx
                    grad = (
                        EPS
                        + abs(c[y1, x1] - c[y - sy, x - sx])
                        + abs(c[y1, x1] - c[y + 3 * sy, x + 3 * sx])
                        + abs(g0 - pl[1, y + 2 * sy, x + 2 * sx])
                    )
                    est = c[y1, x1] - pl[1, y1, x1]
                    wgt = 1.0 / grad
                    if sy == sx:  # P diagonal (NW-SE)
                        acc_p += wgt * est
                        wsum_p += wgt
                    else:
                        acc_q += wgt * est
                        wsum_q += wgt
            p_est = acc_p / wsum_p
            q_est = acc_q / wsum_q
            cen = pq[y, x]
            nb = 0.25 * (pq[y - 2, x - 2] + pq[y - 2, x + 2] + pq[y + 2, x - 2] + pq[y + 2, x + 2])
            d = nb if abs(0.5 - cen) < abs(0.5 - nb) else cen
            pl[oc, y, x] = g0 + p_est + d * (q_est - p_est)
    # step 5: R and B at G sites (axial colour differences)
    for y in numba.prange(9, h - 9):
        for x in range(9, w - 9):
            if (y + x) % 2 == 0:
                continue
            g0 = pl[1, y, x]
            cen = vh[y, x]
            nb = 0.25 * (vh[y - 1, x] + vh[y + 1, x] + vh[y, x - 1] + vh[y, x + 1])
            d = nb if abs(0.5 - cen) < abs(0.5 - nb) else cen
            for ch in (0, 2):
                accv = 0.0
                wv = 0.0
                acch = 0.0
                wh = 0.0
                for s in (-1, 1):
                    gv = (
                        EPS
                        + abs(g0 - pl[1, y + 2 * s, x])
                        + abs(pl[ch, y + s, x] - pl[ch, y - s, x])
                        + abs(pl[ch, y + s, x] - pl[ch, y + 3 * s, x])
                    )
                    accv += (pl[ch, y + s, x] - pl[1, y + s, x]) / gv
                    wv += 1.0 / gv
                    gh = (
                        EPS
                        + abs(g0 - pl[1, y, x + 2 * s])
                        + abs(pl[ch, y, x + s] - pl[ch, y, x - s])
                        + abs(pl[ch, y, x + s] - pl[ch, y, x + 3 * s])
                    )
                    acch += (pl[ch, y, x + s] - pl[1, y, x + s]) / gh
                    wh += 1.0 / gh
                v_est = accv / wv
                h_est = acch / wh
                pl[ch, y, x] = g0 + v_est + d * (h_est - v_est)
    res = np.empty((oh, ow, 3), np.float32)
    for y in numba.prange(oh):
        for x in range(ow):
            for k in range(3):
                res[y, x, k] = pl[k, y + top, x + left]
    return res


def rcd_rggb(cfa: np.ndarray, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """RCD on an RGGB float32 mosaic (even size, mirror margin >= 12) -> (H, W, 3).

    ``crop`` = (top, left, height, width) returns only that window (saves a copy).
    """
    c = np.ascontiguousarray(cfa, np.float32)
    top, left, oh, ow = (0, 0, *c.shape) if crop is None else crop
    return _rcd_numba(c, top, left, oh, ow)


# --------------------------------------------------------------------------------------------
# plain-numpy reference (same arithmetic, whole-array shifts; float64)


def _sh(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """a[y + dy, x + dx] at every (y, x) (wrapping; only interior values are meaningful)."""
    return np.roll(a, (-dy, -dx), axis=(0, 1))


def _stat_np(c: np.ndarray, dy: int, dx: int) -> np.ndarray:
    s = np.zeros_like(c)
    for k in (-1, 0, 1):
        cc = _sh(c, k * dy, k * dx)
        g1 = _sh(cc, -dy, -dx) - _sh(cc, dy, dx)
        g2 = _sh(cc, -2 * dy, -2 * dx) - 2.0 * cc + _sh(cc, 2 * dy, 2 * dx)
        s += g1 * g1 + 0.25 * g2 * g2
    return s


def _disc(cen: np.ndarray, nb: np.ndarray) -> np.ndarray:
    return np.where(np.abs(0.5 - cen) < np.abs(0.5 - nb), nb, cen)


def rcd_rggb_reference(cfa: np.ndarray) -> np.ndarray:
    """Plain-numpy RCD (reference for the numba kernel; valid away from a 10 px edge)."""
    c = np.asarray(cfa, np.float64)
    h, w = c.shape
    yy, xx = np.mgrid[0:h, 0:w]
    rb = (yy + xx) % 2 == 0
    v = _stat_np(c, 1, 0) + EPS
    hh = _stat_np(c, 0, 1) + EPS
    vh = v / (v + hh)
    p = _stat_np(c, 1, 1) + EPS
    q = _stat_np(c, 1, -1) + EPS
    pq = p / (p + q)
    lpf = 0.25 * c + 0.125 * (_sh(c, -1, 0) + _sh(c, 1, 0) + _sh(c, 0, -1) + _sh(c, 0, 1))
    lpf = lpf + 0.0625 * (_sh(c, -1, -1) + _sh(c, -1, 1) + _sh(c, 1, -1) + _sh(c, 1, 1))
    lpf = np.maximum(lpf, 0.0)

    def grad(dy: int, dx: int) -> np.ndarray:
        return (
            EPS
            + np.abs(_sh(c, -dy, -dx) - _sh(c, dy, dx))
            + np.abs(c - _sh(c, 2 * dy, 2 * dx))
            + np.abs(_sh(c, dy, dx) - _sh(c, 3 * dy, 3 * dx))
            + np.abs(_sh(c, 2 * dy, 2 * dx) - _sh(c, 4 * dy, 4 * dx))
        )

    def est(dy: int, dx: int) -> np.ndarray:
        return _sh(c, dy, dx) * (2.0 * lpf + EPS) / (EPS + lpf + _sh(lpf, 2 * dy, 2 * dx))

    gn, gs, gw, ge = grad(-1, 0), grad(1, 0), grad(0, -1), grad(0, 1)
    v_est = (gs * est(-1, 0) + gn * est(1, 0)) / (gn + gs)
    h_est = (ge * est(0, -1) + gw * est(0, 1)) / (gw + ge)
    nb = 0.25 * (_sh(vh, -1, -1) + _sh(vh, -1, 1) + _sh(vh, 1, -1) + _sh(vh, 1, 1))
    d = _disc(vh, nb)
    g = np.where(rb, v_est + d * (h_est - v_est), c)

    # step 4
    r = np.where((yy % 2 == 0) & (xx % 2 == 0), c, 0.0)
    b = np.where((yy % 2 == 1) & (xx % 2 == 1), c, 0.0)
    acc = {1: 0.0, -1: 0.0}
    wsum = {1: 0.0, -1: 0.0}
    for sy in (-1, 1):
        for sx in (-1, 1):
            c1 = _sh(c, sy, sx)
            gr = (
                EPS
                + np.abs(c1 - _sh(c, -sy, -sx))
                + np.abs(c1 - _sh(c, 3 * sy, 3 * sx))
                + np.abs(g - _sh(g, 2 * sy, 2 * sx))
            )
            acc[sy * sx] = acc[sy * sx] + (c1 - _sh(g, sy, sx)) / gr
            wsum[sy * sx] = wsum[sy * sx] + 1.0 / gr
    p_est = acc[1] / wsum[1]
    q_est = acc[-1] / wsum[-1]
    nb = 0.25 * (_sh(pq, -2, -2) + _sh(pq, -2, 2) + _sh(pq, 2, -2) + _sh(pq, 2, 2))
    d = _disc(pq, nb)
    diag = g + p_est + d * (q_est - p_est)
    r = np.where((yy % 2 == 1) & (xx % 2 == 1), diag, r)
    b = np.where((yy % 2 == 0) & (xx % 2 == 0), diag, b)

    # step 5
    nb = 0.25 * (_sh(vh, -1, 0) + _sh(vh, 1, 0) + _sh(vh, 0, -1) + _sh(vh, 0, 1))
    d = _disc(vh, nb)
    res = []
    for ch in (r, b):
        accs = []
        for dy, dx in ((1, 0), (0, 1)):
            a_ = 0.0
            w_ = 0.0
            for s in (-1, 1):
                c1 = _sh(ch, s * dy, s * dx)
                gr = (
                    EPS
                    + np.abs(g - _sh(g, 2 * s * dy, 2 * s * dx))
                    + np.abs(c1 - _sh(ch, -s * dy, -s * dx))
                    + np.abs(c1 - _sh(ch, 3 * s * dy, 3 * s * dx))
                )
                a_ = a_ + (c1 - _sh(g, s * dy, s * dx)) / gr
                w_ = w_ + 1.0 / gr
            accs.append(a_ / w_)
        val = g + accs[0] + d * (accs[1] - accs[0])
        res.append(np.where(rb, ch, val))
    out = np.stack([res[0], g, res[1]], axis=-1).astype(np.float32)
    out[:_M] = 0
    out[-_M:] = 0
    out[:, :_M] = 0
    out[:, -_M:] = 0
    return out
