"""ColorChecker accuracy of the DNG colour pipeline (isp.color) on spectrally rendered charts.

The 24 BabelColor-average ColorChecker reflectances (../shared/data/color CSV) are rendered
under CIE illuminants with a real camera's spectral sensitivities (colour-science's
``MSDS_CAMERA_SENSITIVITIES``; default Nikon 5100, NPL measurement) into camera raw values, and
with the CIE 1931 2° observer into reference XYZ. A DNG-style CameraColor is fitted on two
illuminants only (ColorMatrix1 @ StdA, ColorMatrix2 @ D65, optionally ForwardMatrix1/2), then
the chart is developed through ``color.camera_to_xyz_d50`` under every illuminant and compared
in CIELAB D50 (ΔE2000) with the reference: the chart's XYZ under that illuminant, Bradford
adapted to D50 (what a DNG pipeline aims at: the scene as seen adapted to its white).

Neutral: 'as-shot' is the camera response to a perfect white under the illuminant (an ideal
camera AsShotNeutral); 'grey' is the mean of the neutral 8 / 6.5 / 5 patches, as a user
picking the chart's greys would get.

Run: ``.venv/bin/python bench/quality_color.py`` (a few seconds: importing colour, two fits).
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np

from oneinch.isp import color, spaces
from oneinch.raw.image import CameraColor

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "color"
REFLECTANCE_CSV = DATA / "colorchecker24_babelcolor_average_spectral_reflectance.csv"
CAMERA = "Nikon 5100 (NPL)"
FIT_ILLUMINANTS = ("A", "D65")  # EXIF codes 17 (StdA) and 21 (D65)
TEST_ILLUMINANTS = ("A", "D65", "D50", "D55", "D75", "FL2", "FL7", "FL11", "LED-B3")
GREY_PATCHES = (19, 20, 21)  # 0-based: neutral 8, 6.5, 5


def _colour():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    return colour


@cache
def spectral_data(camera: str = CAMERA) -> dict[str, np.ndarray]:
    """On a 380-730 nm, 5 nm grid (fine enough for the fluorescent lines of the FL series):
    wavelengths (N,), reflectances (24, N), CMFs (N, 3), camera sensitivities (N, 3)."""
    colour = _colour()
    shape = colour.SpectralShape(380, 730, 5)
    if REFLECTANCE_CSV.exists():
        with open(REFLECTANCE_CSV) as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
        table = np.array([[float(v) for v in r] for r in rows[1:]])
        sds = [colour.SpectralDistribution(dict(zip(table[:, 0], table[:, i], strict=True)))
               for i in range(1, table.shape[1])]
    else:  # the same data, from colour-science
        sds = list(colour.SDS_COLOURCHECKERS["BabelColor Average"].values())
    refl = np.array([sd.copy().align(shape).values for sd in sds])
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(shape).values
    sens = colour.MSDS_CAMERA_SENSITIVITIES[camera].copy().align(shape).values
    return {"wl": np.asarray(shape.wavelengths), "refl": refl, "cmfs": cmfs, "sens": sens}


@cache
def illuminant_spd(name: str) -> np.ndarray:
    colour = _colour()
    return colour.SDS_ILLUMINANTS[name].copy().align(colour.SpectralShape(380, 730, 5)).values


def render(name: str, camera: str = CAMERA) -> dict[str, np.ndarray]:
    """Chart under illuminant ``name``: camera raw (24, 3) normalised so a perfect white's
    largest channel is 1, its neutral (3,), XYZ (24, 3) with the white at Y = 1, white xy."""
    d = spectral_data(camera)
    e = illuminant_spd(name)
    cam_white = e @ d["sens"]
    xyz_white = e @ d["cmfs"]
    cam = (d["refl"] * e) @ d["sens"] / cam_white.max()
    xyz = (d["refl"] * e) @ d["cmfs"] / xyz_white[1]
    return {
        "cam": cam,
        "neutral": cam_white / cam_white.max(),
        "xyz": xyz,
        "white_xyz": xyz_white / xyz_white[1],
        "white_xy": xyz_white[:2] / xyz_white.sum(),
    }


def _lab(xyz: np.ndarray, white_xyz: np.ndarray) -> np.ndarray:
    """CIE 1976 L*a*b* (CIE 15:2004) of XYZ relative to ``white_xyz``."""
    t = xyz / white_xyz
    d = 6.0 / 29.0
    f = np.where(t > d**3, np.cbrt(t), t / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (CIE 142-2001; formulas as in Sharma, Wu & Dalal 2005),
    kL = kC = kH = 1. Plain numpy: the ΔE00-minimising fit calls it thousands of times."""
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=float), -1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=float), -1, 0)
    c_bar = 0.5 * (np.hypot(a1, b1) + np.hypot(a2, b2))
    g = 0.5 * (1 - np.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dl = l2 - l1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_bar = 0.5 * (l1 + l2)
    cp_bar = 0.5 * (c1p + c2p)
    hsum = h1p + h2p
    h_bar = np.where(np.abs(h1p - h2p) > 180,
                     np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2), hsum / 2)
    h_bar = np.where(c1p * c2p == 0, hsum, h_bar)
    t = (1 - 0.17 * np.cos(np.radians(h_bar - 30)) + 0.24 * np.cos(np.radians(2 * h_bar))
         + 0.32 * np.cos(np.radians(3 * h_bar + 6)) - 0.20 * np.cos(np.radians(4 * h_bar - 63)))
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_bar**7 / (cp_bar**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * cp_bar
    s_h = 1 + 0.015 * cp_bar * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt((dl / s_l) ** 2 + (dc / s_c) ** 2 + (d_h / s_h) ** 2
                   + r_t * (dc / s_c) * (d_h / s_h))


def fit_wb_matrix(cam_wb: np.ndarray, xyz: np.ndarray, white_xyz: np.ndarray) -> np.ndarray:
    """3x3 M: white-balanced camera -> XYZ with M (1,1,1) = white, minimising ΔE2000 over the
    chart (6 free parameters, least squares on per-patch ΔE00; start: linear least squares)."""
    from scipy.optimize import least_squares

    lab_ref = _lab(xyz, white_xyz)
    m0 = np.linalg.lstsq(cam_wb, xyz, rcond=None)[0].T

    def full(p: np.ndarray) -> np.ndarray:
        m = np.empty((3, 3))
        m[:, :2] = p.reshape(3, 2)
        m[:, 2] = white_xyz - m[:, :2].sum(axis=1)
        return m

    def resid(p: np.ndarray) -> np.ndarray:
        return delta_e2000(_lab(cam_wb @ full(p).T, white_xyz), lab_ref)

    sol = least_squares(resid, m0[:, :2].reshape(-1), method="lm", x_scale="jac")
    return full(sol.x)


@cache
def _fit(name: str, camera: str) -> tuple[np.ndarray, np.ndarray]:
    """(ColorMatrix, ForwardMatrix) fitted on the chart under illuminant ``name``."""
    r = render(name, camera)
    m = fit_wb_matrix(r["cam"] / r["neutral"], r["xyz"], r["white_xyz"])
    return (np.diag(r["neutral"]) @ np.linalg.inv(m),
            spaces.bradford(r["white_xy"], spaces.D50_XY) @ m)


@cache
def fitted_camera_color(camera: str = CAMERA, forward: bool = False,
                        single: bool = False) -> CameraColor:
    """DNG CameraColor fitted on the chart under StdA and D65 (DNG normalisation: the
    illuminant's white XYZ (Y = 1) maps to its camera neutral with max component 1).
    ``forward`` adds ForwardMatrix1/2 (fit matrix Bradford-adapted to D50); ``single`` keeps
    only the D65 ColorMatrix (like LibRaw's cam_xyz)."""
    cms, fms = zip(*(_fit(name, camera) for name in FIT_ILLUMINANTS), strict=True)
    if single:
        return CameraColor(color_matrix1=cms[1], illuminant1=21)
    cc = CameraColor(color_matrix1=cms[0], color_matrix2=cms[1], illuminant1=17, illuminant2=21)
    if forward:
        cc = replace(cc, forward_matrix1=fms[0], forward_matrix2=fms[1])
    return cc


def develop_chart(cc: CameraColor, name: str, neutral: str = "as-shot",
                  camera: str = CAMERA) -> np.ndarray:
    """ΔE2000 (24,) of the chart under ``name`` developed with ``cc`` vs the adapted reference."""
    r = render(name, camera)
    if neutral == "as-shot":
        n = r["neutral"]
    else:
        n = r["cam"][list(GREY_PATCHES)].mean(axis=0)
        n = n / n.max()
    m = color.camera_to_xyz_d50(cc, n)
    xyz_dev = color.apply_matrix(r["cam"] / n, m).astype(np.float64)
    d50 = spaces.xy_to_xyz(spaces.D50_XY)
    ref = r["xyz"] @ spaces.bradford(r["white_xy"], spaces.D50_XY).T
    return delta_e2000(_lab(xyz_dev, d50), _lab(ref, d50))


VARIANTS = {
    "CM A+D65": {"forward": False, "single": False, "neutral": "as-shot"},
    "FM A+D65": {"forward": True, "single": False, "neutral": "as-shot"},
    "CM D65 only": {"forward": False, "single": True, "neutral": "as-shot"},
    "FM, grey WB": {"forward": True, "single": False, "neutral": "grey"},
}


def colorchecker_table(camera: str = CAMERA, illuminants: tuple[str, ...] = TEST_ILLUMINANTS,
                       show: bool = True) -> list[dict[str, object]]:
    """ΔE2000 avg/max per illuminant and variant; prints the table when ``show``."""
    rows = []
    for name in illuminants:
        r = render(name, camera)
        cct, tint = color.xy_to_cct_tint(r["white_xy"])
        row: dict[str, object] = {"illuminant": name, "cct": cct, "tint": tint,
                                  "fit": name in FIT_ILLUMINANTS}
        for label, v in VARIANTS.items():
            cc = fitted_camera_color(camera, v["forward"], v["single"])
            de = develop_chart(cc, name, v["neutral"], camera)
            row[label] = (float(de.mean()), float(de.max()))
        rows.append(row)
    if show:
        head = f"{'illuminant':<10} {'CCT K':>6} {'tint':>6} {'fit':>4} " + " ".join(
            f"{k:>16}" for k in VARIANTS)
        print(f"ColorChecker 24 (BabelColor avg), camera {camera}: ΔE2000 avg / max, Lab D50")
        print(head)
        for row in rows:
            cells = " ".join(f"{row[k][0]:>8.2f} /{row[k][1]:>6.2f}" for k in VARIANTS)
            print(f"{row['illuminant']:<10} {row['cct']:>6.0f} {row['tint']:>6.1f} "
                  f"{'yes' if row['fit'] else '':>4} {cells}")
    return rows


if __name__ == "__main__":
    colorchecker_table()
