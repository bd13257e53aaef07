"""The display chain of one strip in one numba pass: colour matrix and exposure gain, tone
(filmic curve and local operator), look (saturation/vibrance, a film style), sharpening and
the transfer function, written as encoded float32 or uint8/uint16.

The reference is the chain of separate functions develop() runs::

    tone_map -> apply_look -> sharpen.sharpen -> spaces.encode

and :func:`display_strip` matches it within 1e-4 (tests/test_looks.py). What makes it fast:

* The tone curve and its path-to-white weight, and a style's luminance curve, are tables read
  with linear interpolation, indexed by the top bits of the float32 value: exponent and 8
  mantissa bits, i.e. 256 equal steps per octave (a piecewise-linear approximation on a
  logarithmic grid, the "float-indexed" lookup tables of Reinhard et al. 2010, *High Dynamic
  Range Imaging*, §4.7). The relative step is at most 2^-8, so the interpolation error
  |f''|h^2/8 is under 1e-6 of the value for these smooth curves; the black point (a kink) is
  applied after the lookup.
* log2 and exp2 (local operator, transfer functions x^p = 2^(p log2 x)) are exponent-bit
  arithmetic plus least-squares polynomials of the mantissa / fraction (the classic Cody &
  Waite 1980 range reduction): no table, no branch, so those row loops vectorise.
* Rows are processed as planar (R, G, B) rows in small buffers; sharpening (unsharp mask of
  luma, cv2.GaussianBlur's kernel with BORDER_REFLECT) runs on a ring of the last 2R+1 rows of
  luma (R: the Gaussian's radius): each input row is read once, converted, tone-mapped and
  finished into the ring, and each output row is blurred (separable, vertical then
  horizontal), sharpened, encoded and written as soon as its R rows below are in the ring.
  The strip is read once and written once, the ring stays in cache, and the output may
  overwrite the input (``out=rgb``).
* The kernel releases the GIL; strips run on the caller's threads (isp.tiles.map_rows), and a
  whole image can be split into ``threads`` chunks of rows (each recomputes R rows of
  context).

Not covered (:func:`supports` is False; use the reference chain): tone curves other than
'filmic', a 3D LUT, grain, an unknown space.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import _aot as aot
from .._jit import intrinsic, ir, njit, types
from ..errors import OptionError
from ..isp._transfer import f32_bits
from ..isp.spaces import SPACES, luminance_weights
from ..recipe import Look, Recipe, Tone
from . import tone as _tone
from .styles import STYLES, style_params

SHIFT = 15  # float32 bits dropped: 23 - 15 = 8 mantissa bits index -> 256 steps per octave
_MASK = (1 << SHIFT) - 1
_INV = 1.0 / (1 << SHIFT)
TONE_LO, TONE_HI = -30, 12  # octaves of the tone table (norms 9e-10 .. 4096)
STYLE_LO = -30  # octaves of a style's luminance table (.. 1)
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}
_TRANSFERS = ("srgb", "bt709", "romm")


@intrinsic
def _from_bits(typingctx, x):  # pragma: no cover - numba
    """The float32 with the bit pattern of an int32 (the inverse of :func:`f32_bits`)."""
    if not (isinstance(x, types.Integer) and x.bitwidth == 32):
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


def _nodes(lo: int, hi: int) -> tuple[int, np.ndarray]:
    """Table nodes from 2^lo to 2^hi: the float32 values whose low SHIFT bits are zero.
    Returns (index of the first node = its bits >> SHIFT, node values as float64)."""
    b0 = int(np.array(2.0**lo, np.float32).view(np.int32)) >> SHIFT
    b1 = int(np.array(2.0**hi, np.float32).view(np.int32)) >> SHIFT
    k = np.arange(b0, b1 + 1, dtype=np.int64) << SHIFT
    return b0, k.astype(np.int32).view(np.float32).astype(np.float64)


@njit(cache=True, inline="always")
def _lk(tab, base, v):  # pragma: no cover - numba
    """Table ``tab`` (nodes from :func:`_nodes`, first node index ``base``) at float32 v,
    linearly interpolated; clamped to the first node below the table and to the last above it
    (NaN too). Branch-free int32 arithmetic, so row loops vectorise (gathers)."""
    n = np.int32(tab.shape[0] - 1)
    b = f32_bits(v)
    k = (b >> np.int32(SHIFT)) - base
    t = np.float32(b & np.int32(_MASK)) * np.float32(_INV)
    t = np.float32(0.0) if k < np.int32(0) else t
    t = np.float32(1.0) if k >= n else t
    k = min(max(k, np.int32(0)), n - np.int32(1))
    a = tab[k]
    return a + t * (tab[k + 1] - a)


@njit(cache=True, inline="always")
def _style(r, g, b, p, tab, base, tints):  # pragma: no cover - numba
    """styles._style_pixel with its luminance curve from a table, blended with the input by
    the stage's strength (p: see :func:`_style_stage`)."""
    one, zero = np.float32(1.0), np.float32(0.0)
    sat, vib, use_curve, black, mono, strength = p[0], p[1], p[2], p[3], p[4], p[5]
    r0, g0, b0 = r, g, b
    r = min(max(r, zero), one)
    g = min(max(g, zero), one)
    b = min(max(b, zero), one)
    if mono > 0.5:
        y = p[6] * r + p[7] * g + p[8] * b
        y2 = _lk(tab, base, y)
        if black > zero:
            y2 = max(y2 - black, zero) / (one - black)
        t = min(max(y2, zero), one)
        fade = t * t
        tr = tints[0, 0] * (one - t) + tints[1, 0] * t
        tg = tints[0, 1] * (one - t) + tints[1, 1] * t
        tb = tints[0, 2] * (one - t) + tints[1, 2] * t
        tr = tr + fade * (one - tr)
        tg = tg + fade * (one - tg)
        tb = tb + fade * (one - tb)
        sr = min(max(y2 * tr, zero), one)
        sg = min(max(y2 * tg, zero), one)
        sb = min(max(y2 * tb, zero), one)
    else:
        y = p[9] * r + p[10] * g + p[11] * b
        if y <= np.float32(1e-9):
            sr, sg, sb = zero, zero, zero
        else:
            mx = max(r, g, b)
            mn = min(r, g, b)
            s_now = (mx - mn) / mx if mx > zero else zero
            f = sat * (one + vib * (one - s_now) * (one - s_now))
            dr, dg, db = r - y, g - y, b - y
            if f > one:  # gamut limit: the largest factor that keeps every channel in [0, 1]
                eps = np.float32(1e-9)
                if dr > eps:
                    f = min(f, max((one - y) / dr, one))
                elif dr < -eps:
                    f = min(f, max(y / -dr, one))
                if dg > eps:
                    f = min(f, max((one - y) / dg, one))
                elif dg < -eps:
                    f = min(f, max(y / -dg, one))
                if db > eps:
                    f = min(f, max((one - y) / db, one))
                elif db < -eps:
                    f = min(f, max(y / -db, one))
            r, g, b = y + f * dr, y + f * dg, y + f * db
            y2 = y
            if use_curve > 0.5:
                y2 = _lk(tab, base, y)
                if black > zero:
                    y2 = max(y2 - black, zero) / (one - black)
                kk = y2 / y
                r, g, b = r * kk, g * kk, b * kk
            m = max(r, g, b)
            if m > one:
                yy = min(y2, one)
                t = (m - one) / (m - yy) if m - yy > np.float32(1e-9) else one
                r, g, b = r + t * (yy - r), g + t * (yy - g), b + t * (yy - b)
            sr = min(max(r, zero), one)
            sg = min(max(g, zero), one)
            sb = min(max(b, zero), one)
    return r0 + strength * (sr - r0), g0 + strength * (sg - g0), b0 + strength * (sb - b0)


@njit(cache=True, inline="always")
def _reflect(p, n):  # pragma: no cover - numba
    """cv2.BORDER_REFLECT (fedcba|abcdefgh|hgfedcb) index into 0..n-1."""
    if n == 1:
        return 0
    while p < 0 or p >= n:
        if p < 0:
            p = -p - 1
        else:
            p = 2 * n - p - 1
    return p


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_in(src, a, rr, gg, bb, fp, mat, use_mat):  # pragma: no cover - numba
    """Input row ``a`` -> planar rows (colour matrix and exposure gain), clipped at 0.
    Loop invariants are hoisted into scalars and the rows are separate arrays, so the loop
    vectorises (stores could otherwise alias the matrix)."""
    w = src.shape[1]
    zero = np.float32(0.0)
    row = src[a].reshape(-1)  # flat (3w,): plain strided loads the vectoriser interleaves
    if use_mat:
        gain = fp[0]
        m00, m01, m02 = mat[0, 0] * gain, mat[0, 1] * gain, mat[0, 2] * gain
        m10, m11, m12 = mat[1, 0] * gain, mat[1, 1] * gain, mat[1, 2] * gain
        m20, m21, m22 = mat[2, 0] * gain, mat[2, 1] * gain, mat[2, 2] * gain
        for j in range(w):
            r, g, b = row[3 * j], row[3 * j + 1], row[3 * j + 2]
            rr[j] = max(m00 * r + m01 * g + m02 * b, zero)
            gg[j] = max(m10 * r + m11 * g + m12 * b, zero)
            bb[j] = max(m20 * r + m21 * g + m22 * b, zero)
    else:
        for j in range(w):
            rr[j] = max(row[3 * j], zero)
            gg[j] = max(row[3 * j + 1], zero)
            bb[j] = max(row[3 * j + 2], zero)


@njit(cache=True, inline="always")
def _log2p(v, lc):  # pragma: no cover - numba
    """log2 of a positive normal float32: exponent bits + polynomial of the mantissa."""
    bits = f32_bits(v)
    e = np.float32((bits >> np.int32(23)) - np.int32(127))
    m = _from_bits(np.int32((bits & np.int32(0x7FFFFF)) | np.int32(0x3F800000))) \
        - np.float32(1.5)
    return e + (lc[0] + m * (lc[1] + m * (lc[2] + m * (lc[3] + m * (lc[4] + m * (
        lc[5] + m * (lc[6] + m * (lc[7] + m * (lc[8] + m * lc[9])))))))))


@njit(cache=True, inline="always")
def _exp2p(y, ec):  # pragma: no cover - numba
    """2^y for y in the float32 normal range: exponent bits x polynomial of the fraction."""
    fl = np.floor(y)
    f = y - fl
    q = ec[0] + f * (ec[1] + f * (ec[2] + f * (ec[3] + f * (ec[4] + f * (ec[5] + f * (
        ec[6] + f * ec[7]))))))
    return _from_bits(np.int32((np.int32(fl) + np.int32(127)) << np.int32(23))) * q


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_local(rr, gg, bb, fp, lc, ec, ca, cb):  # pragma: no cover - numba
    """Local operator: gain from the base/detail split of log2 luminance (tone.py), with the
    guided filter's coefficients ``ca``, ``cb`` already sampled at this row's pixels."""
    lmed, compress, detail = fp[2], fp[3], fp[4]
    wr, wg, wb = fp[7], fp[8], fp[9]
    top = np.float32(_tone.LOCAL_MAX_EV)
    for j in range(rr.shape[0]):
        lum = _log2p(max(wr * rr[j] + wg * gg[j] + wb * bb[j], np.float32(1e-6)), lc)
        base = ca[j] * lum + cb[j]
        gv = -compress * (base - lmed) + detail * (lum - base)
        gn = _exp2p(min(max(gv, -top), top), ec)
        rr[j] *= gn
        gg[j] *= gn
        bb[j] *= gn


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_tone(rr, gg, bb, fp, tone_y, tone_t, tbase, kk, tf, yv):  # pragma: no cover - numba
    """Filmic curve on the max-RGB norm (tables), black point, path to white. In loops of
    their own: the table segments (``kk``, ``tf``: scratch rows), the lookups, the black
    point, the per-pixel rest. One loop had kept the whole row scalar (its table reads are
    gathers LLVM would not vectorise): 4.6 -> 2.0 ns a pixel, the same values."""
    w = rr.shape[0]
    one, zero = np.float32(1.0), np.float32(0.0)
    black = fp[1]
    v0 = max(-black, zero)
    ib = one / (one - black) if black > zero else one
    nseg = np.int32(tone_y.shape[0] - 1)
    for j in range(w):  # one table segment for both curves
        bits = f32_bits(max(rr[j], gg[j], bb[j]))
        k = (bits >> np.int32(SHIFT)) - tbase
        t = np.float32(bits & np.int32(_MASK)) * np.float32(_INV)
        t = zero if k < np.int32(0) else t
        t = one if k >= nseg else t
        kk[j] = min(max(k, np.int32(0)), nseg - np.int32(1))
        tf[j] = t
    for j in range(w):  # the lookups: the curve into yv, the path-to-white weight into tf
        k = kk[j]
        t = tf[j]
        y0 = tone_y[k]
        t0 = tone_t[k]
        yv[j] = y0 + t * (tone_y[k + 1] - y0)
        tf[j] = t0 + t * (tone_t[k + 1] - t0)
    if black > zero:
        for j in range(w):
            yv[j] = max(yv[j] - black, zero) * ib
    elif black < zero:
        for j in range(w):
            yv[j] = -black + (one + black) * yv[j]
    for j in range(w):
        r, g, b = rr[j], gg[j], bb[j]
        nrm = max(r, g, b)
        y = min(yv[j], one)
        t = tf[j]
        s = y / max(nrm, np.float32(1e-30))
        dark = nrm <= np.float32(1e-10)
        rr[j] = v0 if dark else min(r * s + t * (y - r * s), one)
        gg[j] = v0 if dark else min(g * s + t * (y - g * s), one)
        bb[j] = v0 if dark else min(b * s + t * (y - b * s), one)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_saturation(rr, gg, bb, p):  # pragma: no cover - numba
    """A saturation/vibrance stage (styles._style_pixel without curve, mixer or blend),
    written with selects instead of branches so the row loop vectorises."""
    one, zero = np.float32(1.0), np.float32(0.0)
    eps, big = np.float32(1e-9), np.float32(1e30)
    sat, vib = p[0], p[1]
    wr, wg, wb = p[9], p[10], p[11]
    for j in range(rr.shape[0]):
        r = min(max(rr[j], zero), one)
        g = min(max(gg[j], zero), one)
        b = min(max(bb[j], zero), one)
        y = wr * r + wg * g + wb * b
        mx = max(r, g, b)
        mn = min(r, g, b)
        s_now = (mx - mn) / max(mx, np.float32(1e-30))
        s_now = s_now if mx > zero else zero
        f = sat * (one + vib * (one - s_now) * (one - s_now))
        dr, dg, db = r - y, g - y, b - y
        # gamut limit: the largest factor that keeps every channel in [0, 1] (at least 1)
        lr = max((one - y) / max(dr, eps), one) if dr > eps else (
            max(y / max(-dr, eps), one) if dr < -eps else big)
        lg = max((one - y) / max(dg, eps), one) if dg > eps else (
            max(y / max(-dg, eps), one) if dg < -eps else big)
        lb = max((one - y) / max(db, eps), one) if db > eps else (
            max(y / max(-db, eps), one) if db < -eps else big)
        f = min(f, lr, lg, lb) if f > one else f
        r, g, b = y + f * dr, y + f * dg, y + f * db
        m = max(r, g, b)
        yy = min(y, one)
        t = (m - one) / (m - yy) if m - yy > eps else one
        t = t if m > one else zero
        r, g, b = r + t * (yy - r), g + t * (yy - g), b + t * (yy - b)
        dark = y <= eps
        rr[j] = zero if dark else min(max(r, zero), one)
        gg[j] = zero if dark else min(max(g, zero), one)
        bb[j] = zero if dark else min(max(b, zero), one)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_looks(rr, gg, bb, n_looks, lprm, ltabs, lbases, tints):  # pragma: no cover - numba
    """Saturation / vibrance and a film style (styles._style_pixel), in order."""
    for q in range(n_looks):
        p, tab, lb, tn = lprm[q], ltabs[q], lbases[q], tints[q]
        if p[2] < 0.5 and p[4] < 0.5 and p[5] == 1.0:  # no curve, not mono, full strength
            _row_saturation(rr, gg, bb, p)
            continue
        for j in range(rr.shape[0]):
            rr[j], gg[j], bb[j] = _style(rr[j], gg[j], bb[j], p, tab, lb, tn)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_finish(rr, gg, bb, dr, dg, db, luma):  # pragma: no cover - numba
    """apply_look's final clip into the ring, and luma for sharpening (sharpen.py's weights)."""
    one, zero = np.float32(1.0), np.float32(0.0)
    cr, cg, cb = np.float32(0.2126), np.float32(0.7152), np.float32(0.0722)
    for j in range(rr.shape[0]):
        r = min(max(rr[j], zero), one)
        g = min(max(gg[j], zero), one)
        b = min(max(bb[j], zero), one)
        dr[j] = r
        dg[j] = g
        db[j] = b
        luma[j] = cr * r + cg * g + cb * b


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_blur(i, h, luma, ring, kern, vb, blur, amount, threshold):  # pragma: no cover - numba
    """blur <- amount x (luma - Gaussian(luma)) at row ``i`` (separable, cv2.BORDER_REFLECT;
    the noise threshold as in sharpen.py)."""
    w = blur.shape[0]
    rad = kern.shape[0] // 2
    zero = np.float32(0.0)
    ly = luma[i % ring]
    if rad == 4:  # sigma 1 (every preset): each pass in one loop, rows and taps unrolled
        c0, c1, c2, c3, c4 = kern[4], kern[5], kern[6], kern[7], kern[8]
        u1, u2 = luma[_reflect(i - 1, h) % ring], luma[_reflect(i - 2, h) % ring]
        u3, u4 = luma[_reflect(i - 3, h) % ring], luma[_reflect(i - 4, h) % ring]
        d1, d2 = luma[_reflect(i + 1, h) % ring], luma[_reflect(i + 2, h) % ring]
        d3, d4 = luma[_reflect(i + 3, h) % ring], luma[_reflect(i + 4, h) % ring]
        for j in range(w):
            vb[4 + j] = (c0 * ly[j] + c1 * (u1[j] + d1[j]) + c2 * (u2[j] + d2[j])
                         + c3 * (u3[j] + d3[j]) + c4 * (u4[j] + d4[j]))
    else:
        c = kern[rad]
        for j in range(w):
            vb[rad + j] = c * ly[j]
        for k in range(1, rad + 1):  # vertical pass (the kernel is symmetric)
            up = luma[_reflect(i - k, h) % ring]
            dn = luma[_reflect(i + k, h) % ring]
            c = kern[rad + k]
            for j in range(w):
                vb[rad + j] += c * (up[j] + dn[j])
    for k in range(rad):  # reflected borders of the row
        vb[rad - 1 - k] = vb[rad + _reflect(-1 - k, w)]
        vb[rad + w + k] = vb[rad + _reflect(w + k, w)]
    if rad == 4:
        for j in range(w):
            blur[j] = (c0 * vb[j + 4] + c1 * (vb[j + 3] + vb[j + 5]) + c2 * (vb[j + 2] + vb[j + 6])
                       + c3 * (vb[j + 1] + vb[j + 7]) + c4 * (vb[j] + vb[j + 8]))
    else:
        c = kern[rad]
        for j in range(w):
            blur[j] = c * vb[rad + j]
        for k in range(1, rad + 1):  # horizontal pass
            c = kern[rad + k]
            for j in range(w):
                blur[j] += c * (vb[rad + j - k] + vb[rad + j + k])
    if threshold > zero:
        for j in range(w):
            det = ly[j] - blur[j]
            blur[j] = (max(det - threshold, zero) + min(det + threshold, zero)) * amount
    else:
        for j in range(w):
            blur[j] = (ly[j] - blur[j]) * amount


@njit(cache=True, inline="always")
def _power(x, tc, lc, ec):  # pragma: no cover - numba
    """Transfer function of x in [0, 1]: slope·x on the toe, else a·x^p − b, with x^p =
    2^(p·log2 x) from minimax-like polynomials (log2 of the mantissa, exp2 of the fraction;
    :func:`_poly_coefficients`) and exponent bit arithmetic: no table, no branch, so the row
    loop vectorises. Within 3e-7 of the formula; NaN gives 0."""
    p, a, b, thr, slope = tc[0], tc[1], tc[2], tc[3], tc[4]
    x = x if x == x else np.float32(0.0)  # NaN (from inf or NaN input) -> 0, as quantize does
    v = _exp2p(p * _log2p(max(x, np.float32(1e-6)), lc), ec)
    v = slope * x if x <= thr else a * v - b
    return min(max(v, np.float32(0.0)), np.float32(1.0))


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_encode(dr, dg, db, det, sharp, er, eg, eb, tc, lc, ec):  # pragma: no cover - numba
    """Add the sharpening detail (when ``sharp``), clip, transfer function."""
    one, zero = np.float32(1.0), np.float32(0.0)
    if sharp:
        for j in range(dr.shape[0]):
            d = det[j]
            er[j] = _power(min(max(dr[j] + d, zero), one), tc, lc, ec)
            eg[j] = _power(min(max(dg[j] + d, zero), one), tc, lc, ec)
            eb[j] = _power(min(max(db[j] + d, zero), one), tc, lc, ec)
    else:
        for j in range(dr.shape[0]):
            er[j] = _power(min(max(dr[j], zero), one), tc, lc, ec)
            eg[j] = _power(min(max(dg[j], zero), one), tc, lc, ec)
            eb[j] = _power(min(max(db[j], zero), one), tc, lc, ec)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_store(i, er, eg, eb, dst, dst8, dst16, qtop):  # pragma: no cover - numba
    """Interleave into the output row (float32, or codes rounded to nearest as
    output.encode.quantize does)."""
    w = er.shape[0]
    if qtop == 255.0:
        row8 = dst8[i].reshape(-1)
        for j in range(w):
            row8[3 * j] = np.uint8(np.rint(min(max(er[j], np.float32(0.0)), np.float32(1.0))
                                           * np.float64(255.0)))
            row8[3 * j + 1] = np.uint8(np.rint(min(max(eg[j], np.float32(0.0)), np.float32(1.0))
                                               * np.float64(255.0)))
            row8[3 * j + 2] = np.uint8(np.rint(min(max(eb[j], np.float32(0.0)), np.float32(1.0))
                                               * np.float64(255.0)))
    elif qtop == 65535.0:
        row16 = dst16[i].reshape(-1)
        for j in range(w):
            row16[3 * j] = np.uint16(np.rint(min(max(er[j], np.float32(0.0)), np.float32(1.0))
                                             * np.float64(65535.0)))
            row16[3 * j + 1] = np.uint16(np.rint(min(max(eg[j], np.float32(0.0)),
                                                     np.float32(1.0)) * np.float64(65535.0)))
            row16[3 * j + 2] = np.uint16(np.rint(min(max(eb[j], np.float32(0.0)),
                                                     np.float32(1.0)) * np.float64(65535.0)))
    else:
        row = dst[i].reshape(-1)
        for j in range(w):
            row[3 * j] = er[j]
            row[3 * j + 1] = eg[j]
            row[3 * j + 2] = eb[j]


@aot.entry
@njit(cache=True, nogil=True)
def _rows(src, dst, dst8, dst16, r_lo, r_hi, fp, mat, use_mat, tone_y, tone_t, tbase, use_local,
          ga, gb, row0, full_h, n_looks, lprm, ltabs, lbases, tints, kern, tc, lc, ec,
          qtop):
    # pragma: no cover - numba
    """Output rows r_lo..r_hi of the strip (see the module docstring)."""
    h, w = src.shape[0], src.shape[1]
    rad = kern.shape[0] // 2
    amount, threshold = fp[5], fp[6]
    sharp = amount > 0.0
    ring = 2 * rad + 1 if sharp else 1
    dring = rad + 1 if sharp else 1
    d_r = np.empty((dring, w), np.float32)  # finished display-linear rows, R rows ahead
    d_g = np.empty((dring, w), np.float32)
    d_b = np.empty((dring, w), np.float32)
    luma = np.empty((ring, w), np.float32)  # their luma, R rows either side
    rr = np.empty(w, np.float32)
    gg = np.empty(w, np.float32)
    bb = np.empty(w, np.float32)
    vb = np.empty(w + 2 * rad, np.float32)
    det = np.empty(w, np.float32)
    kk = np.empty(w, np.int32)  # _row_tone's scratch
    tf = np.empty(w, np.float32)
    yv = np.empty(w, np.float32)
    # local operator: grid columns per output column, and the grids' rows at each image row
    hs, ws = ga.shape
    x0 = np.zeros(w, np.int32)
    x1 = np.zeros(w, np.int32)
    tx = np.zeros(w, np.float32)
    ra = np.zeros(ws, np.float32)
    rb = np.zeros(ws, np.float32)
    ca = np.zeros(w if use_local else 0, np.float32)
    cb = np.zeros(w if use_local else 0, np.float32)
    if use_local:
        sx = ws / w
        for j in range(w):
            fx = min(max((j + 0.5) * sx - 0.5, 0.0), ws - 1.0)
            x0[j] = min(int(fx), ws - 1)
            x1[j] = min(x0[j] + 1, ws - 1)
            tx[j] = fx - x0[j]
    sy = hs / full_h
    nxt = max(0, r_lo - rad)
    for i in range(r_lo, r_hi):
        last = min(h - 1, i + rad)
        while nxt <= last:  # rows into the rings, R rows ahead of the output
            _row_in(src, nxt, rr, gg, bb, fp, mat, use_mat)
            if use_local:
                fy = min(max((row0 + nxt + 0.5) * sy - 0.5, 0.0), hs - 1.0)
                y0 = min(int(fy), hs - 1)
                y1 = min(y0 + 1, hs - 1)
                ty = np.float32(fy - y0)
                for x in range(ws):
                    ra[x] = ga[y0, x] + ty * (ga[y1, x] - ga[y0, x])
                    rb[x] = gb[y0, x] + ty * (gb[y1, x] - gb[y0, x])
                for j in range(w):  # bilinear: the row's samples between grid columns
                    t = tx[j]
                    ca[j] = ra[x0[j]] + t * (ra[x1[j]] - ra[x0[j]])
                    cb[j] = rb[x0[j]] + t * (rb[x1[j]] - rb[x0[j]])
                _row_local(rr, gg, bb, fp, lc, ec, ca, cb)
            _row_tone(rr, gg, bb, fp, tone_y, tone_t, tbase, kk, tf, yv)
            if n_looks:
                _row_looks(rr, gg, bb, n_looks, lprm, ltabs, lbases, tints)
            s = nxt % dring
            _row_finish(rr, gg, bb, d_r[s], d_g[s], d_b[s], luma[nxt % ring])
            nxt += 1
        if sharp:
            _row_blur(i, h, luma, ring, kern, vb, det, amount, threshold)
        s = i % dring
        _row_encode(d_r[s], d_g[s], d_b[s], det, sharp, rr, gg, bb, tc, lc, ec)
        _row_store(i, rr, gg, bb, dst, dst8, dst16, qtop)


# ----------------------------------------------------------------------------- tables


_TABLES: dict = {}


def _cached(key, make):
    if key not in _TABLES:
        if len(_TABLES) > 64:
            _TABLES.clear()
        _TABLES[key] = make()
    return _TABLES[key]


def _tone_table(tone: Tone) -> tuple[np.ndarray, np.ndarray, int, float]:
    """The filmic curve at the norm nodes: display value before the black point, and the
    path-to-white weight (tone.curve_np, float64, rounded to float32); the first node's index;
    the black point (applied per pixel: it puts a kink into the curve)."""
    p = _tone.curve_params(tone)

    def make():
        base, n = _nodes(TONE_LO, TONE_HI)
        y, ev = _tone.curve_np(n, _replace(p, black=0.0))
        t = np.clip((ev - (p.white_ev - 0.5)) / 1.5, 0.0, 1.0)
        t = t * t * (3.0 - 2.0 * t)
        return y.astype(np.float32), t.astype(np.float32), base

    ty, tt, base = _cached(("tone", p), make)
    return ty, tt, base, p.black


def _replace(p, **kw):
    from dataclasses import replace

    return replace(p, **kw)


def _s_curve_np(v: np.ndarray, a: float, p: float, lo: float, hi: float) -> np.ndarray:
    """styles._s_curve, vectorised (float64)."""
    if a == 0.0:
        return v
    if a > 0.0:
        return np.clip((np.tanh(a * (v - p)) - lo) / (hi - lo), 0.0, 1.0)
    t = np.clip(v * (hi - lo) + lo, -0.999999, 0.999999)
    return np.clip(p + np.arctanh(t) / (-a), 0.0, 1.0)


def _style_stage(prm: np.ndarray, tints: np.ndarray, strength: float, curve: bool
                 ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """One look stage for the kernel: (params[12], luminance table, its base, tints (2, 3)).

    params: saturation, vibrance, curve?, black, mono?, strength, mixer (3), weights (3)."""
    a, piv, lo, hi = float(prm[2]), float(prm[3]), float(prm[4]), float(prm[5])

    def make():
        base, n = _nodes(STYLE_LO, 0)
        y2 = _s_curve_np(n ** (1.0 / 2.2), a, piv, lo, hi) ** 2.2
        return y2.astype(np.float32), base

    if curve:
        tab, base = _cached(("style", a, piv, lo, hi), make)
    else:
        tab, base = np.zeros(2, np.float32), 0
    p = np.array([prm[0], prm[1], 1.0 if curve else 0.0, prm[6], prm[7], strength,
                  prm[10], prm[11], prm[12], prm[13], prm[14], prm[15]], np.float32)
    return p, tab, base, np.asarray(tints, np.float32)


def _look_stages(look: Look, space: str) -> list:
    """The look's stages as apply_look runs them, with its range checks."""
    if not 0 <= look.saturation <= 3 or not -1 <= look.vibrance <= 2:
        raise OptionError(f"saturation {look.saturation} / vibrance {look.vibrance} out of range")
    if look.style and not 0.0 <= look.style_strength <= 1.0:
        raise OptionError(f"style strength {look.style_strength} is outside 0..1")
    w = luminance_weights(space).astype(np.float32)
    stages = []
    if look.saturation != 1.0 or look.vibrance != 0.0:
        prm = np.concatenate([np.array([look.saturation, look.vibrance, 0, 0.46, 0, 1, 0, 0, 0,
                                        0], np.float32), w, w])
        stages.append(_style_stage(prm, np.ones((2, 3), np.float32), 1.0, False))
    if look.style:
        prm, tints = style_params(look.style, space)
        stages.append(_style_stage(prm, tints, float(look.style_strength), True))
    return stages


def _transfer_constants(transfer: str) -> np.ndarray:
    """(p, a, b, toe end, toe slope) of the transfer function a·x^p − b (spaces.encode)."""
    if transfer == "srgb":
        c = (1 / 2.4, 1.055, 0.055, 0.0031308, 12.92)
    elif transfer == "bt709":
        a = 1.09929682680944
        c = (0.45, a, a - 1, 0.018053968510807, 4.5)
    else:
        c = (1 / 1.8, 1.0, 0.0, 1 / 512, 16.0)
    return np.array(c, np.float32)


def _poly_coefficients() -> tuple[np.ndarray, np.ndarray]:
    """Power-basis coefficients of least-squares Chebyshev fits: log2(1.5 + t) on
    t in [-0.5, 0.5] (degree 9, error 2e-8) and 2^f on f in [0, 1] (degree 7, 2e-10); the
    fits' float32 values, written out (fitting them took 11 ms of every process, with
    numpy.polynomial's import). :func:`fit_poly_coefficients` makes them (a test)."""
    return _POLY_LOG2, _POLY_EXP2


_POLY_LOG2 = np.array([
    0.5849624872207642, 0.9617967009544373, -0.32059794664382935, 0.1424870789051056,
    -0.07127617299556732, 0.038028035312891006, -0.02073528803884983, 0.011768349446356297,
    -0.008764995262026787, 0.00534583767876029], np.float32)
_POLY_EXP2 = np.array([
    1.0, 0.6931471824645996, 0.24022632837295532, 0.05550540238618851, 0.009613338857889175,
    0.0013431443367153406, 0.00014294848369900137, 2.164699435525108e-05], np.float32)


def fit_poly_coefficients() -> tuple[np.ndarray, np.ndarray]:
    """The fits of :func:`_poly_coefficients`, made again."""

    def fit(fn, lo: float, hi: float, deg: int) -> np.ndarray:
        x = np.linspace(lo, hi, 4001)
        c = np.polynomial.chebyshev.Chebyshev.fit(x, fn(x), deg, domain=[lo, hi])
        return c.convert(kind=np.polynomial.Polynomial).coef.astype(np.float32)

    return (fit(lambda t: np.log2(1.5 + t), -0.5, 0.5, 9), fit(lambda f: 2.0**f, 0.0, 1.0, 7))


def _sharpen_kernel(radius: float) -> np.ndarray:
    """The Gaussian cv2.GaussianBlur(sigma) uses on float32 images (size round(8 sigma + 1)
    made odd)."""
    sigma = max(0.3, float(radius))
    size = round(sigma * 4 * 2 + 1) | 1
    return cv2.getGaussianKernel(size, sigma, cv2.CV_32F).ravel().astype(np.float32)


# ----------------------------------------------------------------------------- public


def supports(recipe: Recipe) -> bool:
    """Whether :func:`display_strip` covers the recipe's display chain: a 'filmic' tone curve
    (with or without the local operator), saturation/vibrance and a film style (any strength),
    any sharpening, an output space with an sRGB, BT.709 or ROMM transfer. Not covered: other
    tone curves, 3D LUTs, grain."""
    r = recipe
    return (
        r.tone.curve == "filmic"
        and not r.look.lut
        and r.look.grain <= 0
        and (not r.look.style or r.look.style in STYLES)
        and r.output.space in SPACES
        and SPACES[r.output.space].transfer in _TRANSFERS
        and float(r.sharpen.radius) <= 16
    )


def display_strip(
    rgb: np.ndarray,
    recipe: Recipe,
    local: tuple | None = None,
    row0: int = 0,
    full_height: int | None = None,
    out_dtype: type = np.float32,
    *,
    matrix: np.ndarray | None = None,
    gain: float = 1.0,
    out: np.ndarray | None = None,
    keep: tuple[int, int] | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Scene-linear RGB rows ``row0..`` of an image ``full_height`` rows tall -> encoded output
    in ``out_dtype`` (float32 in [0, 1], or uint8/uint16 codes rounded to nearest, as
    output.encode.quantize does).

    The same as ``spaces.encode(sharpen(apply_look(tone_map(x, ...)), ...), transfer)`` with
    x = ``gain * matrix @ rgb`` (or ``rgb`` when ``matrix`` is None), within 1e-4.
    ``local``: :func:`oneinch.looks.tone.local_setup` of the whole image (None: computed from
    ``rgb``, for whole images). ``out``: where to write (may be ``rgb`` when float32). The
    recipe must be one :func:`supports` covers. ``keep=(a, b)``: only output rows a..b are
    computed and written (the rows around them are still read as the sharpening's context;
    for strips with margins, whose margin rows are dropped anyway). ``threads``: split the
    rows over that many threads (for a whole image; strips already run on threads).
    """
    if not supports(recipe):
        raise ValueError("display_strip does not cover this recipe (see supports())")
    space = recipe.output.space
    x = _tone._check(rgb, recipe.tone)
    h, w = x.shape[:2]
    full_h = int(full_height or h)
    dt = np.dtype(out_dtype)
    if dt == np.float32:
        qtop = 0.0
    elif dt == np.uint8:
        qtop = 255.0
    elif dt == np.uint16:
        qtop = 65535.0
    else:
        raise ValueError(f"out_dtype must be float32, uint8 or uint16, not {dt}")
    if out is None:
        out = np.empty((h, w, 3), dt)
    elif out.shape != (h, w, 3) or out.dtype != dt or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous (H, W, 3) array of out_dtype")
    if h == 0 or w == 0:
        return out
    if local is None:
        local = _tone._local_setup(x, recipe.tone, space)
    use_local, ga, gb, lmed, compress, detail = local
    ga = np.ascontiguousarray(ga, np.float32)
    gb = np.ascontiguousarray(gb, np.float32)
    tone_y, tone_t, tbase, black = _tone_table(recipe.tone)
    stages = _look_stages(recipe.look, space)
    n_looks = len(stages)
    while len(stages) < 2:  # fixed shapes for the kernel
        stages.append((np.zeros(12, np.float32), np.zeros(2, np.float32), 0,
                       np.ones((2, 3), np.float32)))
    lprm = np.stack([s[0] for s in stages])
    ltabs = tuple(s[1] for s in stages)
    lbases = np.array([s[2] for s in stages], np.int32)
    tints = np.stack([s[3] for s in stages])
    sh = recipe.sharpen
    amount = max(0.0, float(sh.amount))
    kern = _sharpen_kernel(sh.radius) if amount > 0 else np.ones(1, np.float32)
    tc = _transfer_constants(SPACES[space].transfer)
    lc, ec = _poly_coefficients()
    use_mat = matrix is not None
    mat = np.asarray(matrix if use_mat else np.eye(3), np.float32)
    if mat.shape != (3, 3):
        raise ValueError(f"matrix must be 3x3, got {mat.shape}")
    wts = _tone._weights(space)
    fp = np.array([gain, black, lmed, compress, detail, amount, float(sh.threshold), *wts],
                  np.float32)
    k0, k1 = (0, h) if keep is None else (max(0, int(keep[0])), min(h, int(keep[1])))
    if k1 <= k0:
        return out
    none = np.zeros((0, 0, 3), np.float32)
    dst = out if qtop == 0.0 else none
    dst8 = out if qtop == 255.0 else np.zeros((0, 0, 3), np.uint8)
    dst16 = out if qtop == 65535.0 else np.zeros((0, 0, 3), np.uint16)
    args = (fp, mat, use_mat, tone_y, tone_t, np.int32(tbase), bool(use_local), ga, gb,
            int(row0), full_h, n_looks, lprm, ltabs, lbases, tints, kern, tc, lc, ec, qtop)
    n = _chunk_count(k1 - k0, kern.size // 2, threads, np.may_share_memory(out, x))
    bounds = np.linspace(k0, k1, n + 1).round().astype(np.int64)
    if n == 1:
        _rows(x, dst, dst8, dst16, k0, k1, *args)
        return out
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n) as pool:  # _rows releases the GIL
        jobs = [pool.submit(_rows, x, dst, dst8, dst16, int(bounds[c]), int(bounds[c + 1]), *args)
                for c in range(n)]
        for job in jobs:
            job.result()
    return out


def _chunk_count(rows: int, rad: int, threads: int | None, in_place: bool) -> int:
    """Chunks of rows run at once: ``threads`` (None: 1, the strip callers run strips on
    threads themselves), fewer for short strips (each chunk recomputes ``rad`` rows of
    context), one in place (a chunk must not overwrite rows its neighbour still reads)."""
    if in_place or not threads or threads <= 1:
        return 1
    return max(1, min(int(threads), rows // max(32, 4 * rad)))


def warm() -> None:
    """Compile (or load from numba's cache) the kernel for every output type: for an install
    step or the first run, so no JIT happens in the hot path."""
    x = np.full((8, 16, 3), 0.2, np.float32)
    for dt in (np.float32, np.uint8, np.uint16):
        display_strip(x, Recipe(), out_dtype=dt)


def reference_chain(rgb: np.ndarray, recipe: Recipe, local: tuple | None = None, row0: int = 0,
                    full_height: int | None = None, *, matrix: np.ndarray | None = None,
                    gain: float = 1.0) -> np.ndarray:
    """The chain :func:`display_strip` fuses, as develop() runs it (float32 encoded)."""
    from ..isp import color, sharpen, spaces
    from .looks import apply_look
    from .tone import tone_map

    space = recipe.output.space
    x = np.ascontiguousarray(rgb, np.float32)
    if matrix is not None:
        x = color.apply_matrix(x, matrix)
        if gain != 1.0:
            x = x * np.float32(gain)
    t = tone_map(x, recipe.tone, space, local=local, row0=row0, full_height=full_height)
    t = apply_look(t, recipe.look, space)
    s = recipe.sharpen
    return spaces.encode(sharpen.sharpen(t, s.amount, s.radius, s.threshold),
                         SPACES[space].transfer)
