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


def test_cli_export_takes_the_output_as_o_too(tmp_path):
    """The README's form, `oneinch looks export vibrant -o vibrant.cube`, as every other
    command names its output; it makes the same LUT as the positional form, and one output
    only."""
    from typer.testing import CliRunner

    from oneinch.commands.looks import app

    a, b = tmp_path / "a.cube", tmp_path / "b.cube"
    res = CliRunner().invoke(app, ["export", "vibrant", "-o", str(a)])
    assert res.exit_code == 0, res.output
    assert CliRunner().invoke(app, ["export", "vibrant", str(b)]).exit_code == 0
    assert a.read_bytes() == b.read_bytes() and len(a.read_bytes()) > 33**3 * 10
    both = CliRunner().invoke(app, ["export", "vibrant", str(a), "-o", str(b)])
    none = CliRunner().invoke(app, ["export", "vibrant"])
    assert both.exit_code != 0 and none.exit_code != 0


# ----------------------------------------------------------------------------- fused display


def _scene(h: int = 72, w: int = 120, seed: int = 2) -> np.ndarray:
    """Scene-linear test strip: 14 stops left to right, colour modulation, noise, a black
    patch, a negative value and highlights far above white."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.001 * 2 ** (14 * xx / w)
    x = np.stack([base * (1 + 0.6 * np.sin(yy / 5)), base, base * (1 + 0.6 * np.cos(xx / 7))], -1)
    x = x * (1 + 0.2 * rng.standard_normal(x.shape))
    x[5:10, 5:10] = 0.0
    x[12, 12] = -0.01
    return x.astype(np.float32)


_CAM = np.array([[1.6, -0.5, -0.1], [-0.2, 1.4, -0.2], [0.0, -0.4, 1.4]], np.float32)
FUSED_RECIPES = {
    "default": Recipe(),
    "authentic": preset("authentic"),
    "vibrant": preset("vibrant"),
    "bw-natural": Recipe().with_(look={"style": "bw-natural"}),
    "bw-hc-vibrant": preset("vibrant").with_(look={"style": "bw-hc", "style_strength": 0.7}),
    "natural-p3": Recipe().with_(look={"style": "natural"}, output={"space": "p3"}),
    "vivid-rec2020": preset("authentic").with_(look={"style": "vivid"},
                                               output={"space": "rec2020"}),
    "prophoto-threshold": Recipe().with_(output={"space": "prophoto"},
                                         sharpen={"threshold": 0.01, "radius": 1.6}),
    "no-sharpen": Recipe().with_(sharpen={"amount": 0.0}),
    "lifted-black": Recipe().with_(tone={"black": -0.03}),  # (authentic: a positive one)
}


@pytest.mark.parametrize("name", list(FUSED_RECIPES))
def test_fused_display_matches_reference_chain(name):
    from oneinch.looks import _fused
    from oneinch.looks.tone import local_setup

    r = FUSED_RECIPES[name]
    assert _fused.supports(r)
    x = _scene()
    space = r.output.space
    # camera RGB in, colour matrix and exposure gain in the fused pass
    ref = _fused.reference_chain(x, r, local_setup(x @ _CAM.T * 1.3, r.tone, space),
                                 matrix=_CAM, gain=1.3)
    got = _fused.display_strip(x, r, local_setup(x, r.tone, space, matrix=_CAM, gain=1.3),
                               matrix=_CAM, gain=1.3)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert np.abs(got - ref).max() < 1e-4
    # already in the output space, no matrix; 8-bit codes as output.encode.quantize rounds
    ref = _fused.reference_chain(x, r)
    got = _fused.display_strip(x, r, out_dtype=np.uint8)
    codes = np.rint(ref.astype(np.float64) * 255)
    assert np.abs(got - codes).max() <= 1 and np.mean(got == codes) > 0.999


def test_fused_strips_join_exactly_like_the_whole_image():
    """develop_strips' use: strips with margins, whole-image local grids, in place."""
    from oneinch.isp import tiles
    from oneinch.looks import _fused
    from oneinch.looks.tone import local_setup

    r = preset("vibrant")
    x = _scene(150, 90, seed=4)
    local = local_setup(x, r.tone)
    ref = _fused.reference_chain(x, r, local)
    h, margin = x.shape[0], 6

    def display(s, row):
        a = 0 if row == 0 else row + margin  # the strip's own first row (map_rows)
        return _fused.display_strip(s, r, local, row, h, out=s, keep=(a - row, a - row + 32))

    buf = x.copy()  # in place, as develop_strips (map_rows then copies each strip's input)
    got = tiles.map_rows(buf, display, out=buf, margin=margin, rows=32, workers=2)
    assert np.abs(got - ref).max() < 1e-4
    whole = _fused.display_strip(x, r, local, out_dtype=np.uint16, threads=3)
    assert np.abs(whole / 65535.0 - ref).max() < 1e-4


def test_fused_covers_and_refuses():
    from oneinch.looks import _fused

    assert not _fused.supports(Recipe().with_(look={"grain": 0.3}))
    assert not _fused.supports(Recipe().with_(look={"lut": "x.cube"}))
    assert not _fused.supports(Recipe().with_(tone={"curve": "linear"}))
    with pytest.raises(ValueError):
        _fused.display_strip(_scene(16, 16), Recipe().with_(look={"grain": 0.3}))
    with pytest.raises(OptionError):
        _fused.display_strip(_scene(16, 16), Recipe().with_(look={"saturation": 5.0}))
    x = _scene(16, 16)
    before = x.copy()
    _fused.display_strip(x, Recipe())
    assert np.array_equal(x, before)  # input not mutated without out=
    x[3, 4, 1], x[5, 5, 0], x[6, 6] = np.nan, np.inf, 1e30
    got = _fused.display_strip(x, Recipe())  # garbage in: still encoded values in [0, 1]
    assert np.isfinite(got).all() and got.min() >= 0 and got.max() <= 1


# ----------------------------------------------------------------------------- exported looks

SAMPLE = (Path(__file__).resolve().parents[2]
          / "shared/data/dng/decodable/lg_g4_h815_linearraw_lossy_1mp.dng")


def _enc8_error(a_lin, b_lin):
    """Per-pixel max channel difference in 8-bit sRGB code values of two display-linear images."""
    from oneinch.isp.spaces import encode

    a = np.round(encode(np.asarray(a_lin, np.float32), "srgb") * 255)
    b = np.round(encode(np.asarray(b_lin, np.float32), "srgb") * 255)
    return np.abs(a - b).max(axis=-1)


def test_inverse_tone_map_with_path_to_white_round_trips():
    """inverse_tone_map(..., path_to_white=True) inverts the whole global forward map (curve and
    blend to white) wherever it is invertible: scenes from -6 to +0.9 EV over white_ev (the
    blend is complete at +1 EV) go through tone_map, the inverse and tone_map again unchanged."""
    from oneinch.looks.tone import inverse_tone_map, tone_map

    rng = np.random.default_rng(11)
    for name in ("neutral", "authentic", "vibrant"):
        t = preset(name).tone.__class__(**{**preset(name).tone.__dict__, "local": 0.0,
                                           "detail": 0.0})
        n = 0.18 * 2.0 ** rng.uniform(-6, t.white_ev + 0.9, (64, 64, 1))
        scene = (n * rng.uniform(0, 1, (64, 64, 3))).astype(np.float32)
        scene[..., 0] = n[..., 0]  # red is the norm
        d = tone_map(scene, t)
        back = tone_map(inverse_tone_map(d, t, path_to_white=True), t)
        assert np.abs(back - d).max() < 2e-3, name
        assert (_enc8_error(back, d) <= 1).all(), name


def test_exported_neutral_lut_is_the_identity(tmp_path):
    """`export_lut('neutral')` is the identity over the whole cube, including saturated colours
    near white that the neutral curve's path to white cannot produce (before: the path to white
    was applied a second time, [0.9, 0.05, 0.05] -> [0.9, 0.15, 0.15])."""
    from oneinch.looks.looks import export_lut
    from oneinch.looks.lut import apply_lut, load_lut

    export_lut("neutral", tmp_path / "n.cube")
    lut = load_lut(tmp_path / "n.cube")
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (100, 100, 3)).astype(np.float32)
    x[0, :4] = [[0.9, 0.05, 0.05], [1.0, 0.0, 0.0], [0.97, 0.9, 0.2], [1.0, 1.0, 1.0]]
    y = apply_lut(x, lut)
    assert np.abs(y[0, 0] - [0.9, 0.05, 0.05]).max() < 2e-3
    assert _enc8_error(y, x).max() <= 1


def test_exported_preset_luts_reproduce_the_preset_develop(tmp_path):
    """The exported LUT of a preset applied to the neutral develop of the sample DNG (LG G4,
    600x338) against that preset's own develop, global parts only (local/detail 0, sharpen 0
    for both). Errors in 8-bit sRGB code values, measured when written:

    ===================  ====================  ====================  ====================
    LUT applied          before the fix        33-point LUT          65-point LUT
    ===================  ====================  ====================  ====================
    neutral              max 24, p99 9         max 1, p99 0          -
    authentic            max 46, p99 17        max 23, p99 8         max 13, p99 1
    vibrant              max 37, p99 13        max 12, p99 4         max 6, p99 1
    ===================  ====================  ====================  ====================

    The look function itself (no LUT) matches the develop to max 1. What is left is the LUT's
    interpolation in its last cell: the neutral shoulder puts scene values from about white_ev
    to its clip in display 0.93..1 (sRGB 247..255), one cell of a 33-point table; the 1.7 % of
    pixels there hold the maxima. Below sRGB 247: max 3 (33-point), 2 (65-point)."""
    from oneinch import open_raw
    from oneinch.develop import develop_scene, render
    from oneinch.isp.spaces import decode
    from oneinch.looks.looks import export_lut, look_function
    from oneinch.looks.lut import apply_lut, load_lut

    if not SAMPLE.exists():
        pytest.skip(f"sample DNG not found at {SAMPLE}")

    def global_only(name):
        return preset(name).with_(tone={"local": 0.0, "detail": 0.0}, sharpen={"amount": 0.0})

    raw = open_raw(SAMPLE)
    scene = develop_scene(raw, global_only("neutral"))
    neutral = decode(render(scene, global_only("neutral")).rgb, "srgb")
    below = neutral.max(axis=-1) < decode(np.float32(247 / 255), "srgb")
    export_lut("neutral", tmp_path / "neutral.cube")
    assert _enc8_error(apply_lut(neutral, load_lut(tmp_path / "neutral.cube")), neutral).max() <= 1
    for name in ("authentic", "vibrant"):
        ref = decode(render(scene, global_only(name)).rgb, "srgb")
        assert _enc8_error(look_function(name)(neutral), ref).max() <= 1, name
        for size, max_all, p99, max_below in ((33, 30, 10, 4), (65, 16, 2, 3)):
            export_lut(name, tmp_path / f"{name}.cube", size=size)
            e = _enc8_error(apply_lut(neutral, load_lut(tmp_path / f"{name}.cube")), ref)
            assert e.max() <= max_all and np.percentile(e, 99) <= p99, (name, size)
            assert e[below].max() <= max_below and e.mean() < 0.5, (name, size)


def test_authentic_keeps_shadow_detail_darker_than_neutral(shared):
    """Authentic's black point (0.006 display-linear, sRGB code 18) crushed everything ~3 stops
    below grey to black: scene 0.02 gave code 2, and 25.6 % of the GoPro HERO7's frame came
    out at or below code 6 (neutral 4.3 %, rawpy 6.4 %). Its shadows stay deeper than
    neutral's, with detail."""
    from oneinch import open_raw
    from oneinch.develop import develop
    from oneinch.isp import spaces
    from oneinch.looks.looks import preset
    from oneinch.looks.tone import curve_np, curve_params

    scene = np.array([0.005, 0.01, 0.02, 0.045, 0.09])
    code = {}
    for name in ("neutral", "authentic"):
        y, _ = curve_np(scene, curve_params(preset(name).tone))
        code[name] = spaces.encode(np.clip(y, 0, 1).astype(np.float32),
                                   spaces.SPACES["srgb"].transfer) * 255
    assert (code["authentic"] < code["neutral"]).all()  # deeper shadows...
    assert code["authentic"][1] >= 5 and code["authentic"][2] >= 12  # ... not black at -3..-4 EV
    raw = open_raw(shared / "dng" / "decodable" / "gopro_hero7_GOPR9231_gpr2dng.dng")
    small = Recipe().with_(output={"size": 600})
    dark = {name: float((np.asarray(develop(raw, preset(name, small)).rgb).max(-1) <= 6 / 255)
                        .mean()) for name in ("neutral", "authentic")}
    assert dark["neutral"] < dark["authentic"] < 2.5 * dark["neutral"], dark
