"""High-quality Bayer demosaicing: gradient-weighted green + residual interpolation of R/B.

Green: Pekkucuksen & Glotzbach 2010, "Gradient based threshold free color filter array
interpolation" (GBTF), sec. 2: Hamilton-Adams directional colour differences, combined from
four directions with weights 1 / (sum of directional gradients)^2.
R/B: Kiku, Monno, Tanaka, Okutomi 2013, "Residual interpolation for color image demosaicking"
(ICIP), sec. 3: a guided filter (He, Sun, Tang 2010, box-filter form) on the full green guide
fitted only where R (B) is sampled gives a tentative R; the residual R - tentative, known at the
samples, is interpolated bilinearly and added back. All with OpenCV box filters, on an RGGB
mosaic with a mirror margin.
"""

from __future__ import annotations

import cv2
import numpy as np

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
    w_n = 1.0 / (np.roll(sv, 2, axis=0) ** 2 + eps)  # window rows y-4..y
    w_s = 1.0 / (np.roll(sv, -2, axis=0) ** 2 + eps)
    w_w = 1.0 / (np.roll(sh, 2, axis=1) ** 2 + eps)
    w_e = 1.0 / (np.roll(sh, -2, axis=1) ** 2 + eps)
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


def _guided_sparse(
    guide: np.ndarray, target: np.ndarray, mask: np.ndarray, r: int, eps: float
) -> np.ndarray:
    """Guided filter fitted only at mask > 0 (He et al. 2010, box form); returns a*I + b."""
    k = 2 * r + 1
    n = _box(mask, k, k) + 1e-12
    mi = _box(guide * mask, k, k) / n
    mp = _box(target * mask, k, k) / n
    cov = _box(guide * target * mask, k, k) / n - mi * mp
    var = _box(guide * guide * mask, k, k) / n - mi * mi
    a = cov / (var + eps)
    b = mp - a * mi
    nn = float(k * k)
    return (_box(a, k, k) / nn) * guide + _box(b, k, k) / nn


_K_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4


def rb_residual(
    cfa: np.ndarray, green: np.ndarray, r: int = 3, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray]:
    """R and B by residual interpolation with green as the guide (Kiku et al. 2013, sec. 3)."""
    h, w = cfa.shape
    mr, _, mb = _masks(h, w)
    out = []
    for m in (mr, mb):
        tent = _guided_sparse(green, cfa * m, m, r, eps)
        resid = (cfa - tent) * m
        out.append((tent + _f(resid, _K_RB)).astype(np.float32))
    return out[0], out[1]


def ri_rggb(cfa: np.ndarray) -> np.ndarray:
    """GBTF green + residual-interpolated R/B on an RGGB mosaic (mirror margin >= 16)."""
    c = np.ascontiguousarray(cfa, np.float32)
    g = green_gbtf(c)
    r, b = rb_residual(c, g)
    return np.ascontiguousarray(np.stack([r, g, b], axis=-1))
