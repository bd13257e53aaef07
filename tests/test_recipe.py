from __future__ import annotations

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
