"""Ultra HDR (gain-map JPEG): container, metadata, and HDR reconstruction from the gain map.

Reconstruction measure: RMS over pixels and channels of log2((rec + 1/64) / (hdr + 1/64)), in
stops (uhdr.log_error_stops); "within 1 dB" means below 1 dB = 0.166 stops (20·log10(2) dB per
stop). 1/64 is the spec's offset, the level where 8-bit SDR has no precision left.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from conftest import DECODABLE, KODAK, load_rgb8
from oneinch.errors import InputError, OptionError
from oneinch.isp import spaces
from oneinch.output import uhdr
from oneinch.output.encode import write
from oneinch.output.icc import icc_profile
from oneinch.output.metadata import read_exif
from oneinch.photo import Photo
from oneinch.raw.image import ShotInfo
from oneinch.recipe import Output, Recipe

ONE_DB_STOPS = uhdr.STOPS_PER_DB  # 0.166
SHOT = ShotInfo(make="Xiaomi", model="2203121C", iso=50, f_number=1.9)
FAST = {"denoise": {"mode": "off"}}  # denoise is not under test; it is 90% of develop time here


def _synthetic(h: int = 96, w: int = 128) -> tuple[Photo, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lin = np.stack([xx / w, yy / h, 0.3 + 0.2 * np.sin(xx / 9)], -1).astype(np.float32) * 0.9
    gain = np.where((xx > w / 2) & (yy > h / 3), 6.0, 1.0).astype(np.float32)
    photo = Photo(rgb=spaces.encode(lin, "srgb"), space="srgb", shot=SHOT)
    return photo, lin * gain[..., None]


def _develop_pair(raw, recipe: Recipe) -> tuple[Photo, np.ndarray]:
    from oneinch.develop import develop

    sdr = develop(raw, recipe)
    return sdr, uhdr.hdr_rendition(raw, recipe, sdr)


def _check_file(path, sdr: Photo, hdr: np.ndarray) -> float:
    with Image.open(path) as im:  # a plain JPEG to any reader
        assert im.format == "JPEG" and im.mode == "RGB"
        assert im.size == (sdr.width, sdr.height)
        plain = np.asarray(im, dtype=np.float32) / 255
        assert im.info["icc_profile"] == icc_profile(sdr.space)
    mse = float(np.mean((plain - sdr.rgb) ** 2))
    assert 10 * np.log10(1 / mse) > 35  # the primary is the SDR photo (JPEG q92)
    s, g, meta = uhdr.read_uhdr(path)
    assert meta.space == sdr.space
    rec = uhdr.reconstruct_hdr(s, g, meta)
    err = uhdr.log_error_stops(rec, hdr)
    assert err < ONE_DB_STOPS, f"{path}: {err:.3f} stops"
    return err


@pytest.mark.parametrize("name", sorted(p.name for p in DECODABLE.glob("*.dng")))
def test_real_dng_gain_map_reconstructs_hdr(tmp_path, name):
    from oneinch.raw import open_raw

    r = Recipe().with_(output={"size": 480, "format": "uhdr"}, **FAST)
    raw = open_raw(DECODABLE / name)
    sdr, hdr = _develop_pair(raw, r)
    assert hdr.shape == sdr.rgb.shape and hdr.max() <= 2**3 + 1e-3
    path = write(uhdr.with_hdr(sdr, hdr), tmp_path / "out.jpg", r.output)
    err = _check_file(path, sdr, hdr)
    assert err < 0.1  # measured 0.03-0.07 stops at 800 px
    assert read_exif(path).get("Software") == "oneinch"


def _kodak_hdr_raw(name: str = "kodim03.png"):
    """A Kodak scene made HDR: linear sRGB whose brightest parts are pushed up to 8x white."""
    from oneinch.synthetic import srgb_to_linear, unprocess

    lin = srgb_to_linear(load_rgb8(KODAK / name)[::2, ::2].astype(np.float32) / 255)
    y = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    t = np.clip((y - 0.35) / 0.5, 0, 1)
    boost = 1 + 7 * t * t * (3 - 2 * t)
    scene = np.ascontiguousarray(lin * boost[..., None], dtype=np.float32)
    raw, _ = unprocess(scene, linear_input=True, headroom_ev=4.0)
    return raw


def test_kodak_hdr_scene(tmp_path):
    raw = _kodak_hdr_raw()
    r = Recipe().with_(output={"format": "uhdr", "hdr_headroom": 3.0}, **FAST)
    sdr, hdr = _develop_pair(raw, r)
    sdr_lin = spaces.decode(sdr.rgb, "srgb")
    # highlights really extend past SDR white; below the knee the HDR is the SDR itself
    assert np.percentile(hdr.max(axis=2), 99.5) > 2.0
    dark = sdr_lin.max(axis=2) < 0.2
    assert dark.mean() > 0.2
    np.testing.assert_allclose(hdr[dark], sdr_lin[dark], rtol=1e-5, atol=1e-6)
    path = uhdr.write_uhdr(sdr, hdr, tmp_path / "kodak.jpg", r.output)
    _check_file(path, sdr, hdr)
    # three-channel map: better still
    path3 = uhdr.write_uhdr(sdr, hdr, tmp_path / "kodak3.jpg", r.output, channels=3)
    s, g, meta = uhdr.read_uhdr(path3)
    assert meta.channels == 3 and g.ndim == 3
    assert uhdr.log_error_stops(uhdr.reconstruct_hdr(s, g, meta), hdr) < ONE_DB_STOPS


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool (scripts/test-deps.sh)")
def test_exiftool_sees_mpf_and_hdrgm(tmp_path):
    photo, hdr = _synthetic()
    path = uhdr.write_uhdr(photo, hdr, tmp_path / "u.jpg", Output(format="uhdr"))
    _, _, meta = uhdr.read_uhdr(path)
    out = subprocess.run(["exiftool", "-j", "-G1", "-n", "-struct", str(path)], capture_output=True,
                         text=True, check=True).stdout
    tags = json.loads(out)[0]
    assert tags["MPF0:NumberOfImages"] == 2
    assert tags["MPImage1:MPImageType"] == 0x030000
    size = path.stat().st_size
    assert tags["MPImage1:MPImageLength"] + tags["MPImage2:MPImageLength"] == size
    assert tags["MPImage2:MPImageStart"] == tags["MPImage1:MPImageLength"]
    assert str(tags["XMP-hdrgm:Version"]) in ("1.0", "1")
    items = [d["Item"] for d in tags["XMP-Container:Directory"]]
    assert [i["Semantic"] for i in items] == ["Primary", "GainMap"]
    assert items[1]["Length"] == tags["MPImage2:MPImageLength"]
    assert tags["IFD0:Make"] == "Xiaomi"
    # the gain map image's own XMP
    gm = subprocess.run(["exiftool", "-b", "-MPImage2", str(path)], capture_output=True,
                        check=True).stdout
    out = subprocess.run(["exiftool", "-j", "-G1", "-n", "-"], input=gm, capture_output=True,
                         check=True).stdout
    g = json.loads(out)[0]
    assert g["XMP-hdrgm:GainMapMax"] == pytest.approx(meta.gain_map_max[0], abs=1e-5)
    assert g["XMP-hdrgm:GainMapMin"] == pytest.approx(meta.gain_map_min[0], abs=1e-5)
    assert g["XMP-hdrgm:HDRCapacityMax"] == pytest.approx(meta.hdr_capacity_max, abs=1e-5)
    assert g["XMP-hdrgm:OffsetSDR"] == pytest.approx(1 / 64)
    assert g["XMP-hdrgm:Gamma"] == 1
    assert str(g["XMP-hdrgm:BaseRenditionIsHDR"]).lower() in ("false", "0")
    # log2(6) = 2.585 stops of boost in the bright block (plus the 1/64 offsets)
    assert 2.4 < meta.gain_map_max[0] < 2.7


def test_display_boost_weighting():
    photo, hdr = _synthetic()
    sdr_lin = spaces.decode(photo.rgb, "srgb")
    codes, meta = uhdr.compute_gainmap(sdr_lin, hdr, "srgb")
    sdr_only = uhdr.apply_gainmap(sdr_lin, codes, meta, display_boost=1.0)
    np.testing.assert_allclose(sdr_only, sdr_lin, atol=1e-6)  # (s + k) * 1 - k
    full = uhdr.apply_gainmap(sdr_lin, codes, meta)
    half = uhdr.apply_gainmap(sdr_lin, codes, meta, display_boost=2 ** (meta.hdr_capacity_max / 2))
    bright = hdr.max(axis=2) > 2
    ratio = np.log2((half[bright] + 1 / 64) / (sdr_lin[bright] + 1 / 64))
    ratio_full = np.log2((full[bright] + 1 / 64) / (sdr_lin[bright] + 1 / 64))
    np.testing.assert_allclose(ratio, ratio_full / 2, atol=1e-4)


def test_gamma_and_downscaled_map():
    photo, hdr = _synthetic(128, 192)
    sdr_lin = spaces.decode(photo.rgb, "srgb")
    codes, meta = uhdr.compute_gainmap(sdr_lin, hdr, "srgb", gamma=2.0, scale=4)
    assert codes.shape == (32, 48) and meta.gamma == (2.0,)
    rec = uhdr.apply_gainmap(sdr_lin, codes, meta)
    inside = np.zeros(hdr.shape[:2], bool)  # the bright block starts at row 43, column 96
    inside[52:, 104:] = True  # away from its edges, which a 4x map blurs
    inside[:34, :88] = True
    # 0.032 measured: the single-channel map is a luminance gain, exact only for greys
    assert uhdr.log_error_stops(rec[inside], hdr[inside]) < 0.05


def test_iso21496_round_trip():
    meta = uhdr.GainMapMetadata(
        gain_map_min=(-0.25, 0.0, 0.125), gain_map_max=(2.5, 3.0, 2.75), gamma=(1.0, 2.0, 1.0),
        offset_sdr=(1 / 64,) * 3, offset_hdr=(1 / 64,) * 3, hdr_capacity_min=0.0,
        hdr_capacity_max=3.0,
    )
    data = uhdr.iso21496_bytes(meta)
    assert data[4] == 0xC0  # multichannel + base colour space
    assert len(data) == 4 + 1 + 16 + 3 * 40
    back = uhdr.parse_iso21496(data)
    for f in ("gain_map_min", "gain_map_max", "gamma", "offset_sdr", "offset_hdr"):
        np.testing.assert_allclose(getattr(back, f), getattr(meta, f), atol=1e-6)
    assert back.hdr_capacity_max == pytest.approx(3.0) and not back.base_is_hdr
    assert uhdr.parse_iso21496(uhdr.iso21496_bytes(None)) is None


def test_iso_block_in_gain_map_and_primary(tmp_path):
    photo, hdr = _synthetic()
    data = uhdr.encode_uhdr(photo, hdr, Output(format="uhdr", space="p3"))
    assert data.count(uhdr.ISO_ID) == 2
    primary_len = data.index(b"\xff\xd8", 2)  # the gain map JPEG starts right after
    assert data[primary_len - 2 : primary_len] == b"\xff\xd9"
    gm = data[primary_len:]
    segs = dict(uhdr._segments(gm))
    iso = uhdr.parse_iso21496(segs[0xE2][len(uhdr.ISO_ID):])
    assert iso is not None and iso.hdr_capacity_max > 2
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == icc_profile("p3")


def test_errors(tmp_path):
    photo, hdr = _synthetic()
    with pytest.raises(OptionError, match="HDR rendition"):
        write(photo, tmp_path / "a.jpg", Output(format="uhdr"))
    with pytest.raises(OptionError, match="does not match"):
        uhdr.write_uhdr(photo, hdr[:10], tmp_path / "b.jpg", Output(format="uhdr"))
    with pytest.raises(OptionError, match="8-bit"):
        write(uhdr.with_hdr(photo, hdr), tmp_path / "c.jpg", Output(format="uhdr", bits=16))
    with pytest.raises(OptionError, match=r"unknown format 'webp'.*uhdr"):
        Output(format="webp")
    with pytest.raises(OptionError, match="hdr_headroom"):
        Output(format="uhdr", hdr_headroom=9)
    plain = write(photo, tmp_path / "plain.jpg", Output())
    with pytest.raises(InputError, match="no gain map"):
        uhdr.read_uhdr(plain)
    assert not list(tmp_path.glob("*.part"))


def test_highlight_gain_curve():
    tone = Recipe().tone
    n = 0.18 * 2.0 ** np.linspace(-6, 10, 400).astype(np.float32)
    g = uhdr.highlight_gain(n, tone, 3.0)
    assert np.all(np.diff(g) >= 0) and g[0] == 1.0
    assert g[-1] == pytest.approx(8.0, rel=1e-5)
    assert np.all(g[n < 0.18] == 1.0)  # mid-tones untouched
    g2 = uhdr.highlight_gain(n, replace(tone, white_ev=4.0), 2.0)
    assert g2[-1] == pytest.approx(4.0, rel=1e-5)
