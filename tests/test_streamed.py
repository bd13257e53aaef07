"""The streamed develop (develop._develop_streamed): one pass from the sensor to the integer
output, no full-size float image; the same image as the whole-image reference."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import oneinch.develop as dv
from oneinch.develop import develop
from oneinch.isp import highlights, tiles
from oneinch.looks.looks import preset
from oneinch.recipe import Recipe
from oneinch.synthetic import demo_scene, unprocess

RCD = Recipe().with_(demosaic={"method": "rcd"})  # (auto picks iri at this size: never strips)


@pytest.fixture(scope="module")
def raw():
    """2048 x 512: the highlight field's reduction is a 2 x 2 block mean (streamable). At
    3x, the sun and the sky clip in colour (reconstruct and clip differ by up to 0.7) in
    7 of the 8 strips; the last (ground) has nothing near a clip."""
    r, _ = unprocess(demo_scene(512, 2048) * 3.0, linear_input=True, iso=800, seed=3)
    return r


@pytest.fixture(autouse=True)
def small_strips(monkeypatch):
    monkeypatch.setattr(tiles, "ROWS", 32)  # streamed strips of 64 rows: 8 on 512 rows


def _strip_rows() -> int:
    return dv.STREAM_ROWS_FACTOR * tiles.ROWS


@pytest.fixture
def spy(monkeypatch):
    """Records each streamed develop's deferred strips (those with a value near a clip) and
    how many strips it made."""
    seen: list[tuple[int, int]] = []
    real = dv._develop_streamed

    def run(*a, **k):
        calls = []
        rec = dv.reconstruct

        def counting(x, clip, mode, **kw):
            if kw.get("prescan") is not None:
                calls.append(kw["prescan"])
            return rec(x, clip, mode, **kw)

        monkeypatch.setattr(dv, "reconstruct", counting)
        try:
            out = real(*a, **k)
        finally:
            monkeypatch.setattr(dv, "reconstruct", rec)
        strips = tiles.strip_bounds(a[0].shape[0], _strip_rows(), 8)
        hit = 0
        if calls:
            rows = np.flatnonzero(calls[0].last >= 0)
            hit = len({i for i, (s, e) in enumerate(strips) if ((rows >= s) & (rows < e)).any()})
        seen.append((hit, len(strips)))
        return out

    monkeypatch.setattr(dv, "_develop_streamed", run)
    return seen


def _codes_match(got: np.ndarray, ref: np.ndarray, tol: float = 1e-4) -> None:
    """``got`` (integers) is the rounding of a value within ``tol`` of the float ``ref``."""
    top = float(np.iinfo(got.dtype).max)
    assert got.shape == ref.shape
    err = np.abs(got.astype(np.float64) - ref.astype(np.float64) * top)
    assert err.max() <= 0.5 + tol * top


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_streamed_matches_the_whole_image_reference(raw, spy, dtype):
    ref = develop(raw, RCD, tiled=False).rgb
    got = develop(raw, RCD, tiled=True, dtype=dtype).rgb
    assert spy, "the develop was not streamed"
    hit, strips = spy[-1]
    assert 0 < hit < strips  # both kinds of strip: deferred and shown at once
    _codes_match(got, ref)
    # the reconstruction ran on the deferred strips: clipping instead changes the sun
    clipped = develop(raw, RCD.with_(highlights={"mode": "clip"}), tiled=False).rgb
    assert np.abs(clipped - ref).max() > 0.5


def test_streamed_walks_hand_on_their_rcd_rows(raw, monkeypatch):
    """The streamed strips are demosaiced in walks down the image, each strip taking its
    first rows' RCD from the strip before it: fewer rows demosaiced than in strips demosaiced
    each on its own (no walk: every claim starts a new one), and the same image, bit for bit,
    as that and as the whole-image reference."""
    made = []
    real = dv.rcd_stored

    def counting(data, *a, rows=None, **k):
        made.append(data.shape[0] if rows is None else rows[1] - rows[0])
        return real(data, *a, rows=rows, **k)

    def run() -> tuple[np.ndarray, int]:
        made.clear()
        out = develop(raw, RCD, tiled=True, dtype=np.uint16).rgb
        return out, sum(made)

    monkeypatch.setattr(dv, "rcd_stored", counting)
    walked, n_walked = run()
    claim = tiles.Walks.claim
    monkeypatch.setattr(tiles.Walks, "claim", lambda self, last=None: claim(self, None))
    alone, n_alone = run()
    assert raw.data.shape[0] < n_walked < n_alone
    np.testing.assert_array_equal(walked, alone)
    _codes_match(walked, develop(raw, RCD, tiled=False).rgb)


def test_streamed_fields_are_made_on_a_worker(raw, monkeypatch):
    """The highlight fields are made by the worker that adds the last strip to the scan (the
    other can still show its strips meanwhile), not after both have finished; the image is
    that of the whole-image reference."""
    import threading

    where = []
    real = dv.reconstruct

    def spying(x, clip, mode, **kw):
        if kw.get("prescan") is not None:
            where.append(threading.current_thread() is threading.main_thread())
        return real(x, clip, mode, **kw)

    monkeypatch.setattr(dv, "reconstruct", spying)
    got = develop(raw, RCD, tiled=True, dtype=np.uint8).rgb
    assert where == [False]
    monkeypatch.setattr(dv, "reconstruct", real)
    _codes_match(got, develop(raw, RCD, tiled=False).rgb)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["fields", "strip"])
def test_streamed_errors_reach_the_caller(raw, monkeypatch, where):
    """An error in the fields (on a worker, while the other may wait for them) or in one
    strip's first pass reaches the caller; no worker is left waiting."""
    if where == "fields":
        real = dv.reconstruct

        def failing(x, clip, mode, **kw):
            if kw.get("prescan") is not None:
                raise RuntimeError("fields failed")
            return real(x, clip, mode, **kw)

        monkeypatch.setattr(dv, "reconstruct", failing)
    else:
        real = dv.rcd_stored

        def failing(data, *a, rows=None, **k):
            if rows is not None and rows[0] > 200:
                raise RuntimeError("strip failed")
            return real(data, *a, rows=rows, **k)

        monkeypatch.setattr(dv, "rcd_stored", failing)
    with pytest.raises(RuntimeError, match="failed"):
        develop(raw, RCD, tiled=True, dtype=np.uint8)


@pytest.mark.parametrize("recipe", [
    # a look's colour (its local tone operator is whole-image: two passes, tested below)
    preset("vibrant").with_(demosaic={"method": "rcd"}, tone={"local": 0.0, "detail": 0.0}),
    RCD.with_(highlights={"mode": "clip"}),
    RCD.with_(sharpen={"amount": 0.0}),  # no sharpening context rows
    RCD.with_(sharpen={"radius": 3.0}),
])
def test_streamed_recipes_match_the_reference(raw, spy, recipe):
    ref = develop(raw, recipe, tiled=False).rgb
    got = develop(raw, recipe, tiled=True, dtype=np.uint8).rgb
    assert spy
    _codes_match(got, ref)


def test_streamed_with_a_default_crop(raw, spy):
    r = replace(raw, default_crop=(70, 30, 400, 1900))  # rows start inside a clipped strip
    ref = develop(r, RCD, tiled=False).rgb
    got = develop(r, RCD, tiled=True, dtype=np.uint8).rgb
    assert spy and got.shape == (400, 1900, 3)
    _codes_match(got, ref)


def test_streamed_when_every_strip_clips(spy):
    """Clipped specks in the ground, too: every strip deferred, the reconstruction over the
    whole image."""
    scene = demo_scene(512, 2048) * 3.0
    scene[448:, ::37] = 6.0
    r, _ = unprocess(scene, linear_input=True, iso=800, seed=3)
    ref = develop(r, RCD, tiled=False).rgb
    got = develop(r, RCD, tiled=True, dtype=np.uint8).rgb
    assert spy and spy[-1][0] == spy[-1][1]
    _codes_match(got, ref)


@pytest.mark.parametrize("change", [
    # whole-image statistics of a raw too small for the binned prepass (2048 / 2 < 1280)
    {"exposure": {"auto": True}},
    {"tone": {"local": 0.5}},
    {"output": {"size": 1000}},  # resizing
])
def test_whole_image_steps_take_the_two_pass_path(raw, spy, change):
    recipe = RCD.with_(**change)
    got = develop(raw, recipe, tiled=True, dtype=np.uint8).rgb
    assert not spy
    _codes_match(got, develop(raw, recipe, tiled=False).rgb)


def test_streamed_when_the_field_is_no_block_mean(spy):
    """2000 x 512: the highlight field's reduction by 1.95 is summed strip by strip from
    area tables (highlights.AreaTables), not a block mean."""
    r, _ = unprocess(demo_scene(512, 2000) * 3.0, linear_input=True, iso=800, seed=3)
    assert highlights._block_factor(512, 2000) == 0
    ref = develop(r, RCD, tiled=False).rgb
    got = develop(r, RCD, tiled=True, dtype=np.uint8).rgb
    assert spy and 0 < spy[-1][0] < spy[-1][1]
    _codes_match(got, ref)


@pytest.mark.parametrize("orientation", [2, 3, 6, 8])
def test_streamed_rotated_and_mirrored(raw, spy, orientation):
    """Displayed in the sensor's layout, written where the orientation puts it (GoPro files
    are mirrored, 2; portrait phone shots 6 or 8), with a crop."""
    r = replace(raw, default_crop=(70, 30, 400, 1900),
                shot=replace(raw.shot, orientation=orientation))
    ref = develop(r, RCD, tiled=False).rgb
    got = develop(r, RCD, tiled=True, dtype=np.uint8).rgb
    assert spy and got.shape == ref.shape
    _codes_match(got, ref)


@pytest.fixture(scope="module")
def large():
    """2560 x 640: large enough for the statistics' prepass (binned 2 x 2: 1280 px)."""
    r, _ = unprocess(demo_scene(640, 2560) * 3.0, linear_input=True, iso=800, seed=3)
    assert dv._prepass_factor(r) == 2
    return r


@pytest.mark.parametrize("recipe", [
    preset("vibrant").with_(demosaic={"method": "rcd"}),  # the local tone operator
    RCD.with_(exposure={"auto": True}),
])
def test_streamed_with_statistics_from_the_prepass(large, spy, recipe):
    """The local operator's grids and auto exposure's sample from the binned raw: the looks
    and auto exposure stream, and the whole-image reference uses the same statistics."""
    ref = develop(large, recipe, tiled=False).rgb
    got = develop(large, recipe, tiled=True, dtype=np.uint8).rgb
    assert spy
    _codes_match(got, ref)


def test_prepass_statistics_are_the_developed_images(large, monkeypatch):
    """What the prepass changes against statistics of the developed image itself: the
    vibrant look's local tone (measured: 0.04 codes of 255 on average, 0.5 at the 99.9th
    percentile; the largest, 10, at the sun's rim) and auto exposure (0.013 stops)."""
    look = preset("vibrant").with_(demosaic={"method": "rcd"})
    binned = develop(large, look, tiled=False).rgb
    evs = []
    real = dv.auto_exposure_ev
    monkeypatch.setattr(dv, "auto_exposure_ev", lambda img, *a: evs.append(real(img)) or evs[-1])
    develop(large, RCD.with_(exposure={"auto": True}), tiled=False)
    monkeypatch.setattr(dv, "_prepass_factor", lambda raw: 1)
    whole = develop(large, look, tiled=False).rgb
    develop(large, RCD.with_(exposure={"auto": True}), tiled=False)
    d = np.abs(binned - whole) * 255
    assert 0 < d.mean() < 0.1 and np.percentile(d, 99.9) < 1.0
    assert abs(evs[0] - evs[1]) < 0.05


GOPRO = (Path(__file__).resolve().parents[2] / "shared" / "data" / "dng" / "decodable"
         / "gopro_hero7_GOPR9231_gpr2dng.dng")


def test_gopro_gain_maps_run_per_strip(spy, monkeypatch):
    """A real file: the GoPro HERO7's OpcodeList2 (four GainMaps) is lens shading the
    develop defers (develop._defers_shading): levels and white balance run per strip (no
    float mosaic of the whole image), the maps' colour gain multiplies each strip after the
    highlights, and the mirrored (orientation 2) 4000 x 3000 image streams: the
    whole-image reference's image."""
    from oneinch.raw.reader import open_raw

    monkeypatch.setattr(tiles, "ROWS", 384)  # (the default: 4 strips of 768 rows)
    raw = open_raw(GOPRO)
    assert [op.name for op in raw.opcodes[2]] == ["GainMap"] * 4
    assert raw.shot.orientation == 2
    rows: list[int] = []
    maps: list[int] = []
    real = dv._front
    monkeypatch.setattr(dv, "_front", lambda data, row=0, **kw: rows.append(row) or maps.append(
        len(kw["ops2"])) or real(data, row, **kw))
    shaded: list[int] = []
    real_rows = dv._Shading.rows
    monkeypatch.setattr(dv._Shading, "rows",
                        lambda self, row0, n: shaded.append(row0) or real_rows(self, row0, n))
    got = develop(raw, Recipe(), dtype=np.uint8).rgb
    assert spy and len({r for r in rows if r > 0}) >= 3  # the front, strip by strip
    assert set(maps) == {0} and len({r for r in shaded if r > 0}) >= 3  # the maps, after
    _codes_match(got, develop(raw, Recipe(), tiled=False).rgb)


@pytest.mark.parametrize("orientation", [1, 3])
def test_develop_file_streams_jpeg_rows(raw, tmp_path, monkeypatch, orientation):
    """develop_file of a large JPEG: the streamed strips go to the encoder as they are made
    (output.jpeg.JpegRows: no 8-bit image); the file is byte for byte the one written from
    the whole 8-bit image (here the size limits are lowered to this 1 MP raw; orientation 3:
    the rows arrive flipped)."""
    from oneinch import api
    from oneinch.output import jpeg
    from oneinch.raw.reader import open_raw
    from oneinch.synthetic import make_dng

    monkeypatch.setattr(jpeg, "OPTIMIZE_MAX_PIXELS", 500_000)
    monkeypatch.setattr(jpeg, "PARALLEL_MIN_PIXELS", 500_000)
    monkeypatch.setattr(dv, "TILE_MIN_PIXELS", 500_000)
    src = tmp_path / "big.dng"
    make_dng(src, demo_scene(512, 2048) * 3.0, linear_input=True, iso=800, seed=3,
             orientation=orientation)
    started = []
    real = jpeg.JpegRows.finish
    monkeypatch.setattr(jpeg.JpegRows, "finish",
                        lambda self, **kw: started.append(self.started) or real(self, **kw))
    streamed = api.develop_file(src, tmp_path / "a.jpg", RCD)
    assert started == [True]
    photo = develop(open_raw(src), RCD, dtype=np.uint8)  # no rows: the whole 8-bit image
    from oneinch.output.encode import write

    write(photo, tmp_path / "b.jpg", RCD.output)
    assert streamed.read_bytes() == (tmp_path / "b.jpg").read_bytes()
    with pytest.raises(ValueError, match="missing"):
        jpeg.JpegRows().finish()


def test_near_pixels_ignore_rows_without_a_hit():
    """reconstruct's mask boxes read whole bands of rows; on rows the scan found nothing near
    a clip (rows a streamed develop never wrote), what they hold is discarded."""
    rng = np.random.default_rng(0)
    clip = np.array([1.0, 1.0, 1.0], np.float32)
    img = rng.uniform(0.0, 0.5, (256, 64, 3)).astype(np.float32)
    img[40:44, 10:14] = 1.0
    first, last = np.full(256, -1), np.full(256, -1)
    first[40:44], last[40:44] = 10, 13
    want = highlights._near_pixels(img, clip, first, last)
    junk = img.copy()
    junk[50:128] = 7.0  # the same band, beyond SPREAD of the hits: never written
    got = highlights._near_pixels(junk, clip, first, last)
    assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
    assert want[0].min() == 39 and want[0].max() == 44  # the hits grown by SPREAD = 1


_RSS = textwrap.dedent("""
    import sys
    from oneinch.cli import reuse_freed_memory
    reuse_freed_memory()  # the command's malloc: one heap, freed blocks reused
    import numpy as np
    import oneinch.develop as dv
    from oneinch.isp import tiles
    from oneinch.recipe import Recipe
    from oneinch.synthetic import demo_scene, unprocess
    if sys.argv[1] == "two-pass":
        dv._streams = lambda *a, **k: False
    tiles.ROWS = 32  # streamed strips of 64 rows
    recipe = Recipe().with_(demosaic={"method": "rcd"}, denoise={"mode": "off"})
    small, _ = unprocess(demo_scene(512, 2048), linear_input=True, seed=1)
    dv.develop(small, recipe, tiled=True, dtype=np.uint8)  # kernels loaded or compiled
    raw, _ = unprocess(demo_scene(3072, 4096) * 0.5, linear_input=True, seed=1)
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    open("/proc/self/clear_refs", "w").write("5")  # the peak starts again from here
    base = status("VmRSS")
    dv.develop(raw, recipe, tiled=True, dtype=np.uint8)
    print(status("VmHWM") - base)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
def test_streamed_peak_memory_is_below_one_float_image():
    """12.5 MP with nothing near a clip, the command's malloc settings: the streamed
    develop's peak grows by the 8-bit output (38 MB) and the strips in flight, well under
    one full-size float image (151 MB), about what the two-pass develop takes (its 8-bit
    output over the float image's memory)."""
    full = 3072 * 4096 * 3 * 4

    def growth(mode: str) -> int:
        res = subprocess.run([sys.executable, "-c", _RSS, mode], capture_output=True,
                             text=True, check=True)
        return int(res.stdout.split()[-1])

    streamed, two_pass = growth("streamed"), growth("two-pass")  # 57 and 151 MB here
    assert streamed < 0.5 * full and two_pass - streamed > 0.5 * full
