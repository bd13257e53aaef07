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
EPS32 = np.float32(EPS)  # the kernel computes in float32 (the reference in float64)
_F = np.float32
_M = 10  # rows/cols at each edge left uncomputed


# --------------------------------------------------------------------------------------------
# numba kernel: the image is cut into tiles of output pixels, processed in parallel; each tile
# computes every intermediate (discriminations, low-pass, green, R/B) in small tile-local
# buffers covering the tile plus the 9 px halo its dependencies need (cache resident, no
# full-size temporaries). The arithmetic is the same as the numpy reference.

_TY = 64  # tile rows
_TX = 256  # tile columns
_HALO = 9


@numba.njit(cache=True, inline="always", error_model="numpy")
def _energy(c, y, x, dy, dx):
    g1 = c[y - dy, x - dx] - c[y + dy, x + dx]
    g2 = c[y - 2 * dy, x - 2 * dx] - _F(2.0) * c[y, x] + c[y + 2 * dy, x + 2 * dx]
    return g1 * g1 + _F(0.25) * g2 * g2


@numba.njit(cache=True, inline="always", error_model="numpy")
def _pick(cen, nb):
    return nb if abs(_F(0.5) - cen) < abs(_F(0.5) - nb) else cen


@numba.njit(cache=True, fastmath={"nsz", "arcp", "afn"}, nogil=True, error_model="numpy")
def _rcd_tile(c, y0, y1, x0, x1, res, top, left):
    """RCD for output pixels [y0, y1) x [x0, x1) (padded coordinates) into ``res``."""
    oy = y0 - _HALO
    ox = x0 - _HALO
    ny = y1 - y0 + 2 * _HALO
    nx = x1 - x0 + 2 * _HALO
    ev = np.empty((ny, nx), np.float32)
    eh = np.empty((ny, nx), np.float32)
    ep = np.empty((ny, nx), np.float32)
    eq = np.empty((ny, nx), np.float32)
    vh = np.empty((ny, nx), np.float32)
    pq = np.empty((ny, nx), np.float32)
    lpf = np.empty((ny, nx), np.float32)
    g = np.empty((ny, nx), np.float32)
    rb = np.empty((ny, nx), np.float32)  # the other of R/B at R/B sites
    # step 1: directional energies (rows/cols +-7 around the tile)
    for y in range(y0 - 7, y1 + 7):
        ly = y - oy
        for x in range(x0 - 7, x1 + 7):
            lx = x - ox
            ev[ly, lx] = _energy(c, y, x, 1, 0)
            eh[ly, lx] = _energy(c, y, x, 0, 1)
        for x in range(x0 - 6 + ((y + x0) & 1), x1 + 6, 2):  # R/B sites
            lx = x - ox
            ep[ly, lx] = _energy(c, y, x, 1, 1)
            eq[ly, lx] = _energy(c, y, x, 1, -1)
    # step 1, 2: discriminations (+-6) and low-pass at R/B sites (+-7)
    for y in range(y0 - 6, y1 + 6):
        ly = y - oy
        for x in range(x0 - 6, x1 + 6):
            lx = x - ox
            v = ev[ly - 1, lx] + ev[ly, lx] + ev[ly + 1, lx] + EPS32
            hh = eh[ly, lx - 1] + eh[ly, lx] + eh[ly, lx + 1] + EPS32
            vh[ly, lx] = v / (v + hh)
        for x in range(x0 - 5 + ((y + x0 + 1) & 1), x1 + 5, 2):  # R/B sites
            lx = x - ox
            p = ep[ly - 1, lx - 1] + ep[ly, lx] + ep[ly + 1, lx + 1] + EPS32
            q = eq[ly - 1, lx + 1] + eq[ly, lx] + eq[ly + 1, lx - 1] + EPS32
            pq[ly, lx] = p / (p + q)
    for y in range(y0 - 7, y1 + 7):
        ly = y - oy
        for x in range(x0 - 7 + ((y + x0 + 1) & 1), x1 + 7, 2):  # R/B sites
            lp = (
                _F(0.25) * c[y, x]
                + _F(0.125) * (c[y - 1, x] + c[y + 1, x] + c[y, x - 1] + c[y, x + 1])
                + _F(0.0625)
                * (c[y - 1, x - 1] + c[y - 1, x + 1] + c[y + 1, x - 1] + c[y + 1, x + 1])
            )
            lpf[ly, x - ox] = max(lp, _F(0.0))
    # step 3: green (+-5)
    for y in range(y0 - 5, y1 + 5):
        ly = y - oy
        for x in range(x0 - 5 + ((y + x0) & 1), x1 + 5, 2):  # G sites: the sample
            g[ly, x - ox] = c[y, x]
        for x in range(x0 - 5 + ((y + x0 + 1) & 1), x1 + 5, 2):  # R/B sites
            ci = c[y, x]
            lx = x - ox
            gn = (
                EPS32
                + abs(c[y - 1, x] - c[y + 1, x])
                + abs(ci - c[y - 2, x])
                + abs(c[y - 1, x] - c[y - 3, x])
                + abs(c[y - 2, x] - c[y - 4, x])
            )
            gs = (
                EPS32
                + abs(c[y - 1, x] - c[y + 1, x])
                + abs(ci - c[y + 2, x])
                + abs(c[y + 1, x] - c[y + 3, x])
                + abs(c[y + 2, x] - c[y + 4, x])
            )
            gw = (
                EPS32
                + abs(c[y, x - 1] - c[y, x + 1])
                + abs(ci - c[y, x - 2])
                + abs(c[y, x - 1] - c[y, x - 3])
                + abs(c[y, x - 2] - c[y, x - 4])
            )
            ge = (
                EPS32
                + abs(c[y, x - 1] - c[y, x + 1])
                + abs(ci - c[y, x + 2])
                + abs(c[y, x + 1] - c[y, x + 3])
                + abs(c[y, x + 2] - c[y, x + 4])
            )
            l0 = lpf[ly, lx]
            l2 = _F(2.0) * l0 + EPS32
            en = c[y - 1, x] * l2 / (EPS32 + l0 + lpf[ly - 2, lx])
            es = c[y + 1, x] * l2 / (EPS32 + l0 + lpf[ly + 2, lx])
            ew = c[y, x - 1] * l2 / (EPS32 + l0 + lpf[ly, lx - 2])
            ee = c[y, x + 1] * l2 / (EPS32 + l0 + lpf[ly, lx + 2])
            v_est = (gs * en + gn * es) / (gn + gs)
            h_est = (ge * ew + gw * ee) / (gw + ge)
            nb = _F(0.25) * (
                vh[ly - 1, lx - 1] + vh[ly - 1, lx + 1] + vh[ly + 1, lx - 1] + vh[ly + 1, lx + 1]
            )
            d = _pick(vh[ly, lx], nb)
            g[ly, lx] = v_est + d * (h_est - v_est)
    # step 4: B at R and R at B sites (+-3), diagonal colour differences
    for y in range(y0 - 3, y1 + 3):
        ly = y - oy
        for x in range(x0 - 3 + ((y + x0 + 1) & 1), x1 + 3, 2):
            lx = x - ox
            g0 = g[ly, lx]
            acc_p = _F(0.0)
            acc_q = _F(0.0)
            wsum_p = _F(0.0)
            wsum_q = _F(0.0)
            for sy in (-1, 1):
                for sx in (-1, 1):
                    c1 = c[y + sy, x + sx]
                    grad = (
                        EPS32
                        + abs(c1 - c[y - sy, x - sx])
                        + abs(c1 - c[y + 3 * sy, x + 3 * sx])
                        + abs(g0 - g[ly + 2 * sy, lx + 2 * sx])
                    )
                    est = c1 - g[ly + sy, lx + sx]
                    wgt = _F(1.0) / grad
                    if sy == sx:  # P diagonal (NW-SE)
                        acc_p += wgt * est
                        wsum_p += wgt
                    else:
                        acc_q += wgt * est
                        wsum_q += wgt
            p_est = acc_p / wsum_p
            q_est = acc_q / wsum_q
            nb = _F(0.25) * (
                pq[ly - 2, lx - 2] + pq[ly - 2, lx + 2] + pq[ly + 2, lx - 2] + pq[ly + 2, lx + 2]
            )
            d = _pick(pq[ly, lx], nb)
            rb[ly, lx] = g0 + p_est + d * (q_est - p_est)
    # step 5: R and B at G sites (the tile itself), and the output
    for y in range(y0, y1):
        ly = y - oy
        ry = y - top
        even = y % 2 == 0
        for x in range(x0 + ((y + x0) & 1), x1, 2):  # R/B sites
            lx = x - ox
            rx = x - left
            if even:
                res[ry, rx, 0] = c[y, x]
                res[ry, rx, 2] = rb[ly, lx]
            else:
                res[ry, rx, 0] = rb[ly, lx]
                res[ry, rx, 2] = c[y, x]
            res[ry, rx, 1] = g[ly, lx]
        for x in range(x0 + ((y + x0 + 1) & 1), x1, 2):  # G sites
            lx = x - ox
            rx = x - left
            g0 = g[ly, lx]
            res[ry, rx, 1] = g0
            nb = _F(0.25) * (vh[ly - 1, lx] + vh[ly + 1, lx] + vh[ly, lx - 1] + vh[ly, lx + 1])
            d = _pick(vh[ly, lx], nb)
            # at a G site in an R row R is left/right (sampled) and B up/down; the value of a
            # channel at an R/B site is the sample (c) or the step-4 estimate (rb)
            for ch in (0, 2):
                h_is_c = (ch == 0) == even  # channel sampled along the row
                accv = _F(0.0)
                wv = _F(0.0)
                acch = _F(0.0)
                wh = _F(0.0)
                for s in (-1, 1):
                    if h_is_c:
                        a1 = rb[ly + s, lx]
                        a2 = rb[ly - s, lx]
                        a3 = rb[ly + 3 * s, lx]
                        b1 = c[y, x + s]
                        b2 = c[y, x - s]
                        b3 = c[y, x + 3 * s]
                    else:
                        a1 = c[y + s, x]
                        a2 = c[y - s, x]
                        a3 = c[y + 3 * s, x]
                        b1 = rb[ly, lx + s]
                        b2 = rb[ly, lx - s]
                        b3 = rb[ly, lx + 3 * s]
                    gv = EPS32 + abs(g0 - g[ly + 2 * s, lx]) + abs(a1 - a2) + abs(a1 - a3)
                    accv += (a1 - g[ly + s, lx]) / gv
                    wv += _F(1.0) / gv
                    gh = EPS32 + abs(g0 - g[ly, lx + 2 * s]) + abs(b1 - b2) + abs(b1 - b3)
                    acch += (b1 - g[ly, lx + s]) / gh
                    wh += _F(1.0) / gh
                v_est = accv / wv
                h_est = acch / wh
                res[ry, rx, ch] = g0 + v_est + d * (h_est - v_est)


@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _rcd_numba(c, top, left, oh, ow):
    res = np.empty((oh, ow, 3), np.float32)
    nty = (oh + _TY - 1) // _TY
    ntx = (ow + _TX - 1) // _TX
    for t in numba.prange(nty * ntx):
        ty = t // ntx
        tx = t - ty * ntx
        y0 = top + ty * _TY
        x0 = left + tx * _TX
        _rcd_tile(c, y0, min(y0 + _TY, top + oh), x0, min(x0 + _TX, left + ow), res, top, left)
    return res


def rcd_rggb(cfa: np.ndarray, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """RCD on an RGGB float32 mosaic (even size, mirror margin >= 12) -> (H, W, 3).

    ``crop`` = (top, left, height, width) returns only that window, which must stay >= 10 px
    inside the array. Without it the whole array comes back with a 10 px zero edge.
    """
    c = np.ascontiguousarray(cfa, np.float32)
    h, w = c.shape
    if crop is not None:
        top, left, oh, ow = crop
        if top < _M or left < _M or top + oh > h - _M or left + ow > w - _M:
            raise ValueError(f"rcd crop {crop} too close to the edge of a {h}x{w} mosaic")
        return _rcd_numba(c, top, left, oh, ow)
    out = np.zeros((h, w, 3), np.float32)
    if h > 2 * _M and w > 2 * _M:
        out[_M:-_M, _M:-_M] = _rcd_numba(c, _M, _M, h - 2 * _M, w - 2 * _M)
    return out


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
