"""develop_scene / render: a raw developed once, its display stages run again per recipe (the
browser app's look, style, LUT, tone and frame changes)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from oneinch import open_raw
from oneinch.develop import develop, develop_scene, render
from oneinch.errors import OptionError
from oneinch.looks.looks import PRESETS
from oneinch.recipe import Recipe

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "oneinch_demo.dng"
BLACKMAGIC = ("dng", "decodable", "blackmagic_pocket4k_12bit_cfa.dng")

DISPLAY_CHANGES = [
    {},
    PRESETS["authentic"],
    PRESETS["vibrant"],
    {"look": {"style": "bw-hc", "style_strength": 0.5}},
    {"look": {"style": "sepia"}, "sharpen": {"amount": 0.0}},
    {"tone": {"contrast": 1.3, "shadows": 0.4, "highlights": -0.5, "white_ev": 3.5}},
    {"tone": {"curve": "linear"}, "look": {"saturation": 1.4, "vibrance": 0.3}},
]


@pytest.fixture(scope="module")
def sample():
    return open_raw(SAMPLE)


@pytest.mark.parametrize("change", DISPLAY_CHANGES)
def test_render_is_develop_on_the_whole_image_path(sample, change) -> None:
    """The bundled 1.5 MP raw develops whole: render() of its scene under any display change
    is develop()'s Photo exactly, float and 8-bit."""
    base = Recipe().with_(output={"size": 480})
    scene = develop_scene(sample, base)
    r = base.with_(**change)
    assert np.array_equal(render(scene, r).rgb, develop(sample, r).rgb)
    assert np.array_equal(render(scene, r, dtype=np.uint8).rgb,
                          develop(sample, r, dtype=np.uint8).rgb)


def test_render_leaves_its_scene_as_it_was(sample) -> None:
    scene = develop_scene(sample, Recipe().with_(output={"size": 300}))
    before = scene.rgb.copy()
    first = render(scene, Recipe().with_(output={"size": 300}, **PRESETS["vibrant"])).rgb
    assert np.array_equal(scene.rgb, before)
    again = render(scene, Recipe().with_(output={"size": 300}, **PRESETS["vibrant"])).rgb
    assert np.array_equal(first, again)
    assert scene.nbytes >= before.nbytes


@pytest.mark.parametrize("change", [
    {"white_balance": {"mode": "daylight"}},
    {"exposure": {"ev": 1.0}},
    {"output": {"size": 400}},
    {"output": {"space": "p3"}},
    {"denoise": {"mode": "off"}},
])
def test_render_refuses_what_the_scene_was_made_without(sample, change) -> None:
    scene = develop_scene(sample, Recipe().with_(output={"size": 300}))
    with pytest.raises(OptionError, match="develop the raw again"):
        render(scene, Recipe().with_(output={"size": 300}).with_(**change))


def test_render_accepts_another_encoding(sample) -> None:
    """The output's format, quality and bits are the encoder's: one scene serves them all."""
    base = Recipe().with_(output={"size": 300})
    scene = develop_scene(sample, base)
    r = base.with_(output={"format": "png", "bits": 16, "quality": 50})
    assert np.array_equal(render(scene, r).rgb, develop(sample, r).rgb)


def test_render_on_the_strip_path_is_develop_within_the_strips_tolerance(shared) -> None:
    """A 9 MP cinema DNG develops in strips (its preview binned): the scene leaves the strips
    before their fused display pass; render() runs the whole-image display, within the strips'
    1e-4 of develop(). With the local tone operator, the scene made with it keeps the binned
    prepass develop() reads its grids from."""
    raw = open_raw(shared.joinpath(*BLACKMAGIC))
    base = Recipe().with_(output={"size": 600})
    scene = develop_scene(raw, base)
    for change in ({}, PRESETS["authentic"], {"look": {"style": "bw-natural"}}):
        r = base.with_(**change)
        assert np.abs(render(scene, r).rgb - develop(raw, r).rgb).max() < 1e-4
    vibrant = base.with_(**PRESETS["vibrant"])
    scene = develop_scene(raw, vibrant)
    assert scene.stats.scene is not None  # (the prepass)
    assert np.abs(render(scene, vibrant).rgb - develop(raw, vibrant).rgb).max() < 1e-4
    # scene.rgb is the scene's own memory, not a working buffer a next develop reuses
    kept = scene.rgb.copy()
    develop(raw, base.with_(exposure={"ev": 1.0}))
    assert np.array_equal(scene.rgb, kept)


def test_tone_and_style_kernels_split_over_two_threads_bit_identically() -> None:
    """A whole image's tone curve and style (their compiled kernels run on one thread) run
    as two halves of rows on two threads: exactly the single call's result."""
    from oneinch import _aot
    from oneinch.looks import styles, tone

    names: list = []

    class Counting(threading.Thread):
        def __init__(self, *a, **k) -> None:
            names.append(k.get("name"))
            super().__init__(*a, **k)

    rgb = np.random.default_rng(3).random((301, 211, 3)).astype(np.float32) * 4
    t = Recipe().with_(**PRESETS["vibrant"]).tone
    prm, tints = styles.style_params("sepia", "srgb")
    with pytest.MonkeyPatch.context() as mp:
        # (as in a develop process: an earlier test here may have started the JIT, whose
        # parallel kernels then serve instead, on both cores by themselves)
        mp.setitem(_aot._state, "jit", False)
        if not _aot.serves(styles._style_kernel, rgb, np.empty_like(rgb), prm, tints, 0.7):
            pytest.skip("no ahead-of-time module here (python -m oneinch.warm builds it)")
        mp.setattr(threading, "Thread", Counting)
        split_tone = tone.tone_map(rgb, t)
        split_style = styles.apply_style(np.clip(rgb, 0, 1), "sepia", 0.7)
    assert names == ["oneinch-rows"] * 2
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(_aot._state, "jit", False)
        mp.setattr(_aot, "on_strip_thread", lambda: True)
        assert np.array_equal(split_tone, tone.tone_map(rgb, t))
        assert np.array_equal(split_style, styles.apply_style(np.clip(rgb, 0, 1), "sepia", 0.7))
    # rows of a taller image: each half is given its own first row
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(_aot._state, "jit", False)
        with pytest.MonkeyPatch.context() as one:
            one.setattr(_aot, "on_strip_thread", lambda: True)
            local = tone.local_setup(rgb, t)
            whole = tone.tone_map(rgb[100:], t, local=local, row0=100, full_height=301)
        assert np.array_equal(whole, tone.tone_map(rgb[100:], t, local=local, row0=100,
                                                   full_height=301))
    assert np.array_equal(whole, split_tone[100:])


def test_a_scene_without_the_prepass_is_made_again_for_the_local_operator(shared, tmp_path):
    """A large raw's local tone operator reads its grids from a binned prepass that a scene
    made for a look without it lacks: render() then differed from develop() (GoPro preview,
    vibrant after neutral: max 17-34 of 255). Scene.renders_exactly says so, and the browser
    app develops the scene again, with the prepass, once."""
    import shutil

    from oneinch.web.server import Workspace

    raw_path = tmp_path / "bm.dng"
    shutil.copy(shared.joinpath(*BLACKMAGIC), raw_path)
    raw = open_raw(raw_path)
    base = Recipe().with_(output={"size": 600})
    vibrant = base.with_(**PRESETS["vibrant"])
    scene = develop_scene(raw, base)
    assert scene.renders_exactly(base) and not scene.renders_exactly(vibrant)
    assert develop_scene(raw, vibrant).renders_exactly(base)
    ws = Workspace(tmp_path)
    ws._scene(raw_path, base)
    again = ws._scene(raw_path, vibrant)
    assert again.renders_exactly(vibrant) and len(ws._scenes) == 1
    assert np.abs(render(again, vibrant).rgb - develop(raw, vibrant).rgb).max() < 1e-4
    assert ws._scene(raw_path, base) is again  # (serves every look from then on)
