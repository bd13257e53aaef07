"""looks.styles: the six styles' characters, strength blending, numba vs per-pixel reference."""

import numpy as np
import pytest

from oneinch.errors import OptionError
from oneinch.looks.measure import srgb_to_lab
from oneinch.looks.styles import STYLES, _style_pixel, apply_style, style_params

PATCHES = np.array([[[0.45, 0.12, 0.08], [0.10, 0.22, 0.50], [0.15, 0.35, 0.10],
                     [0.50, 0.40, 0.30], [0.18, 0.18, 0.18], [0.02, 0.02, 0.03],
                     [0.85, 0.80, 0.70], [0.30, 0.05, 0.35]]], np.float32)


def _chroma(x):
    lab = srgb_to_lab(x)
    return np.hypot(lab[..., 1], lab[..., 2])


def test_six_styles_exist():
    assert set(STYLES) == {"vivid", "natural", "bw-natural", "bw-hc", "sepia", "blue"}


@pytest.mark.parametrize("name", sorted(STYLES))
def test_numba_matches_per_pixel_reference(name):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (6, 7, 3)).astype(np.float32)
    prm, tints = style_params(name)
    ref = np.array([[_style_pixel.py_func(float(r), float(g), float(b), prm, tints)
                     for r, g, b in row] for row in x], np.float32)
    assert np.abs(apply_style(x, name) - ref).max() < 1e-5


def test_colour_styles_change_saturation():
    base = _chroma(PATCHES).mean()
    assert _chroma(apply_style(PATCHES, "vivid")).mean() > 1.15 * base
    assert _chroma(apply_style(PATCHES, "natural")).mean() < 0.95 * base


def test_monochrome_styles():
    for name in ("bw-natural", "bw-hc"):
        y = apply_style(PATCHES, name)
        assert np.abs(y - y[..., :1]).max() < 1e-6  # neutral grey
    nat, hc = apply_style(PATCHES, "bw-natural"), apply_style(PATCHES, "bw-hc")
    # red filter: blue sky patch darker, red patch lighter than panchromatic
    assert hc[0, 1, 0] < 0.8 * nat[0, 1, 0] and hc[0, 0, 0] > nat[0, 0, 0]
    # steeper: a wider spread of L* over the patches
    assert np.ptp(srgb_to_lab(hc)[..., 0]) > np.ptp(srgb_to_lab(nat)[..., 0])
    sep, blue = apply_style(PATCHES, "sepia"), apply_style(PATCHES, "blue")
    mid = sep[0, 3]
    assert mid[0] > mid[1] > mid[2]  # warm
    assert blue[0, 3, 2] > blue[0, 3, 0]  # cool
    # toned styles keep the mono lightness of bw-natural (tint normalised to luminance 1)
    l_nat = srgb_to_lab(nat)[..., 0]
    assert np.abs(srgb_to_lab(sep)[..., 0] - l_nat).mean() < 4


def test_strength_blends_linearly_and_validates():
    full = apply_style(PATCHES, "sepia", 1.0)
    half = apply_style(PATCHES, "sepia", 0.5)
    assert np.abs(half - 0.5 * (full + PATCHES)).max() < 1e-6
    assert np.array_equal(apply_style(PATCHES, "sepia", 0.0), PATCHES)
    with pytest.raises(OptionError):
        apply_style(PATCHES, "sepia", 1.5)
    with pytest.raises(OptionError, match="unknown style"):
        apply_style(PATCHES, "lomo")


def test_styles_stay_in_gamut_and_keep_black_and_white():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (32, 32, 3)).astype(np.float32)
    for name in STYLES:
        y = apply_style(x, name)
        assert np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
        ends = apply_style(np.array([[[0, 0, 0], [1, 1, 1]]], np.float32), name)
        assert ends[0, 0].max() < 0.01 and ends[0, 1].min() > 0.97
