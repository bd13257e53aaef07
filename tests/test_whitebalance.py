"""isp.whitebalance: neutrals per mode (vs rendered ground truth), gains, auto WB, apply_gains."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from oneinch.errors import InputError, OptionError
from oneinch.isp import color, spaces
from oneinch.isp import whitebalance as wbm
from oneinch.raw.image import CameraColor, CFAPattern
from oneinch.recipe import WhiteBalance

_spec = importlib.util.spec_from_file_location(
    "quality_color", Path(__file__).resolve().parents[1] / "bench" / "quality_color.py"
)
qc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(qc)


@pytest.fixture(scope="module")
def nikon() -> CameraColor:
    return qc.fitted_camera_color(forward=True)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


def test_gains():
    g = wbm.gains(np.array([0.5, 1.0, 0.8]))
    np.testing.assert_allclose(g, [2.0, 1.0, 1.25])
    g = wbm.gains(np.array([1.0, 2.0, 4.0]))
    np.testing.assert_allclose(g, [4.0, 2.0, 1.0])
    assert g.min() == 1.0
    with pytest.raises(InputError):
        wbm.gains(np.array([0.5, 0.0, 1.0]))


@pytest.mark.parametrize("cfa", [CFAPattern.bayer("RGGB"), CFAPattern.bayer("GBRG"),
                                 CFAPattern.xtrans(), CFAPattern.quad_bayer("BGGR")])
def test_apply_gains_mosaic_matches_reference(cfa):
    rng = np.random.default_rng(3)
    mosaic = rng.uniform(0, 1.2, (25, 37)).astype(np.float32)
    keep = mosaic.copy()
    g = np.array([2.1, 1.0, 1.6])
    out = wbm.apply_gains(mosaic, g, cfa)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, wbm.apply_gains_reference(mosaic, g, cfa), rtol=1e-6)
    masks = cfa.masks(*mosaic.shape)
    for c in range(3):
        np.testing.assert_allclose(out[masks[c]], mosaic[masks[c]] * g[c], rtol=1e-6)
    assert out.max() > 2.0  # no clipping
    np.testing.assert_array_equal(mosaic, keep)


def test_apply_gains_rgb_and_errors():
    rgb = np.full((4, 5, 3), 0.9, np.float32)
    out = wbm.apply_gains(rgb, (2.0, 1.0, 1.5))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [1.8, 0.9, 1.35], rtol=1e-6)
    with pytest.raises(OptionError):
        wbm.apply_gains(rgb[..., 0], (2.0, 1.0, 1.5))  # mosaic without a CFA


def test_as_shot_modes(nikon):
    wb = WhiteBalance("as-shot")
    n = wbm.neutral(replace(nikon, as_shot_neutral=np.array([0.25, 0.5, 0.3])), wb)
    np.testing.assert_allclose(n, [0.5, 1.0, 0.6])
    xy = color.cct_tint_to_xy(4100, 12)
    n = wbm.neutral(replace(nikon, as_shot_white_xy=(float(xy[0]), float(xy[1]))), wb)
    np.testing.assert_allclose(color.neutral_to_xy(nikon, n), xy, atol=1e-8)
    n = wbm.neutral(nikon, wb)  # nothing recorded: D65
    np.testing.assert_allclose(color.neutral_to_xy(nikon, n), spaces.D65_XY, atol=1e-8)
    np.testing.assert_array_equal(wbm.neutral(CameraColor(), wb), np.ones(3))


def test_daylight_and_kelvin_modes(nikon):
    n = wbm.neutral(nikon, WhiteBalance("daylight"))
    np.testing.assert_allclose(color.neutral_to_xy(nikon, n), wbm.DAYLIGHT_XY, atol=1e-8)
    n = wbm.neutral(nikon, WhiteBalance("kelvin", kelvin=3200, tint=15))
    t, g = color.xy_to_cct_tint(color.neutral_to_xy(nikon, n))
    assert t == pytest.approx(3200, rel=1e-6) and g == pytest.approx(15, abs=1e-4)
    # Ground truth: the camera's rendered response to D50 and to D55, set by their CCT/tint.
    for name in ("D50", "D55"):
        r = qc.render(name)
        kelvin, tint = color.xy_to_cct_tint(r["white_xy"])
        n = wbm.neutral(nikon, WhiteBalance("kelvin", kelvin=kelvin, tint=tint))
        assert _angle_deg(n, r["neutral"]) < 0.3


def _scene(
    name: str, corner: tuple[float, float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Camera RGB (H, W, 3) of the 24 patches (8x8 px each) on a flat 18 % grey surround,
    under illuminant ``name``; exposure puts the white patch at 0.85. Returns (rgb, neutral)."""
    r = qc.render(name)
    cam = r["cam"] / r["cam"][18].max() * 0.85
    grey = 0.18 / 0.9 * r["neutral"] / r["neutral"].max() * 0.85
    img = np.empty((4 * 12 + 8, 6 * 12 + 8, 3), np.float32)
    img[:] = grey
    for i in range(24):
        y, x = 8 + 12 * (i // 6), 8 + 12 * (i % 6)
        img[y : y + 8, x : x + 8] = cam[i]
    if corner is not None:
        img[:8, :16] = corner
    return img, r["neutral"]


def _mosaic(rgb: np.ndarray, cfa: CFAPattern) -> np.ndarray:
    m = cfa.masks(*rgb.shape[:2])
    return np.sum(rgb.transpose(2, 0, 1) * m, axis=0).astype(np.float32)


@pytest.mark.parametrize("name", ["A", "D65", "FL11", "LED-B3"])
def test_auto_white_balance(name, nikon):
    rgb, truth = _scene(name)
    est = wbm.neutral(nikon, WhiteBalance("auto"), rgb)
    assert est.max() == 1.0
    assert _angle_deg(est, truth) < 0.15  # measured 0.03..0.05 degrees
    cfa = CFAPattern.bayer("RGGB")
    on_mosaic = wbm.neutral(nikon, WhiteBalance("auto"), _mosaic(rgb, cfa), cfa)
    np.testing.assert_allclose(on_mosaic, est, atol=2e-3)
    # A blown magenta highlight is ignored exactly like a black (unusable) area.
    clipped = _mosaic(_scene(name, (1.0, 0.4, 1.0))[0], cfa)
    black = _mosaic(_scene(name, (0.0, 0.0, 0.0))[0], cfa)
    np.testing.assert_allclose(wbm.auto_neutral(clipped, cfa), wbm.auto_neutral(black, cfa),
                               atol=1e-12)


@pytest.mark.parametrize("name", ["A", "D65", "FL2"])
def test_auto_white_balance_chart_only(name, nikon):
    """The bare chart (no surround): grey points on its neutral row; measured 0.14..0.22°."""
    r = qc.render(name)
    cam = np.repeat(r["cam"][None], 8, axis=0).astype(np.float32)
    assert _angle_deg(wbm.neutral(nikon, WhiteBalance("auto"), cam), r["neutral"]) < 0.3


def test_auto_white_balance_locus_prior(nikon):
    """A scene with no neutral (the 18 chromatic patches under D65) fools grey world and white
    patch; the tint limit pulls the estimate back toward daylight (measured 3.3° -> 1.5°)."""
    r = qc.render("D65")
    cam = np.repeat(r["cam"][None, :18], 8, axis=0).astype(np.float32)
    raw = _angle_deg(wbm.auto_neutral(cam), r["neutral"])
    prior = _angle_deg(wbm.neutral(nikon, WhiteBalance("auto"), cam), r["neutral"])
    assert prior < 1.7 < raw
    _, tint = color.xy_to_cct_tint(color.neutral_to_xy(
        nikon, wbm.neutral(nikon, WhiteBalance("auto"), cam)))
    assert abs(tint) <= wbm.AUTO_TINT_LIMIT + 1e-6


def test_auto_white_balance_fallbacks(nikon):
    black = np.zeros((16, 16, 3), np.float32)
    n = wbm.neutral(replace(nikon, as_shot_neutral=np.array([0.5, 1.0, 0.7])),
                    WhiteBalance("auto"), black)
    np.testing.assert_allclose(n, [0.5, 1.0, 0.7])
    with pytest.raises(InputError):
        wbm.auto_neutral(black)
    with pytest.raises(OptionError):
        wbm.neutral(nikon, WhiteBalance("auto"))
    with pytest.raises(OptionError):
        wbm.auto_neutral(np.ones((8, 8), np.float32) * 0.5)  # mosaic without CFA


def test_positive_tint_turns_the_photo_magenta_as_in_lightroom():
    """Adobe's tint (the DNG SDK's, Lightroom's slider): + is a greener white, which white
    balance removes, so the photo turns magenta; - turns it green. (The sign was the other
    way round: --wb 5500,100 gave a green photo, 5500,-100 a magenta one.) Temperature goes
    the same way round: a higher K is a bluer white, and the photo turns warmer."""
    from pathlib import Path

    from oneinch import develop, open_raw
    from oneinch.recipe import Recipe

    raw = open_raw(Path(__file__).resolve().parents[1] / "samples" / "oneinch_demo.dng")

    def mean_rgb(**wb) -> np.ndarray:
        r = Recipe().with_(white_balance={"mode": "kelvin", **wb}, output={"size": 200})
        return np.asarray(develop(raw, r).rgb, np.float64).reshape(-1, 3).mean(0)

    def magenta(rgb: np.ndarray) -> float:  # red and blue over green
        return float((rgb[0] + rgb[2]) / 2 - rgb[1])

    plus, zero, minus = (mean_rgb(kelvin=5500.0, tint=t) for t in (60.0, 0.0, -60.0))
    assert magenta(plus) > magenta(zero) + 0.02 > magenta(minus) + 0.04
    warm, cool = mean_rgb(kelvin=8000.0), mean_rgb(kelvin=3500.0)
    assert warm[0] - warm[2] > cool[0] - cool[2] + 0.1
