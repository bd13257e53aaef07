"""Fused numba transfer functions (clip + piecewise power law in one pass) for large arrays.

The same formulas as :func:`oneinch.isp.spaces.encode` / ``decode`` (IEC 61966-2-1:1999 §5 for
sRGB, ITU-R BT.709-6 §1.2 for BT.709, ROMM RGB / ISO 22028-2:2013 §A for ROMM), evaluated per
element in float32 with single-precision ``powf``: the results agree with the numpy formulas
within a few float32 ulps (< 1e-6 on [0, 1]). One pass over the data instead of numpy's five
full-size temporaries (clip, where, power, multiply, astype).
"""

from __future__ import annotations

import numba
import numpy as np

# codes: the kernel branches on a small integer, not a string
CODES = {"srgb": 0, "bt709": 1, "romm": 2}

_F = np.float32


@numba.njit(cache=True, nogil=True, inline="always")
def _enc1(x, code):  # pragma: no cover - numba
    if x != x:  # NaN: numpy's clip keeps NaN; so do we
        return x
    x = min(max(x, _F(0.0)), _F(1.0))
    if code == 0:
        if x <= _F(0.0031308):
            return _F(12.92) * x
        return _F(1.055) * x ** _F(1.0 / 2.4) - _F(0.055)
    if code == 1:
        if x < _F(0.018053968510807):
            return _F(4.5) * x
        return _F(1.09929682680944) * x ** _F(0.45) - _F(0.09929682680944)
    if x < _F(1.0 / 512.0):
        return _F(16.0) * x
    return x ** _F(1.0 / 1.8)


@numba.njit(cache=True, nogil=True, inline="always")
def _dec1(v, code):  # pragma: no cover - numba
    if v != v:
        return v
    v = min(max(v, _F(0.0)), _F(1.0))
    if code == 0:
        if v <= _F(0.04045):
            return v / _F(12.92)
        return ((v + _F(0.055)) / _F(1.055)) ** _F(2.4)
    if code == 1:
        if v < _F(4.5 * 0.018053968510807):
            return v / _F(4.5)
        return ((v + _F(0.09929682680944)) / _F(1.09929682680944)) ** _F(1.0 / 0.45)
    if v < _F(16.0 / 512.0):
        return v / _F(16.0)
    return v ** _F(1.8)


@numba.njit(parallel=True, cache=True, nogil=True)
def _encode_flat(src, dst, code, inverse):  # pragma: no cover - numba
    n = src.size
    chunk = 16384
    for k in numba.prange((n + chunk - 1) // chunk):
        a = k * chunk
        b = min(n, a + chunk)
        if inverse:
            for i in range(a, b):
                dst[i] = _dec1(src[i], code)
        else:
            for i in range(a, b):
                dst[i] = _enc1(src[i], code)


def apply(x: np.ndarray, transfer: str, *, inverse: bool = False,
          out: np.ndarray | None = None) -> np.ndarray:
    """encode (or decode, ``inverse``) float32 ``x`` with ``transfer`` ('srgb', 'bt709',
    'romm') into ``out`` (a new float32 array of x's shape when None; may be ``x`` itself)."""
    src = np.ascontiguousarray(x, dtype=np.float32)
    if out is None:
        out = np.empty(src.shape, np.float32)
    _encode_flat(src.reshape(-1), out.reshape(-1), CODES[transfer], inverse)
    return out
