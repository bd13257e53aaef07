"""DCP read/write (exact tag values), real RawTherapee DCPs, and the HueSatMap lookup."""

from __future__ import annotations

import glob
import struct

import numpy as np
import pytest

from oneinch.errors import InputError
from oneinch.isp import dcp

RT_DCPS = sorted(glob.glob("/usr/share/rawtherapee/dcpprofiles/*.dcp"))  # apt rawtherapee-data


def _profile() -> dcp.DCP:
    rng = np.random.default_rng(3)
    hsm = rng.normal(size=(2, 6, 4, 3)).astype(np.float32)
    look = rng.normal(size=(3, 5, 4, 3)).astype(np.float32)
    return dcp.DCP(
        unique_camera_model="oneinch Synthetic Sensor", profile_name="Test profile",
        color_matrix1=np.array([[0.6722, -0.0635, -0.0963], [-0.4287, 1.2460, 0.2028],
                                [-0.0908, 0.2162, 0.5668]]),
        color_matrix2=np.array([[1.1, -0.2, 0.05], [-0.3, 1.25, 0.1], [0.0, 0.1, 0.9]]),
        forward_matrix1=np.array([[0.7, 0.2, 0.0643], [0.3, 0.69, 0.01], [0.0, 0.1, 0.7249]]),
        illuminant1=17, illuminant2=21,
        hue_sat_map1=dcp.HueSatMap(hsm), hue_sat_map2=dcp.HueSatMap(hsm * 2),
        look_table=dcp.HueSatMap(look, encoding=1),
        tone_curve=np.array([[0, 0], [0.25, 0.3], [1, 1]], np.float32),
        embed_policy=3, copyright="CC0", baseline_exposure_offset=0.25,
        default_black_render=1,
    )


def test_write_read_exact(tmp_path):
    d = _profile()
    path = tmp_path / "t.dcp"
    dcp.write_dcp(path, d)
    raw = path.read_bytes()
    assert raw[:4] == b"IIRC" and struct.unpack_from("<I", raw, 4)[0] == 8
    tags = [struct.unpack_from("<H", raw, 10 + 12 * i)[0]
            for i in range(struct.unpack_from("<H", raw, 8)[0])]
    assert tags == sorted(tags) and 50721 in tags and 50938 in tags  # TIFF: ascending tags
    e = dcp.read_dcp(path)
    for name in ("color_matrix1", "color_matrix2", "forward_matrix1"):
        assert np.array_equal(getattr(e, name), getattr(d, name)), name
    assert e.forward_matrix2 is None
    assert (e.illuminant1, e.illuminant2, e.embed_policy) == (17, 21, 3)
    assert (e.unique_camera_model, e.profile_name, e.copyright) == (
        "oneinch Synthetic Sensor", "Test profile", "CC0")
    assert np.array_equal(e.hue_sat_map1.data, d.hue_sat_map1.data)
    assert np.array_equal(e.hue_sat_map2.data, d.hue_sat_map2.data)
    assert e.hue_sat_map1.dims == (6, 4, 2)
    assert np.array_equal(e.look_table.data, d.look_table.data) and e.look_table.encoding == 1
    assert np.array_equal(e.tone_curve, d.tone_curve)
    assert e.baseline_exposure_offset == 0.25 and e.default_black_render == 1


@pytest.mark.skipif(not RT_DCPS, reason="apt package rawtherapee-data not installed")
def test_reads_real_rawtherapee_profiles(tmp_path):
    for f in RT_DCPS[:: max(1, len(RT_DCPS) // 6)]:
        d = dcp.read_dcp(f)
        assert d.color_matrix1 is not None and d.color_matrix1.shape == (3, 3)
        assert d.unique_camera_model
        n = d.camera_color().color_matrix1 @ np.array([0.9505, 1.0, 1.089])
        assert np.all(n > 0)  # D65 white maps to a positive camera neutral
        if d.hue_sat_map1 is not None:
            h, s, v = d.hue_sat_map1.dims
            assert d.hue_sat_map1.data.shape == (v, h, s, 3)
            assert 0.2 < float(np.median(d.hue_sat_map1.data[..., 1])) < 5  # sat scales
        # what we write back reads back the same
        dcp.write_dcp(tmp_path / "rt.dcp", d)
        e = dcp.read_dcp(tmp_path / "rt.dcp")
        assert np.allclose(e.color_matrix1, d.color_matrix1, atol=5e-5)
        if d.hue_sat_map1 is not None:
            assert np.array_equal(e.hue_sat_map1.data, d.hue_sat_map1.data)


def test_bad_files(tmp_path):
    p = tmp_path / "x.dcp"
    p.write_bytes(b"II*\0\x08\0\0\0\0\0")
    with pytest.raises(InputError, match="magic"):
        dcp.read_dcp(p)
    p.write_bytes(b"IIRC\xff\xff\0\0")
    with pytest.raises(InputError, match="truncated"):
        dcp.read_dcp(p)


def test_hue_sat_map_identity_and_known_shift():
    rng = np.random.default_rng(0)
    rgb = rng.random((50, 3)).astype(np.float32)
    assert np.allclose(dcp.apply_hue_sat_map(rgb, dcp.HueSatMap.identity(90, 30, 8)), rgb,
                       atol=1e-5)
    m = dcp.HueSatMap.identity(6, 2, 1)
    data = m.data.copy()
    data[..., 0] = 120.0  # every hue +120°
    data[..., 1, 1] = 0.5  # saturation halved at s = 1 (linear in s between)
    out = dcp.apply_hue_sat_map(np.array([[1.0, 0.0, 0.0]], np.float32), dcp.HueSatMap(data))
    assert np.allclose(out, [[0.5, 1.0, 0.5]], atol=1e-5)  # red -> green, s 1 -> 0.5


def test_hue_sat_map_trilinear_matches_reference_and_wraps():
    rng = np.random.default_rng(1)
    data = np.zeros((3, 8, 5, 3), np.float32)
    data[..., 0] = rng.normal(0, 10, (3, 8, 5))
    data[..., 1] = rng.uniform(0.8, 1.2, (3, 8, 5))
    data[..., 2] = rng.uniform(0.9, 1.1, (3, 8, 5))
    m = dcp.HueSatMap(data)
    # on grid nodes the lookup returns the node
    h = np.array([0.0, 6.0 * 3 / 8, 6.0 * 7 / 8])
    s = np.array([0.0, 0.5, 1.0])
    v = np.array([0.0, 0.5, 1.0])
    got = dcp.lookup_hue_sat_map(m, h, s, v)
    ref = data[[0, 1, 2], [0, 3, 7], [0, 2, 4]]
    assert np.allclose(got, ref, atol=1e-6)
    # hue wraps: just below 360° interpolates between the last and the first division
    near = dcp.lookup_hue_sat_map(m, np.array([6.0 - 1e-7]), np.array([0.5]), np.array([0.5]))
    assert np.allclose(near, data[1, 0, 2], atol=1e-4)
    mid = dcp.lookup_hue_sat_map(m, np.array([6.0 * 7.5 / 8]), np.array([0.5]), np.array([0.5]))
    assert np.allclose(mid, 0.5 * (data[1, 7, 2] + data[1, 0, 2]), atol=1e-5)


def test_tone_curve_and_dng_tags():
    d = dcp.from_tags({50940: [0.0, 0.0, 0.5, 0.7, 1.0, 1.0], 50721: list(range(9)),
                       50778: [21], 50937: [2, 2, 1], 50938: [0, 1, 1] * 4})
    assert d.color_matrix1[2, 2] == 8 and d.illuminant1 == 21 and d.hue_sat_map1.dims == (2, 2, 1)
    y = dcp.apply_tone_curve(np.array([0.25, 0.5, 2.0], np.float32), d.tone_curve)
    assert np.allclose(y, [0.35, 0.7, 1.0])
