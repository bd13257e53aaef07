"""Camera colour -> CIE XYZ (D50 PCS) -> output RGB, as in DNG 1.6/1.7 chapter 6.

Chapter 6 ("Mapping Camera Color Space to CIE XYZ Space") defines, for a white point given as a
camera neutral or as xy chromaticity:

* ``CM``, ``CC``, ``FM``: ColorMatrix, CameraCalibration and ForwardMatrix, each interpolated
  between its *1 and *2 tags linearly in inverse correlated colour temperature (1/CCT) of the
  white, clamped outside the two CalibrationIlluminant temperatures;
* ``AB``: diag(AnalogBalance); ``XYZtoCamera = AB * CC * CM``;
* the camera neutral of a white xy is ``XYZtoCamera * XYZ(xy)``; the xy of a camera neutral is
  the fixed point of "the CCT picks the matrices, the matrices give the xy" (solved here by
  bisection on the interpolation weight, see :func:`neutral_to_xy`);
* ForwardMatrix path: ``ReferenceNeutral = Inverse(AB*CC) * CameraNeutral``,
  ``D = Invert(AsDiagonal(ReferenceNeutral))``, ``CameraToXYZ_D50 = FM * D * Inverse(AB*CC)``;
* ColorMatrix path: ``CameraToXYZ = Inverse(XYZtoCamera)`` followed by a linear Bradford
  adaptation (Lam 1985) from the white's xy to D50.

Matrices here map *white-balanced* camera RGB (camera RGB divided by the neutral, so the neutral
becomes (1, 1, 1)) to XYZ D50 with the white at Y = 1; pair them with
``whitebalance.gains`` / ``apply_gains`` on max-normalised neutrals (as ``whitebalance.neutral``
returns). CCT/tint use Robertson's (1968) isotemperature lines. Plain numpy (no colour-science
import: it is slow to import and not needed on the hot path).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InputError, OptionError, UnsupportedError
from ..raw.image import CameraColor
from . import spaces

# EXIF 2.3 LightSource / DNG CalibrationIlluminant code -> CCT (K).
# CIE illuminants: CCTs from CIE 15:2004 (Table T.1 and D-series note): A 2856, B 4874, C 6774,
# D50 5003, D55 5503, D65 6504, D75 7504. Fluorescent classes: midpoints of the ranges EXIF 2.3
# (JEITA CP-3451C, LightSource tag) quotes from JIS Z 9112: D 5700-7100, N 4600-5500,
# W 3800-4500, WW 3250-3800, L 2600-3250 K. Generic "Fluorescent" = cool white (CIE F2, 4230 K).
# Photographic names follow common camera presets: Tungsten 2850, ISO studio tungsten 3200
# (ISO 7589), Flash / Fine weather 5500, Daylight 6500, Cloudy 6500, Shade 7500.
LIGHT_SOURCE_CCT: dict[int, float] = {
    1: 6500.0,  # Daylight
    2: 4230.0,  # Fluorescent (generic: cool white, CIE F2)
    3: 2850.0,  # Tungsten (incandescent)
    4: 5500.0,  # Flash
    9: 5500.0,  # Fine weather
    10: 6500.0,  # Cloudy weather
    11: 7500.0,  # Shade
    12: 6400.0,  # Daylight fluorescent (D 5700-7100 K)
    13: 5050.0,  # Day white fluorescent (N 4600-5500 K)
    14: 4150.0,  # Cool white fluorescent (W 3800-4500 K)
    15: 3525.0,  # White fluorescent (WW 3250-3800 K)
    16: 2925.0,  # Warm white fluorescent (L 2600-3250 K)
    17: 2856.0,  # Standard light A
    18: 4874.0,  # Standard light B
    19: 6774.0,  # Standard light C
    20: 5503.0,  # D55
    21: 6504.0,  # D65
    22: 7504.0,  # D75
    23: 5003.0,  # D50
    24: 3200.0,  # ISO studio tungsten
}

D65_CODE = 21

# Robertson (1968) isotemperature lines, as tabulated in Wyszecki & Stiles, "Color Science"
# (2nd ed. 1982), Table 1(3.11): reciprocal temperature (mired), u, v (CIE 1960) of the
# Planckian locus, and slope t = dv/du of the isotemperature line.
_ROBERTSON = np.array(
    [
        [0, 0.18006, 0.26352, -0.24341],
        [10, 0.18066, 0.26589, -0.25479],
        [20, 0.18133, 0.26846, -0.26876],
        [30, 0.18208, 0.27119, -0.28539],
        [40, 0.18293, 0.27407, -0.30470],
        [50, 0.18388, 0.27709, -0.32675],
        [60, 0.18494, 0.28021, -0.35156],
        [70, 0.18611, 0.28342, -0.37915],
        [80, 0.18740, 0.28668, -0.40955],
        [90, 0.18880, 0.28997, -0.44278],
        [100, 0.19032, 0.29326, -0.47888],
        [125, 0.19462, 0.30141, -0.58204],
        [150, 0.19962, 0.30921, -0.70471],
        [175, 0.20525, 0.31647, -0.84901],
        [200, 0.21142, 0.32312, -1.0182],
        [225, 0.21807, 0.32909, -1.2168],
        [250, 0.22511, 0.33439, -1.4512],
        [275, 0.23247, 0.33904, -1.7298],
        [300, 0.24010, 0.34308, -2.0637],
        [325, 0.24792, 0.34655, -2.4681],
        [350, 0.25591, 0.34951, -2.9641],
        [375, 0.26400, 0.35200, -3.5814],
        [400, 0.27218, 0.35407, -4.3633],
        [425, 0.28039, 0.35577, -5.3762],
        [450, 0.28863, 0.35714, -6.7262],
        [475, 0.29685, 0.35823, -8.5955],
        [500, 0.30505, 0.35907, -11.324],
        [525, 0.31320, 0.35968, -15.628],
        [550, 0.32129, 0.36011, -23.325],
        [575, 0.32931, 0.36038, -40.770],
        [600, 0.33724, 0.36051, -116.45],
    ]
)
_MIRED = _ROBERTSON[:, 0]
_LOCUS_UV = _ROBERTSON[:, 1:3]
# Unit vectors along each isotemperature line, pointing to +v (above the locus, "green").
_NORMALS = np.stack([-np.ones(len(_ROBERTSON)), -_ROBERTSON[:, 3]], axis=1)
_NORMALS /= np.linalg.norm(_NORMALS, axis=1, keepdims=True)

# tint units per unit of Duv (CIE 1960 uv distance), Adobe's: + tint = +Duv, a white on the green
# side of the Planckian locus (daylight, D65: about +10), which white balance turns magenta in
# the photo, as Lightroom's Tint slider does (the DNG SDK's dng_temperature: kTintScale -3000 on
# its offset, whose sign is the opposite of Duv's)
TINT_SCALE = 3000.0


def _xy_to_uv(xy: np.ndarray) -> np.ndarray:
    x, y = float(xy[0]), float(xy[1])
    d = -2.0 * x + 12.0 * y + 3.0
    return np.array([4.0 * x / d, 6.0 * y / d])


def _uv_to_xy(uv: np.ndarray) -> np.ndarray:
    u, v = float(uv[0]), float(uv[1])
    d = 2.0 * u - 8.0 * v + 4.0
    return np.array([3.0 * u / d, 2.0 * v / d])


def _locus(seg: int, f: float) -> tuple[np.ndarray, np.ndarray]:
    """Planckian uv and unit isotherm direction at fraction f of Robertson segment ``seg``."""
    uv = _LOCUS_UV[seg] + f * (_LOCUS_UV[seg + 1] - _LOCUS_UV[seg])
    n = _NORMALS[seg] + f * (_NORMALS[seg + 1] - _NORMALS[seg])
    return uv, n / np.linalg.norm(n)


def _segment(mired: float) -> tuple[int, float]:
    seg = int(np.clip(np.searchsorted(_MIRED, mired, side="right") - 1, 0, len(_MIRED) - 2))
    return seg, (mired - _MIRED[seg]) / (_MIRED[seg + 1] - _MIRED[seg])


def cct_tint_to_xy(kelvin: float, tint: float = 0.0) -> np.ndarray:
    """CIE 1931 xy of a white given as correlated colour temperature (K) and tint.

    The Planckian point and the isotemperature direction are interpolated linearly in mired
    between Robertson's (1968) tabulated lines; the white sits at distance ``tint / 3000``
    along that line in CIE 1960 uv (Adobe's units: about ±150 in practice; + = a greener
    white, above the Planckian locus, so the balanced photo turns magenta, as with
    Lightroom's Tint; tint = 3000·Duv). Below 1667 K the last segment is extrapolated.
    """
    if not (np.isfinite(kelvin) and kelvin > 0):
        raise OptionError(f"colour temperature {kelvin} K is not a positive number")
    seg, f = _segment(1e6 / float(kelvin))
    uv, n = _locus(seg, f)
    return _uv_to_xy(uv + (float(tint) / TINT_SCALE) * n)


def xy_to_cct_tint(xy: tuple[float, float] | np.ndarray) -> tuple[float, float]:
    """(CCT in K, tint) of a CIE 1931 xy chromaticity: the exact inverse of cct_tint_to_xy.

    Robertson (1968): the white lies on the isotemperature line through it; the segment is
    found from the sign of its offset across the tabulated lines, then the mired value inside
    the segment by bisection (so the round trip with :func:`cct_tint_to_xy` is exact).
    Whites hotter than the table's 0 mired return inf.
    """
    p = _xy_to_uv(np.asarray(xy, dtype=float))

    def g(seg: int, f: float) -> float:
        uv, n = _locus(seg, f)
        d = p - uv
        return float(n[0] * d[1] - n[1] * d[0])

    d = p - _LOCUS_UV
    nodes = _NORMALS[:, 0] * d[:, 1] - _NORMALS[:, 1] * d[:, 0]
    change = np.nonzero(np.sign(nodes[:-1]) != np.sign(nodes[1:]))[0]
    if nodes[0] == 0.0:
        seg, lo, hi = 0, 0.0, 0.0
    elif len(change):
        seg, lo, hi = int(change[0]), 0.0, 1.0
    else:
        # Beyond 600 mired (below 1667 K): extrapolate the last segment up to 2000 mired.
        seg, lo, hi = len(_MIRED) - 2, 1.0, 1.0 + (2000.0 - 600.0) / 25.0
        if np.sign(g(seg, lo)) == np.sign(g(seg, hi)):
            hi = lo
    glo = g(seg, lo)
    for _ in range(60):
        if hi - lo < 1e-13:
            break
        mid = 0.5 * (lo + hi)
        gm = g(seg, mid)
        if np.sign(gm) == np.sign(glo):
            lo, glo = mid, gm
        else:
            hi = mid
    f = 0.5 * (lo + hi)
    mired = _MIRED[seg] + f * (_MIRED[seg + 1] - _MIRED[seg])
    uv, n = _locus(seg, f)
    duv = float(np.dot(p - uv, n))
    cct = 1e6 / mired if mired > 0 else float("inf")
    return float(cct), duv * TINT_SCALE


def illuminant_cct(code: int, source: str = "dng") -> float | None:
    """CCT (K) of an EXIF LightSource code, None when unknown (0, 255 'other', unlisted).

    LibRaw's built-in matrices (``source='libraw'``) are D65 ColorMatrix values, so an unknown
    code there means D65.
    """
    cct = LIGHT_SOURCE_CCT.get(int(code))
    if cct is None and source == "libraw":
        cct = LIGHT_SOURCE_CCT[D65_CODE]
    return cct


def interpolation_weight(color: CameraColor, cct: float) -> float:
    """Weight of the *1 tags (ColorMatrix1, ForwardMatrix1, CameraCalibration1) at a white CCT.

    DNG 1.6 ch. 6: linear in 1/CCT between the two CalibrationIlluminant temperatures, clamped
    to [0, 1] outside them; the *2 tags get ``1 - weight``. 1.0 when the file has one
    calibration (no ColorMatrix2) or an illuminant's temperature is unknown.
    """
    if color.color_matrix2 is None and color.forward_matrix2 is None:
        return 1.0
    t1 = illuminant_cct(color.illuminant1, color.source)
    t2 = illuminant_cct(color.illuminant2, color.source)
    if t1 is None or t2 is None or t1 == t2:
        return 1.0
    if not np.isfinite(cct) or cct <= 0:
        inv = 0.0
    else:
        inv = 1.0 / float(cct)
    w = (inv - 1.0 / t2) / (1.0 / t1 - 1.0 / t2)
    return float(np.clip(w, 0.0, 1.0))


def _mix(m1: np.ndarray | None, m2: np.ndarray | None, w: float) -> np.ndarray | None:
    if m1 is None:
        return None if m2 is None else np.asarray(m2, dtype=float)
    if m2 is None:
        return np.asarray(m1, dtype=float)
    return w * np.asarray(m1, dtype=float) + (1.0 - w) * np.asarray(m2, dtype=float)


def _ab(color: CameraColor) -> np.ndarray:
    if color.analog_balance is None:
        return np.eye(3)
    return np.diag(np.asarray(color.analog_balance, dtype=float).reshape(3))


def _ab_cc(color: CameraColor, w: float) -> np.ndarray:
    """AB * CC at interpolation weight w (CameraCalibration defaults to identity)."""
    cc1 = color.camera_calibration1
    cc2 = color.camera_calibration2
    if cc1 is not None or cc2 is not None:
        # A missing CameraCalibration of a pair means identity for that illuminant.
        cc = _mix(np.eye(3) if cc1 is None else cc1, np.eye(3) if cc2 is None else cc2, w)
    else:
        cc = np.eye(3)
    return _ab(color) @ cc


def _check_matrices(color: CameraColor) -> None:
    if color.color_matrix1 is None and color.color_matrix2 is None:
        raise UnsupportedError(
            "the raw file has no colour matrix (DNG ColorMatrix1 / LibRaw cam_xyz): "
            "cannot map camera colour to XYZ"
        )


def _xyz_to_camera_w(color: CameraColor, w: float) -> np.ndarray:
    cm = _mix(color.color_matrix1, color.color_matrix2, w)
    return _ab_cc(color, w) @ cm


def xyz_to_camera(color: CameraColor, cct: float) -> np.ndarray:
    """XYZtoCamera = AB * CC * CM at a white of temperature ``cct`` (DNG 1.6 ch. 6)."""
    _check_matrices(color)
    return _xyz_to_camera_w(color, interpolation_weight(color, cct))


def _as_neutral(neutral: np.ndarray | tuple[float, ...]) -> np.ndarray:
    n = np.asarray(neutral, dtype=float).reshape(-1)
    if n.shape != (3,) or not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise InputError(f"camera neutral must be 3 positive numbers, got {np.asarray(neutral)!r}")
    return n


def xy_to_neutral(color: CameraColor, xy: tuple[float, float] | np.ndarray) -> np.ndarray:
    """Camera-space neutral (max component 1) of a white of chromaticity xy.

    DNG 1.6 ch. 6: CameraNeutral = AB * CC * CM * XYZ(xy), matrices interpolated at the CCT of xy.
    """
    cct, _ = xy_to_cct_tint(xy)
    n = xyz_to_camera(color, cct) @ spaces.xy_to_xyz(xy)
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise InputError(
            f"white point xy=({float(xy[0]):.4f}, {float(xy[1]):.4f}) maps to a non-positive "
            f"camera neutral {n}: the colour matrices do not fit this white"
        )
    return n / n.max()


def neutral_to_xy(color: CameraColor, neutral: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """CIE 1931 xy of the white whose camera-space neutral is ``neutral`` (DNG 1.6 ch. 6).

    The spec's white is the fixed point of: interpolate the matrices at the current xy's CCT,
    map the neutral to XYZ through Inverse(AB*CC*CM), take its xy. Iterating that directly can
    oscillate slowly when the two calibrations differ (it does on the GoPro HERO7 tags), so the
    same fixed point is solved for the interpolation weight w by bisection on
    ``interpolation_weight(CCT(xy(w))) - w``, which always converges (to 1e-12 in w).
    """
    n = _as_neutral(neutral)
    _check_matrices(color)

    def xy_at(w: float) -> np.ndarray:
        xyz = np.linalg.solve(_xyz_to_camera_w(color, w), n)
        s = xyz.sum()
        if not np.isfinite(s) or s <= 0 or xyz[1] <= 0:
            raise InputError(f"camera neutral {n} maps to no physical white through the matrices")
        return xyz[:2] / s

    def g(w: float) -> float:
        return interpolation_weight(color, xy_to_cct_tint(xy_at(w))[0]) - w

    w_cold, w_hot = interpolation_weight(color, 1000.0), interpolation_weight(color, 1e9)
    if w_cold == w_hot:
        return xy_at(w_cold)  # one calibration: no iteration
    if g(0.0) <= 0.0:
        return xy_at(0.0)
    if g(1.0) >= 0.0:
        return xy_at(1.0)
    lo, hi = 0.0, 1.0
    while hi - lo > 1e-12:
        mid = 0.5 * (lo + hi)
        if g(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return xy_at(0.5 * (lo + hi))


def camera_to_xyz_d50(color: CameraColor, neutral: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """3x3 matrix: white-balanced camera RGB (camera / neutral) -> XYZ D50, white at Y = 1.

    DNG 1.6 ch. 6. The white's xy (``neutral_to_xy``) gives the CCT that interpolates the
    tags. With ForwardMatrix tags: FM * D * Inverse(AB*CC) with D = diag(ReferenceNeutral)^-1,
    ReferenceNeutral = Inverse(AB*CC) * neutral (FM rows rescaled so FM*(1,1,1) is exactly
    D50). Otherwise Bradford(white xy -> D50) * Inverse(AB*CC*CM), scaled so the neutral maps
    to Y = 1. Either way (1, 1, 1) maps to the D50 white. Works with a single ColorMatrix and
    with LibRaw's D65 cam_xyz (``source='libraw'``).
    """
    n = _as_neutral(neutral)
    _check_matrices(color)
    xy = neutral_to_xy(color, n)
    cct, _ = xy_to_cct_tint(xy)
    w = interpolation_weight(color, cct)
    d50 = spaces.xy_to_xyz(spaces.D50_XY)
    ab_cc = _ab_cc(color, w)
    fm = _mix(color.forward_matrix1, color.forward_matrix2, w)
    if fm is not None:
        fm = fm * (d50 / (fm @ np.ones(3)))[:, None]
        ref = np.linalg.solve(ab_cc, n)
        m = fm @ np.diag(1.0 / ref) @ np.linalg.inv(ab_cc) @ np.diag(n)
    else:
        cm = _mix(color.color_matrix1, color.color_matrix2, w)
        cam_to_xyz = np.linalg.inv(ab_cc @ cm) @ np.diag(n)
        white = cam_to_xyz @ np.ones(3)
        m = spaces.bradford(white[:2] / white.sum(), spaces.D50_XY) @ cam_to_xyz
        m = m / (m @ np.ones(3))[1]
    return m


def camera_to_output(
    color: CameraColor, neutral: np.ndarray | tuple[float, ...], space: str
) -> np.ndarray:
    """3x3 matrix: white-balanced camera RGB -> linear RGB of an output space (spaces.SPACES)."""
    if space not in spaces.SPACES:
        raise OptionError(f"unknown colour space {space!r} (one of {', '.join(spaces.SPACES)})")
    return spaces.xyz_d50_to_rgb(space) @ camera_to_xyz_d50(color, neutral)


def apply_matrix_reference(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Plain-numpy reference of :func:`apply_matrix`."""
    x = np.asarray(rgb, dtype=np.float32)
    return np.ascontiguousarray(x @ np.asarray(m, dtype=np.float32).T, dtype=np.float32)


def apply_matrix(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``out[..., i] = sum_j m[i, j] * rgb[..., j]`` on float32 (..., 3); OpenCV transform.

    Negative and over-range values are kept (no clipping). The input is not modified.
    """
    x = np.asarray(rgb)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise InputError(f"apply_matrix needs (..., 3) RGB data, got shape {x.shape}")
    mat = np.asarray(m, dtype=np.float32)
    if mat.shape != (3, 3):
        raise InputError(f"colour matrix must be 3x3, got shape {mat.shape}")
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.float32)
    shape = x.shape if x.ndim == 3 else (-1, 1, 3)
    out = cv2.transform(np.ascontiguousarray(x, dtype=np.float32).reshape(shape), mat)
    return np.ascontiguousarray(out.reshape(x.shape), dtype=np.float32)
