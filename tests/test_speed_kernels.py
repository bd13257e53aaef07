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


def _scene_mosaic(h: int, w: int, seed: int) -> np.ndarray:
    """Edges, a zone plate, a clipped block and noise: every RCD branch gets exercised."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    m = 0.3 + 0.25 * np.sin(0.002 * (xx * xx + yy * yy)) + rng.normal(0, 0.02, (h, w))
    m[h // 3 : h // 2, w // 4 : w // 2] = 1.4
    m[:, (w * 2) // 3 :] *= 0.2
    return m.astype(np.float32)


def test_rcd_row_pipeline_matches_numpy_reference() -> None:
    """The rolling-row RCD kernel against the float64 numpy reference (several column tiles
    and row bands, an odd crop phase), on one thread and on the default thread count."""
    import numba

    from oneinch.isp import _demosaic_rcd as rcd

    m = _scene_mosaic(96, 2 * rcd._TX + 130, 5)
    ref = rcd.rcd_rggb_reference(m)
    e = rcd._M
    full = rcd.rcd_rggb(m)
    assert np.abs(full[e:-e, e:-e] - ref[e:-e, e:-e]).max() < 1e-5
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = rcd.rcd_rggb(m, (11, 13, 70, 2 * rcd._TX + 100))
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(one, full[11:81, 13 : 13 + 2 * rcd._TX + 100])


@pytest.mark.parametrize("name", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_rcd_bayer_mirrors_and_fused_front_match_padded_path(name: str) -> None:
    """rcd_bayer (reflect-101 borders by index, any phase) equals rcd_rggb on demosaic's
    mirror-padded copy, and the fused uint16 front equals levels.normalize + apply_gains."""
    from oneinch.isp import _demosaic_rcd as rcd
    from oneinch.isp import demosaic as dm
    from oneinch.isp import levels, whitebalance
    from oneinch.raw.image import Levels

    rng = np.random.default_rng(11)
    pat = CFAPattern.bayer(name)
    r_at = tuple(int(v[0]) for v in np.nonzero(pat.array() == 0))
    gains = np.array([2.1, 1.0, 1.7], np.float32)
    for h, w in ((61, 77), (40, rcd._TX + 31), (5, 7)):
        u = (rng.integers(600, 15000, (h, w)) * (1 + (np.arange(w) % 9 == 0))).astype(np.uint16)
        lv = Levels(black=np.full((1, 1, 1), 512.0), white=np.array([16383.0]))
        f = whitebalance.apply_gains(levels.normalize(u, lv), gains, pat)
        padded, crop = dm._bayer_pad(f, pat, 12)
        ref = rcd.rcd_rggb(padded, crop)
        np.testing.assert_array_equal(rcd.rcd_bayer(f, r_at), ref)
        fused = rcd.rcd_bayer(u, r_at, black=512.0, scale=1.0 / (16383.0 - 512.0), gains=gains)
        np.testing.assert_array_equal(fused, ref)


@pytest.mark.parametrize("shape", [(37, 91), (64, 130)])
def test_denoise_row_kernels_match_numpy_passes(shape: tuple[int, int]) -> None:
    """The row-wise forward (GAT + opponent + 2x2 box) and backward (upsampling with the
    fixed f = 2 pattern, inverse transforms) kernels against their numpy references, odd
    sizes included (edge columns/rows clamp)."""
    from oneinch.isp import denoise as dn

    rng = np.random.default_rng(9)
    x = (rng.random((*shape, 3)) * 0.8).astype(np.float32)
    alpha, sigma2 = 2e-3, 1e-5
    a32, c32, k32 = (np.float32(alpha), np.float32(0.375 * alpha * alpha + sigma2),
                     np.float32(2.0 / alpha))
    t = dn.OPPONENT.astype(np.float32)
    h, w = shape
    for f in (1, 2, 4):
        hl, wl = -(-h // f), -(-w // f)
        lum = np.empty((h, w), np.float32)
        c1 = np.empty((hl, wl), np.float32)
        c2 = np.empty((hl, wl), np.float32)
        dn._forward_nb(x, a32, c32, k32, t, f, True, lum, c1, c2)
        rl, r1, r2 = dn._forward_np(x, alpha, sigma2, f)
        scale = float(np.abs(rl).max())
        for got, ref in ((lum, rl), (c1, r1), (c2, r2)):
            assert np.abs(got - ref).max() < 2e-6 * scale
        d1 = rng.normal(0, 1.0, (hl, wl)).astype(np.float32)
        d2 = rng.normal(0, 1.0, (hl, wl)).astype(np.float32)
        yi0, yi1, yf = dn._up_coords(h, hl, f)
        xi0, xi1, xf = dn._up_coords(w, wl, f)
        # the fine-band garrote (Tier.fine): thresholds about the fine band's spread
        qf = np.float32(float(np.var(r1)) * 0.05)
        for luma, unbiased, q in ((None, False, 0.0), (lum, True, 0.0), (None, True, 0.0),
                                  (None, False, qf), (lum, True, qf)):
            out = np.empty_like(x)
            dn._backward_nb(x, a32, c32, k32, t, lum if luma is None else luma,
                            luma is not None, d1, d2, yi0, yi1, yf, xi0, xi1, xf, unbiased,
                            a32, np.float32(sigma2 / alpha**2), out, f, c1, c2,
                            np.float32(q), np.float32(q / 2), np.zeros((1, 1), np.float32),
                            0, 1)  # (luma normalised already: no band weights)
            ref = dn._backward_np(x, alpha, sigma2, luma, d1, d2, f, unbiased, low=(c1, c2),
                                  q=(float(q), float(q) / 2))
            assert np.abs(out - ref).max() < 1e-5


def test_dct_denoise_scratch_reuse_across_shapes_and_threads() -> None:
    """The per-thread weight buffer of dct_denoise (not zeroed: every row of it is set) is
    reused by every call: results after a bigger call, and in another thread, equal the numpy
    reference."""
    from concurrent.futures import ThreadPoolExecutor

    from oneinch.isp import denoise as dn

    rng = np.random.default_rng(12)
    big = rng.random((60, 70), dtype=np.float32)
    small = rng.random((33, 41), dtype=np.float32)
    ref = dn.dct_denoise(small, 0.1, 3, use_numba=False)
    dn.dct_denoise(big, 0.1, 3)
    assert np.abs(dn.dct_denoise(small, 0.1, 3) - ref).max() < 1e-5
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda a: dn.dct_denoise(a, 0.1, 3), [big, small, small]))
    assert np.abs(outs[2] - ref).max() < 1e-5


# --- ri demosaic: numba running-sum kernels vs the OpenCV box-filter reference -------------


def _kodak_linear(i: int) -> np.ndarray:
    from conftest import KODAK, load_rgb8

    path = KODAK / f"kodim{i:02d}.png"
    if not path.is_file():
        pytest.fail(f"the Kodak corpus is missing: {path}")
    return (load_rgb8(path).astype(np.float32) / 255.0) ** 2.2


def _ri_both(monkeypatch: pytest.MonkeyPatch, mosaic: np.ndarray, name: str) -> tuple:
    from oneinch.isp import _demosaic_ri as ri
    from oneinch.isp.demosaic import demosaic

    fast = demosaic(mosaic, name, "ri")
    with monkeypatch.context() as mp:
        mp.setattr(ri, "ri_rggb", ri.ri_rggb_reference)
        ref = demosaic(mosaic, name, "ri")
    return fast, ref


@pytest.mark.parametrize("name", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_ri_numba_matches_reference_on_kodak(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    rgb = _kodak_linear({"RGGB": 1, "BGGR": 3, "GRBG": 13, "GBRG": 23}[name])[:181, :243]
    tile = CFAPattern.bayer(name).array()
    mosaic = np.empty(rgb.shape[:2], np.float32)
    for (y, x), c in np.ndenumerate(tile):
        mosaic[y::2, x::2] = rgb[y::2, x::2, c]
    fast, ref = _ri_both(monkeypatch, mosaic, name)
    assert fast.shape == ref.shape == rgb.shape and fast.dtype == np.float32
    assert np.abs(fast - ref).max() <= 1e-5
    assert np.abs(fast - rgb).mean() < 0.02  # and it is a demosaic (not both equally wrong)


@pytest.mark.parametrize("shape", [(37, 53), (64, 96), (2, 2), (101, 40)])
def test_ri_numba_matches_reference_on_random_mosaics(
    monkeypatch: pytest.MonkeyPatch, shape: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(shape))
    smooth = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 1.5)
    for mosaic in (rng.random(shape).astype(np.float32), smooth, np.zeros(shape, np.float32)):
        for name in ("RGGB", "GBRG"):
            fast, ref = _ri_both(monkeypatch, mosaic, name)
            assert np.isfinite(fast).all()
            assert np.abs(fast - ref).max() <= 1e-5


def test_ri_numba_interior_matches_reference_directly() -> None:
    from oneinch.isp import _demosaic_ri as ri

    rng = np.random.default_rng(5)
    cfa = rng.random((70, 90)).astype(np.float32) ** 3  # dark-heavy: small variances
    fast, ref = ri.ri_rggb(cfa), ri.ri_rggb_reference(cfa)
    assert np.abs(fast - ref)[18:-18, 18:-18].max() <= 1e-5


def test_ri_numba_threads_give_the_serial_result() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from oneinch.isp import _demosaic_ri as ri

    rng = np.random.default_rng(9)
    strips = [rng.random((64 + 2 * i, 200)).astype(np.float32) for i in range(4)]
    serial = [ri.ri_rggb(s) for s in strips]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(ri.ri_rggb, strips))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fused_polynomials_are_the_fits_they_stand_for():
    """The fused display pass's log2 and exp2 polynomials (written out) are the least-squares
    Chebyshev fits made again (to float32 rounding of the fit), and meet their error bounds
    in float64: log2(1.5 + t) within 2e-8, 2^f within 2e-10 (+ float32 coefficient rounding)."""
    from oneinch.looks import _fused

    lc, ec = _fused._poly_coefficients()
    flc, fec = _fused.fit_poly_coefficients()
    assert lc.dtype == ec.dtype == np.float32
    np.testing.assert_allclose(lc, flc, rtol=3e-7, atol=1e-9)
    np.testing.assert_allclose(ec, fec, rtol=3e-7, atol=1e-9)
    t = np.linspace(-0.5, 0.5, 10001)
    f = np.linspace(0.0, 1.0, 10001)
    log2 = np.polynomial.polynomial.polyval(t, lc.astype(np.float64))
    exp2 = np.polynomial.polynomial.polyval(f, ec.astype(np.float64))
    assert np.abs(log2 - np.log2(1.5 + t)).max() < 1e-7
    assert np.abs(exp2 - 2.0**f).max() < 2e-7
