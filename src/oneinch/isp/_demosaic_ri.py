"""High-quality Bayer demosaicing: gradient-weighted green + residual interpolation of R/B.

Green: Pekkucuksen & Glotzbach 2010, "Gradient based threshold free color filter array
interpolation" (GBTF), sec. 2: Hamilton-Adams directional colour differences, combined from
four directions with weights 1 / (sum of directional gradients)^2.
R/B: Kiku, Monno, Tanaka, Okutomi 2013, "Residual interpolation for color image demosaicking"
(ICIP), sec. 3: a linear fit a * G + b of the R (B) samples to the full green guide, made in
7x7 windows and averaged as in the guided filter (He, Sun, Tang 2010, box-filter form), gives a
tentative R; the residual R - tentative, known at the samples, is interpolated bilinearly and
added back. The fit is the minimized-Laplacian one of Kiku et al. 2014/2016 (MLRI,
``mlri_sparse``) rather than the guided filter's least squares: bench/quality_demosaic.py,
Kodak-24 / McMaster-18, 39.43 / 35.91 -> 39.90 / 35.98 dB. On an RGGB mosaic with a mirror
margin.

``ri_rggb`` is the numba form (running-sum box filters, nogil, one thread per strip);
``ri_rggb_reference`` the OpenCV box-filter form it is tested against (same float32 steps).
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import _aot as aot
from .._jit import njit

_B = cv2.BORDER_REFLECT_101


def _f(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    return cv2.filter2D(img, cv2.CV_32F, np.asarray(k, np.float32), borderType=_B)


def _box(img: np.ndarray, ky: int, kx: int) -> np.ndarray:
    return cv2.boxFilter(img, cv2.CV_32F, (kx, ky), normalize=False, borderType=_B)


def _masks(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.zeros((h, w), np.float32)
    b = np.zeros((h, w), np.float32)
    r[0::2, 0::2] = 1
    b[1::2, 1::2] = 1
    return r, 1 - r - b, b


def ha_diffs(cfa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hamilton-Adams horizontal and vertical colour differences G - X at every pixel."""
    h, w = cfa.shape
    _, mg, _ = _masks(h, w)
    sign = 2 * mg - 1  # +1 at G: difference is always G - (R or B)
    ha = np.array([[-0.25, 0.5, 0.5, 0.5, -0.25]], np.float32)  # other colour along the line
    return sign * (cfa - _f(cfa, ha)), sign * (cfa - _f(cfa, ha.T))


def green_gbtf(
    cfa: np.ndarray,
    diffs: tuple[np.ndarray, np.ndarray] | None = None,
    taper: np.ndarray | None = None,
) -> np.ndarray:
    """Full green plane by GBTF (Pekkucuksen & Glotzbach 2010) on an RGGB mosaic."""
    h, w = cfa.shape
    _, mg, _ = _masks(h, w)
    dh, dv = ha_diffs(cfa) if diffs is None else diffs
    grad_h = np.abs(_f(dh, np.array([[-1, 0, 1]], np.float32)))
    grad_v = np.abs(_f(dv, np.array([[-1], [0], [1]], np.float32)))
    # directional gradient sums over 5x5 windows offset toward each direction
    sv = _box(grad_v, 5, 5)
    sh = _box(grad_h, 5, 5)
    eps = np.float32(1e-10)
    w_n = 1.0 / (_shifted(sv, 2, 0) ** 2 + eps)  # window rows y-4..y
    w_s = 1.0 / (_shifted(sv, -2, 0) ** 2 + eps)
    w_w = 1.0 / (_shifted(sh, 2, 1) ** 2 + eps)
    w_e = 1.0 / (_shifted(sh, -2, 1) ** 2 + eps)
    f = np.array([0.56, 0.35, 0.08, 0.01, 0.0], np.float32) if taper is None else taper
    k_n = np.zeros((9, 1), np.float32)
    k_n[:5, 0] = f[::-1]  # rows y-4..y, weight f[0] at y
    k_s = k_n[::-1].copy()
    e_n = _f(dv, k_n)
    e_s = _f(dv, k_s)
    e_w = _f(dh, k_n.T.copy())
    e_e = _f(dh, k_s.T.copy())
    delta = (w_n * e_n + w_s * e_s + w_w * e_w + w_e * e_e) / (w_n + w_s + w_w + w_e)
    return np.where(mg > 0, cfa, cfa + delta).astype(np.float32)


def _shifted(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``a`` moved ``k`` places along ``axis`` (element i holds a[i - k]), reflected (101)
    past the border. Not np.roll, which wraps around: the first rows' weights came from the
    last rows, and iri's 91-px refinement window carried that ~20 px into the image, from
    whatever rows the array ended with (a strip's differed from the whole image's)."""
    pad = [(0, 0)] * a.ndim
    pad[axis] = (k, 0) if k > 0 else (0, -k)
    p = np.pad(a, pad, mode="reflect")
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(0, a.shape[axis]) if k > 0 else slice(-k, None)
    return p[tuple(idx)]


_K_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
# the Laplacian on one colour's 2x2 lattice (its samples 2 px apart)
_LAP_SPARSE = np.zeros((5, 5), np.float32)
_LAP_SPARSE[2, 2] = 4.0
_LAP_SPARSE[0, 2] = _LAP_SPARSE[4, 2] = _LAP_SPARSE[2, 0] = _LAP_SPARSE[2, 4] = -1.0
RB_RADIUS = 3  # the fit's window is 7 x 7
RB_EPS = 1e-3  # regularises a where the guide's Laplacian energy is low (flat windows)


def mlri_sparse(
    guide: np.ndarray, target: np.ndarray, mask: np.ndarray, r: int = RB_RADIUS,
    eps: float = RB_EPS,
) -> np.ndarray:
    """Minimized-Laplacian fit of ``target`` (known where ``mask`` > 0) to ``guide``:
    a * guide + b, the (a, b) of each (2r+1)^2 window averaged as in the guided filter.

    Kiku, Monno, Tanaka, Okutomi 2014, "Minimized-Laplacian residual interpolation for color
    image demosaicking" (Proc. SPIE 9023), and 2016, "Beyond color difference: residual
    interpolation for color image demosaicking" (IEEE TIP 25(3)): the slope a minimises the
    energy of the Laplacian of the residual target - a * guide over the window's samples,
    a = sum(Lg * Lt) / (sum(Lg^2) + eps), Lg and Lt the Laplacians on the samples' own
    lattice; b makes the residual's mean zero there. The guided filter's a (covariance over
    variance) fits the values, so a window across an edge gets the slope of the edge's two
    levels; the Laplacian's fit follows the local shape (what the residual's interpolation
    then has to fill is smoother), which keeps colour edges that do not move with green.
    """
    k = 2 * r + 1
    lg = _f(guide * mask, _LAP_SPARSE) * mask
    lt = _f(target * mask, _LAP_SPARSE) * mask
    a = _box(lg * lt, k, k) / (_box(lg * lg, k, k) + np.float32(eps))
    n = _box(mask, k, k) + 1e-12
    mi = _box(guide * mask, k, k) / n
    mp = _box(target * mask, k, k) / n
    b = mp - a * mi
    nn = float(k * k)
    return (_box(a, k, k) / nn) * guide + _box(b, k, k) / nn


def rb_residual(
    cfa: np.ndarray, green: np.ndarray, r: int = RB_RADIUS, eps: float = RB_EPS
) -> tuple[np.ndarray, np.ndarray]:
    """R and B by residual interpolation with green as the guide (Kiku et al. 2013, sec. 3),
    the tentative plane fitted by the minimized-Laplacian rule (``mlri_sparse``)."""
    h, w = cfa.shape
    mr, _, mb = _masks(h, w)
    out = []
    for m in (mr, mb):
        tent = mlri_sparse(green, cfa * m, m, r, eps)
        resid = (cfa - tent) * m
        out.append((tent + _f(resid, _K_RB)).astype(np.float32))
    return out[0], out[1]


def ri_rggb_reference(cfa: np.ndarray) -> np.ndarray:
    """Plain OpenCV/numpy form of :func:`ri_rggb` (the reference the numba path is tested on)."""
    c = np.ascontiguousarray(cfa, np.float32)
    g = green_gbtf(c)
    r, b = rb_residual(c, g)
    return np.ascontiguousarray(np.stack([r, g, b], axis=-1))


# --------------------------------------------------------------------------------------------
# numba path: the same arithmetic (float32 steps, float64 box sums as OpenCV keeps them), with
# the box filters as running sums (O(1) per pixel) and the steps of each row fused. Only pixels
# whose whole support lies inside the array are computed; ri_rggb's caller crops a mirror margin
# of >= 18 px, which covers the reach (GBTF 8 + the lattice Laplacian 2 + two 7x7 boxes + the
# 3x3 residual kernel = 17).

_GM = 8  # rows/cols of the green plane's border copied from the mosaic (GBTF reach is 7)


@aot.entry
@njit(cache=True, nogil=True, error_model="numpy")
def _green_nb(
    c: np.ndarray,
    f0: float,
    f1: float,
    f2: float,
    f3: float,
    g: np.ndarray,
    dh: np.ndarray,
    dv: np.ndarray,
    wh: np.ndarray,
    wv: np.ndarray,
) -> None:
    """GBTF green (as :func:`green_gbtf`) of an RGGB mosaic into g; a border of _GM px keeps
    the mosaic value. dh, dv, wh, wv: (H, W) float32 scratch (any content).
    The per-pixel loops run over every column (the R/B sites' values kept) with offsets >= 0
    and numpy's error model (no zero-division branch): LLVM vectorises them; the weights'
    and the estimate's divisions had kept their stride-2 loops scalar."""
    h, w = c.shape
    q, hf = np.float32(0.25), np.float32(0.5)
    k0, k1 = np.float64(np.float32(f0)), np.float64(np.float32(f1))
    k2, k3 = np.float64(np.float32(f2)), np.float64(np.float32(f3))
    eps = np.float32(1e-10)
    one = np.float32(1.0)
    for y in range(h):
        for x in (0, 1, w - 2, w - 1):
            dh[y, x] = 0.0
        cr = c[y]
        dr = dh[y, 2:]
        for i in range(w - 4):  # x = i + 2
            s = hf * cr[i + 1] - q * cr[i]
            s = s + hf * cr[i + 2] + hf * cr[i + 3] - q * cr[i + 4]
            dr[i] = (cr[i + 2] - s) * np.float32(((y + i) & 1) * 2 - 1)
    for y in (0, 1, h - 2, h - 1):
        for x in range(w):
            dv[y, x] = 0.0
    for y in range(2, h - 2):
        r0, r1, r2, r3, r4 = c[y - 2], c[y - 1], c[y], c[y + 1], c[y + 2]
        dr = dv[y]
        for x in range(w):
            s = hf * r1[x] - q * r0[x]
            s = s + hf * r2[x] + hf * r3[x] - q * r4[x]
            dr[x] = (r2[x] - s) * np.float32(((y + x) & 1) * 2 - 1)
    colh = np.zeros(w, np.float64)
    colv = np.zeros(w, np.float64)
    y0 = 5
    for yy in range(y0 - 2, y0 + 3):
        for x in range(1, w - 1):
            colh[x] += abs(dh[yy, x + 1] - dh[yy, x - 1])
            colv[x] += abs(dv[yy + 1, x] - dv[yy - 1, x])
    for y in range(y0, h - y0):
        if y > y0:
            yn, yo = y + 2, y - 3
            hn, ho, ch1 = dh[yn], dh[yo], colh[1:]
            vn1, vn0, vo1, vo0 = dv[yn + 1], dv[yn - 1], dv[yo + 1], dv[yo - 1]
            for i in range(w - 2):
                ch1[i] += abs(hn[i + 2] - hn[i]) - np.float64(abs(ho[i + 2] - ho[i]))
            for x in range(w):
                colv[x] += abs(vn1[x] - vn0[x]) - np.float64(abs(vo1[x] - vo0[x]))
        # every column (unit stride: vectorised); only the R/B sites' are read
        whr, wvr = wh[y, 5:], wv[y, 5:]
        for i in range(w - 10):  # x = i + 5
            v = np.float32(colh[i + 3] + colh[i + 4] + colh[i + 5] + colh[i + 6] + colh[i + 7])
            whr[i] = one / (v * v + eps)
            v = np.float32(colv[i + 3] + colv[i + 4] + colv[i + 5] + colv[i + 6] + colv[i + 7])
            wvr[i] = one / (v * v + eps)
    t = np.empty(w, np.float32)
    for y in range(h):
        if y < _GM or y >= h - _GM:
            for x in range(w):
                g[y, x] = c[y, x]
            continue
        vm3, vm2, vm1, v0 = dv[y - 3], dv[y - 2], dv[y - 1], dv[y]
        vp1, vp2, vp3 = dv[y + 1], dv[y + 2], dv[y + 3]
        hr, wn_r, ws_r, wr = dh[y], wv[y - 2], wv[y + 2], wh[y]
        cr = c[y]
        for x in range(_GM, w - _GM):  # every column (vectorised), the R/B sites kept
            wn = wn_r[x]
            ws = ws_r[x]
            ww = wr[x - 2]
            we = wr[x + 2]
            en = np.float32(k3 * vm3[x])
            en = np.float32(k2 * vm2[x] + en)
            en = np.float32(k1 * vm1[x] + en)
            en = np.float32(k0 * v0[x] + en)
            es = np.float32(k0 * v0[x])
            es = np.float32(k1 * vp1[x] + es)
            es = np.float32(k2 * vp2[x] + es)
            es = np.float32(k3 * vp3[x] + es)
            ew = np.float32(k3 * hr[x - 3])
            ew = np.float32(k2 * hr[x - 2] + ew)
            ew = np.float32(k1 * hr[x - 1] + ew)
            ew = np.float32(k0 * hr[x] + ew)
            ee = np.float32(k0 * hr[x])
            ee = np.float32(k1 * hr[x + 1] + ee)
            ee = np.float32(k2 * hr[x + 2] + ee)
            ee = np.float32(k3 * hr[x + 3] + ee)
            num = wn * en + ws * es + ww * ew + we * ee
            t[x] = cr[x] + num / (wn + ws + ww + we)
        for x in range(w):
            g[y, x] = c[y, x]
        for x in range(_GM + (y & 1), w - _GM, 2):
            g[y, x] = t[x]


@njit(cache=True, nogil=True, inline="always")
def _lap(r0: np.ndarray, ru: np.ndarray, rd: np.ndarray, x: int, xl: int, xr: int) -> float:
    """The lattice Laplacian at column x of row r0 (ru, rd: the rows 2 above and below; xl,
    xr: the columns 2 left and right), in float32 steps as the reference's filter."""
    v = np.float32(4.0) * r0[x] - ru[x]
    v = v - rd[x]
    v = v - r0[xl]
    return v - r0[xr]


@njit(cache=True, nogil=True)
def _lap_products(g: np.ndarray, c: np.ndarray, y: int, p: int, gt: np.ndarray,
                  gg: np.ndarray) -> None:
    """At the samples (y, x = p, p + 2, ...) of one row: the lattice Laplacians (``_LAP_SPARSE``,
    reflect-101 borders as OpenCV's filter in the reference) Lg of ``g`` and Lt of ``c``, and
    gt[x] = Lg * Lt, gg[x] = Lg * Lg (float32 products, as the reference's)."""
    h, w = c.shape
    yu, yd = y - 2, y + 2
    if yu < 0:
        yu = -yu
    if yd >= h:
        yd = 2 * h - 2 - yd
    g0, gu, gd, c0, cu, cd = g[y], g[yu], g[yd], c[y], c[yu], c[yd]
    s0 = max(2, w - 2)
    s0 += (s0 - p) & 1
    for x in list(range(p, min(2, w), 2)) + list(range(s0, w, 2)):  # the edge columns
        xl, xr = x - 2, x + 2
        if xl < 0:
            xl = -xl
        if xr >= w:
            xr = 2 * w - 2 - xr
        lg, lt = _lap(g0, gu, gd, x, xl, xr), _lap(c0, cu, cd, x, xl, xr)
        gt[x] = lg * lt
        gg[x] = lg * lg
    # the interior at every column (unit stride: vectorised; the other lattice's values are
    # never read)
    for x in range(2, w - 2):
        lg, lt = _lap(g0, gu, gd, x, x - 2, x + 2), _lap(c0, cu, cd, x, x - 2, x + 2)
        gt[x] = lg * lt
        gg[x] = lg * lg


@aot.entry
@njit(cache=True, nogil=True, error_model="numpy")
def _rb_nb(
    c: np.ndarray,
    g: np.ndarray,
    p: int,
    eps: float,
    av: np.ndarray,
    bv: np.ndarray,
    tent: np.ndarray,
) -> None:
    """Residual interpolation (as :func:`rb_residual`, r = 3) of the colour sampled at
    (p, p) mod 2, into ``tent`` (planar; its outermost ring 0): minimized-Laplacian fit on
    the samples (``mlri_sparse``), 7x7 mean of (a, b), tentative plane, bilinear residual
    added in place. Box sums are float64 column sums (running down the image) summed 7 wide
    per pixel and rounded to float32; the fit's divisions in a loop of their own. av, bv,
    tent: (H, W) float32 scratch (any content)."""
    h, w = c.shape
    r = 3
    for y in range(h):
        if y < r or y >= h - r:
            for x in range(w):
                av[y, x] = 0.0
                bv[y, x] = 0.0
                tent[y, x] = 0.0
        else:
            for x in list(range(0, r)) + list(range(w - r, w)):
                av[y, x] = 0.0
                bv[y, x] = 0.0
                tent[y, x] = 0.0
    e32 = np.float32(eps)
    tiny = np.float32(1e-12)
    nn = np.float32(49.0)
    cn = np.zeros(w, np.float64)
    cg = np.zeros(w, np.float64)
    ct = np.zeros(w, np.float64)
    cgt = np.zeros(w, np.float64)
    cgg = np.zeros(w, np.float64)
    m = w - 2 * r
    s_n = np.empty(m, np.float32)
    s_g = np.empty(m, np.float32)
    s_t = np.empty(m, np.float32)
    s_gt = np.empty(m, np.float32)
    s_gg = np.empty(m, np.float32)
    # each sample row's Laplacian products, made once as it enters the window and read again
    # as it leaves (a window holds at most 4 sample rows: 8 slots)
    ring_gt = np.zeros((8, w), np.float32)
    ring_gg = np.zeros((8, w), np.float32)
    for y in range(0, 2 * r + 1):
        if (y & 1) == p:
            k = (y >> 1) & 7
            _lap_products(g, c, y, p, ring_gt[k], ring_gg[k])
            rgt, rgg = ring_gt[k], ring_gg[k]
            for x in range(p, w, 2):
                cn[x] += 1.0
                cg[x] += g[y, x]
                ct[x] += c[y, x]
                cgt[x] += rgt[x]
                cgg[x] += rgg[x]
    for y in range(r, h - r):
        if y > r:
            yn, yo = y + r, y - r - 1
            k = (yn >> 1) & 7 if (yn & 1) == p else (yo >> 1) & 7
            if (yn & 1) == p:
                ys = yn
                sgn = 1.0
                _lap_products(g, c, ys, p, ring_gt[k], ring_gg[k])
            else:
                ys = yo
                sgn = -1.0
            rgt, rgg, gr, cr = ring_gt[k], ring_gg[k], g[ys], c[ys]
            for x in range(p, w, 2):
                cn[x] += sgn
                cg[x] += sgn * gr[x]
                ct[x] += sgn * cr[x]
                cgt[x] += sgn * rgt[x]
                cgg[x] += sgn * rgg[x]
        # 7-column window sums (float64, then float32 as the reference's box filters give
        # them), then the fit: unit-stride loops that vectorise
        for i in range(m):
            s_n[i] = np.float32(cn[i] + cn[i + 1] + cn[i + 2] + cn[i + 3] + cn[i + 4]
                                + cn[i + 5] + cn[i + 6])
            s_g[i] = np.float32(cg[i] + cg[i + 1] + cg[i + 2] + cg[i + 3] + cg[i + 4]
                                + cg[i + 5] + cg[i + 6])
            s_t[i] = np.float32(ct[i] + ct[i + 1] + ct[i + 2] + ct[i + 3] + ct[i + 4]
                                + ct[i + 5] + ct[i + 6])
            s_gt[i] = np.float32(cgt[i] + cgt[i + 1] + cgt[i + 2] + cgt[i + 3] + cgt[i + 4]
                                 + cgt[i + 5] + cgt[i + 6])
            s_gg[i] = np.float32(cgg[i] + cgg[i + 1] + cgg[i + 2] + cgg[i + 3] + cgg[i + 4]
                                 + cgg[i + 5] + cgg[i + 6])
        ar, br = av[y, r:], bv[y, r:]
        for i in range(m):
            n = s_n[i] + tiny
            mi = s_g[i] / n
            mp = s_t[i] / n
            a = s_gt[i] / (s_gg[i] + e32)
            ar[i] = a
            br[i] = mp - a * mi
    ca = np.zeros(w, np.float64)
    cb = np.zeros(w, np.float64)
    for y in range(0, 2 * r + 1):
        for x in range(w):
            ca[x] += av[y, x]
            cb[x] += bv[y, x]
    for y in range(r, h - r):
        if y > r:
            an, ao, bn, bo = av[y + r], av[y - r - 1], bv[y + r], bv[y - r - 1]
            for x in range(w):
                ca[x] += an[x] - np.float64(ao[x])
                cb[x] += bn[x] - np.float64(bo[x])
        tr, gr = tent[y, r:], g[y, r:]
        for i in range(m):
            sa = ca[i] + ca[i + 1] + ca[i + 2] + ca[i + 3] + ca[i + 4] + ca[i + 5] + ca[i + 6]
            sb = cb[i] + cb[i + 1] + cb[i + 2] + cb[i + 3] + cb[i + 4] + cb[i + 5] + cb[i + 6]
            tr[i] = (np.float32(sa) / nn) * gr[i] + np.float32(sb) / nn
    hf = np.float32(0.5)
    prev = np.zeros(w, np.float32)
    cur = np.zeros(w, np.float32)
    vs = np.zeros(w, np.float32)
    for ys in range(p, h, 2):
        prev, cur = cur, prev
        for x in range(p, w, 2):
            cur[x] = c[ys, x] - tent[ys, x]
        if 1 <= ys <= h - 2:
            t = tent[ys, 1:]  # (in place: row ys of tent was read into cur above)
            for i in range(w - 2):  # x = i + 1
                t[i] = t[i] + (cur[i + 1] + hf * (cur[i] + cur[i + 2]))
        y = ys - 1
        if 1 <= y <= h - 2:
            for x in range(w):
                vs[x] = hf * (prev[x] + cur[x])
            t = tent[y, 1:]
            for i in range(w - 2):
                t[i] = t[i] + (vs[i + 1] + hf * (vs[i] + vs[i + 2]))
    for y in range(h):
        tent[y, 0] = 0.0
        tent[y, w - 1] = 0.0
    for x in range(w):
        tent[0, x] = 0.0
        tent[h - 1, x] = 0.0


@aot.entry
@njit(cache=True, nogil=True, error_model="numpy")
def _interleave(r: np.ndarray, g: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[..., 0], out[..., 1], out[..., 2] = r, g, b (one pass, unit-stride loads)."""
    h, w = r.shape
    for y in range(h):
        o = out[y].reshape(-1)
        rr, gg, bb = r[y], g[y], b[y]
        for x in range(w):
            o[3 * x] = rr[x]
            o[3 * x + 1] = gg[x]
            o[3 * x + 2] = bb[x]


def ri_rggb(cfa: np.ndarray) -> np.ndarray:
    """GBTF green + residual-interpolated R/B on an RGGB mosaic (mirror margin >= 18).

    numba form of :func:`ri_rggb_reference` (equal to it within 1e-5 beyond 18 px of the
    border; nearer the border the values are not meaningful, as for the reference).
    """
    c = np.ascontiguousarray(cfa, np.float32)
    out = np.empty((*c.shape, 3), np.float32)
    # scratch planes from numpy (its large allocations take huge pages: first touch is ~3x
    # cheaper than numba's), shared by the green and the R/B passes
    g, s0, s1, s2, s3 = (np.empty_like(c) for _ in range(5))
    _green_nb(c, 0.56, 0.35, 0.08, 0.01, g, s0, s1, s2, s3)
    _rb_nb(c, g, 0, RB_EPS, s0, s1, s2)  # R into s2
    _rb_nb(c, g, 1, RB_EPS, s0, s1, s3)  # B into s3 (s2 kept)
    _interleave(s2, g, s3, out)
    return out
