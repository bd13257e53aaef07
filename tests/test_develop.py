"""The spine end to end: synthetic DNG round trips, real DNGs, stages, orientation."""

from __future__ import annotations

import numpy as np
import pytest
import rawpy

from conftest import DECODABLE, KODAK, load_rgb8
from oneinch.develop import STAGES, develop
from oneinch.isp import spaces
from oneinch.raw import open_raw
from oneinch.recipe import Recipe
from oneinch.synthetic import make_dng, psnr, unprocess

# plain linear -> sRGB: no tone curve, no look, no sharpening, no denoising
PLAIN = Recipe().with_(tone={"curve": "linear"}, sharpen={"amount": 0.0}, denoise={"mode": "off"})


def _rawpy_ahd_srgb(path) -> np.ndarray:
    with rawpy.imread(str(path)) as r:
        out = r.postprocess(
            demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
            use_camera_wb=True,
            output_color=rawpy.ColorSpace.sRGB,
            gamma=(1, 1),
            no_auto_bright=True,
            output_bps=16,
            bright=2.0,
            highlight_mode=rawpy.HighlightMode.Clip,
            user_flip=0,
        )
    lin = out.astype(np.float32) / 65535.0
    return spaces.encode(lin, "srgb")


def test_kodak_round_trip_beats_rawpy_ahd(tmp_path):
    """Kodak-24 unprocessed (no noise) into DNGs and developed back: CPSNR vs the source."""
    ours, theirs = [], []
    for p in sorted(KODAK.glob("kodim*.png")):
        src = load_rgb8(p)
        dng = tmp_path / (p.stem + ".dng")
        make_dng(dng, src)
        photo = develop(open_raw(dng), PLAIN)
        ref = src.astype(np.float32) / 255.0
        ours.append(psnr(photo.rgb, ref, border=10))
        theirs.append(psnr(_rawpy_ahd_srgb(dng), ref, border=10))
    mo, mt = float(np.mean(ours)), float(np.mean(theirs))
    print(
        f"\nKodak-24 round trip CPSNR (sRGB-encoded, 10 px border): "
        f"oneinch {mo:.2f} dB, rawpy AHD {mt:.2f} dB"
    )
    assert mo >= mt
    assert mo > 35.0


@pytest.mark.parametrize("bayer", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_every_bayer_phase_and_orientation(tmp_path, bayer):
    src = load_rgb8(KODAK / "kodim19.png")[:240, :320]
    raw, _ = unprocess(src, pattern=bayer, orientation=6)
    photo = develop(raw, PLAIN)
    assert photo.rgb.shape == (320, 240, 3)  # EXIF 6 rotated to upright
    upright = np.rot90(src, -1).astype(np.float32) / 255.0
    assert psnr(photo.rgb, upright, border=6) > 33.0
    assert photo.shot.orientation == 1


def test_white_balance_and_colour_recover_a_neutral_grey():
    grey = np.full((64, 64, 3), 118, np.uint8)
    raw, _ = unprocess(grey, bits=14)
    photo = develop(raw, PLAIN)
    px = photo.rgb[8:-8, 8:-8].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(px, 118 / 255, atol=1.0 / 255)


def test_until_returns_every_stage():
    src = load_rgb8(KODAK / "kodim05.png")[:64, :96]
    raw, truth = unprocess(src)
    for stage in STAGES:
        x = develop(raw, PLAIN, until=stage)
        assert isinstance(x, np.ndarray) and x.dtype == np.float32, stage
        assert np.isfinite(x).all(), stage
    lin = develop(raw, PLAIN, until="exposure")
    assert psnr(lin[4:-4, 4:-4], truth.linear_srgb[4:-4, 4:-4]) > 30


def test_baseline_exposure_is_honoured():
    src = np.full((32, 32, 3), 100, np.uint8)
    a, _ = unprocess(src, headroom_ev=1.0)
    b, _ = unprocess(src, headroom_ev=2.0)
    la = develop(a, PLAIN, until="exposure")[4:-4, 4:-4].mean()
    lb = develop(b, PLAIN, until="exposure")[4:-4, 4:-4].mean()
    assert abs(la / lb - 1) < 0.01


def _mean_lab(rgb8: np.ndarray) -> np.ndarray:
    import colour

    lin = spaces.decode(rgb8.reshape(-1, 3).astype(np.float32) / 255.0, "srgb").mean(0)
    xyz = colour.RGB_to_XYZ(
        lin,
        colour.RGB_COLOURSPACES["sRGB"],
        illuminant=colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"],
    )
    return colour.XYZ_to_Lab(
        xyz, colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]
    )


@pytest.mark.parametrize("path", sorted(DECODABLE.glob("*.dng")), ids=lambda p: p.stem)
def test_real_dngs_develop_with_defaults(path):
    import colour

    from oneinch.raw import embedded_preview

    raw = open_raw(path)
    photo = develop(raw, Recipe().with_(output={"size": 1200}))
    rgb = photo.rgb
    assert np.isfinite(rgb).all()
    assert 0.05 < rgb.mean() < 0.95, "degenerate (black or white) output"
    assert rgb.std() > 0.02, "flat output"
    # default crop then orientation: the aspect ratio the file declares
    if raw.default_crop is not None:
        ch, cw = raw.default_crop[2], raw.default_crop[3]
    else:
        ch, cw = raw.height, raw.width
    if raw.shot.orientation in (5, 6, 7, 8):
        ch, cw = cw, ch
    assert abs(rgb.shape[1] / rgb.shape[0] - cw / ch) < 0.02
    prev = embedded_preview(path)
    if prev is not None and prev.shape[0] > 32:
        ours = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
        de = float(colour.delta_E(_mean_lab(ours), _mean_lab(prev), method="CIE 2000"))
        print(f"\n{path.name}: mean-colour ΔE2000 vs embedded camera preview = {de:.2f}")
        assert de < 12.0


def test_embedded_hue_sat_map_is_applied():
    """A DNG profile HueSatMap that scales saturation to 0 must give a grey picture."""
    from dataclasses import replace

    from oneinch.synthetic import COLORCHECKER_SRGB8

    src = np.repeat(np.repeat(COLORCHECKER_SRGB8.reshape(4, 6, 3), 16, 0), 16, 1)
    raw, _ = unprocess(src)
    plain = develop(raw, PLAIN)
    dims = np.array([6.0, 2.0, 1.0])  # hue, sat, val divisions
    data = np.zeros((1, 6, 2, 3))
    data[..., 1] = 0.0  # saturation scale 0
    data[..., 2] = 1.0  # value scale 1
    grey_raw = replace(raw, tags={**raw.tags, "profile": {50937: dims, 50938: data.reshape(-1)}})
    grey = develop(grey_raw, PLAIN).rgb
    chroma = lambda a: np.abs(a - a.mean(axis=2, keepdims=True)).mean()  # noqa: E731
    assert chroma(plain.rgb) > 0.05
    assert chroma(grey) < 0.1 * chroma(plain.rgb)
    matrix_only = develop(grey_raw, PLAIN.with_(profile={"dcp": "matrix"})).rgb
    np.testing.assert_allclose(matrix_only, plain.rgb, atol=1e-6)


@pytest.mark.parametrize("tiled", [False, True])
def test_binned_preview_of_a_base_iso_raw_is_not_filtered(tiled, monkeypatch):
    """A preview binned 4x4 averages 16 samples a pixel: at base ISO its noise level (~0.010)
    is below ``AUTO_MIN_NOISE_BINNED``, where filtering measured worse than none, so 'auto'
    leaves it as it is (the same image as denoise off, and no denoise call). At ISO 1600
    the preview is filtered, at full chroma resolution (``binned``)."""
    from oneinch import develop as dv
    from oneinch.isp import denoise as dn
    from oneinch.synthetic import demo_scene

    monkeypatch.setattr(dv, "TILE_MIN_PIXELS", 100_000)
    calls = []
    real = dn.denoise

    def spying(*a, **k):
        calls.append(k.get("binned"))
        return real(*a, **k)

    monkeypatch.setattr(dn, "denoise", spying)
    r = Recipe().with_(output={"size": 192})
    off = r.with_(denoise={"mode": "off"})
    for iso, filtered in ((100, False), (1600, True)):
        raw, _ = unprocess(demo_scene(512, 768), linear_input=True, iso=iso, seed=1)
        calls.clear()
        got = develop(raw, r, tiled=tiled).rgb
        assert got.shape[:2] == (128, 192)
        assert np.array_equal(got, develop(raw, off, tiled=tiled).rgb) != filtered
        assert (calls and all(calls)) if filtered else not calls, calls


def test_public_develop_stays_the_function():
    """``oneinch.develop`` is the function however it is reached: the package's lazy attribute
    used to become the ``oneinch.develop`` module (the import system binds a submodule to its
    package's attribute), so the second ``oneinch.develop(raw)`` was ``'module' object is not
    callable``, and ``from oneinch import develop`` gave the module."""
    import subprocess
    import sys
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "samples" / "oneinch_demo.dng"
    code = f"""
import oneinch
raw = oneinch.open_raw({str(sample)!r})
r = oneinch.Recipe().with_(output={{"size": 96}})
a = oneinch.develop(raw, r)
b = oneinch.develop(raw, r)  # the second access
from oneinch import develop
c = develop(raw, r)
import oneinch.develop
d = oneinch.develop(raw, r)
import numpy as np
assert all(np.array_equal(np.asarray(x.rgb), np.asarray(a.rgb)) for x in (b, c, d))
print("ok", np.asarray(a.rgb).shape)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


def test_declared_headroom_moves_the_white_point(shared):
    """The Blackmagic Pocket 4K's DNG declares BaselineExposure +2.65 EV and records up to
    ~1.0 of white: with the default curve (white 2.5 stops over grey) 19 % of its output
    clipped. The white point now reaches the recorded highlights, at most by the
    BaselineExposure; the mid-tones stay; a raw whose range fits (the bundled sample,
    BaselineExposure +1) keeps the recipe's curve."""
    from pathlib import Path

    from oneinch.develop import _headroom_white

    raw = open_raw(shared / "dng" / "decodable" / "blackmagic_pocket4k_12bit_cfa.dng")
    base = raw.color.baseline_exposure
    r = _headroom_white(raw, Recipe())
    assert 4.0 < r.tone.white_ev <= 2.5 + base
    small = Recipe().with_(output={"size": 400})
    luma = np.array([0.2126, 0.7152, 0.0722], np.float32)
    new = np.asarray(develop(raw, small).rgb)
    # the same exposure given as the user's EV: the curve as it was
    old = np.asarray(develop(raw, small.with_(exposure={"baseline": False, "ev": base})).rgb)
    assert (old >= 0.999).any(-1).mean() > 0.15
    assert (new >= 0.999).any(-1).mean() < 0.01
    grass = slice(-new.shape[0] // 4, None)  # the bottom quarter: lawn, mid-tones
    assert abs(float(np.median(new[grass] @ luma)) - float(np.median(old[grass] @ luma))) < 0.05
    sample = open_raw(Path(__file__).resolve().parents[1] / "samples" / "oneinch_demo.dng")
    assert _headroom_white(sample, Recipe()) == Recipe()
    assert _headroom_white(raw, Recipe().with_(exposure={"baseline": False})) == \
        Recipe().with_(exposure={"baseline": False})


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 250_001])
def test_headroom_percentile_is_numpys(n):
    """The headroom's 99.9th percentile (a partial sort, not np.percentile's full one) is
    np.percentile's, linear interpolation included, at the ends too."""
    from oneinch.develop import _percentile

    v = np.random.default_rng(n).random(n).astype(np.float32)
    for q in (0.0, 50.0, 99.9, 100.0):
        assert _percentile(v, q) == pytest.approx(float(np.percentile(v, q)), rel=1e-6, abs=0)
