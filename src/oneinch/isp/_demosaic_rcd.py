"""Ratio Corrected Demosaicing (L. Sanz Rodriguez, 2017), numba kernel and numpy reference.

Steps follow the RCD description: (1) vertical/horizontal discrimination from local
directional high-pass energy, refined by the neighbourhood where it is more decisive;
(2) a 3x3 low-pass of the mosaic; (3) green at R/B as ratio-corrected (low-pass ratio)
directional estimates, gradient-weighted per direction, then blended by (1); (4) R/B at B/R
from diagonal colour differences, blended by a diagonal discrimination; (5) R/B at G from
axial colour differences. ``rcd_rggb`` works on an RGGB mosaic with even size and a >= 12 px
mirror margin (outputs within 10 px of the edge are not computed; the caller crops them);
``rcd_bayer`` takes any Bayer phase and mirrors the borders itself. Both can apply the black
level, white scale and white-balance gains while reading stored integer samples.
"""

from __future__ import annotations

import numpy as np

from .. import _aot as aot
from .. import _jit
from .._jit import numba
from ._domain import dec1

EPS = 1e-5
EPS32 = np.float32(EPS)  # the kernel computes in float32 (the reference in float64)
_F = np.float32
_M = 10  # rows/cols at each edge left uncomputed


# --------------------------------------------------------------------------------------------
# numba kernel: a rolling row pipeline. The output window is cut into column tiles (and, for
# parallel whole-image calls, row bands); each tile is walked top to bottom, one mosaic row at
# a time, and every RCD intermediate (directional energies, V/H and P/Q discriminations,
# low-pass, green, the diagonal R/B estimate) lives in a ring of a few rows of tile width, so
# each one is computed exactly once per pixel and stays in L2 cache (~0.6 MB per tile of
# 2048 columns). With mosaic row L loaded, the stages run on rows L-2 (energies, low-pass),
# L-3 (discriminations), L-4 (green), L-6 (R/B at B/R) and L-9 (R/B at G: the output row).
# Every stage is evaluated at all pixels of its row (unit stride: SIMD) and the result at the
# wrong CFA sites is discarded by a select; each row function indexes ``row[i + k]`` with
# constant k >= 0 so that numba's wraparound checks fold away and the loops vectorise. The
# arithmetic (operation order included) is that of the numpy reference, in float32, but for
# the fused multiply-adds (_FM).
# The mosaic is read with reflect-101 borders by index (no padded copy), optionally as stored
# integers with the black level, 1/(white - black) scale and per-CFA-colour gains applied as
# they are read, and optionally (``encoded``) in the sRGB-encoded domain of ``_domain``: each
# uint16 sample looked up in its colour's table, the output rows decoded.

_TX = 2048  # tile columns
_BAND = 256  # rows per parallel task (whole-image calls)
_HALO = 9  # columns/rows of mosaic each side a tile reads
# float flags: no signed zeros, reciprocals and approximate functions allowed, and a * b + c
# contracted into one fused multiply-add (one rounding instead of two; the encoded path
# 17.6 -> 15.5 ns a pixel, linear 9.9 -> 9.6, one thread; _domain's decode loop shares them)
_FM = {"nsz", "arcp", "afn", "contract"}


@numba.njit(cache=True, inline="always", nogil=True)
def _refl(i, n):  # reflect-101 (np.pad mode="reflect"), also for pads longer than n
    if n == 1:
        return 0
    while i < 0 or i >= n:
        if i < 0:
            i = -i
        if i >= n:
            i = 2 * n - 2 - i
    return i


@numba.njit(cache=True, inline="always", error_model="numpy")
def _pick(cen, nb):
    return nb if abs(_F(0.5) - cen) < abs(_F(0.5) - nb) else cen


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _load_row(m, sy, ox, n, front, black, scale, ge, go, dst, enc, te, to, lin
              ):  # pragma: no cover - numba
    """dst[i] = mosaic[sy, refl(ox + i)] (front: (v - black) * scale * gain of its colour;
    ``ge``/``go``: gains at even/odd i). ``enc`` (uint16 samples): dst takes the encoded
    value from the colour's table (``te``/``to`` at even/odd i), ``lin`` the linear one."""
    w = m.shape[1]
    src = m[sy]
    if ox >= 0 and ox + n <= w:
        s = src[ox : ox + n]
        if enc:
            for i in range(n):
                gg = ge if (i & 1) == 0 else go
                lin[i] = ((_F(s[i]) - black) * scale) * gg
                k = int(s[i])
                dst[i] = te[k] if (i & 1) == 0 else to[k]
        elif front:
            for i in range(n):
                gg = ge if (i & 1) == 0 else go
                dst[i] = ((_F(s[i]) - black) * scale) * gg
        else:
            for i in range(n):
                dst[i] = _F(s[i])
    else:
        for i in range(n):
            raw = src[_refl(ox + i, w)]
            v = _F(raw)
            if front:
                gg = ge if (i & 1) == 0 else go
                v = ((v - black) * scale) * gg
            if enc:
                lin[i] = v
                dst[i] = te[int(raw)] if (i & 1) == 0 else to[int(raw)]
            else:
                dst[i] = v


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _energies_row(a2, a1, a0, b1, b2, n, ev, eh, ep, eq, lpf):  # pragma: no cover - numba
    """Step 1 energies (V, H, P, Q) and step 2 low-pass at columns 2..n+2 of the centre row."""
    for i in range(n):
        c0 = a0[i + 2]
        g1 = a1[i + 2] - b1[i + 2]
        g2 = a2[i + 2] - _F(2.0) * c0 + b2[i + 2]
        ev[i + 2] = g1 * g1 + _F(0.25) * g2 * g2
        g1 = a0[i + 1] - a0[i + 3]
        g2 = a0[i] - _F(2.0) * c0 + a0[i + 4]
        eh[i + 2] = g1 * g1 + _F(0.25) * g2 * g2
        g1 = a1[i + 1] - b1[i + 3]
        g2 = a2[i] - _F(2.0) * c0 + b2[i + 4]
        ep[i + 2] = g1 * g1 + _F(0.25) * g2 * g2
        g1 = a1[i + 3] - b1[i + 1]
        g2 = a2[i + 4] - _F(2.0) * c0 + b2[i]
        eq[i + 2] = g1 * g1 + _F(0.25) * g2 * g2
        lp = (
            _F(0.25) * c0
            + _F(0.125) * (a1[i + 2] + b1[i + 2] + a0[i + 1] + a0[i + 3])
            + _F(0.0625) * (a1[i + 1] + a1[i + 3] + b1[i + 1] + b1[i + 3])
        )
        lpf[i + 2] = max(lp, _F(0.0))


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _disc_row(evm, ev0, evp, eh0, epm, ep0, epp, eqm, eq0, eqp, n, vh, pq):  # pragma: no cover
    """Step 1 V/H and P/Q discriminations at columns 3..n+3."""
    for i in range(n):
        v = evm[i + 3] + ev0[i + 3] + evp[i + 3] + EPS32
        hh = eh0[i + 2] + eh0[i + 3] + eh0[i + 4] + EPS32
        vh[i + 3] = v / (v + hh)
        p = epm[i + 2] + ep0[i + 3] + epp[i + 4] + EPS32
        q = eqm[i + 4] + eq0[i + 3] + eqp[i + 2] + EPS32
        pq[i + 3] = p / (p + q)


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _green_row(cm4, cm3, cm2, cm1, c0, cp1, cp2, cp3, cp4, lm2, l0r, lp2, vm, v0, vp, n, par,
               g):  # pragma: no cover - numba
    """Step 3: green at columns 4..n+4 (R/B sites: ratio-corrected estimate; G: the sample).
    ``par``: column parity (of i) of the R/B sites."""
    for i in range(n):
        x = i + 4
        ci = c0[x]
        gn = (EPS32 + abs(cm1[x] - cp1[x]) + abs(ci - cm2[x]) + abs(cm1[x] - cm3[x])
              + abs(cm2[x] - cm4[x]))
        gs = (EPS32 + abs(cm1[x] - cp1[x]) + abs(ci - cp2[x]) + abs(cp1[x] - cp3[x])
              + abs(cp2[x] - cp4[x]))
        gw = (EPS32 + abs(c0[x - 1] - c0[x + 1]) + abs(ci - c0[x - 2])
              + abs(c0[x - 1] - c0[x - 3]) + abs(c0[x - 2] - c0[x - 4]))
        ge = (EPS32 + abs(c0[x - 1] - c0[x + 1]) + abs(ci - c0[x + 2])
              + abs(c0[x + 1] - c0[x + 3]) + abs(c0[x + 2] - c0[x + 4]))
        l0 = l0r[x]
        l2 = _F(2.0) * l0 + EPS32
        en = cm1[x] * l2 / (EPS32 + l0 + lm2[x])
        es = cp1[x] * l2 / (EPS32 + l0 + lp2[x])
        ew = c0[x - 1] * l2 / (EPS32 + l0 + l0r[x - 2])
        ee = c0[x + 1] * l2 / (EPS32 + l0 + l0r[x + 2])
        v_est = (gs * en + gn * es) / (gn + gs)
        h_est = (ge * ew + gw * ee) / (gw + ge)
        nb = _F(0.25) * (vm[x - 1] + vm[x + 1] + vp[x - 1] + vp[x + 1])
        d = _pick(v0[x], nb)
        est = v_est + d * (h_est - v_est)
        g[x] = est if (i & 1) == par else ci


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _rb_row(cm3, cm1, c0, cp1, cp3, gm2, gm1, g0r, gp1, gp2, pm2, p0, pp2, n,
            rb):  # pragma: no cover - numba
    """Step 4: B at R and R at B sites from diagonal colour differences, columns 6..n+6
    (computed at every column; only R/B sites are read)."""
    for i in range(n):
        x = i + 6
        g0 = g0r[x]
        # (sy, sx) = (-1, -1), (-1, 1), (1, -1), (1, 1), accumulated in that order
        c1 = cm1[x - 1]
        grad = EPS32 + abs(c1 - cp1[x + 1]) + abs(c1 - cm3[x - 3]) + abs(g0 - gm2[x - 2])
        wgt = _F(1.0) / grad
        acc_p = wgt * (c1 - gm1[x - 1])
        wsum_p = wgt
        c1 = cm1[x + 1]
        grad = EPS32 + abs(c1 - cp1[x - 1]) + abs(c1 - cm3[x + 3]) + abs(g0 - gm2[x + 2])
        wgt = _F(1.0) / grad
        acc_q = wgt * (c1 - gm1[x + 1])
        wsum_q = wgt
        c1 = cp1[x - 1]
        grad = EPS32 + abs(c1 - cm1[x + 1]) + abs(c1 - cp3[x - 3]) + abs(g0 - gp2[x - 2])
        wgt = _F(1.0) / grad
        acc_q += wgt * (c1 - gp1[x - 1])
        wsum_q += wgt
        c1 = cp1[x + 1]
        grad = EPS32 + abs(c1 - cm1[x - 1]) + abs(c1 - cp3[x + 3]) + abs(g0 - gp2[x + 2])
        wgt = _F(1.0) / grad
        acc_p += wgt * (c1 - gp1[x + 1])
        wsum_p += wgt
        p_est = acc_p / wsum_p
        q_est = acc_q / wsum_q
        nb = _F(0.25) * (pm2[x - 2] + pm2[x + 2] + pp2[x - 2] + pp2[x + 2])
        d = _pick(p0[x], nb)
        rb[x] = g0 + p_est + d * (q_est - p_est)


@numba.njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def _axial(g0, am3, am1, ap1, ap3, gm2, gm1, gp1, gp2, x):
    """Step 5 colour-difference estimate along one axis (s = -1 then +1)."""
    a1 = am1[x]
    gv = EPS32 + abs(g0 - gm2[x]) + abs(a1 - ap1[x]) + abs(a1 - am3[x])
    acc = (a1 - gm1[x]) / gv
    wsum = _F(1.0) / gv
    a1 = ap1[x]
    gv = EPS32 + abs(g0 - gp2[x]) + abs(a1 - am1[x]) + abs(a1 - ap3[x])
    acc += (a1 - gp1[x]) / gv
    wsum += _F(1.0) / gv
    return acc / wsum


@numba.njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def _axial_h(g0, a, gr, x):
    """_axial along the row ``a`` (green row ``gr``) at column x."""
    a1 = a[x - 1]
    gh = EPS32 + abs(g0 - gr[x - 2]) + abs(a1 - a[x + 1]) + abs(a1 - a[x - 3])
    acc = (a1 - gr[x - 1]) / gh
    wsum = _F(1.0) / gh
    a1 = a[x + 1]
    gh = EPS32 + abs(g0 - gr[x + 2]) + abs(a1 - a[x - 1]) + abs(a1 - a[x + 3])
    acc += (a1 - gr[x + 1]) / gh
    wsum += _F(1.0) / gh
    return acc / wsum


@numba.njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def _step5(g0, d, am3, am1, ap1, ap3, a, gm2, gm1, gr, gp1, gp2, x):
    """Step 5 at column x for one channel: its vertical (rows am3..ap3) and horizontal (row
    a) axial estimates blended by the V/H discrimination d."""
    v_est = _axial(g0, am3, am1, ap1, ap3, gm2, gm1, gp1, gp2, x)
    h_est = _axial_h(g0, a, gr, x)
    return g0 + v_est + d * (h_est - v_est)


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _out_row(cm3, cm1, c0, cp1, cp3, rm3, rm1, r0, rp1, rp3, gm2, gm1, g0r, gp1, gp2,
             vm, v0, vp, n, par, even, out, enc, c0l, tmp):  # pragma: no cover - numba
    """Step 5 and the output of columns 9..n+9: R/B sites take the sample (c) and the step-4
    estimate (rb); G sites the axial estimates of R and B. ``even``: an R row, where R is
    sampled along the row (horizontal source c, vertical rb) and B across it. ``enc``: the
    rows hold encoded values; the two interpolated values of each pixel go to ``tmp`` (2n,
    :func:`_out_pairs`), are decoded there in one unit-stride loop (decoding inside the loop
    cost 1.5x as much; decoding the sampled third too, then discarding it, a third more),
    then placed beside the pixel's linear sample from ``c0l``."""
    if enc:
        _out_pairs(cm3, cm1, c0, cp1, cp3, rm3, rm1, r0, rp1, rp3, gm2, gm1, g0r, gp1, gp2,
                   vm, v0, vp, n, par, tmp)
        _decode_row(out, n, 0 if even else 2, par, c0l, tmp)
        return
    # channel sampled along this row: H from c, V from rb; the other: H from rb, V from c
    for i in range(n):
        x = i + 9
        g0 = g0r[x]
        d = _pick(v0[x], _F(0.25) * (vm[x] + vp[x] + v0[x - 1] + v0[x + 1]))
        s_val = _step5(g0, d, rm3, rm1, rp1, rp3, c0, gm2, gm1, g0r, gp1, gp2, x)  # along
        o_val = _step5(g0, d, cm3, cm1, cp1, cp3, r0, gm2, gm1, g0r, gp1, gp2, x)  # across
        if (i & 1) == par:  # R/B site
            s_val = c0[x]
            o_val = r0[x]
        if even:
            out[3 * i] = s_val
            out[3 * i + 2] = o_val
        else:
            out[3 * i] = o_val
            out[3 * i + 2] = s_val
        out[3 * i + 1] = g0


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _out_pairs(cm3, cm1, c0, cp1, cp3, rm3, rm1, r0, rp1, rp3, gm2, gm1, g0r, gp1, gp2,
               vm, v0, vp, n, par, tmp):  # pragma: no cover - numba
    """``_out_row`` in the encoded domain: each pixel's two interpolated values into tmp,
    still encoded: G and the across-row channel at R/B sites, the along- and across-row
    channels at G sites."""
    for i in range(n):
        x = i + 9
        g0 = g0r[x]
        d = _pick(v0[x], _F(0.25) * (vm[x] + vp[x] + v0[x - 1] + v0[x + 1]))
        s_val = _step5(g0, d, rm3, rm1, rp1, rp3, c0, gm2, gm1, g0r, gp1, gp2, x)
        o_val = _step5(g0, d, cm3, cm1, cp1, cp3, r0, gm2, gm1, g0r, gp1, gp2, x)
        site = (i & 1) == par
        tmp[2 * i] = g0 if site else s_val
        tmp[2 * i + 1] = r0[x] if site else o_val


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _decode_row(out, n, cs, par, c0l, tmp):  # pragma: no cover - numba
    """Decode the interpolated pairs ``tmp`` of ``_out_row`` (one unit-stride loop), then
    write the output row: each pixel's linear sample from ``c0l`` and its two decoded
    values. The placing loop is specialised on the row's colour (``cs``) and phase: with
    both constant its indices need no negative-index wrap (a select each, which kept the
    loop scalar): 2.67 -> 2.1 ns a pixel for the whole row, the same values."""
    for j in range(2 * n):
        tmp[j] = dec1(tmp[j])
    p0 = par == 0  # even i: an R/B site (the sample along, G, across), else G (along, G)
    if cs == 0:
        if p0:
            _place_pairs(out, n, c0l, tmp, 0, True)
        else:
            _place_pairs(out, n, c0l, tmp, 0, False)
    elif p0:
        _place_pairs(out, n, c0l, tmp, 2, True)
    else:
        _place_pairs(out, n, c0l, tmp, 2, False)
    if n & 1:
        i = n - 1
        a, b, s = tmp[2 * i], tmp[2 * i + 1], c0l[i + 9]
        site = (i & 1) == par
        out[3 * i + cs] = s if site else a
        out[3 * i + 1] = a if site else s
        out[3 * i + 2 - cs] = b


@numba.njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def _place_pairs(out, n, c0l, tmp, cs, p0):  # pragma: no cover - numba
    """Pixel pairs (the first at even i) of :func:`_decode_row`; ``cs`` and ``p0`` are
    constants where it is inlined."""
    for k in range(n // 2):
        i = 2 * k
        a0, b0, s0 = tmp[2 * i], tmp[2 * i + 1], c0l[i + 9]
        a1, b1, s1 = tmp[2 * i + 2], tmp[2 * i + 3], c0l[i + 10]
        out[3 * i + cs] = s0 if p0 else a0
        out[3 * i + 1] = a0 if p0 else s0
        out[3 * i + 2 - cs] = b0
        out[3 * i + 3 + cs] = a1 if p0 else s1
        out[3 * i + 4] = s1 if p0 else a1
        out[3 * i + 5 - cs] = b1


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _rcd_task(m, ry, rx, y0, y1, x0, x1, front, black, scale, gt, res, ry0, rx0, enc, ct,
              tabs):  # pragma: no cover - numba
    """RCD of mosaic rows [y0, y1) x cols [x0, x1) into res[y - ry0, x - rx0]; (ry, rx): the
    position of an R sample; gt: (2, 2) front gains by (row, col) parity of the mosaic.
    ``enc``: work on encoded samples (``tabs[ct[row parity, col parity]]``: the colour's
    uint16 -> encoded table), decode the output."""
    h = m.shape[0]
    nw = x1 - x0 + 2 * _HALO
    ox = x0 - _HALO
    oy = y0 - _HALO
    cr = np.empty((16, nw), np.float32)
    cl = np.empty((16 if enc else 1, nw), np.float32)  # linear samples (enc)
    ev = np.empty((4, nw), np.float32)
    eh = np.empty((4, nw), np.float32)
    ep = np.empty((4, nw), np.float32)
    eq = np.empty((4, nw), np.float32)
    lp = np.empty((8, nw), np.float32)
    vh = np.empty((8, nw), np.float32)
    pq = np.empty((8, nw), np.float32)
    gr = np.empty((8, nw), np.float32)
    rb = np.empty((8, nw), np.float32)
    tmp = np.empty(2 * nw if enc else 1, np.float32)  # (enc) a row's interpolated pairs
    # R/B sites: (y - ry) + (x - rx) even; column parity of i for stage offset k: (x0-9+k+i)
    pb = (oy - ry + ox - rx) & 1  # parity of (j + lx) at R/B sites, j/lx local
    n_rows = y1 - y0 + 2 * _HALO
    for j in range(n_rows):
        # load mosaic row j (local), then the stages lagging behind it
        sy = _refl(oy + j, h)
        _load_row(m, sy, ox, nw, front, black, scale, gt[sy & 1, ox & 1],
                  gt[sy & 1, (ox + 1) & 1], cr[j & 15], enc, tabs[ct[sy & 1, ox & 1]],
                  tabs[ct[sy & 1, (ox + 1) & 1]], cl[(j & 15) if enc else 0])
        r = j - 2  # energies and low-pass
        if r >= 2 and r < n_rows - 2:
            _energies_row(cr[(r - 2) & 15], cr[(r - 1) & 15], cr[r & 15], cr[(r + 1) & 15],
                          cr[(r + 2) & 15], nw - 4, ev[r & 3], eh[r & 3], ep[r & 3],
                          eq[r & 3], lp[r & 7])
        r = j - 3  # discriminations
        if r >= 3 and r < n_rows - 3:
            _disc_row(ev[(r - 1) & 3], ev[r & 3], ev[(r + 1) & 3], eh[r & 3], ep[(r - 1) & 3],
                      ep[r & 3], ep[(r + 1) & 3], eq[(r - 1) & 3], eq[r & 3], eq[(r + 1) & 3],
                      nw - 6, vh[r & 7], pq[r & 7])
        r = j - 4  # green
        if r >= 4 and r < n_rows - 4:
            _green_row(cr[(r - 4) & 15], cr[(r - 3) & 15], cr[(r - 2) & 15],
                       cr[(r - 1) & 15], cr[r & 15], cr[(r + 1) & 15], cr[(r + 2) & 15],
                       cr[(r + 3) & 15], cr[(r + 4) & 15], lp[(r - 2) & 7], lp[r & 7],
                       lp[(r + 2) & 7], vh[(r - 1) & 7], vh[r & 7], vh[(r + 1) & 7],
                       nw - 8, (pb + r + 4) & 1, gr[r & 7])
        r = j - 6  # R/B at B/R
        if r >= 6 and r < n_rows - 6:
            _rb_row(cr[(r - 3) & 15], cr[(r - 1) & 15], cr[r & 15], cr[(r + 1) & 15],
                    cr[(r + 3) & 15], gr[(r - 2) & 7], gr[(r - 1) & 7], gr[r & 7],
                    gr[(r + 1) & 7], gr[(r + 2) & 7], pq[(r - 2) & 7], pq[r & 7],
                    pq[(r + 2) & 7], nw - 12, rb[r & 7])
        r = j - 9  # output
        if r >= 9 and r < n_rows - 9:
            even = ((oy + r - ry) & 1) == 0
            _out_row(cr[(r - 3) & 15], cr[(r - 1) & 15], cr[r & 15], cr[(r + 1) & 15],
                     cr[(r + 3) & 15], rb[(r - 3) & 7], rb[(r - 1) & 7], rb[r & 7],
                     rb[(r + 1) & 7], rb[(r + 3) & 7], gr[(r - 2) & 7], gr[(r - 1) & 7],
                     gr[r & 7], gr[(r + 1) & 7], gr[(r + 2) & 7], vh[(r - 1) & 7], vh[r & 7],
                     vh[(r + 1) & 7], x1 - x0, (pb + r + 9) & 1, even,
                     res[oy + r - ry0].reshape(-1)[3 * (x0 - rx0) : 3 * (x1 - rx0)], enc,
                     cl[(r & 15) if enc else 0], tmp)


@aot.entry
@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _rcd_numba(m, ry, rx, top, left, oh, ow, front, black, scale, gt, nby, enc, ct, tabs,
               res):  # pragma: no cover
    nbx = (ow + _TX - 1) // _TX
    nby = max(1, min(nby, (oh + _BAND - 1) // _BAND))
    band = (oh + nby - 1) // nby
    for t in numba.prange(nby * nbx):
        by = t // nbx
        bx = t - by * nbx
        y0 = top + by * band
        x0 = left + bx * _TX
        y1 = min(y0 + band, top + oh)
        if y1 > y0:
            _rcd_task(m, ry, rx, y0, y1, x0, min(x0 + _TX, left + ow), front, black, scale,
                      gt, res, top, left, enc, ct, tabs)
    return res


def _bands() -> int:
    """Row bands per call: one when numba runs one thread here (a strip of develop_strips)."""
    return 1 if _jit.threads() == 1 else 1 << 20


def _front_args(black, scale, gains, ry: int, rx: int) -> tuple[bool, np.float32, np.float32,
                                                              np.ndarray]:
    front = black is not None or scale is not None or gains is not None
    g = np.ones(3, np.float32) if gains is None else np.asarray(gains, np.float32).reshape(3)
    gt = np.empty((2, 2), np.float32)
    for py in (0, 1):
        for px in (0, 1):
            dy, dx = (py - ry) & 1, (px - rx) & 1
            gt[py, px] = g[0] if dy == dx == 0 else g[2] if dy == dx == 1 else g[1]
    return front, _F(0.0 if black is None else black), _F(1.0 if scale is None else scale), gt


_NO_TAB = np.zeros((3, 1), np.float32)


def _enc_args(encoded: bool, c: np.ndarray, black, scale, gains, ry: int, rx: int) -> tuple:
    """(enc, colour by parity, uint16 -> encoded tables) for the kernel."""
    from . import _domain

    ct = np.empty((2, 2), np.int64)
    for py in (0, 1):
        for px in (0, 1):
            dy, dx = (py - ry) & 1, (px - rx) & 1
            ct[py, px] = 0 if dy == dx == 0 else 2 if dy == dx == 1 else 1
    if not encoded:
        return False, ct, _NO_TAB
    if c.dtype != np.uint16:
        raise ValueError("rcd in the encoded domain reads stored uint16 samples")
    g = np.ones(3) if gains is None else np.asarray(gains, np.float64)
    tabs = _domain.stored_tables(0.0 if black is None else black,
                                 1.0 if scale is None else scale, g)
    return True, ct, tabs


def rcd_rggb(
    cfa: np.ndarray,
    crop: tuple[int, int, int, int] | None = None,
    *,
    black: float | None = None,
    scale: float | None = None,
    gains: tuple[float, float, float] | np.ndarray | None = None,
) -> np.ndarray:
    """RCD on an RGGB float32 mosaic (even size, mirror margin >= 12) -> (H, W, 3).

    ``crop`` = (top, left, height, width) returns only that window, which must stay >= 10 px
    inside the array. Without it the whole array comes back with a 10 px zero edge.
    Fused front: with any of ``black``, ``scale``, ``gains`` the mosaic (stored integers, e.g.
    uint16, or float) is read as ``(v - black) * scale * gains[colour]`` in float32, exactly
    what ``levels.normalize`` + ``whitebalance.apply_gains`` compute.
    """
    c = np.ascontiguousarray(cfa)
    if c.dtype not in (np.uint16, np.float32):
        c = c.astype(np.float32)
    h, w = c.shape
    fr = _front_args(black, scale, gains, 0, 0)
    en = _enc_args(False, c, black, scale, gains, 0, 0)
    if crop is not None:
        top, left, oh, ow = crop
        if top < _M or left < _M or top + oh > h - _M or left + ow > w - _M:
            raise ValueError(f"rcd crop {crop} too close to the edge of a {h}x{w} mosaic")
        return _rcd_numba(c, 0, 0, top, left, oh, ow, *fr, _bands(), *en,
                          np.empty((oh, ow, 3), np.float32))
    out = np.zeros((h, w, 3), np.float32)
    if h > 2 * _M and w > 2 * _M:
        out[_M:-_M, _M:-_M] = _rcd_numba(c, 0, 0, _M, _M, h - 2 * _M, w - 2 * _M, *fr,
                                         _bands(), *en,
                                         np.empty((h - 2 * _M, w - 2 * _M, 3), np.float32))
    return out


def rcd_bayer(
    mosaic: np.ndarray,
    r_at: tuple[int, int] = (0, 0),
    *,
    black: float | None = None,
    scale: float | None = None,
    gains: tuple[float, float, float] | np.ndarray | None = None,
    encoded: bool = False,
    rows: tuple[int, int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """RCD of a whole Bayer mosaic (any phase: ``r_at`` = (row, col) of an R sample in its
    first 2x2) -> (H, W, 3) float32, the borders mirrored (reflect-101) by index: the same as
    ``rcd_rggb`` on the mirror-padded array (demosaic.py's ``_bayer_pad``), without the copy.
    ``black``/``scale``/``gains``: the fused front of :func:`rcd_rggb` (uint16 input).
    ``encoded`` (uint16 input): interpolate the odd-extended sRGB encoding of the samples
    (``_domain``; a table per colour on the stored values) and decode the interpolated values
    as they are written; samples come back linear and exact: ``demosaic(..., 'rcd',
    domain='srgb')`` of the levelled, white-balanced mosaic.
    ``rows`` = (y0, y1): only those rows, which read the mosaic's rows around them (each
    output row is the same as in the whole result); ``out``: a C-contiguous float32 array of
    the result's shape to write them into."""
    c = np.ascontiguousarray(mosaic)
    if c.dtype not in (np.uint16, np.float32):
        c = c.astype(np.float32)
    if c.ndim != 2 or min(c.shape) < 2:
        raise ValueError(f"rcd_bayer needs a 2-D mosaic of at least 2x2, got {c.shape}")
    ry, rx = int(r_at[0]) & 1, int(r_at[1]) & 1
    h, w = c.shape
    y0, y1 = (0, h) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= y0 < y1 <= h:
        raise ValueError(f"rcd rows {rows} outside a mosaic of {h} rows")
    if out is None:
        out = np.empty((y1 - y0, w, 3), np.float32)
    elif (out.shape != (y1 - y0, w, 3) or out.dtype != np.float32
          or not out.flags.c_contiguous):
        raise ValueError(f"rcd out must be C-contiguous float32 {(y1 - y0, w, 3)}")
    return _rcd_numba(c, ry, rx, y0, 0, y1 - y0, w, *_front_args(black, scale, gains, ry, rx),
                      _bands(), *_enc_args(encoded, c, black, scale, gains, ry, rx), out)


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
