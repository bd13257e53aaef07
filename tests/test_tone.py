"""looks.tone: filmic curve anchors, hue preservation, path to white, local operator, numba vs
numpy reference."""

import numpy as np
import pytest

from oneinch.errors import OptionError
from oneinch.looks.tone import (
    curve_np,
    curve_params,
    inverse_tone_map,
    tone_map,
    tone_map_reference,
)
from oneinch.recipe import Tone


def _scene(h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    return (0.18 * 2.0 ** rng.uniform(-9, 5, (h, w, 3))).astype(np.float32)


@pytest.mark.parametrize("tone", [
    Tone(),
    Tone(contrast=1.3, black=0.01, shadows=0.4, highlights=-0.5, white_ev=3.0, grey=0.2),
    Tone(local=0.8, detail=0.5, black=-0.02),
])
def test_numba_matches_numpy_reference(tone):
    x = _scene()
    assert np.abs(tone_map(x, tone) - tone_map_reference(x, tone)).max() < 1e-5


def test_grey_and_white_anchors_and_monotone():
    for t in (Tone(), Tone(contrast=1.4, white_ev=4.0), Tone(grey=0.25, contrast=0.8)):
        p = curve_params(t)
        y, _ = curve_np(np.array([0.18]), p)
        assert abs(y[0] - t.grey) < 1e-6
        ev = np.linspace(-12, t.white_ev + 4, 2000)
        ys, _ = curve_np(0.18 * 2.0**ev, p)
        assert np.all(np.diff(ys) > 0)  # strictly increasing: no flat clip inside the range
        assert 0.93 < curve_np(np.array([0.18 * 2**t.white_ev]), p)[0][0] < 0.97
        assert ys[-1] > 0.96 and ys[0] < 1e-3


def test_hue_ratios_kept_below_white():
    x = np.array([[[0.30, 0.10, 0.05], [0.02, 0.05, 0.09], [0.12, 0.2, 0.16]]], np.float32)
    y = tone_map(x, Tone(contrast=1.2))
    ratio_in = x / x.max(axis=2, keepdims=True)
    ratio_out = y / y.max(axis=2, keepdims=True)
    assert np.abs(ratio_in - ratio_out).max() < 1e-5
    assert y.max() < 1.0


def test_path_to_white_and_no_clipping_to_odd_hues():
    bright_red = np.array([[[40.0, 2.0, 1.0]]], np.float32)  # 8 stops over grey, saturated
    y = tone_map(bright_red, Tone())[0, 0]
    assert y.min() > 0.98  # goes white, not a flat saturated red
    mid_red = np.array([[[0.4, 0.04, 0.02]]], np.float32)
    assert tone_map(mid_red, Tone())[0, 0, 1] < 0.1  # a normal red stays red


def test_black_point_and_shadows():
    x = np.full((1, 5, 3), 0.18, np.float32) * (2.0 ** np.arange(-6, -1))[None, :, None]
    base = tone_map(x, Tone())[0, :, 0]
    crushed = tone_map(x, Tone(black=0.02))[0, :, 0]
    lifted = tone_map(x, Tone(shadows=0.5))[0, :, 0]
    matte = tone_map(x, Tone(black=-0.03))[0, :, 0]
    assert np.all(crushed < base) and crushed[0] == 0
    assert np.all(lifted > base)
    assert np.all(matte >= 0.03 - 1e-6)


def test_linear_and_none_curves_and_bad_values():
    x = _scene(8, 8)
    assert np.array_equal(tone_map(x, Tone(curve="linear")), np.clip(x, 0, 1))
    assert np.array_equal(tone_map(x, Tone(curve="none")), x)
    with pytest.raises(OptionError):
        tone_map(x, Tone(curve="s-curve"))
    with pytest.raises(OptionError):
        tone_map(x, Tone(white_ev=20))


def test_input_not_mutated():
    x = _scene()
    before = x.copy()
    tone_map(x, Tone(local=0.5, detail=0.3))
    assert np.array_equal(x, before)


def test_inverse_round_trip():
    rng = np.random.default_rng(3)
    d = rng.uniform(0, 0.7, (50, 50, 3)).astype(np.float32)
    for t in (Tone(), Tone(contrast=1.2, shadows=-0.2, highlights=-0.3, grey=0.165)):
        back = tone_map(inverse_tone_map(d, t), t)
        assert np.abs(back - d).max() < 2e-3


def test_local_operator_compresses_range_without_halos():
    """Dark textured half at -5 EV, bright textured half at +2 EV: the local operator brings
    them closer (at most 2 EV of gain) while the step edge stays sharp and fine texture keeps
    its contrast (Durand & Dorsey 2002: compress the base, keep the detail)."""
    rng = np.random.default_rng(5)
    h, w = 128, 256
    lum = np.where(np.arange(w)[None, :] < w // 2, 0.18 * 2.0**-5, 0.18 * 2.0**2)
    tex = 2.0 ** (0.15 * rng.standard_normal((h, w)))
    x = np.repeat((lum * tex)[..., None], 3, axis=2).astype(np.float32)
    g = tone_map(x, Tone())[..., 1]
    loc = tone_map(x, Tone(local=1.0))[..., 1]
    dark_g, dark_l = np.median(g[:, : w // 2]), np.median(loc[:, : w // 2])
    bright_g, bright_l = np.median(g[:, w // 2:]), np.median(loc[:, w // 2:])
    assert dark_l > 1.5 * dark_g and bright_l < bright_g
    gain_ev = np.log2(dark_l / dark_g)
    assert gain_ev < 2.5  # display gain bounded (2 EV scene gain through the toe)
    # no halo: the dark side next to the edge is as dark as far from it (within 10 %)
    near = np.median(loc[:, w // 2 - 4: w // 2 - 1])
    far = np.median(loc[:, 8:40])
    assert abs(near / far - 1) < 0.1
    # texture contrast (log std) is kept in the dark half
    assert np.std(np.log2(loc[:, 8:100])) > 0.8 * np.std(np.log2(g[:, 8:100]))


def test_detail_raises_local_contrast():
    rng = np.random.default_rng(6)
    tex = 2.0 ** (0.2 * rng.standard_normal((96, 96)))
    x = np.repeat((0.18 * tex)[..., None], 3, axis=2).astype(np.float32)
    a = tone_map(x, Tone())[..., 1]
    b = tone_map(x, Tone(detail=0.6))[..., 1]
    assert np.std(np.log2(b)) > 1.2 * np.std(np.log2(a))


def test_local_setup_of_unconverted_camera_rgb():
    """local_setup(matrix=, gain=) on camera RGB gives the state of the converted image (the
    fused display pass converts per strip; the grids come from the area-resized image)."""
    from oneinch.looks.tone import local_setup

    rng = np.random.default_rng(3)
    cam = (0.18 * 2.0 ** rng.uniform(-6, 3, (900, 700, 3))).astype(np.float32)
    m = np.array([[1.7, -0.6, -0.1], [-0.25, 1.45, -0.2], [0.02, -0.5, 1.48]], np.float32)
    tone = Tone(local=0.6, detail=0.4)
    ref = local_setup(np.ascontiguousarray((cam @ m.T) * np.float32(1.4)), tone)
    got = local_setup(cam, tone, matrix=m, gain=1.4)
    assert got[0] and got[4:] == ref[4:]
    for a, b in zip(got[1:3], ref[1:3], strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4
    assert abs(got[3] - ref[3]) < 1e-4
