"""Camera profiling from a ColorChecker 24 shot: ColorMatrix / ForwardMatrix (+ HueSatMap).

Patches are sampled on the 6 x 4 grid spanned by the chart's four corner points (given, or the
whole frame for a chart shot/rendered edge to edge), from the demosaiced camera RGB before any
colour matrix (``develop(..., until='demosaic')`` with the white balance undone). The camera
neutral is the mean of the neutral 8, 6.5 and 5 patches. The reference is colour-science's
"ColorChecker24 - After November 2014" (X-Rite, xyY under D50), read at run time.

Fit (DNG 1.6 ch. 6 conventions): ForwardMatrix F maps white-balanced camera RGB to XYZ D50 with
F (1, 1, 1) = D50 white; its 6 free parameters minimise the patches' CIEDE2000 (CIE 142-2001)
by Levenberg-Marquardt from the linear least-squares start (as in Finlayson, Mackiewicz &
Hurlbert 2015 "Color correction using root-polynomial regression", §2, the perceptual-error
refinement of a 3x3). The ColorMatrix for the calibration illuminant follows from F: with m =
Bradford(D50 -> illuminant) F, ColorMatrix = diag(neutral) m^-1 (XYZ of the illuminant's white,
Y = 1, maps to the neutral with max 1). Optionally a HueSatMap corrects what a 3x3 cannot: per
hue sector, the mean hue shift and saturation scale that brings the matrix result onto the
reference (in ProPhoto HSV, smoothed around the hue circle).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .errors import InputError, OptionError
from .isp import spaces
from .isp.dcp import DCP, HueSatMap, apply_hue_sat_map, rgb_to_hsv

REFERENCE = "ColorChecker24 - After November 2014"
GREY_PATCHES = (19, 20, 21)  # 0-based: neutral 8, 6.5, 5
ILLUMINANTS = {  # name -> EXIF LightSource code (DNG CalibrationIlluminant)
    "A": 17, "B": 18, "C": 19, "D55": 20, "D65": 21, "D75": 22, "D50": 23,
    "FL1": 12, "FL2": 14, "FL3": 15, "FL4": 16, "FL11": 14,
}
# colour-science illuminant names for the codes (FL2 "cool white" and FL11 share code 14)
_CODE_XY_NAME = {17: "A", 18: "B", 19: "C", 20: "D55", 21: "D65", 22: "D75", 23: "D50",
                 12: "FL1", 14: "FL2", 15: "FL3", 16: "FL4"}


def _colour():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    return colour


def illuminant_xy(name: str) -> np.ndarray:
    """CIE 1931 2° chromaticity of a CIE illuminant ('A', 'D65', 'FL2'...) from colour-science."""
    c = _colour()
    try:
        return np.asarray(c.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"][name], float)
    except KeyError as e:
        raise OptionError(f"unknown illuminant {name!r} (A, D50, D55, D65, D75, FL1..FL12)") from e


def reference_xyz_d50() -> np.ndarray:
    """(24, 3) XYZ (D50, white Y = 1) of the ColorChecker 24, patch order row by row."""
    c = _colour()
    chart = c.CCS_COLOURCHECKERS[REFERENCE]
    xyy = np.array(list(chart.data.values()), dtype=float)
    return np.asarray(c.xyY_to_XYZ(xyy), float)


def lab_d50(xyz: np.ndarray) -> np.ndarray:
    """CIE 1976 L*a*b* relative to D50 (CIE 15:2004)."""
    t = np.asarray(xyz, float) / spaces.xy_to_xyz(spaces.D50_XY)
    d = 6.0 / 29.0
    f = np.where(t > d**3, np.cbrt(np.maximum(t, 0)), t / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 (colour-science's implementation of CIE 142-2001)."""
    return np.asarray(_colour().delta_E(lab1, lab2, method="CIE 2000"), float)


# ----------------------------------------------------------------------------- patches


def patch_centres(corners: np.ndarray, rows: int = 4, cols: int = 6) -> np.ndarray:
    """(rows*cols, 2) (x, y) patch centres inside the quadrilateral ``corners`` (4, 2):
    top-left, top-right, bottom-right, bottom-left of the chart (bilinear grid)."""
    c = np.asarray(corners, float).reshape(4, 2)
    u = (np.arange(cols) + 0.5) / cols
    v = (np.arange(rows) + 0.5) / rows
    uu, vv = np.meshgrid(u, v)
    top = c[0] + (c[1] - c[0]) * uu[..., None]
    bot = c[3] + (c[2] - c[3]) * uu[..., None]
    return (top + (bot - top) * vv[..., None]).reshape(-1, 2)


def patch_values(rgb: np.ndarray, corners: np.ndarray | None = None, rows: int = 4,
                 cols: int = 6, fraction: float = 0.4) -> np.ndarray:
    """Median RGB (rows*cols, 3) of a square window (``fraction`` of a patch pitch) around each
    patch centre. ``corners`` None = the chart fills the image."""
    h, w = rgb.shape[:2]
    if corners is None:
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    c = np.asarray(corners, float).reshape(4, 2)
    pitch = min(np.linalg.norm(c[1] - c[0]) / cols, np.linalg.norm(c[3] - c[0]) / rows)
    r = max(1, int(pitch * fraction / 2))
    out = []
    for x, y in patch_centres(c, rows, cols):
        xi, yi = round(float(x)), round(float(y))
        if not (r <= xi < w - r and r <= yi < h - r):
            raise InputError(f"chart patch at ({xi}, {yi}) lies outside the {w}x{h} image")
        out.append(np.median(rgb[yi - r:yi + r + 1, xi - r:xi + r + 1].reshape(-1, 3), axis=0))
    return np.asarray(out, float)


# ----------------------------------------------------------------------------- fitting


def fit_forward_matrix(cam_wb: np.ndarray, xyz_d50: np.ndarray) -> np.ndarray:
    """3x3 F: white-balanced camera -> XYZ D50, F (1,1,1) = D50 white, minimising ΔE2000."""
    from scipy.optimize import least_squares

    white = spaces.xy_to_xyz(spaces.D50_XY)
    ref = lab_d50(xyz_d50)
    m0 = np.linalg.lstsq(cam_wb, xyz_d50, rcond=None)[0].T

    def full(p: np.ndarray) -> np.ndarray:
        m = np.empty((3, 3))
        m[:, :2] = p.reshape(3, 2)
        m[:, 2] = white - m[:, :2].sum(axis=1)
        return m

    def resid(p: np.ndarray) -> np.ndarray:
        return delta_e2000(lab_d50(cam_wb @ full(p).T), ref)

    sol = least_squares(resid, m0[:, :2].reshape(-1), method="lm", x_scale="jac")
    return full(sol.x)


def color_matrix_from_forward(fm: np.ndarray, neutral: np.ndarray, white_xy: np.ndarray
                              ) -> np.ndarray:
    """DNG ColorMatrix (XYZ -> camera) for the calibration illuminant with white ``white_xy``."""
    m = spaces.bradford(spaces.D50_XY, white_xy) @ fm
    n = np.asarray(neutral, float) / np.max(neutral)
    cm = np.diag(n) @ np.linalg.inv(m)
    return cm / (cm @ spaces.xy_to_xyz(white_xy)).max()


def fit_hue_sat_map(cam_wb: np.ndarray, fm: np.ndarray, xyz_d50: np.ndarray,
                    hue_divisions: int = 36, smooth: float = 1.5) -> HueSatMap:
    """2-D HueSatMap (value divisions 1) moving the matrix result towards the reference in
    ProPhoto HSV: per hue division, Gaussian-weighted (``smooth`` divisions, wrapping) mean of
    the patches' hue shift and saturation ratio, weighted by their saturation. Neutral (s = 0)
    is left alone; the saturation axis has 2 divisions (0 and 1: identity at 0)."""
    to_pp = spaces.xyz_d50_to_rgb("prophoto")
    got = np.maximum(cam_wb @ fm.T @ to_pp.T, 1e-9)
    ref = np.maximum(xyz_d50 @ to_pp.T, 1e-9)
    h1, s1, _ = rgb_to_hsv(got)
    h2, s2, _ = rgb_to_hsv(ref)
    dh = (h2 - h1 + 3.0) % 6.0 - 3.0  # hexcone units, wrapped to [-3, 3)
    ds = np.log(np.maximum(s2, 1e-6) / np.maximum(s1, 1e-6))
    wt = np.clip(s1, 0, 1) ** 2 * (s1 > 0.05)
    centres = np.arange(hue_divisions) * 6.0 / hue_divisions
    d = (centres[:, None] - h1[None, :] + 3.0) % 6.0 - 3.0
    g = np.exp(-0.5 * (d / (smooth * 6.0 / hue_divisions)) ** 2) * wt[None, :]
    norm = g.sum(axis=1) + 1e-3
    shift = (g * dh).sum(axis=1) / norm * 60.0  # degrees
    scale = np.exp((g * ds).sum(axis=1) / norm)
    data = np.zeros((1, hue_divisions, 2, 3), np.float32)
    data[0, :, 0] = [0.0, 1.0, 1.0]
    data[0, :, 1, 0] = shift
    data[0, :, 1, 1] = scale
    data[0, :, 1, 2] = 1.0
    return HueSatMap(data)


@dataclass(frozen=True)
class ChartFit:
    """One chart under one illuminant: its fitted matrices and the fit's ΔE2000 per patch."""

    illuminant: int
    white_xy: np.ndarray
    neutral: np.ndarray
    forward_matrix: np.ndarray
    color_matrix: np.ndarray
    hue_sat_map: HueSatMap | None
    delta_e: np.ndarray


def fit_chart(camera_rgb: np.ndarray, illuminant: str, hue_sat_map: bool = False,
              reference: np.ndarray | None = None) -> ChartFit:
    """Fit from the 24 patches' camera RGB (not white-balanced) shot under ``illuminant``.

    ``reference``: (24, 3) XYZ D50 targets (default: :func:`reference_xyz_d50`)."""
    cam = np.asarray(camera_rgb, float).reshape(24, 3)
    if not np.all(np.isfinite(cam)) or cam.min() <= 0:
        raise InputError("chart patches must all be positive (is the chart exposed and found?)")
    neutral = cam[list(GREY_PATCHES)].mean(axis=0)
    neutral = neutral / neutral.max()
    cam_wb = cam / neutral
    # scale exposure: the grey patches' Y to the reference's
    ref = reference_xyz_d50() if reference is None else np.asarray(reference, float)
    cam_wb = cam_wb * (ref[list(GREY_PATCHES), 1].mean() / cam_wb[list(GREY_PATCHES)].mean())
    fm = fit_forward_matrix(cam_wb, ref)
    hsm = fit_hue_sat_map(cam_wb, fm, ref) if hue_sat_map else None
    xy = illuminant_xy(illuminant)
    code = ILLUMINANTS.get(illuminant.upper(), 255)  # 255: "other light source"
    xyz = cam_wb @ fm.T
    if hsm is not None:
        pp = spaces.xyz_d50_to_rgb("prophoto")
        xyz = apply_hue_sat_map(xyz @ pp.T, hsm) @ np.linalg.inv(pp).T
    return ChartFit(code, xy, neutral, fm, color_matrix_from_forward(fm, neutral, xy), hsm,
                    delta_e2000(lab_d50(xyz), lab_d50(ref)))


def build_dcp(fits: list[ChartFit], camera_model: str | None, name: str = "oneinch chart fit"
              ) -> DCP:
    """A DCP from one or two chart fits (two: sorted by CCT, warm first, as DNG expects)."""
    if not 1 <= len(fits) <= 2:
        raise OptionError("a profile needs one or two charts (two different illuminants)")
    fits = sorted(fits, key=lambda f: -f.white_xy[0])  # larger x = warmer
    a = fits[0]
    b = fits[1] if len(fits) == 2 else None
    maps = [f.hue_sat_map for f in fits]
    return DCP(
        unique_camera_model=camera_model,
        profile_name=name,
        color_matrix1=a.color_matrix,
        color_matrix2=None if b is None else b.color_matrix,
        forward_matrix1=a.forward_matrix,
        forward_matrix2=None if b is None else b.forward_matrix,
        illuminant1=a.illuminant,
        illuminant2=0 if b is None else b.illuminant,
        hue_sat_map1=maps[0],
        hue_sat_map2=maps[1] if b is not None else None,
        embed_policy=0,
        copyright="fitted by oneinch profile",
    )


def chart_camera_rgb(raw: object, corners: np.ndarray | None = None) -> np.ndarray:
    """(24, 3) camera RGB (white balance undone) of a chart in a RawImage."""
    from .develop import demosaiced
    from .isp import whitebalance
    from .recipe import Recipe

    r = Recipe().with_(denoise={"mode": "off"}, highlights={"mode": "clip"})
    rgb = demosaiced(raw, r)  # type: ignore[arg-type]
    gains = whitebalance.gains(raw.color.as_shot_neutral)  # type: ignore[attr-defined]
    return patch_values(rgb, corners) / gains


def xyz_from_camera(cam: np.ndarray, d: DCP, neutral: np.ndarray, weight1: float = 1.0
                    ) -> np.ndarray:
    """Develop camera RGB (n, 3) through a profile: ForwardMatrix (mixed by ``weight1``) and
    its HueSatMap, to XYZ D50 (for checking a profile on a chart)."""
    from .isp.dcp import interpolate_maps

    fms = [m for m in (d.forward_matrix1, d.forward_matrix2) if m is not None]
    fm = fms[0] if len(fms) == 1 else weight1 * fms[0] + (1 - weight1) * fms[1]
    xyz = (np.asarray(cam, float) / neutral) @ fm.T
    hsm = interpolate_maps(d, weight1)
    if hsm is not None:
        pp = spaces.xyz_d50_to_rgb("prophoto")
        xyz = apply_hue_sat_map(xyz @ pp.T, hsm) @ np.linalg.inv(pp).T
    return xyz
