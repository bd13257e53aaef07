"""Strip (tiled) development equals the whole-image reference (develop(..., tiled=False))."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from oneinch.develop import develop
from oneinch.isp import tiles
from oneinch.looks.looks import preset
from oneinch.recipe import Recipe
from oneinch.synthetic import demo_scene, unprocess


@pytest.fixture(scope="module")
def raw():
    scene = demo_scene(232, 300)
    r, _ = unprocess(scene, linear_input=True, iso=800, seed=3)
    return r


@pytest.fixture(autouse=True)
def small_strips(monkeypatch):
    monkeypatch.setattr(tiles, "ROWS", 64)  # several strips on a small image


def _max_diff(raw, recipe) -> float:
    if recipe.demosaic.method == "auto":  # small images pick iri, whose 96 rows of context
        recipe = recipe.with_(demosaic={"method": "ri"})  # make every strip here the whole
    a = develop(raw, recipe, tiled=False).rgb
    b = develop(raw, recipe, tiled=True).rgb
    assert a.shape == b.shape
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("look", [None, "vibrant", "authentic"])
def test_tiled_matches_reference(raw, look):
    recipe = Recipe() if look is None else preset(look)
    assert _max_diff(raw, recipe) <= 1e-4


def test_tiled_crop_orientation_and_preview(raw):
    rotated = replace(raw, default_crop=(6, 10, 210, 270), shot=replace(raw.shot, orientation=6))
    assert _max_diff(rotated, preset("vibrant")) <= 1e-4
    assert _max_diff(raw, Recipe().with_(output={"size": 100})) <= 1e-4


def test_map_rows_in_place_with_margin():
    rng = np.random.default_rng(0)
    src = rng.random((203, 17)).astype(np.float32)

    def blur(s: np.ndarray, _row: int) -> np.ndarray:  # a 5-row neighbourhood stage
        p = np.pad(s, ((2, 2), (0, 0)), mode="reflect")
        return (p[:-4] + p[1:-3] + p[2:-2] + p[3:-1] + p[4:]) / np.float32(5)

    ref = blur(src, 0)
    buf = src.copy()
    out = tiles.map_rows(buf, blur, out=buf, margin=2, rows=32, workers=2)
    assert out is buf
    np.testing.assert_allclose(out, ref, atol=1e-6)
    half = tiles.map_rows(src, lambda s, _r: s[::2], margin=0, rows=32, align=2, scale=0.5)
    np.testing.assert_array_equal(half, src[::2][: half.shape[0]])


def test_map_rows_integer_output_over_its_float_input():
    """An 8-bit image written over the start of the float image it is made from: strips read
    the float rows themselves once the output is behind them (no copies), copies before that;
    ``mutates`` (the default) makes every strip a copy. Same result as out of place, every
    layout."""
    rng = np.random.default_rng(1)
    h, w = 517, 40
    ref_src = rng.random((h, w, 3)).astype(np.float32)

    def enc(s: np.ndarray, _row: int) -> np.ndarray:  # a 7-row neighbourhood, to 8 bits
        p = np.pad(s, ((3, 3), (0, 0), (0, 0)), mode="reflect")
        m = sum(p[k : k + s.shape[0]] for k in range(7)) / np.float32(7)
        return np.round(m * 255).astype(np.uint8)

    def enc_mutating(s: np.ndarray, row: int) -> np.ndarray:
        res = enc(s, row)
        s[:] = -1.0  # scribbles over what it was given
        return res

    ref = enc(ref_src, 0)
    for fn, mutates in ((enc, False), (enc_mutating, True)):
        for rows in (16, 48, 200):
            x = tiles.empty((h, w, 3))
            x[:] = ref_src
            out = tiles.alias(x, (h, w, 3), np.uint8)
            got = tiles.map_rows(x, fn, out=out, margin=3, rows=rows, workers=2,
                                 mutates=mutates)
            np.testing.assert_array_equal(got, ref)
    # a cropped view written compacted over its own memory (rows not contiguous): copies
    x = tiles.empty((h, w + 4, 3))
    x[:, 2:-2] = ref_src
    view = x[:, 2:-2]
    flat = tiles.alias(x, (h, w, 3), np.float32)
    got = tiles.map_rows(view, lambda s, r: enc(s, r).astype(np.float32), out=flat, margin=3,
                         rows=32, workers=2, mutates=False)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("iso", [100, 3200, 12800])
def test_tiled_matches_reference_at_every_denoise_tier(iso):
    """Strips start on rows that are no multiple of the denoiser's patch step: row0 aligns it."""
    r, _ = unprocess(demo_scene(200, 264), linear_input=True, iso=iso, seed=5)
    assert _max_diff(r, Recipe()) <= 1e-4


@pytest.mark.parametrize("tiled", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_output_is_the_quantised_float_output(raw, tiled, dtype):
    from oneinch.output.encode import quantize

    recipe = Recipe().with_(demosaic={"method": "ri"})  # iri would never make strips
    ref = quantize(develop(raw, recipe, tiled=tiled).rgb, 8 * np.dtype(dtype).itemsize)
    got = develop(raw, recipe, tiled=tiled, dtype=dtype).rgb
    assert got.dtype == dtype and np.array_equal(got, ref)


def test_integer_output_rejects_other_dtypes(raw):
    from oneinch.errors import OptionError

    with pytest.raises(OptionError, match="dtype"):
        develop(raw, Recipe(), dtype=np.int32)


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
@pytest.mark.parametrize("factor", [2, 4])
def test_bin_stored_is_levels_gains_then_bin(pattern, factor):
    from oneinch.develop import _bin, bin_stored
    from oneinch.isp import levels, whitebalance
    from oneinch.raw.image import CFAPattern, Levels

    rng = np.random.default_rng(factor)
    data = rng.integers(0, 16384, (64, 96)).astype(np.uint16)
    lv = Levels(black=np.full((1, 1, 1), 512.0), white=np.array([15000.0]))
    cfa = CFAPattern.bayer(pattern)
    gains = np.array([2.1, 1.0, 1.6])
    ref = _bin(whitebalance.apply_gains(levels.normalize(data, lv), gains, cfa), cfa, factor)
    got = bin_stored(data, lv, gains, cfa, factor)
    assert got.shape == ref.shape == (64 // factor, 96 // factor, 3)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "BGGR"])
def test_rcd_stored_is_levels_gains_then_rcd(pattern):
    from oneinch.develop import rcd_stored
    from oneinch.isp import levels, whitebalance
    from oneinch.isp.demosaic import demosaic
    from oneinch.raw.image import CFAPattern, Levels

    rng = np.random.default_rng(7)
    data = rng.integers(600, 16000, (40, 52)).astype(np.uint16)
    lv = Levels(black=np.full((1, 1, 1), 600.0), white=np.array([15520.0]))
    cfa = CFAPattern.bayer(pattern)
    gains = np.array([1.95, 1.0, 1.34])
    ref = demosaic(whitebalance.apply_gains(levels.normalize(data, lv), gains, cfa), cfa, "rcd")
    np.testing.assert_allclose(rcd_stored(data, lv, gains, cfa), ref, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG"])
@pytest.mark.parametrize("domain", ["linear", "srgb"])
def test_rcd_stored_rows_are_those_rows_of_the_whole_result(pattern, domain):
    """rcd_stored(rows=(y0, y1)) reads the rows around the window from the mosaic (no mirrored
    edge of its own): bit for bit the same rows as the whole result, at odd and even first
    rows, at the image's own edges, on a column-cropped (not contiguous) mosaic, and written
    into ``out``."""
    from oneinch.develop import rcd_stored
    from oneinch.raw.image import CFAPattern, Levels

    rng = np.random.default_rng(8)
    data = rng.integers(600, 16000, (70, 60)).astype(np.uint16)[:, 2:56]
    lv = Levels(black=np.full((1, 1, 1), 600.0), white=np.array([15520.0]))
    cfa = CFAPattern.bayer(pattern)
    gains = np.array([1.95, 1.0, 1.34])
    whole = rcd_stored(data, lv, gains, cfa, domain=domain)
    for y0, y1 in ((0, 9), (5, 40), (21, 22), (30, 70), (0, 70)):
        got = rcd_stored(data, lv, gains, cfa, domain=domain, rows=(y0, y1))
        np.testing.assert_array_equal(got, whole[y0:y1])
    out = np.full((80, 54, 3), np.nan, np.float32)
    rcd_stored(data, lv, gains, cfa, domain=domain, rows=(11, 47), out=out[3:39])
    np.testing.assert_array_equal(out[3:39], whole[11:47])
    assert np.isnan(out[:3]).all() and np.isnan(out[39:]).all()
    with pytest.raises(ValueError):
        rcd_stored(data, lv, gains, cfa, rows=(11, 47), out=out[:10])


def test_walks_hand_out_every_strip_once_in_runs():
    """tiles.Walks: two workers walk the top and bottom halves; the first done takes half of
    what the other has left; every strip exactly once, whatever the interleaving."""
    w = tiles.Walks(8)
    a, b = w.claim(), w.claim()
    assert (a, b) == (0, 4)
    b = w.claim(w.claim(w.claim(b)))  # the bottom walker finishes 5, 6, 7 ...
    assert b == 7
    assert w.claim(b) == 2  # ... then starts in the middle of 1..3, which the other walks into
    assert w.claim(a) == 1 and w.claim(1) == 3 and w.claim(3) is None and w.claim(2) is None
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 16, 33):
        w, last, got = tiles.Walks(n), [None, None, None], []
        live = [0, 1, 2]
        while live:
            k = int(rng.choice(live))
            i = w.claim(last[k])
            if i is None:
                live.remove(k)
            else:
                got.append(i)
                last[k] = i
        assert sorted(got) == list(range(n))
    w = tiles.Walks(4)
    w.claim()
    w.stop()
    assert w.claim(0) is None and w.claim() is None


@pytest.mark.parametrize("method", ["rcd", "ri"])
def test_tiled_matches_reference_per_demosaic(raw, method):
    assert _max_diff(raw, Recipe().with_(demosaic={"method": method})) <= 1e-4


def test_strips_really_are_strips(raw, monkeypatch):
    """The fixture's 64-row strips reach map_rows (its default is read at call time)."""
    calls = []
    real = tiles.map_rows

    def spy(src, fn, **kw):
        calls.append(kw.get("rows") or tiles.ROWS)
        return real(src, fn, **kw)

    monkeypatch.setattr(tiles, "map_rows", spy)
    develop(raw, Recipe().with_(demosaic={"method": "rcd"}), tiled=True)
    assert calls and calls[0] == 64 and raw.height > 2 * 64


@pytest.fixture(scope="module")
def photo():
    """McMaster 1 (500 x 500) unprocessed to a 14-bit raw at ISO 100: real texture (the
    synthetic scene's flat patches hid GBTF's wrap-around), and tall enough that a 64-row
    strip with iri-cnn's 128 rows of context on each side (and denoise's) is a real strip."""
    from conftest import MCMASTER, load_rgb8

    path = MCMASTER / "1.tif"
    if not path.exists():
        pytest.skip("benchmark data not available")
    srgb = load_rgb8(path).astype(np.float32) / 255.0
    r, _ = unprocess(srgb, iso=100, seed=0)
    return r


def _strip_inputs(raw, recipe, monkeypatch) -> list[int]:
    """Rows of mosaic each strip of develop's sensor pass was given."""
    seen = []
    real = tiles.map_rows

    def spy(src, fn, **kw):
        def watched(s, row):
            seen.append(s.shape[0])
            return fn(s, row)

        return real(src, watched, **kw)

    monkeypatch.setattr(tiles, "map_rows", spy)
    develop(raw, recipe, tiled=True)
    monkeypatch.setattr(tiles, "map_rows", real)
    return seen


@pytest.mark.parametrize("method", ["iri", "iri-lr", "iri-cnn"])
def test_iri_family_in_strips_matches_whole(photo, method, monkeypatch):
    """iri, iri-lr and iri-cnn run in strips (until session 19 they were developed whole: at
    50 MP iri-lr took 5.8 GB), each strip given its method's context (isp.demosaic.
    strip_context), and join without seams: within 1e-4 of the whole image."""
    r = Recipe().with_(demosaic={"method": method})
    sizes = _strip_inputs(photo, r, monkeypatch)
    assert sizes and max(sizes) < photo.height  # real strips: none is the whole mosaic
    assert _max_diff(photo, r) <= 1e-4


def test_iri_cnn_network_runs_on_the_kept_rows_only(photo, monkeypatch):
    """In strips, iri-cnn's network runs on the rows the later stages read, not on the 128
    rows of context at each cut side (those only make iri-lr's rows exact): on the 64-row
    strips here it makes less than half the rows it made, and the image is the same."""
    from oneinch.isp import _demosaic_cnn as cnn
    from oneinch.isp import demosaic as dm

    real, restrictable = cnn.refine, dm.RESTRICTABLE

    def rows_made(restrict: bool) -> tuple[int, np.ndarray]:
        made = []

        def counted(first, tile=cnn.TILE, rows=None):
            pad = dm.context("iri-cnn")  # (whole: all rows but the mirror margin's)
            lo, hi = (pad, first.shape[0] - pad) if rows is None else rows
            made.append(hi - lo)
            return real(first, tile, rows)

        monkeypatch.setattr(cnn, "refine", counted)
        monkeypatch.setattr(dm, "RESTRICTABLE", restrictable if restrict else ())
        out = develop(photo, Recipe().with_(demosaic={"method": "iri-cnn"}), tiled=True)
        return sum(made), out.rgb

    n_all, every = rows_made(False)
    n_kept, kept = rows_made(True)
    assert n_kept < 0.5 * n_all  # measured 0.40-0.46 (the noise model's demosaic is cached)
    assert np.abs(kept - every).max() <= 1e-4


def test_iri_strips_need_their_context(photo, monkeypatch):
    """The same strips with RI's 18 rows of context (what iri had when it showed seams) do
    not join: the test above can fail."""
    from oneinch.isp import demosaic

    r = Recipe().with_(demosaic={"method": "iri"})
    monkeypatch.setattr(demosaic, "_STRIP_CONTEXT", {})
    assert _max_diff(photo, r) > 1e-3


@pytest.mark.parametrize("orientation", [6, 3])
def test_integer_output_rotated_and_cropped(raw, orientation):
    """Rotated (a new buffer, not the strip engine's map) and cropped views: the 8-bit strips
    are still the quantised float strips."""
    from oneinch.output.encode import quantize

    r = replace(raw, default_crop=(6, 10, 210, 270),
                shot=replace(raw.shot, orientation=orientation))
    recipe = Recipe().with_(demosaic={"method": "rcd"})
    ref = quantize(develop(r, recipe, tiled=True).rgb, 8)
    got = develop(r, recipe, tiled=True, dtype=np.uint8).rgb
    assert got.shape == ref.shape and np.array_equal(got, ref)


def test_tiled_matches_reference_with_a_dcp_huesatmap(raw, tmp_path):
    """A profile with tables takes the separate scene pass (not the fused one), its DCP
    resolved once for all strips."""
    from oneinch.isp import dcp

    rng = np.random.default_rng(3)
    hsm = (rng.normal(size=(2, 6, 4, 3)) * 0.1 + [0.0, 1.0, 1.0]).astype(np.float32)
    path = tmp_path / "t.dcp"
    dcp.write_dcp(path, dcp.DCP(
        unique_camera_model="oneinch Synthetic Sensor", profile_name="tables",
        color_matrix1=np.asarray(raw.color.color_matrix1), illuminant1=21,
        hue_sat_map1=dcp.HueSatMap(hsm)))
    assert _max_diff(raw, Recipe().with_(profile={"dcp": str(path)})) <= 1e-4


def test_prefault_maps_the_pages_and_keeps_what_is_written():
    """The background prefault of a fresh strip buffer: afterwards writing the whole buffer
    takes (almost) no page faults, and rows written before or during it are not touched."""
    import resource
    import sys

    x = tiles.empty((1024, 2048, 3))  # 24 MB
    x[:7] = 0.5
    t = tiles.prefault(x)
    if t is None:
        assert not sys.platform.startswith("linux")
        return
    x[-3:] = 0.25  # written while the other thread populates
    t.join()
    if not t.populated:
        pytest.skip("this kernel has no MADV_POPULATE_WRITE (Linux < 5.14)")
    assert np.all(x[:7] == 0.5) and np.all(x[-3:] == 0.25) and not np.any(x[7:-3])
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x[7:-3] = 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0 < 64  # 6000 pages
    assert tiles.prefault(np.zeros((1024, 2048, 3), np.float32)) is None  # not an empty() map


@pytest.mark.parametrize("dtype", [None, np.uint8])
def test_reused_buffers_give_the_same_image(raw, monkeypatch, dtype):
    """reuse_buffers() (heap arrays: no page release, no 8-bit image over the float one's
    memory) develops exactly what the memory-map path does, file after file."""
    recipe = Recipe().with_(demosaic={"method": "ri"})
    ref = develop(raw, recipe, tiled=True, dtype=dtype).rgb
    monkeypatch.setattr(tiles, "_HEAP", False)  # (restored after the test)
    tiles.reuse_buffers()
    assert tiles._map_of(tiles.empty((4, 4, 3))) is None
    for _ in range(2):
        assert np.array_equal(develop(raw, recipe, tiled=True, dtype=dtype).rgb, ref)


def test_reused_buffers_are_not_faulted_in_again():
    """With the command's malloc settings, the working image of the next develop is the
    memory of the last one: no fresh pages (a memory map of its own: ~12000 faults here)."""
    import subprocess
    import sys

    code = (
        "import resource\n"
        "from oneinch.cli import reuse_freed_memory\n"
        "from oneinch.isp import tiles\n"
        "reuse_freed_memory()\n"
        "tiles.reuse_buffers()\n"
        "def faults():\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "x = tiles.empty((2048, 2048, 3)); x[:] = 1.0; del x\n"
        "f0 = faults()\n"
        "for _ in range(3):\n"
        "    x = tiles.empty((2048, 2048, 3)); x[:] = 1.0; del x\n"
        "print(faults() - f0)\n"
    )
    env = dict(__import__("os").environ, NUMPY_MADVISE_HUGEPAGE="0")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 0, res.stderr[-500:]
    assert int(res.stdout.split()[-1]) < 3000  # 3 x 48 MB: ~36000 pages when mapped anew
