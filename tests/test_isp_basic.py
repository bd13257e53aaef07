"""levels, highlights, geometry, sharpen: measured against constructed ground truth."""

from __future__ import annotations

import numpy as np

from oneinch.isp import geometry, highlights, levels, sharpen
from oneinch.raw.image import Levels


def test_levels_per_cfa_black_and_deltas():
    rng = np.random.default_rng(0)
    truth = rng.random((6, 8)).astype(np.float32)
    black = np.array([[100, 104], [98, 102]], np.float32)[..., None]
    dh = np.linspace(0, 3, 8).astype(np.float32)
    dv = np.linspace(0, 2, 6).astype(np.float32)
    white = 4000.0
    bl = np.tile(black[..., 0], (3, 4)) + dh[None, :] + dv[:, None]
    stored = np.rint(bl + truth * (white - bl)).astype(np.uint16)
    out = levels.normalize(
        stored, Levels(black=black, white=np.array([white]), black_delta_h=dh, black_delta_v=dv)
    )
    assert out.dtype == np.float32
    assert np.max(np.abs(out - truth)) < 1.0 / (white - 110)


def test_levels_linearization_table_and_uniform_black():
    table = (np.arange(1024, dtype=np.float32) ** 2 / 1023).astype(np.float32)
    stored = np.array([[0, 512], [1023, 100]], np.uint16)
    out = levels.normalize(
        stored, Levels(black=np.zeros((1, 1, 1)), white=np.array([1023.0]), linearization=table)
    )
    np.testing.assert_allclose(out, table[stored] / 1023, rtol=1e-6)
    out2 = levels.normalize(
        np.array([[64, 1087]], np.uint16),
        Levels(black=np.full((1, 1, 1), 64.0), white=np.array([1087.0])),
    )
    np.testing.assert_allclose(out2, [[0.0, 1.0]])


def test_highlights_never_magenta_and_rebuild_from_neighbours():
    # a warm, bright gradient whose green channel clips in the middle
    h, w = 64, 64
    ramp = np.linspace(0.3, 2.0, w, dtype=np.float32)[None, :].repeat(h, 0)
    truth = np.stack([ramp * 1.3, ramp, ramp * 0.7], -1)  # WB'd camera RGB, R > G > B
    gains = np.array([2.0, 1.0, 1.5], np.float32)
    clip = highlights.clip_levels(gains)
    observed = np.minimum(truth, clip)
    # all channels clipped somewhere -> neutral, never magenta
    for mode in ("clip", "reconstruct"):
        out = highlights.reconstruct(observed, clip, mode)
        allclip = (truth >= clip).all(-1)
        if allclip.any():
            px = out[allclip]
            assert np.allclose(px[:, 0], px[:, 1], rtol=1e-5) and np.allclose(
                px[:, 1], px[:, 2], rtol=1e-5
            )
        # magenta = G well below both R and B where the source was not magenta
        mag = (out[..., 1] < 0.9 * out[..., 0]) & (out[..., 1] < 0.9 * out[..., 2])
        assert not mag.any()
    # where only G clipped, reconstruction gets closer to the truth than clipping
    only_g = (truth[..., 1] >= clip[1]) & (truth[..., 0] < clip[0] * 0.99)
    rec = highlights.reconstruct(observed, clip, "reconstruct")
    cl = highlights.reconstruct(observed, clip, "clip")
    err_rec = np.abs(rec[only_g] - truth[only_g]).mean()
    err_clip = np.abs(cl[only_g] - truth[only_g]).mean()
    assert err_rec < 0.25 * err_clip


def test_orientation_matches_exif_definitions():
    a = np.arange(6).reshape(2, 3)
    # EXIF 6: rotate 90 CW to display; the first row becomes the last column
    assert geometry.orient(a, 6).tolist() == [[3, 0], [4, 1], [5, 2]]
    assert geometry.orient(a, 8).tolist() == [[2, 5], [1, 4], [0, 3]]
    assert geometry.orient(a, 3).tolist() == [[5, 4, 3], [2, 1, 0]]
    for o in range(1, 9):
        assert geometry.orient(a, o).size == 6


def test_unoriented_view_writes_where_orient_puts_pixels():
    a = np.arange(24).reshape(4, 6)
    for o in range(0, 10):  # (0 and 9: not EXIF orientations, left as they are)
        up = geometry.orient(a, o)
        out = np.zeros_like(up)
        view = geometry.unoriented_view(out, o)
        assert view.shape == a.shape and np.shares_memory(view, out)
        view[:2] = a[:2]  # rows written strip by strip
        view[2:] = a[2:]
        assert np.array_equal(out, up)


def test_crop_box_is_the_crop():
    img = np.arange(100 * 200).reshape(100, 200)
    for box in [(10, 20, 50, 60), (90, 190, 50, 60), (-5, 0, 500, 500), None]:
        top, left, hh, ww = geometry.crop_box(img.shape, box)
        assert np.array_equal(geometry.crop(img, box), img[top : top + hh, left : left + ww])
    assert geometry.crop_box(img.shape, (90, 190, 50, 60)) == (90, 190, 10, 10)


def test_crop_and_resize():
    img = np.zeros((100, 200, 3), np.float32)
    assert geometry.crop(img, (10, 20, 50, 60)).shape == (50, 60, 3)
    assert geometry.resize_long_edge(img, 50).shape == (25, 50, 3)
    assert geometry.resize_long_edge(img, 500).shape == img.shape


def test_sharpen_raises_edge_contrast_only():
    img = np.full((32, 32, 3), 0.4, np.float32)
    img[:, 16:] = 0.6
    out = sharpen.sharpen(img, 0.5, 1.0)
    assert out[:, 15].mean() < 0.4 and out[:, 16].mean() > 0.6  # overshoot at the edge
    np.testing.assert_allclose(out[:, :8], 0.4, atol=1e-6)  # flat areas untouched
