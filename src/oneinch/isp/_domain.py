"""The domain demosaicing works in: the odd-extended sRGB encoding and its inverse, fast.

Colour-difference demosaicing (Hamilton & Adams 1997; RCD; residual interpolation, Kiku et al.
2013) assumes that G - R and G - B vary slowly. In linear light a surface of one hue across an
edge keeps a constant *ratio* of its channels, not a constant difference (Cok 1987, US patent
4,642,678, the constant-hue rule; Lukac & Plataniotis 2004, "Normalized color-ratio modeling
for CFA interpolation", IEEE TCE 50(2)); a log-like encoding turns the ratio into a near
constant difference. Measured (bench/quality_demosaic_domain.py): on linear mosaics of the
linearised Kodak-24 / McMaster-18 sets, demosaicing the encoded mosaic and decoding the result
gains 1.9-3.6 dB of displayed CPSNR for every colour-difference method (iri 37.20 -> 40.36 dB on
Kodak), and through develop's front on noisy synthetic raws iri gains +2.3 / +1.5 / +0.5 dB
at ISO 100 / 800 / 3200, rcd +1.3 / +0.8 / +0.3. Very noisy raws lose (ISO 12800: -0.2..-0.9
dB: shadow noise through the curvature becomes bias), so develop's 'auto' domain falls back to
linear above a noise level (develop.demosaic_domain).

The encoding is the sRGB OETF (IEC 61966-2-1:1999, sec. 5) on [0, 1], the same power law past
1 (white-balanced samples of a clipped channel reach the largest gain) and odd below 0 (noise
below black): monotone and invertible on the whole line. Encoding (of float mosaics; stored
uint16 samples get an exact table per colour) is linear interpolation in a uniform table (error
|f''| h^2 / 8 and, at the toe's end where the slope jumps, h |df| / 4: under 4e-6 encoded),
with the exact formula past the table's end. Decoding, which runs on every interpolated value,
is a branch-free power function (``dec1``: relative error under 1.5e-6, 0.8 ns a value
vectorised, against 1.7 ns for a table lookup). The linear toe is exact both ways.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import _aot as aot
from .._jit import intrinsic, ir, numba, types
from ._transfer import f32_bits

_F = np.float32
ENC_MAX = 4.0  # linear values tabulated for encoding: [0, ENC_MAX]
ENC_N = 1 << 16
_THR_E, _THR_D = 0.0031308, 0.04045


def encode_exact(x: np.ndarray) -> np.ndarray:
    """The odd-extended sRGB encoding in float64 (the reference of the tables)."""
    x = np.asarray(x, np.float64)
    a = np.abs(x)
    with np.errstate(invalid="ignore"):
        v = np.where(a <= _THR_E, 12.92 * a, 1.055 * a ** (1 / 2.4) - 0.055)
    return np.copysign(v, x)


def decode_exact(y: np.ndarray) -> np.ndarray:
    """The inverse of :func:`encode_exact` in float64."""
    y = np.asarray(y, np.float64)
    a = np.abs(y)
    with np.errstate(invalid="ignore"):
        v = np.where(a <= _THR_D, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return np.copysign(v, y)


@functools.cache
def encode_table() -> tuple[np.ndarray, np.float32]:
    """(table of ENC_N + 1 encoded values at linear 0, h, 2h .. ENC_MAX; 1 / h)."""
    h = ENC_MAX / ENC_N
    return encode_exact(np.arange(ENC_N + 1) * h).astype(np.float32), _F(1 / h)


@numba.njit(cache=True, inline="always", nogil=True, error_model="numpy")
def _tab_lerp(t, tab):  # pragma: no cover - numba
    """The table of :func:`encode_table` at position t (0 <= t < its last index)."""
    k = int(t)
    f = t - _F(k)
    return tab[k] + f * (tab[k + 1] - tab[k])


@numba.njit(cache=True, inline="always", nogil=True, error_model="numpy")
def enc1(x, tab, inv_h):  # pragma: no cover - numba
    """Encode one float32 value with the table of :func:`encode_table` (numba, inlined)."""
    a = abs(x)
    t = a * inv_h
    if t < _F(tab.shape[0] - 1):
        v = _tab_lerp(t, tab)
    else:  # past the table (or NaN, which stays NaN)
        v = _F(1.055) * a ** _F(1 / 2.4) - _F(0.055)
    return v if x >= 0 else -v


@intrinsic
def bits_f32(typingctx, b):  # pragma: no cover - numba
    """The float32 whose IEEE-754 bit pattern is the low 32 bits of an integer (a bitcast)."""
    if not isinstance(b, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        if b.bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        elif b.bitwidth < 32:
            v = builder.sext(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(b), codegen


_I = np.int32
_LN2 = float(np.log(2.0))
# log2(m) = 2/ln2 * atanh(t), t = (m - 1)/(m + 1), |t| <= 0.172 for m in [sqrt(1/2), sqrt(2)):
# the odd series to t^9 (next term < 2e-9)
_L1, _L3, _L5, _L7, _L9 = (_F(2 / (k * _LN2)) for k in (1, 3, 5, 7, 9))
# 2^f = exp(f ln2) for |f| <= 1/2: Taylor to f^7 (next term < 6e-9)
_E0, _E1, _E2, _E3, _E4, _E5, _E6, _E7 = (_F(_LN2**k / float(np.prod(np.arange(1, k + 1))))
                                          for k in range(8))


# inlined into _demosaic_rcd's kernels: numba's on-disk cache of a module is keyed on that
# module's own file, so after changing dec1 or enc1, touch _demosaic_rcd.py (or clear caches)
@numba.njit(cache=True, inline="always", nogil=True, error_model="numpy")
def dec1(y):  # pragma: no cover - numba
    """Decode one float32 value (numba, inlined): ((|y| + 0.055) / 1.055)^2.4 as
    2^(2.4 log2 u) with the exponent split off the bit pattern and short polynomials for the
    rest (no table, no branch: it vectorises); the toe and the sign are selects. Relative
    error under 1.5e-6 (float32 rounding of the exponent), exact on the toe."""
    a = abs(y)
    u = (a + _F(0.055)) * _F(1 / 1.055)
    bits = f32_bits(u)
    e = _I(_I(bits >> _I(23)) - _I(127))
    m = bits_f32(_I(_I(bits & _I(0x7FFFFF)) | _I(0x3F800000)))  # mantissa in [1, 2)
    big = m > _F(1.4142135)
    m = m * _F(0.5) if big else m
    e = _I(e + _I(1)) if big else e
    t = (m - _F(1)) / (m + _F(1))
    t2 = t * t
    z = _F(2.4) * (_F(e) + t * (_L1 + t2 * (_L3 + t2 * (_L5 + t2 * (_L7 + t2 * _L9)))))
    z = z if z > _F(-126) else _F(-126)
    z = z if z < _F(127) else _F(127)
    n = _I(_I(z + _F(128.5)) - _I(128))  # round(z)
    f = z - _F(n)
    p = _E0 + f * (_E1 + f * (_E2 + f * (_E3 + f * (_E4 + f * (_E5 + f * (_E6 + f * _E7))))))
    v = bits_f32(_I(f32_bits(p) + _I(n << _I(23))))
    v = a * _F(1 / 12.92) if a <= _F(_THR_D) else v
    v = v if y >= 0 else -v
    return y if y != y else v


@aot.entry(noalias=True)  # element-wise: in place at the same index only
@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _encode_flat(src, dst, tab, inv_h):  # pragma: no cover - numba
    # enc1 per value, but a chunk with every value inside the table takes a loop without
    # enc1's pow() branch: LLVM speculated that call for every value (perf, 12 MP develop:
    # 5 % of all samples in powf), 10.1 -> 3.9 ns a value, the same values
    n = src.size
    chunk = 16384
    lim = _F(tab.shape[0] - 1)
    for c in numba.prange((n + chunk - 1) // chunk):
        lo, hi = c * chunk, min(n, c * chunk + chunk)
        past = 0
        for i in range(lo, hi):  # values past the table, or NaN
            past += np.int32(not (abs(src[i]) * inv_h < lim))
        if past:
            for i in range(lo, hi):
                dst[i] = enc1(src[i], tab, inv_h)
            continue
        for i in range(lo, hi):  # enc1's table branch
            x = src[i]
            v = _tab_lerp(abs(x) * inv_h, tab)
            dst[i] = v if x >= 0 else -v


@aot.entry(noalias=True)  # element-wise: in place at the same index only
@numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy",
            fastmath={"nsz", "arcp", "afn", "contract"})  # as _demosaic_rcd: the same rounding
def _decode_flat(src, dst):  # pragma: no cover - numba
    n = src.size
    chunk = 16384
    for c in numba.prange((n + chunk - 1) // chunk):
        for i in range(c * chunk, min(n, c * chunk + chunk)):
            dst[i] = dec1(src[i])


@aot.entry(noalias=True)  # writes only out (fresh)
@numba.njit(cache=True, nogil=True, error_model="numpy",
            fastmath={"nsz", "arcp", "afn", "contract"})  # as _decode_flat: the same values
def _decode_crop_restore_nb(rgb, lin, top, left, site, out):  # pragma: no cover - numba
    h, w = lin.shape
    for y in range(h):
        src = rgb[top + y, left : left + w].reshape(3 * w)
        o = out[y].reshape(3 * w)
        for j in range(3 * w):
            o[j] = dec1(src[j])
        lr = lin[y]
        c0, c1 = site[y & 1, 0], site[y & 1, 1]
        for x in range(0, w - 1, 2):
            o[3 * x + c0] = lr[x]
            o[3 * x + 3 + c1] = lr[x + 1]
        if w & 1:
            o[3 * (w - 1) + c0] = lr[w - 1]


def decode_crop_restore(rgb: np.ndarray, lin: np.ndarray, crop: tuple[int, int, int, int],
                        site: np.ndarray) -> np.ndarray:
    """:func:`decode` of the encoded (H, W, 3) ``rgb``, cropped to ``crop`` = (top, left, h,
    w), with each sample of the linear (h, w) mosaic ``lin`` put back in its channel
    (``site``: the (2, 2) channel of each CFA site of ``lin``), in one pass: a demosaic of an
    encoded, mirror-padded Bayer mosaic to its linear result without an unpadded copy, a
    decoding pass and the restoring passes (the same values)."""
    top, left, h, w = crop
    out = np.empty((h, w, 3), np.float32)
    _decode_crop_restore_nb(np.ascontiguousarray(rgb, np.float32),
                            np.ascontiguousarray(lin, np.float32), int(top), int(left),
                            np.ascontiguousarray(site, np.int64), out)
    return out


def encode(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Odd-extended sRGB encoding of float32 ``x`` (any shape) into ``out`` (new when None;
    may be ``x`` itself)."""
    src = np.ascontiguousarray(x, np.float32)
    if out is None:
        out = np.empty(src.shape, np.float32)
    _encode_flat(src.reshape(-1), out.reshape(-1), *encode_table())
    return out


def decode(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The inverse of :func:`encode` (``out`` may be ``y`` itself)."""
    src = np.ascontiguousarray(y, np.float32)
    if out is None:
        out = np.empty(src.shape, np.float32)
    _decode_flat(src.reshape(-1), out.reshape(-1))
    return out


@functools.lru_cache(maxsize=8)
def _stored_tables(black: float, scale: float, gains: tuple[float, ...]) -> np.ndarray:
    v = np.arange(1 << 16, dtype=np.float32)
    lin = (v - _F(black)) * _F(scale)
    g = np.asarray(gains, np.float32).reshape(3)
    return np.stack([encode(lin * g[c]) for c in range(3)])


def stored_tables(black: float, scale: float, gains: np.ndarray) -> np.ndarray:
    """(3, 65536) float32: the encoded value of every uint16 stored sample of each colour,
    read as ``((v - black) * scale) * gain`` in float32 (rcd's fused front) then encoded
    (cached: every strip of a develop asks for the same tables; read-only)."""
    t = _stored_tables(float(black), float(scale), tuple(float(g) for g in np.ravel(gains)))
    t.flags.writeable = False
    return t
