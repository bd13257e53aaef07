"""write_dng -> open_raw / rawpy: identical pixels, exact tags, a sane LibRaw develop."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import rawpy
import tifffile

from conftest import DECODABLE
from oneinch.errors import OutputError
from oneinch.raw import open_raw, serialize_opcode_list, write_dng
from oneinch.raw.dng import to_rational
from oneinch.raw.image import CameraColor, CFAPattern, Levels, RawImage, ShotInfo


def _same_color(a: CameraColor, b: CameraColor) -> None:
    names = (
        "color_matrix1",
        "color_matrix2",
        "forward_matrix1",
        "forward_matrix2",
        "camera_calibration1",
        "camera_calibration2",
        "analog_balance",
        "as_shot_neutral",
    )
    for f in names:
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=f)
    assert (a.illuminant1, a.illuminant2, a.baseline_exposure) == (
        b.illuminant1, b.illuminant2, b.baseline_exposure,
    )  # fmt: skip


@pytest.fixture(scope="module")
def hero7_crop() -> RawImage:
    raw = open_raw(DECODABLE / "gopro_hero7_GOPR9231_gpr2dng.dng")
    return replace(raw, data=raw.data[1000:1200, 1500:1800].copy(), default_crop=(2, 4, 190, 290))


@pytest.mark.parametrize("with_preview", [False, True])
def test_cfa_round_trip(tmp_path, hero7_crop: RawImage, with_preview: bool) -> None:
    out = tmp_path / "hero7.dng"
    pv = np.full((20, 30, 3), (200, 100, 50), np.uint8) if with_preview else None
    write_dng(out, hero7_crop, preview=pv)
    back = open_raw(out)
    np.testing.assert_array_equal(back.data, hero7_crop.data)
    assert back.cfa == hero7_crop.cfa == CFAPattern.bayer("RGGB")
    _same_color(back.color, hero7_crop.color)
    np.testing.assert_array_equal(back.levels.black, hero7_crop.levels.black)
    np.testing.assert_array_equal(back.levels.white, hero7_crop.levels.white)
    np.testing.assert_array_equal(back.noise_profile, hero7_crop.noise_profile)
    assert back.default_crop == (2, 4, 190, 290)
    assert serialize_opcode_list(back.opcodes[2]) == serialize_opcode_list(hero7_crop.opcodes[2])
    assert back.dng_version == (1, 4, 0, 0)
    assert back.unique_camera_model == "GoPro HERO7 Black"
    s, t = back.shot, hero7_crop.shot
    assert (s.make, s.model, s.exposure_time, s.f_number, s.iso, s.orientation) == (
        t.make, t.model, t.exposure_time, t.f_number, t.iso, t.orientation,
    )  # fmt: skip
    assert s.datetime == t.datetime
    with rawpy.imread(str(out)) as rp:
        np.testing.assert_array_equal(rp.raw_image, hero7_crop.data)
        assert rp.white_level == 16383
        img = rp.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8)
    assert img.shape == (200, 300, 3)
    assert 20 < img.mean() < 235 and img.std() > 3
    if with_preview:
        with tifffile.TiffFile(out) as tf:
            assert tf.pages[0].tags[254].value == 1
            np.testing.assert_array_equal(tf.pages[0].asarray(), pv)


def test_linear_raw_round_trip(tmp_path) -> None:
    src = open_raw(DECODABLE / "lg_g4_h815_linearraw_lossy_1mp.dng")
    out = tmp_path / "lg.dng"
    write_dng(out, src)
    back = open_raw(out)
    assert back.is_linear and back.data.shape == (338, 600, 3)
    np.testing.assert_array_equal(back.data, src.data)
    _same_color(back.color, src.color)
    np.testing.assert_array_equal(back.levels.white, [65535.0] * 3)
    with rawpy.imread(str(out)) as rp:
        np.testing.assert_array_equal(rp.raw_image[..., :3], src.data)
        img = rp.postprocess(use_camera_wb=True, output_bps=8)
    assert img.shape == (338, 600, 3) and 20 < img.mean() < 235


def _synthetic(**kw) -> RawImage:
    rng = np.random.default_rng(3)
    data = rng.integers(1000, 15000, size=(64, 96), dtype=np.uint16)
    color = CameraColor(
        color_matrix1=np.array([[0.7, -0.12, -0.05], [-0.4, 1.21, 0.2], [-0.08, 0.19, 0.61]]),
        color_matrix2=rng.normal(size=(3, 3)),  # arbitrary floats, not short rationals
        forward_matrix1=np.eye(3) * 0.9,
        illuminant1=17,
        illuminant2=21,
        as_shot_neutral=np.array([0.5, 1.0, 0.625]),
        baseline_exposure=-0.25,
    )
    shot = ShotInfo(
        make="Xiaomi", model="2203121C", lens="Leica Summicron 1:1.9-4.1/13-120 ASPH.",
        focal_length=8.7, focal_length_35mm=23, f_number=1.9, exposure_time=0.01, iso=50,
        datetime=datetime(2024, 5, 1, 12, 30, 5, tzinfo=timezone(timedelta(hours=8))),
        orientation=6,
    )  # fmt: skip
    levels = Levels(black=np.array([[[1024.0], [1025.5]], [[1023.0], [1024.25]]]),
                    white=np.array([16383.0]))  # fmt: skip
    base = dict(path="synthetic", data=data, cfa=CFAPattern.bayer("BGGR"), levels=levels,
                color=color, shot=shot, noise_profile=np.array([[1e-4, 2e-6]] * 3))  # fmt: skip
    base.update(kw)
    return RawImage(**base)


def test_synthetic_exact_tags(tmp_path) -> None:
    raw = _synthetic()
    out = tmp_path / "syn.dng"
    write_dng(out, raw)
    back = open_raw(out)
    np.testing.assert_array_equal(back.data, raw.data)
    assert back.cfa.name == "BGGR"
    np.testing.assert_array_equal(back.color.color_matrix1, raw.color.color_matrix1)
    np.testing.assert_allclose(back.color.color_matrix2, raw.color.color_matrix2, rtol=1e-9)
    np.testing.assert_array_equal(back.color.as_shot_neutral, raw.color.as_shot_neutral)
    np.testing.assert_array_equal(back.levels.black, raw.levels.black)  # fractional blacks
    np.testing.assert_array_equal(back.noise_profile, raw.noise_profile)
    assert back.color.baseline_exposure == -0.25
    s = back.shot
    assert (s.make, s.model, s.f_number, s.exposure_time, s.iso, s.focal_length) == (
        "Xiaomi", "2203121C", 1.9, 0.01, 50, 8.7,
    )  # fmt: skip
    assert s.orientation == 6
    assert s.lens == raw.shot.lens
    with rawpy.imread(str(out)) as rp:
        np.testing.assert_array_equal(rp.raw_image, raw.data)
        assert rp.color_desc == b"RGBG"
        letters = "".join(chr(rp.color_desc[i]) for i in rp.raw_pattern.ravel())
        assert letters == "BGGR"


def test_written_linearization_table_is_applied_by_libraw(tmp_path) -> None:
    """Second, controlled measurement of the LibRaw behaviour documented in reader.py."""
    table = (np.arange(4096, dtype=np.float64) ** 1.3).astype(np.uint16)
    table = np.minimum(table, 65535).astype(np.uint16)
    raw = _synthetic(
        data=np.random.default_rng(0).integers(0, 4096, (32, 48)).astype(np.uint16),
        levels=Levels(black=np.zeros((1, 1, 1)), white=np.array([65535.0]), linearization=table),
    )
    out = tmp_path / "lin.dng"
    write_dng(out, raw)
    with rawpy.imread(str(out)) as rp:
        np.testing.assert_array_equal(rp.raw_image, table[raw.data])
    back = open_raw(out)
    np.testing.assert_array_equal(back.data, table[raw.data])
    assert back.levels.linearization is None and back.tags["linearization_applied_by_libraw"]


def test_to_rational_exact() -> None:
    for v in (1.8331, -0.4535, 0.565121, 1 / 576, 0.0, 16383.0, -2.65412):
        n, d = to_rational(v, signed=True)
        assert n / d == v and abs(n) < 2**31 and 0 < d < 2**32
    n, d = to_rational(np.pi, signed=True)
    assert abs(n / d - np.pi) < 1e-15


def test_write_is_atomic(tmp_path, hero7_crop: RawImage) -> None:
    with pytest.raises(OutputError):
        write_dng(tmp_path / "missing" / "x.dng", hero7_crop)
    bad = replace(hero7_crop, data=np.zeros((4, 4, 2), np.uint16))
    with pytest.raises(Exception):  # noqa: B017 - any refusal, but no file left behind
        write_dng(tmp_path / "bad.dng", bad)
    assert list(tmp_path.iterdir()) == []
