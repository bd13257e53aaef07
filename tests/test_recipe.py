from __future__ import annotations

from pathlib import Path

import pytest

from oneinch.errors import InputError, OptionError
from oneinch.recipe import Recipe, sidecar_path


def test_default_round_trips_through_toml(tmp_path):
    r = Recipe().with_(
        output={"size": 800, "space": "p3"},
        white_balance={"mode": "kelvin", "kelvin": 5200.0, "tint": 5.0},
    )
    p = tmp_path / "r.toml"
    r.save(p)
    assert Recipe.load(p) == r
    assert Recipe.load(p).hash() == r.hash()


def test_unknown_section_and_setting_are_clear_errors(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[outptu]\nsize = 3\n")
    with pytest.raises(InputError, match=r"bad.toml: unknown recipe section \[outptu\]"):
        Recipe.load(p)
    p.write_text("[output]\nsiz = 3\n")
    with pytest.raises(InputError, match=r"unknown setting output\.siz"):
        Recipe.load(p)
    p.write_text("[output]\nformat = 'gif'\n")
    with pytest.raises(InputError, match="unknown format 'gif'"):
        Recipe.load(p)
    p.write_text("not = [toml")
    with pytest.raises(InputError, match="not a valid TOML"):
        Recipe.load(p)


def test_with_rejects_unknown_fields():
    with pytest.raises(OptionError):
        Recipe().with_(output={"colour": 1})
    with pytest.raises(OptionError):
        Recipe().with_(nothing={"a": 1})


def test_sidecar_name():
    assert sidecar_path("/a/b/IMG_1.dng").name == "IMG_1.dng.oneinch.toml"


def test_demosaic_method_and_quad_mode_are_checked_up_front():
    """An unknown demosaic method was only noticed when a full-size Bayer raw reached the
    demosaic: with --size (binned) or on a LinearRaw DNG it was ignored without a word."""
    with pytest.raises(OptionError, match="unknown demosaic method 'magic'"):
        Recipe().with_(demosaic={"method": "magic"})
    with pytest.raises(OptionError, match="unknown quad_bayer mode 'fold'"):
        Recipe().with_(demosaic={"quad_bayer": "fold"})
    for name in ("auto", "rcd", "iri-cnn"):
        assert Recipe().with_(demosaic={"method": name}).demosaic.method == name


BAD_SETTINGS = [  # each was accepted by the recipe; what followed is in the comment
    ("output", "subsampling", "4:1:1"),  # streamed JPEG: internal error (KeyError)
    ("sharpen", "radius", 1e9),  # internal error (OpenCV's Gaussian kernel)
    ("sharpen", "radius", -2.0),  # silently radius 0.3
    ("sharpen", "amount", float("nan")),  # an all-NaN image, written
    ("sharpen", "threshold", -1.0),
    ("exposure", "ev", float("nan")),  # a black JPEG, written
    ("exposure", "ev", 1e9),  # a white one
    ("white_balance", "tint", float("nan")),
    ("white_balance", "tint", 1000.0),
    ("lens", "mode", "on"),  # silently 'auto'
    ("denoise", "strength", 7.0),  # silently ignored unless mode 'manual'
    ("tone", "shadows", 5.0),
    ("tone", "highlights", float("inf")),
    ("tone", "detail", float("nan")),
]


@pytest.mark.parametrize(("section", "key", "value"), BAD_SETTINGS)
def test_settings_out_of_range_are_rejected_when_the_recipe_is_made(section, key, value):
    with pytest.raises(OptionError, match=f"{section}.{key}|{key}"):
        Recipe().with_(**{section: {key: value}})


def test_a_recipe_file_with_a_bad_value_names_the_file(tmp_path):
    p = tmp_path / "shot.toml"
    p.write_text("[sharpen]\nradius = 1e9\n")
    with pytest.raises(InputError, match=r"shot.toml: sharpen.radius 1000000000.0 is outside"):
        Recipe.load(p)


def test_the_presets_and_edges_of_the_ranges_are_accepted():
    from oneinch.looks.looks import PRESETS, preset

    for name in PRESETS:
        preset(name)
    Recipe().with_(exposure={"ev": -16.0}, sharpen={"amount": 0.0, "radius": 0.0},
                   tone={"shadows": -2.0, "highlights": 2.0, "detail": 2.0},
                   white_balance={"mode": "kelvin", "kelvin": 5000.0, "tint": -150.0},
                   denoise={"mode": "manual", "strength": 1.0}, lens={"mode": "off"},
                   output={"subsampling": "4:2:0"})


@pytest.mark.parametrize(("text", "message"), [
    ('[tone]\ngrey = "x"\n', "tone.grey must be a number"),  # was: ValueError in looks.tone
    ("[tone]\nblack = {a = 1}\n", "tone.black must be a number"),  # TypeError there
    ("[profile]\ndcp = 3.0\n", "profile.dcp must be text"),  # TypeError in isp.dcp
    ("[exposure]\nauto = 1\n", "exposure.auto must be true or false"),
    ("[output]\nquality = 9.5\n", "output.quality must be a whole number"),
    ("[output]\nsize = true\n", "output.size must be a whole number"),
    ('[frame]\noverrides = {lens = 28}\n', "frame.overrides must be a table of text"),
])
def test_a_recipe_file_value_of_the_wrong_type_is_a_clear_error(tmp_path, text, message):
    """Found by the recipe fuzz target once it developed what it loaded: values of the wrong
    TOML type reached the stages and failed there as internal errors."""
    p = tmp_path / "typed.toml"
    p.write_text(text)
    with pytest.raises(InputError, match=f"typed.toml: {message}"):
        Recipe.load(p)


def test_a_recipe_file_takes_integers_for_numbers(tmp_path):
    p = tmp_path / "ints.toml"
    p.write_text("[exposure]\nev = 1\n[white_balance]\nmode = \"kelvin\"\nkelvin = 5000\n")
    r = Recipe.load(p)
    assert r.exposure.ev == 1.0 and isinstance(r.exposure.ev, float)
    assert r.white_balance.kelvin == 5000.0


def test_the_recipe_checks_the_names_the_stages_know():
    """The recipe checks names without importing the stages; they share its tuples."""
    from oneinch.isp import demosaic, denoise
    from oneinch.output.encode import SUBSAMPLING
    from oneinch.recipe import DEMOSAIC_METHODS, DENOISE_MODES, SUBSAMPLINGS

    assert demosaic.METHODS == DEMOSAIC_METHODS and denoise.MODES == DENOISE_MODES
    assert set(SUBSAMPLING) == set(SUBSAMPLINGS)


@pytest.mark.parametrize("text", [
    "a\nb", "tab\there", "cr\rlf", "bell\x07", "nul\x00", "esc\x1b[0m", "del\x7f", "bs\b ff\f",
    'quote " and back\\slash', "unicode: Summicron 28 ƒ/1.9 — 東京", "東京", "objectif²", "",
])
def test_strings_with_control_characters_round_trip_through_toml(tmp_path, text):
    """save() wrote control characters raw into TOML basic strings, which load() refused
    ("Illegal character"): TOML 1.0 wants them escaped."""
    import tomllib

    r = Recipe().with_(frame={"overrides": {"lens": text, text: "key"}})
    p = tmp_path / "r.toml"
    r.save(p)
    assert Recipe.load(p) == r
    assert tomllib.loads(r.to_toml())["frame"]["overrides"] == {"lens": text, text: "key"}


def test_equal_recipes_hash_equal_and_a_toml_round_trip_keeps_the_hash(tmp_path):
    """The hash is a cache key and the batch journal's: it followed repr (1 vs 1.0, -0.0 vs
    0.0) and the order a dict was built in, so equal recipes hashed differently and a recipe
    saved and loaded again was taken for another one."""
    pairs = [
        (Recipe().with_(exposure={"ev": 1}), Recipe().with_(exposure={"ev": 1.0})),
        (Recipe().with_(tone={"black": -0.0}), Recipe().with_(tone={"black": 0.0})),
        (Recipe().with_(white_balance={"mode": "kelvin", "kelvin": 5000}),
         Recipe().with_(white_balance={"mode": "kelvin", "kelvin": 5000.0})),
        (Recipe().with_(frame={"overrides": {"a": "1", "b": "2"}}),
         Recipe().with_(frame={"overrides": {"b": "2", "a": "1"}})),
    ]
    for a, b in pairs:
        assert a == b and a.hash() == b.hash() and a.to_toml() == b.to_toml()
        p = tmp_path / "a.toml"
        a.save(p)
        loaded = Recipe.load(p)
        assert loaded == a and loaded.hash() == a.hash()
    assert Recipe().with_(exposure={"ev": 1}).hash() != Recipe().hash()


def test_values_take_the_type_their_field_declares():
    r = Recipe().with_(exposure={"ev": 1}, white_balance={"mode": "kelvin", "kelvin": 5000})
    assert type(r.exposure.ev) is float and type(r.white_balance.kelvin) is float
    o = Recipe().with_(frame={"overrides": {"b": "2", "a": "1"}}).frame.overrides
    assert list(o) == ["a", "b"]


def test_numpy_scalars_become_plain_python_values(tmp_path):
    """np.float64 was kept as is (save wrote 'ev = np.float64(0.5)', which is no TOML);
    np.float32 and np.int64 failed in to_toml with a TypeError."""
    np = pytest.importorskip("numpy")
    given = Recipe().with_(exposure={"ev": np.float64(0.5), "baseline": np.bool_(False)},
                           tone={"contrast": np.float32(1.25)},
                           output={"quality": np.int64(80), "size": np.int32(640),
                                   "format": np.str_("png")})
    plain = Recipe().with_(exposure={"ev": 0.5, "baseline": False}, tone={"contrast": 1.25},
                           output={"quality": 80, "size": 640, "format": "png"})
    assert given == plain and given.hash() == plain.hash()
    for sec, key, kind in [("exposure", "ev", float), ("exposure", "baseline", bool),
                           ("tone", "contrast", float), ("output", "quality", int),
                           ("output", "size", int), ("output", "format", str)]:
        assert type(getattr(getattr(given, sec), key)) is kind
    p = tmp_path / "np.toml"
    given.save(p)
    assert Recipe.load(p) == plain


WRONG_TYPES = [  # each was a TypeError (an internal error in the command) or silently taken
    ("output", "quality", "high", "output.quality must be a whole number"),
    ("output", "quality", True, "output.quality must be a whole number"),  # was quality 1
    ("output", "quality", 92.5, "output.quality must be a whole number"),  # was truncated
    ("output", "size", 300.5, "output.size must be a whole number"),
    ("output", "size", float("inf"), "output.size must be a whole number"),
    ("output", "format", 5, "output.format must be text"),
    ("tone", "contrast", "1.2", "tone.contrast must be a number"),
    ("tone", "contrast", True, "tone.contrast must be a number"),
    ("tone", "contrast", None, "tone.contrast must be a number"),
    ("white_balance", "kelvin", "5000", "white_balance.kelvin must be a number"),
    ("opcodes", "apply", "no", "opcodes.apply must be true or false"),  # was taken as true
    ("opcodes", "apply", 0, "opcodes.apply must be true or false"),
    ("exposure", "auto", "yes", "exposure.auto must be true or false"),
    ("look", "lut", 3, "look.lut must be text"),
    ("profile", "dcp", "\ud800", "profile.dcp must be text"),  # no UTF-8 for it in a file
    ("frame", "overrides", {"lens": 28}, "frame.overrides must be a table of text"),
    ("frame", "overrides", "lens=28", "frame.overrides must be a table of text"),
]


@pytest.mark.parametrize(("section", "key", "value", "message"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_an_option_error_naming_the_field(section, key, value,
                                                                         message):
    import re

    with pytest.raises(OptionError, match=re.escape(message)):
        Recipe().with_(**{section: {key: value}})
    sec_cls = type(getattr(Recipe(), section))
    with pytest.raises(OptionError, match=re.escape(message)):
        sec_cls(**{key: value})


def test_a_section_that_is_not_a_table_is_an_option_error():
    with pytest.raises(OptionError, match=r"recipe section output .*not 5"):
        Recipe().with_(output=5)
    with pytest.raises(OptionError, match=r"recipe section tone .*Output"):
        Recipe(tone=Recipe().output)


def test_whole_floats_are_taken_for_whole_numbers():
    r = Recipe().with_(output={"quality": 80.0, "size": 640.0})
    assert r == Recipe().with_(output={"quality": 80, "size": 640})
    assert type(r.output.quality) is int and type(r.output.size) is int


DEVELOP_TIME_RANGES = [  # each was only checked when a develop reached the stage, if at all
    ("tone", "white_ev", 0.2, "tone.white_ev 0.2 is outside 0.5..10"),  # raw-dependent before
    ("tone", "white_ev", -1, "tone.white_ev -1"),  # reported as 0.0 (after the headroom)
    ("tone", "white_ev", 10.5, "tone.white_ev 10.5 is outside 0.5..10"),
    ("tone", "grey", 0.01, "tone.grey 0.01 is outside 0.02..0.6"),
    ("tone", "grey", 0.7, "tone.grey 0.7 is outside 0.02..0.6"),
    ("tone", "contrast", 0.1, "tone.contrast 0.1 is outside 0.2..3"),
    ("tone", "contrast", float("nan"), "tone.contrast nan is outside 0.2..3"),
    ("tone", "black", 0.3, "tone.black 0.3 is outside -0.2..0.2"),
    ("tone", "local", -0.1, "tone.local -0.1 is outside 0..1"),
    ("tone", "local", 1.5, "tone.local 1.5 is outside 0..1"),
    ("tone", "curve", "s-curve", "unknown tone curve 's-curve'"),
    ("look", "saturation", -0.5, "look.saturation -0.5 is outside 0..3"),
    ("look", "saturation", 3.5, "look.saturation 3.5 is outside 0..3"),
    ("look", "vibrance", -2, "look.vibrance -2"),
    ("look", "vibrance", 2.5, "look.vibrance 2.5 is outside -1..2"),
    ("look", "grain", -1, "look.grain -1"),  # was accepted (no grain)
    ("look", "grain", 1.5, "look.grain 1.5 is outside 0..1"),
    ("look", "style_strength", 1.5, "look.style_strength 1.5 is outside 0..1"),
    ("look", "lut_strength", -0.5, "look.lut_strength -0.5 is outside 0..1"),
    ("look", "lut_space", "xyz", "unknown look.lut_space 'xyz'"),
    ("look", "lut_space", "srgb-log", "unknown look.lut_space 'srgb-log'"),
    ("look", "lut_layout", "grid", "unknown look.lut_layout 'grid'"),
    ("look", "name", "bogus", "unknown look 'bogus'"),  # was silently ignored
    ("highlights", "mode", "magic", "unknown highlights.mode 'magic'"),
]


@pytest.mark.parametrize(("section", "key", "value", "message"), DEVELOP_TIME_RANGES)
def test_tone_and_look_values_are_checked_when_the_recipe_is_made(section, key, value, message):
    import re

    with pytest.raises(OptionError, match=re.escape(message)):
        Recipe().with_(**{section: {key: value}})


def test_a_recipe_file_with_a_bad_tone_value_names_the_file_and_the_value(tmp_path):
    p = tmp_path / "look.toml"
    p.write_text("[tone]\nwhite_ev = 0.2\n")
    with pytest.raises(InputError, match=r"look.toml: tone.white_ev 0.2 is outside 0.5..10"):
        Recipe.load(p)
    p.write_text('[look]\nname = "bogus"\n')
    with pytest.raises(InputError, match=r"look.toml: unknown look 'bogus'"):
        Recipe.load(p)


def test_the_edges_of_the_tone_and_look_ranges_are_accepted():
    for tone in ({"white_ev": 0.5, "grey": 0.02, "contrast": 0.2, "black": -0.2, "local": 0.0},
                 {"white_ev": 10.0, "grey": 0.6, "contrast": 3.0, "black": 0.2, "local": 1.0},
                 {"curve": "linear"}, {"curve": "none"}):
        Recipe().with_(tone=tone)
    for look in ({"saturation": 0.0, "vibrance": -1.0, "grain": 0.0, "lut_space": "p3"},
                 {"saturation": 3.0, "vibrance": 2.0, "grain": 1.0, "lut_space": "srgb-linear",
                  "lut_layout": "tiles", "style_strength": 0.0, "lut_strength": 1.0}):
        Recipe().with_(look=look)
    Recipe().with_(highlights={"mode": "clip"})


def test_the_recipe_checks_the_tone_and_look_names_the_stages_know():
    from oneinch.isp import highlights
    from oneinch.isp.spaces import SPACES as STAGE_SPACES
    from oneinch.looks import lut, tone
    from oneinch.looks.looks import PRESETS
    from oneinch.recipe import HIGHLIGHT_MODES, LOOK_NAMES, LUT_LAYOUTS, SPACES, TONE_CURVES

    assert tone.CURVES == TONE_CURVES and highlights.MODES == HIGHLIGHT_MODES
    assert lut.LAYOUTS == LUT_LAYOUTS and tuple(PRESETS) == LOOK_NAMES
    assert tuple(STAGE_SPACES) == SPACES
    for name in LOOK_NAMES:
        assert Recipe().with_(look={"name": name}).look.name == name


def test_the_headroom_never_moves_white_beyond_its_range():
    """develop's headroom white point (BaselineExposure +1 here) moved tone.white_ev up to
    white_ev + 1, past the 10 stops the curve allows: a valid recipe then failed."""
    from pathlib import Path

    import oneinch
    from oneinch.develop import _headroom_white

    raw = oneinch.open_raw(Path(__file__).parents[1] / "samples" / "oneinch_demo.dng")
    assert raw.color.baseline_exposure == 1
    moved = _headroom_white(raw, Recipe().with_(exposure={"ev": 2}))
    assert moved.tone.white_ev > Recipe().tone.white_ev  # the sample does move it
    r = _headroom_white(raw, Recipe().with_(tone={"white_ev": 9.8}, exposure={"ev": 12}))
    assert 9.8 <= r.tone.white_ev <= 10


def _cube(path, invert: bool = False) -> None:
    """A 2-point .cube: identity, or the colour inversion."""
    rows = [(r, g, b) for b in (0, 1) for g in (0, 1) for r in (0, 1)]
    path.write_text("LUT_3D_SIZE 2\n" + "".join(
        " ".join(str(1 - v if invert else v) for v in row) + "\n" for row in rows))


def test_relative_paths_in_a_recipe_file_are_relative_to_its_folder(tmp_path, monkeypatch):
    """A sidecar's `[look] lut = "v.cube"` was looked up in the current folder, so the same
    sidecar worked from inside its folder and not from its parent."""
    sc = tmp_path / "sc"
    sc.mkdir()
    for name in ("v.cube", "cam.dcp", "mine.toml"):
        (sc / name).write_text("")
    elsewhere = (tmp_path / "abs.cube").resolve()
    side = sc / "c.dng.oneinch.toml"
    side.write_text('[look]\nlut = "v.cube"\n[profile]\ndcp = "cam.dcp"\n'
                    '[frame]\nlayout = "classic"\ntemplate = "mine.toml"\n')
    for cwd in (tmp_path, sc, tmp_path.parent):
        monkeypatch.chdir(cwd)
        r = Recipe.load(side)
        assert Path(r.look.lut).resolve() == (sc / "v.cube").resolve()
        assert Path(r.profile.dcp).resolve() == (sc / "cam.dcp").resolve()
        assert Path(r.frame.template).resolve() == (sc / "mine.toml").resolve()
        assert r.frame.layout == "classic"  # a name, not a file
    monkeypatch.chdir(tmp_path)
    assert Recipe.load("sc/c.dng.oneinch.toml").look.lut == str(Path("sc", "v.cube"))
    side.write_text(f'[look]\nlut = "{elsewhere.as_posix()}"\n[profile]\ndcp = "matrix"\n')
    r = Recipe.load("sc/c.dng.oneinch.toml")
    assert r.look.lut == elsewhere.as_posix() and r.profile.dcp == "matrix"


def test_paths_given_through_the_api_stay_relative_to_the_current_folder(tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Recipe().with_(look={"lut": "v.cube"}).look.lut == "v.cube"


def test_save_writes_paths_relative_to_the_file_and_load_reads_them_back(tmp_path,
                                                                         monkeypatch):
    import tomllib

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sc").mkdir()
    absolute = str((tmp_path / "luts" / "a.cube").resolve())
    cases = [("sc/v.cube", "v.cube"), ("luts/o.cube", "../luts/o.cube"), (absolute, absolute)]
    for given, written in cases:
        r = Recipe().with_(look={"lut": given}, frame={"template": given.replace("cube", "toml")})
        r.save("sc/r.toml")
        on_disk = tomllib.loads(Path("sc/r.toml").read_text())
        assert Path(on_disk["look"]["lut"]) == Path(written)
        assert Path(on_disk["frame"]["template"]) == Path(written.replace("cube", "toml"))
        assert Recipe.load("sc/r.toml") == r
        r.save("here.toml")  # a file in the current folder: the paths as given
        assert tomllib.loads(Path("here.toml").read_text())["look"]["lut"] == given
        assert Recipe.load("here.toml") == r


def test_a_sidecar_lut_is_found_whatever_folder_the_command_runs_in(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    sc = tmp_path / "sc"
    sc.mkdir()
    shutil.copy(Path(__file__).parents[1] / "samples" / "oneinch_demo.dng", sc / "c.dng")
    _cube(sc / "v.cube", invert=True)
    (sc / "c.dng.oneinch.toml").write_text('[look]\nlut = "v.cube"\n')
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    outputs = []
    for cwd, src in ((tmp_path, "sc/c.dng"), (sc, "c.dng")):
        out = tmp_path / f"o{len(outputs)}.png"
        done = subprocess.run([sys.executable, "-m", "oneinch", "develop", src, "-o", str(out),
                               "--size", "64"], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        with Image.open(out) as im:
            outputs.append(np.asarray(im))
    assert np.array_equal(outputs[0], outputs[1])
