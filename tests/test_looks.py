"""looks.looks: presets as Recipes, saturation/grain/LUT in apply_look, and the look
measurements on a fixed Kodak subset (scene = neutral-inverted display image, see
oneinch.looks.measure)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from oneinch.errors import OptionError
from oneinch.looks.looks import PRESETS, add_grain, adjust_saturation, apply_look, preset
from oneinch.looks.lut import Lut, bake, identity_grid, write_cube
from oneinch.looks.measure import look_stats, read_srgb_png, render, scene_from_display
from oneinch.looks.styles import apply_style
from oneinch.recipe import Look, Recipe

KODAK = Path(__file__).resolve().parents[2] / "shared/data/benchmarks/kodak24"
SUBSET = ["kodim03.png", "kodim05.png", "kodim07.png", "kodim13.png", "kodim19.png",
          "kodim22.png", "kodim23.png"]


def test_presets_are_recipes():
    for name in ("neutral", "authentic", "vibrant"):
        r = preset(name)
        assert r.look.name == name
        assert Recipe.from_dict(r.to_dict()) == r  # round-trips through TOML data
    a, v = preset("authentic"), preset("vibrant")
    assert a.tone.local == 0 and v.tone.local > 0
    assert a.sharpen.amount < preset("neutral").sharpen.amount < v.sharpen.amount
    with pytest.raises(OptionError):
        preset("leica")
    assert Recipe().with_(**PRESETS["vibrant"]).look.saturation > 1


def test_saturation_keeps_luminance_and_gamut():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (40, 40, 3)).astype(np.float32)
    y = adjust_saturation(x, 1.6)
    w = np.array([0.2126, 0.7152, 0.0722], np.float32)
    assert y.min() >= 0 and y.max() <= 1
    assert np.abs(y @ w - x @ w).max() < 2e-3  # luminance kept (gamut-limited, not clipped)
    grey = adjust_saturation(x, 0.0)
    assert np.abs(grey - grey[..., :1]).max() < 1e-5


def test_grain_deterministic_and_scales_with_size():
    flat = np.full((600, 900, 3), 0.18, np.float32)
    a = add_grain(flat, 0.5)
    assert np.array_equal(a, add_grain(flat, 0.5)) and a.std() > 1e-3
    big = add_grain(np.full((2000, 3000, 3), 0.18, np.float32), 0.5)[..., 1]

    def lag1(z):
        z = z - z.mean()
        return float((z[:, 1:] * z[:, :-1]).mean() / z.var())

    # 1500 px reference edge: at 900 px grain is pixel-sized, at 3000 px twice as coarse
    assert lag1(a[..., 1]) < 0.3 and lag1(big) > 0.6


def test_apply_look_with_style_and_lut(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (24, 24, 3)).astype(np.float32)
    write_cube(tmp_path / "sepia.cube", bake(lambda v: apply_style(v, "sepia"), 33))
    via_lut = apply_look(x, Look(lut=str(tmp_path / "sepia.cube"), lut_strength=0.7))
    via_style = apply_look(x, Look(style="sepia", style_strength=0.7))
    assert np.abs(via_lut - via_style).mean() < 5e-3
    write_cube(tmp_path / "id.cube", Lut(identity_grid(9)))
    assert np.abs(apply_look(x, Look(lut=str(tmp_path / "id.cube"))) - x).max() < 2e-4
    assert np.array_equal(apply_look(x, Look()), x)


@pytest.fixture(scope="module")
def kodak_stats():
    if not KODAK.exists():
        pytest.skip(f"Kodak test data not found at {KODAK}")
    out = {n: [] for n in PRESETS}
    for name in SUBSET:
        d = read_srgb_png(KODAK / name)
        d = cv2.resize(d, (d.shape[1] // 2, d.shape[0] // 2), interpolation=cv2.INTER_AREA)
        scene = scene_from_display(d)
        for look in PRESETS:
            out[look].append(look_stats(render(scene, look)))
    return {n: {k: np.array([s[k] for s in v]) for k in v[0]} for n, v in out.items()}


def test_authentic_character(kodak_stats):
    n, a, v = kodak_stats["neutral"], kodak_stats["authentic"], kodak_stats["vibrant"]
    sat = a["saturation"].mean() / n["saturation"].mean()
    assert 0.95 <= sat <= 1.05
    assert a["shadows"].mean() < v["shadows"].mean() - 3  # deeper shadows (5th pct L*)
    assert a["shadows"].mean() < n["shadows"].mean()
    assert a["clipped"].mean() < 0.005


def test_vibrant_character(kodak_stats):
    n, v = kodak_stats["neutral"], kodak_stats["vibrant"]
    sat = v["saturation"].mean() / n["saturation"].mean()
    assert 1.15 <= sat <= 1.30
    assert v["midtones"].mean() > n["midtones"].mean() + 2  # brighter mid-tones (median L*)
    assert v["local"].mean() > n["local"].mean()  # more local contrast


def test_neutral_reproduces_the_source():
    p = KODAK / "kodim23.png"
    if not p.exists():
        pytest.skip(f"Kodak test data not found at {p}")
    d = read_srgb_png(p)[::2, ::2]
    out = render(scene_from_display(d), "neutral")
    mask = d.max(axis=2) < 0.75  # below the path-to-white region
    assert np.abs(out - d)[mask].max() < 2e-3


def test_cli_export_preset_lut_matches_render(tmp_path):
    """`oneinch looks export vibrant x.cube`: the LUT applied to a display image equals the
    preset's global rendering of the neutral-inverted scene (mean ΔE2000 < 0.5)."""
    import colour
    from typer.testing import CliRunner

    from oneinch.commands.looks import app
    from oneinch.looks.lut import apply_lut, read_cube
    from oneinch.looks.measure import srgb_to_lab
    from oneinch.looks.tone import tone_map

    res = CliRunner().invoke(app, ["export", "vibrant", str(tmp_path / "v.cube")])
    assert res.exit_code == 0, res.output
    p = KODAK / "kodim05.png"
    if not p.exists():
        pytest.skip(f"Kodak test data not found at {p}")
    d = read_srgb_png(p)[::2, ::2]
    r = preset("vibrant")
    direct = apply_look(tone_map(scene_from_display(d), r.tone.__class__(
        **{**r.tone.__dict__, "local": 0.0, "detail": 0.0})), r.look)
    via = apply_lut(d, read_cube(tmp_path / "v.cube"))
    de = colour.delta_E(srgb_to_lab(direct), srgb_to_lab(via), method="CIE 2000")
    assert de.mean() < 0.5
    assert CliRunner().invoke(app, ["export", "vibrant", str(tmp_path / "v.cube"),
                                    "--size", "40"]).exit_code != 0
