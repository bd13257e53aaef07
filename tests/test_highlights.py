"""Highlight reconstruction against synthetic clipped highlights with known truth, and rawpy."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from conftest import KODAK, load_rgb8
from oneinch.develop import develop
from oneinch.errors import OptionError
from oneinch.isp import highlights, spaces
from oneinch.looks.tone import tone_map
from oneinch.raw.reader import open_raw
from oneinch.recipe import Recipe, Tone
from oneinch.synthetic import CAM_FROM_SRGB, DAYLIGHT_GAINS, color_matrix, make_dng

HEADROOM = 1.0


def _colour():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    return colour


def _camera_truth(lin: np.ndarray) -> np.ndarray:
    cm, _ = color_matrix(CAM_FROM_SRGB, DAYLIGHT_GAINS)
    m = cm @ spaces.rgb_to_xyz_native(spaces.SPACES["srgb"])
    return (lin.reshape(-1, 3) @ (m.T * 2.0**-HEADROOM)).reshape(lin.shape)


CROPS = (  # Kodak image, stops over, crop: pale backdrop, foliage, sky and sand, skin and beads
    ("kodim15", 2.5, np.s_[:192, 96:416]),
    ("kodim23", 3.0, np.s_[:192, :320]),
    ("kodim12", 2.0, np.s_[:192, :320]),
    ("kodim04", 2.0, np.s_[500:692, 150:470]),
)


def _scene() -> np.ndarray:
    """Four Kodak crops 2-3 stops over (2x2 mosaic) plus two coloured lights (linear sRGB)."""
    from oneinch.synthetic import srgb_to_linear

    tiles = [srgb_to_linear(load_rgb8(KODAK / f"{n}.png"))[sl] * np.float32(2**ev)
             for n, ev, sl in CROPS]
    lin = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    h, w = lin.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for colour, peak, cy, cx in (((1.0, 0.45, 0.08), 12.0, 150, 60),
                                 ((0.15, 0.35, 1.0), 10.0, 40, 260)):
        g = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 14.0**2))
        lin = lin + (peak * g)[..., None] * np.asarray(colour, np.float32)
    return np.ascontiguousarray(lin, dtype=np.float32)


def _align(out: np.ndarray, truth: np.ndarray, cam: np.ndarray) -> np.ndarray:
    wy = spaces.luminance_weights("srgb")
    ok = (cam.max(axis=2) < 0.7) & (truth @ wy > 0.02)
    return out * np.float32(np.median((truth[ok] @ wy) / np.maximum(out[ok] @ wy, 1e-9)))


def _display_lab(lin: np.ndarray, scale: float) -> np.ndarray:
    disp = tone_map(np.ascontiguousarray(lin * np.float32(scale), np.float32), Tone(), "srgb")
    xyz = disp.reshape(-1, 3) @ spaces.rgb_to_xyz_native(spaces.SPACES["srgb"]).T
    return _colour().XYZ_to_Lab(xyz, spaces.D65_XY)


def _chroma_lab(lin: np.ndarray) -> np.ndarray:
    xyz = np.maximum(lin.reshape(-1, 3), 0) @ spaces.rgb_to_xyz_native(spaces.SPACES["srgb"]).T
    return _colour().XYZ_to_Lab(xyz / np.maximum(xyz[:, 1:2], 1e-9) * 0.2, spaces.D65_XY)


def _de(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    k = 1.0 / np.percentile(truth.max(axis=2), 99.9)
    return float(_colour().delta_E(_display_lab(out[mask][:, None], k),
                                   _display_lab(truth[mask][:, None], k), method="CIE 2000").mean())


@pytest.fixture(scope="module")
def clipped_dng(tmp_path_factory, shared):
    lin = _scene()
    path = tmp_path_factory.mktemp("hl") / "clipped.dng"
    make_dng(path, lin, linear_input=True, headroom_ev=HEADROOM)
    cam = _camera_truth(lin)
    return path, lin, cam, cam.max(axis=2) >= 1.0


def _oneinch(path, mode="reconstruct") -> np.ndarray:
    r = Recipe().with_(highlights={"mode": mode}, denoise={"mode": "off"})
    return np.asarray(develop(open_raw(path), r, until="exposure"))


def test_beats_rawpy_highlight_modes(clipped_dng):
    rawpy = pytest.importorskip("rawpy")
    path, lin, cam, mask = clipped_dng
    assert 0.05 < mask.mean() < 0.6  # really clipped, in one to three channels
    ours = _de(_align(_oneinch(path), lin, cam), lin, mask)
    modes = {"Clip": rawpy.HighlightMode.Clip, "Blend": rawpy.HighlightMode.Blend,
             "Reconstruct": rawpy.HighlightMode.ReconstructDefault}
    for name, mode in modes.items():
        with rawpy.imread(str(path)) as r:
            out = r.postprocess(gamma=(1, 1), no_auto_bright=True, use_camera_wb=True,
                                output_bps=16, output_color=rawpy.ColorSpace.sRGB, bright=1.0,
                                user_flip=0, highlight_mode=mode).astype(np.float32) / 65535
        theirs = _de(_align(out, lin, cam), lin, mask)
        assert ours < 0.9 * theirs, (name, ours, theirs)
    assert ours < _de(_align(_oneinch(path, "clip"), lin, cam), lin, mask)


def test_never_magenta_where_truth_is_neutral(clipped_dng):
    path, lin, cam, mask = clipped_dng
    out = _align(_oneinch(path), lin, cam)
    lt, lo = _chroma_lab(lin[mask]), _chroma_lab(out[mask])
    neutral = np.hypot(lt[:, 1], lt[:, 2]) < 8
    assert neutral.sum() > 500
    hue = np.degrees(np.arctan2(lo[:, 2], lo[:, 1])) % 360
    magenta = neutral & (np.hypot(lo[:, 1], lo[:, 2]) > 12) & (hue > 290)
    assert magenta.sum() <= 0.002 * neutral.sum()
    # and the hue of coloured clipped areas is kept (CIE ΔH*ab at Y = 0.2, mean)
    dh = np.radians(np.abs((np.degrees(np.arctan2(lo[:, 2], lo[:, 1]))
                            - np.degrees(np.arctan2(lt[:, 2], lt[:, 1])) + 180) % 360 - 180))
    ct, co = np.hypot(lt[:, 1], lt[:, 2]), np.hypot(lo[:, 1], lo[:, 2])
    assert float((2 * np.sqrt(ct * co) * np.sin(dh / 2)).mean()) < 6.0


def test_partial_clip_rebuilt_from_surrounding_colour():
    # a warm surface (WB'd camera RGB) with a bright spot where only green clips
    h, w = 96, 96
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    level = 0.4 + 1.4 * np.exp(-((yy - 48) ** 2 + (xx - 48) ** 2) / (2 * 15.0**2))
    truth = level[..., None] * np.array([1.0, 0.8, 0.6], np.float32)
    clip = highlights.clip_levels(np.array([2.0, 1.0, 1.5]))
    observed = np.minimum(truth, clip).astype(np.float32)
    before = observed.copy()
    out = highlights.reconstruct(observed, clip)
    assert np.array_equal(observed, before)  # input not mutated
    g_clipped = truth[..., 1] >= clip[1]
    assert g_clipped.sum() > 200
    rel = np.abs(out[..., 1][g_clipped] - truth[..., 1][g_clipped]) / truth[..., 1][g_clipped]
    assert rel.mean() < 0.03
    assert np.all(out >= observed - 1e-6)  # a clipped value is only ever raised
    far = level < 0.7  # untouched away from the clip
    assert np.array_equal(out[far], observed[far])


def test_partial_rebuild_is_smooth_in_its_input():
    """Step 3 averages the chromaticity steps by their errors instead of taking the best one:
    sweeping one trusted channel of a partly clipped pixel, the rebuilt channels change at
    most ~10x as fast as the input (the best step alone jumps by up to 0.1 between two
    sweep points 3.5e-5 apart: a slope of ~2900), in both the numpy and the numba code."""
    clip = np.ones(3, np.float32)
    rng = np.random.default_rng(0)
    n = 20001
    sweep = np.linspace(0.2, 0.9, n).astype(np.float32)
    slopes = []
    for _ in range(40):
        c = rng.uniform(0.05, 1.0, 3).astype(np.float32)
        c /= c.sum()
        base = rng.uniform(0.2, 1.0, 3).astype(np.float32)
        k = int(rng.integers(3))
        base[k] = rng.uniform(0.91, 0.99)  # partly clipped (SOFT_LO..SOFT_HI)
        j = (k + 1 + int(rng.integers(2))) % 3  # a trusted channel, swept
        px = np.tile(base, (n, 1))
        px[:, j] = sweep
        chroma = np.tile(c, (n, 1))
        other = [i for i in range(3) if i != j]
        for rebuild in (highlights.rebuild_pixels, highlights.rebuild_pixels_numba):
            out = rebuild(px, clip, chroma)
            step = np.abs(np.diff(out[:, other].astype(np.float64), axis=0)).max()
            slopes.append(step / float(sweep[1] - sweep[0]))
    assert max(slopes) < 20.0, max(slopes)


def test_above_clip_after_gain_map_counts_as_clipped():
    # lens-shading gains before WB can lift a saturated pixel above its nominal clip
    clip = highlights.clip_levels(np.array([2.0, 1.0, 1.5]))
    rgb = np.full((32, 32, 3), 0.5, np.float32) * np.array([1.0, 0.9, 0.8], np.float32)
    rgb[10:20, 10:20] = [1.6, 1.25, 1.2]  # green 25 % over its clip, red and blue fine
    out = highlights.reconstruct(rgb, clip)
    px = out[15, 15]
    assert px[1] >= 1.25 and abs(px[0] - 1.6) < 1e-6 and abs(px[2] - 1.2) < 1e-6
    assert not (px[1] < 0.9 * px[0] and px[1] < 0.9 * px[2])  # not magenta


def test_all_clipped_is_neutral_at_least_every_clip():
    clip = highlights.clip_levels(np.array([2.05, 1.0, 1.55]))
    rgb = np.full((40, 40, 3), 0.3, np.float32)
    rgb[10:30, 10:30] = clip
    out = highlights.reconstruct(rgb, clip)
    core = out[15:25, 15:25].reshape(-1, 3)
    assert np.allclose(core, core[:, :1], rtol=1e-5) and np.all(core >= clip.max() - 1e-5)


def test_fast_paths_match_numpy_references():
    rng = np.random.default_rng(1)
    field = rng.random((20, 30, 3)).astype(np.float32)
    ys, xs = rng.integers(0, 80, 500), rng.integers(0, 120, 500)
    got = highlights._sample(field, 4.0, ys, xs)
    fy = np.clip((ys + 0.5) / 4.0 - 0.5, 0, 19)
    fx = np.clip((xs + 0.5) / 4.0 - 0.5, 0, 29)
    y0, x0 = np.floor(fy).astype(int), np.floor(fx).astype(int)
    y1, x1 = np.minimum(y0 + 1, 19), np.minimum(x0 + 1, 29)
    wy, wx = (fy - y0)[:, None], (fx - x0)[:, None]
    ref = ((1 - wy) * ((1 - wx) * field[y0, x0] + wx * field[y0, x1])
           + wy * ((1 - wx) * field[y1, x0] + wx * field[y1, x1]))
    assert np.abs(got - ref).max() < 1e-3
    rgb = (rng.random((1100, 40, 3)) * 1.2).astype(np.float32)
    clip = np.array([1.0, 1.0, 1.0], np.float32)
    yy, xx = np.nonzero(np.ones((1100, 40), bool))
    banded = highlights._clip_confidence_at(rgb, clip, yy, xx)
    assert np.array_equal(banded, highlights.clip_confidence(rgb, clip).reshape(-1, 3))


def test_unknown_mode():
    with pytest.raises(OptionError):
        highlights.reconstruct(np.zeros((4, 4, 3), np.float32), np.ones(3), "magic")


def test_sparse_clip_paths_match_whole_image_masks():
    """The row-skipping paths (one numba read pass, masks only in bands near a clip) give the
    whole-image masks exactly, and nothing near a clip leaves the image untouched."""
    rng = np.random.default_rng(7)
    h, w = 1024, 768
    rgb = (rng.random((h, w, 3)) * 0.8).astype(np.float32)
    clip = np.array([1.9, 1.0, 1.45], np.float32)
    out = highlights.reconstruct(rgb, clip)
    assert np.array_equal(out, rgb) and out is not rgb
    assert not highlights._row_hits(rgb, clip, highlights.SOFT_LO).any()
    rgb[100:104, 50:60] *= 2.5  # two clipped spots, far apart
    rgb[700, 700, 1] = 0.9  # exactly at SOFT_LO of green: counts
    hits = highlights._row_hits(rgb, clip, highlights.SOFT_LO)
    whole = highlights._clip_mask(rgb, clip, highlights.SOFT_LO)
    assert np.array_equal(hits, whole.any(axis=1))
    near = highlights._near_mask(rgb, clip, hits)
    assert np.array_equal(near, highlights._near_mask(rgb, clip))
    rows = highlights._grow_rows(hits, highlights.SPREAD)
    ys, xs = highlights._nonzero_rows(near, rows)
    ys0, xs0 = np.nonzero(near)
    assert np.array_equal(ys, ys0) and np.array_equal(xs, xs0)
    size = (w // 8, h // 8)
    np.testing.assert_array_equal(highlights._area_mask(near, size, 8.0, rows),
                                  highlights._area_mask(near, size, 8.0))
    full = np.zeros((h, w), np.float32)
    full[ys, xs] = 1.0
    ref = cv2.resize(full, size, interpolation=cv2.INTER_AREA) > 0
    assert np.array_equal(highlights._pixels_area(h, w, size, 8.0, ys, xs) > 0, ref)
    out = highlights.reconstruct(rgb, clip)
    far = ~cv2.dilate(near.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert np.array_equal(out[far], rgb[far])  # only pixels near a clip change
    assert np.all(out[101, 52] >= rgb[101, 52])


def _wb_clipped_scene(scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The Kodak/lights scene as white-balanced camera RGB clipped at the WB'd sensor white
    (and softened by a 3x3 blur as a demosaic would), optionally upsampled ``scale`` x."""
    gains = np.asarray(DAYLIGHT_GAINS, np.float32)
    clip = highlights.clip_levels(gains)
    cam = _camera_truth(_scene()) * gains
    if scale > 1:
        cam = cv2.resize(cam, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    obs = cv2.blur(np.minimum(cam, clip).astype(np.float32), (3, 3))
    return np.ascontiguousarray(obs, np.float32), clip


@pytest.mark.parametrize("edge", [1024, 128, 100])  # no reduction; factor 4 (blocks); 4.8
def test_reconstruct_matches_numpy_reference(monkeypatch, edge):
    """The numba path of reconstruct (one scan pass, boxes around the clips, per-pixel
    kernels, block means of the changed blocks) equals the plain numpy/OpenCV reference."""
    monkeypatch.setattr(highlights, "FIELD_EDGE", edge)
    rgb, clip = _wb_clipped_scene()  # 384 x 640: factor 5 (not integer-aligned) at 128
    if edge == 128:
        rgb = np.ascontiguousarray(rgb[:, :512])  # 384 x 512: factor 4 divides it
    assert highlights._block_factor(*rgb.shape[:2]) == (4 if edge == 128 else 0)
    ref = highlights._reconstruct_reference(rgb, clip)
    full = (highlights._clip_confidence_at(rgb, clip, *np.nonzero(np.ones(rgb.shape[:2])))
            > 0.999).all(axis=1)
    assert 0.01 < full.mean() and (ref != rgb).any(axis=2).mean() > 0.05  # both steps run
    before = rgb.copy()
    got = highlights.reconstruct(rgb, clip)
    assert np.array_equal(rgb, before)
    assert np.abs(got - ref).max() <= 1e-5
    inplace = highlights.reconstruct(rgb, clip, out=rgb)  # in place, as develop calls it
    assert inplace is rgb and np.abs(rgb - ref).max() <= 1e-5
    for make in (_partial_scene, _all_clipped_scene):  # the unit tests' images
        img, c = make()
        assert np.abs(highlights.reconstruct(img, c)
                      - highlights._reconstruct_reference(img, c)).max() <= 1e-5


def _partial_scene():
    yy, xx = np.mgrid[0:96, 0:96].astype(np.float32)
    level = 0.4 + 1.4 * np.exp(-((yy - 48) ** 2 + (xx - 48) ** 2) / (2 * 15.0**2))
    clip = highlights.clip_levels(np.array([2.0, 1.0, 1.5]))
    return np.minimum(level[..., None] * np.array([1.0, 0.8, 0.6], np.float32), clip), clip


def _all_clipped_scene():
    clip = highlights.clip_levels(np.array([2.05, 1.0, 1.55]))
    rgb = np.full((40, 40, 3), 0.3, np.float32)
    rgb[10:30, 10:30] = clip
    return rgb, clip


def test_numba_kernels_match_numpy_references():
    rng = np.random.default_rng(3)
    clip = highlights.clip_levels(np.array([2.05, 1.0, 1.55]))
    n = 20000
    px = (rng.random((n, 3)) * 1.3 * clip).astype(np.float32)
    px[: n // 4] = np.maximum(px[: n // 4], clip)  # fully clipped
    px[n // 4 : n // 2, 1] = clip[1]  # green clipped only
    chroma = rng.random((n, 3)).astype(np.float32)
    p = highlights._smoothstep(px / clip, highlights.SOFT_LO, highlights.SOFT_HI)
    p = np.maximum(p, rng.random((n, 3)).astype(np.float32) * (rng.random((n, 1)) < 0.3))
    p = p.astype(np.float32)
    level = (rng.random(n) * 6).astype(np.float32)
    for kw in ({}, {"p": p}, {"p": p, "level": level}, {"p": p, "full_saturation": 0.5}):
        ref = highlights.rebuild_pixels(px, clip, chroma, **kw)
        assert np.abs(highlights.rebuild_pixels_numba(px, clip, chroma, **kw) - ref).max() \
            <= 1e-6 * np.abs(ref).max()
    # the partial estimate reused on a selection, with a level, as reconstruct does
    part = np.empty_like(px)
    highlights.rebuild_pixels_numba(px, clip, chroma, p=p, part=part)
    sel = np.flatnonzero(rng.random(n) < 0.5)
    got = highlights.rebuild_pixels_numba(px, clip, chroma, p=p, level=level[sel], part=part,
                                          have_part=True, sel=sel)
    ref = highlights.rebuild_pixels(px[sel], clip, chroma[sel], p=p[sel], level=level[sel])
    assert np.abs(got - ref).max() <= 1e-6 * np.abs(ref).max()
    # clip confidence at pixels (and the pixels themselves)
    rgb = (rng.random((300, 200, 3)) * 1.1 * clip).astype(np.float32)
    rgb[100:150, 50:90] = clip
    ys, xs = np.nonzero(rng.random((300, 200)) < 0.2)
    got_px, got_p = highlights._clip_confidence_px(rgb, clip, ys, xs)
    assert np.array_equal(got_px, rgb[ys, xs])
    assert np.array_equal(got_p, highlights._clip_confidence_at(rgb, clip, ys, xs))
    # push-pull: 3 and 1 channels, with holes and an empty weight
    v = rng.random((96, 130, 3)).astype(np.float32)
    w = (rng.random((96, 130)) ** 2).astype(np.float32)
    w[20:70, 30:100] = 0.0
    for vals in (v, v[..., :1].copy()):
        ref = highlights._push_pull(vals, w)
        got = highlights._push_pull_numba(vals * w[..., None], w)
        assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-6
    zero = np.zeros_like(w)
    assert np.array_equal(highlights._push_pull_numba(v * 0, zero), highlights._push_pull(v, zero))


def test_scan_matches_masks_and_area_resize():
    rng = np.random.default_rng(5)
    clip = np.array([1.9, 1.0, 1.45], np.float32)
    rgb = (rng.random((96, 160, 3)) * 0.85 * clip).astype(np.float32)
    rgb[10:13, 20:30, 0] = clip[0]
    rgb[50, 7, 1] = np.float32(clip[1] * np.float32(highlights.SOFT_LO))  # exactly at it
    rgb[50, 150, 2] = 5.0
    whole = highlights._clip_mask(rgb, clip, highlights.SOFT_LO)
    for fi in (0, 4, 8):
        first, last, small = highlights._scan(rgb, clip, fi)
        cols = np.where(whole, np.arange(160), -1)
        assert np.array_equal(last, cols.max(axis=1))
        assert np.array_equal(first[whole.any(axis=1)],
                              np.where(whole, np.arange(160), 999).min(axis=1)[whole.any(1)])
        assert np.all(first[~whole.any(axis=1)] == -1)
        if fi:
            ref = cv2.resize(rgb, (160 // fi, 96 // fi), interpolation=cv2.INTER_AREA)
            assert np.abs(small - ref).max() <= 1e-6
            out = rgb.copy()
            out[40:60, 30:50] += 1.0
            part = small.copy()
            highlights._block_means_kernel(out, fi, np.arange(small.shape[0] * small.shape[1]),
                                           part)
            ref = cv2.resize(out, (160 // fi, 96 // fi), interpolation=cv2.INTER_AREA)
            assert np.abs(part - ref).max() <= 1e-6
        ys, xs = highlights._near_pixels(rgb, clip, first, last, band=16)
        y0, x0 = np.nonzero(highlights._near_mask(rgb, clip))
        assert np.array_equal(ys, y0) and np.array_equal(xs, x0)
    # the block means are made only once a hit is seen: one hit in the last row (all the
    # block rows before it summed afterwards), and none at all (no means needed)
    late = (rng.random((96, 160, 3)) * 0.85 * clip).astype(np.float32)
    assert highlights._scan(late, clip, 8)[2] is None
    late[95, 3, 0] = 3.0
    first, last, small = highlights._scan(late, clip, 8)
    assert last[95] == first[95] == 3 and np.all(last[:95] == -1)
    ref = cv2.resize(late, (20, 12), interpolation=cv2.INTER_AREA)
    assert np.abs(small - ref).max() <= 1e-6


def test_prescan_from_strips_gives_the_same_result(monkeypatch):
    monkeypatch.setattr(highlights, "FIELD_EDGE", 128)
    rgb, clip = _wb_clipped_scene()
    rgb = np.ascontiguousarray(rgb[:, :512])  # factor 4 divides 384 x 512
    ref = highlights.reconstruct(rgb, clip)
    pre = highlights.Prescan(rgb.shape, clip)
    starts = list(range(0, 384, 64))
    for a in reversed(starts):  # any order (strips run in threads)
        pre.add(rgb[a : a + 64], a)
    assert pre.result(rgb, clip) is not None
    assert np.array_equal(pre.result(rgb, clip)[2], highlights._scan(rgb, clip, 4)[2])
    assert np.array_equal(highlights.reconstruct(rgb, clip, prescan=pre), ref)
    # not usable (rows missing, strips off the block grid, other clip): reconstruct scans
    partial = highlights.Prescan(rgb.shape, clip)
    partial.add(rgb[:64], 0)
    off = highlights.Prescan(rgb.shape, clip)
    off.add(rgb[:6], 0)
    off.add(rgb[6:], 6)
    for bad in (partial, off):
        assert bad.result(rgb, clip) is None
        assert np.array_equal(highlights.reconstruct(rgb, clip, prescan=bad), ref)
    assert pre.result(rgb, clip * 1.01) is None


def test_prescan_sets_every_block_mean(monkeypatch):
    """Prescan's block means start uninitialised (no zeros: ~4 ms of the develop's main
    thread at 50 MP): the strips' adds set every one of them, whatever memory held."""
    monkeypatch.setattr(highlights, "FIELD_EDGE", 128)
    rgb, clip = _wb_clipped_scene()
    rgb = np.ascontiguousarray(rgb[:, :512])
    pre = highlights.Prescan(rgb.shape, clip)
    pre.small[...] = np.nan  # (what the memory may hold)
    for a in range(0, 384, 64):
        pre.add(rgb[a : a + 64], a)
    small = pre.result(rgb, clip)[2]
    assert np.isfinite(small).all()
    assert np.array_equal(small, highlights._scan(rgb, clip, 4)[2])


@pytest.mark.parametrize("shape", [(4000, 6000), (3024, 4032), (700, 1030), (512, 2000)])
def test_area_tables_are_opencvs_inter_area(shape):
    """The reduction the strips sum, at camera sizes whose field factor is no integer (5.86,
    3.94, 1.006, 1.95): OpenCV's INTER_AREA within float rounding, and the cells a few pixels
    reach are exactly those OpenCV's resize of their mask makes > 0."""
    h, w = shape
    f, size = highlights._field_size(h, w)
    assert highlights._block_factor(h, w) == 0 and highlights.streamable(h, w)
    rng = np.random.default_rng(1)
    img = rng.random((h, w, 3), dtype=np.float32)
    tabs = highlights.AreaTables(h, w, size)
    got = np.zeros((size[1], size[0], 3))
    for a in range(0, h, 384):
        i0, acc = tabs.add_rows(img[a : a + 384], a)
        got[i0 : i0 + len(acc)] += acc
    assert np.abs(got - cv2.resize(img, size, interpolation=cv2.INTER_AREA)).max() <= 1e-6
    ys, xs = rng.integers(0, h, 200), rng.integers(0, w, 200)
    ys[:4], xs[:4] = [0, h - 1, 0, h - 1], [0, w - 1, w - 1, 0]  # the corners' partial cells
    mask = np.zeros((h, w), np.float32)
    mask[ys, xs] = 1.0
    want = cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 0
    assert np.array_equal(highlights._pixels_area(h, w, size, f, ys, xs) > 0, want)
    delta = rng.normal(size=(ys.size, 3)).astype(np.float32)
    grid = np.zeros((size[1], size[0], 3))
    tabs.add_points(grid, ys, xs, delta)
    dense = np.zeros((h, w, 3), np.float32)
    np.add.at(dense, (ys, xs), delta)
    assert np.abs(grid - cv2.resize(dense, size, interpolation=cv2.INTER_AREA)).max() <= 1e-6


def test_prescan_from_strips_with_area_tables(monkeypatch):
    """Factor 5 (384 x 640 at FIELD_EDGE 128, not a block mean of this image: 76.8 rows):
    strips in any order and of any height sum the field's reduction; reconstruct with them
    matches reconstruct on the whole image, and reads no row the scan found nothing near
    (rows never written: here NaN)."""
    monkeypatch.setattr(highlights, "FIELD_EDGE", 128)
    rgb, clip = _wb_clipped_scene()
    rgb[150:300] *= 0.3  # rows with nothing near a clip
    assert highlights._block_factor(*rgb.shape[:2]) == 0 and highlights.streamable(384, 640)
    ref = highlights.reconstruct(rgb, clip)
    assert highlights.Prescan(rgb.shape, clip).tabs is None  # (area=False: resized whole)
    pre = highlights.Prescan(rgb.shape, clip, area=True)
    for a, b in reversed([(0, 50), (50, 131), (131, 300), (300, 384)]):
        pre.add(rgb[a:b], a)
    _, last, small = pre.result(rgb, clip)
    whole = cv2.resize(rgb, (128, 77), interpolation=cv2.INTER_AREA)
    assert np.abs(small - whole).max() <= 1e-6
    assert np.abs(highlights.reconstruct(rgb, clip, prescan=pre) - ref).max() <= 1e-5
    hit = np.flatnonzero(last >= 0)
    assert 0 < hit.size < 384 - 150
    sparse = np.full_like(rgb, np.nan)
    keep = np.zeros(384, bool)
    for y in hit:
        keep[max(0, y - 2 * highlights.SPREAD) : y + 2 * highlights.SPREAD + 1] = True
    sparse[keep] = rgb[keep]
    got = highlights.reconstruct(sparse, clip, prescan=pre)
    assert np.abs(got[keep] - ref[keep]).max() <= 1e-5


# --- a colour that saturates below WhiteLevel (levels.channel_saturation) ---------------------

def _mosaic_clipping_green_at(level: float, seed: int = 0, codec_noise: float = 0.002
                              ) -> tuple[np.ndarray, object]:
    """A 14-bit RGGB mosaic (black 0, white 16383) of a scene with a bright sky whose green
    stops at ``level`` of white (red and blue reach white), with noise around the stop as a
    lossy codec leaves it."""
    from oneinch.raw.image import CFAPattern, Levels

    rng = np.random.default_rng(seed)
    h, w = 600, 800
    scene = np.clip(rng.gamma(2.0, 0.18, (h, w, 3)), 0, 3).astype(np.float32)
    scene[: h // 4] = (1.4, 1.6, 1.5)  # the sky: over every colour's clip
    m = np.empty((h, w), np.float32)
    m[0::2, 0::2] = scene[0::2, 0::2, 0]
    m[0::2, 1::2] = scene[0::2, 1::2, 1]
    m[1::2, 0::2] = scene[1::2, 0::2, 1]
    m[1::2, 1::2] = scene[1::2, 1::2, 2]
    green = np.zeros((h, w), bool)
    green[0::2, 1::2] = green[1::2, 0::2] = True
    m = np.where(green, np.minimum(m, level), np.minimum(m, 1.0))
    at = green & (m >= level)
    m[at] += rng.normal(0, codec_noise, int(at.sum())).astype(np.float32)
    stored = np.clip(np.round(m * 16383), 0, 16383).astype(np.uint16)
    levels = Levels(black=np.zeros((1, 1, 1)), white=np.array([16383.0]))
    return stored, (levels, CFAPattern.bayer("RGGB"))


def test_a_colour_saturating_below_white_is_found():
    """A plateau below WhiteLevel (a GoPro's green at 0.95) is that colour's saturation; a
    mosaic clipping at white, or not clipping, keeps 1.0."""
    from oneinch.isp.levels import channel_saturation

    for level in (0.95, 0.88):
        stored, (lv, cfa) = _mosaic_clipping_green_at(level)
        sat = channel_saturation(stored, lv, cfa)
        assert sat[0] == 1.0 and sat[2] == 1.0
        assert level - 0.01 <= sat[1] <= level
    stored, (lv, cfa) = _mosaic_clipping_green_at(1.0, codec_noise=0.0)
    assert list(channel_saturation(stored, lv, cfa)) == [1.0, 1.0, 1.0]
    dark = (stored // 3).astype(np.uint16)  # nothing near white: no plateau at all
    assert list(channel_saturation(dark, lv, cfa)) == [1.0, 1.0, 1.0]


def test_real_files_saturation_levels(shared):
    """GoPro HERO6 (VC-5 GPR): green stops at ~0.95 of WhiteLevel and blue at ~0.92, red at
    white; the Fusion's green at ~0.95; the others reach white (or do not clip)."""
    from oneinch.isp.levels import channel_saturation

    found = {}
    for p in sorted((shared / "dng" / "decodable").glob("*.dng")):
        raw = open_raw(p)
        found[p.name[:12]] = channel_saturation(raw.data, raw.levels,
                                                None if raw.is_linear else raw.cfa)
    h6, fu = found["gopro_hero6_"], found["gopro_fusion"]
    assert h6[0] == 1.0 and 0.94 <= h6[1] <= 0.952 and 0.91 <= h6[2] <= 0.925
    assert fu[0] == 1.0 and 0.94 <= fu[1] <= 0.952
    for name in ("gopro_hero7_", "blackmagic_p", "lg_g4_h815_l"):
        assert list(found[name]) == [1.0, 1.0, 1.0], (name, found[name])


def test_clouds_a_gopro_clipped_are_not_magenta_in_any_look(shared):
    """The HERO6's clipped clouds (green stopped at 0.95 of WhiteLevel, below the level the
    file declares) were not rebuilt: CIELAB a* +7 (magenta) in the authentic and vibrant looks,
    whose curves do not push them to white. Now they are neutral."""
    import colour

    from oneinch.looks.looks import preset

    raw = open_raw(shared / "dng" / "decodable" / "gopro_hero6_GOPR0024_gpr2dng.dng")
    base = Recipe().with_(output={"size": 800})
    clipped = (np.asarray(develop(raw, base).rgb) >= 245 / 255).all(-1)
    assert clipped.mean() > 0.02
    for look in ("authentic", "vibrant"):
        x = np.asarray(develop(raw, preset(look, base)).rgb)[clipped]
        lab = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(x))
        assert abs(float(lab[:, 1].mean())) < 2.0, look  # (was +7.1 / +7.9)
