"""Lens corrections through the lensfun database (lensfunpy) on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from oneinch.isp.lens import lensfun_correct, lensfun_find

lensfunpy = pytest.importorskip("lensfunpy")

BODY = ("Canon", "Canon EOS 5D Mark III")
LENS = "Canon EF 24-70mm f/2.8L II USM"
FOCAL, APERTURE = 35.0, 4.0


def test_vignetting_brightens_corners_by_the_db_amount():
    _, lens = lensfun_find(*BODY, LENS)
    k1, k2, k3 = lens.interpolate_vignetting(FOCAL, APERTURE, 1000.0).terms  # pa model
    h, w = 200, 300
    flat = np.full((h, w, 3), 0.25, np.float32)
    out = lensfun_correct(flat, *BODY, LENS, FOCAL, APERTURE, distortion=False, tca=False)
    assert out is not None and out.shape == flat.shape and out.dtype == np.float32
    # r = 1 at the corner (half diagonal): the recorded light there was 1 + k1 + k2 + k3
    np.testing.assert_allclose(out[0, 0], 0.25 / (1 + k1 + k2 + k3), rtol=1e-3)
    np.testing.assert_allclose(out[h // 2, w // 2], 0.25, rtol=1e-3)
    assert out[0, 0, 1] > 2 * 0.25  # this lens loses more than half the light at f/4
    np.testing.assert_array_equal(flat, 0.25)  # input untouched


def test_distortion_moves_points_as_the_ptlens_model_says():
    _, lens = lensfun_find(*BODY, LENS)
    # ptlens model: r_d = r (a r^3 + b r^2 + c r + 1 - a - b - c)
    a, b, c = lens.interpolate_distortion(FOCAL).terms
    h, w = 400, 600
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramps = np.ascontiguousarray(np.stack([xx, yy, xx + yy], axis=2))
    out = lensfun_correct(ramps, *BODY, LENS, FOCAL, APERTURE, vignetting=False, tca=False)
    half = min(h, w) / 2  # lensfun normalises radii by half the shorter side
    for y, x in ((50, 60), (350, 550), (30, 300), (200, 20)):
        ux, uy = (x - (w - 1) / 2) / half, (y - (h - 1) / 2) / half
        ru = np.hypot(ux, uy)
        s = a * ru**3 + b * ru**2 + c * ru + 1 - a - b - c
        # the corrected pixel (y, x) shows what the lens imaged at the distorted position
        assert abs(out[y, x, 0] - ((w - 1) / 2 + ux * s * half)) < 0.1
        assert abs(out[y, x, 1] - ((h - 1) / 2 + uy * s * half)) < 0.1


def test_unknown_body_or_lens_returns_none():
    img = np.zeros((10, 10, 3), np.float32)
    assert lensfun_correct(img, "Nobody", "Camera 1", LENS, FOCAL, APERTURE) is None
    assert lensfun_correct(img, *BODY, "No Such Lens 13mm f/0.7", FOCAL, APERTURE) is None
    assert lensfun_correct(img, *BODY, LENS, None, APERTURE) is None
