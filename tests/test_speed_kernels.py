"""Speed-path kernels agree with their plain references (issue 7, second round)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from oneinch.develop import bin2x2, bin_bayer2x2, binned_noise
from oneinch.isp import highlights, spaces
from oneinch.isp._transfer import apply
from oneinch.raw.image import CFAPattern


def _numpy_encode(x: np.ndarray, transfer: str, inverse: bool) -> np.ndarray:
    old = spaces.FUSED_MIN_SIZE
    spaces.FUSED_MIN_SIZE = 1 << 62
    try:
        return (spaces.decode if inverse else spaces.encode)(x, transfer)
    finally:
        spaces.FUSED_MIN_SIZE = old


@pytest.mark.parametrize("transfer", ["srgb", "bt709", "romm"])
@pytest.mark.parametrize("inverse", [False, True])
def test_fused_transfer_matches_numpy_formula(transfer: str, inverse: bool) -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([
        rng.uniform(-0.2, 1.2, 200_000),
        rng.uniform(0.0, 0.05, 200_000),  # around the toes' thresholds
        np.linspace(0.0, 1.0, 70_001),
        [0.0031308, 0.018053968510807, 1 / 512, 0.04045, 0.0812428582986315, 16 / 512],
    ]).astype(np.float32)
    got = apply(x, transfer, inverse=inverse)
    ref = _numpy_encode(x, transfer, inverse)
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() < 1e-6
    nan = apply(np.array([np.nan], np.float32), transfer, inverse=inverse)
    assert np.isnan(nan[0])
    # spaces.encode routes big arrays through the kernel
    big = x[:300_000].reshape(-1, 100, 3)
    np.testing.assert_array_equal(
        (spaces.decode if inverse else spaces.encode)(big, transfer),
        apply(big, transfer, inverse=inverse),
    )


def test_bin_bayer2x2_averages_same_colour_samples() -> None:
    rng = np.random.default_rng(1)
    m = rng.random((16, 24)).astype(np.float32)
    out = bin_bayer2x2(m)
    assert out.shape == (8, 12) and out.dtype == np.float32
    for y in range(8):
        for x in range(12):
            by, bx, py, px = (y // 2) * 4, (x // 2) * 4, y % 2, x % 2
            ref = np.mean([m[by + py + dy, bx + px + dx] for dy in (0, 2) for dx in (0, 2)])
            assert abs(out[y, x] - ref) < 1e-6
    # the quarter-size RGB of a flat colour field is that colour
    flat = np.empty((16, 16), np.float32)
    flat[0::2, 0::2], flat[0::2, 1::2], flat[1::2, 0::2], flat[1::2, 1::2] = 0.5, 0.3, 0.3, 0.1
    rgb = bin2x2(bin_bayer2x2(flat), CFAPattern.bayer("RGGB"))
    np.testing.assert_allclose(rgb, np.broadcast_to([0.5, 0.3, 0.1], (4, 4, 3)), atol=1e-7)


def test_binned_noise_matches_measured_variance() -> None:
    """Variance of binned pure noise is the profile divided by the number of samples."""
    rng = np.random.default_rng(2)
    prof = np.array([[0.0, 4e-4], [0.0, 4e-4], [0.0, 4e-4]])  # O only: variance 4e-4
    m = (0.5 + rng.normal(0.0, 0.02, (1024, 1024))).astype(np.float32)
    cfa = CFAPattern.bayer("RGGB")
    for factor, binned in ((2, bin2x2(m, cfa)), (4, bin2x2(bin_bayer2x2(m), cfa))):
        want = binned_noise(prof, factor)[:, 1]
        got = binned.reshape(-1, 3).var(axis=0)
        np.testing.assert_allclose(got, want, rtol=0.08)
    assert binned_noise(None, 4) is None
    assert binned_noise(prof, 1) is prof


def test_banded_highlight_masks_match_whole_image() -> None:
    rng = np.random.default_rng(3)
    rgb = (rng.random((1024, 768, 3)) ** 3 * 1.3).astype(np.float32)
    clip = np.array([1.2, 1.0, 1.1], np.float32)
    whole = highlights._clip_mask(rgb, clip, highlights.SOFT_LO).astype(np.uint8)
    whole = cv2.dilate(whole, np.ones((3, 3), np.uint8)) > 0
    near = highlights._near_mask(rgb, clip)
    np.testing.assert_array_equal(near, whole)
    size = (768 // 4, 1024 // 4)  # integer factor: the banded path
    ref = cv2.resize(near.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(highlights._area_mask(near, size, 4.0), ref)
