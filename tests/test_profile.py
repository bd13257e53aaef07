"""Camera profiling: fit on spectrally rendered charts, test on other illuminants; the command."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from oneinch import profile as P
from oneinch.isp import color, dcp, spaces

CAMERA = "Nikon 5100 (NPL)"


def _colour():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    return colour


def _render(ill: str) -> dict:
    """ColorChecker (BabelColor average reflectances) under a CIE illuminant: camera raw (a real
    camera's sensitivities, colour-science) and the reference XYZ adapted to D50."""
    c = _colour()
    shape = c.SpectralShape(380, 730, 5)
    refl = np.array([sd.copy().align(shape).values
                     for sd in c.SDS_COLOURCHECKERS["BabelColor Average"].values()])
    cmfs = c.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"].copy().align(shape).values
    sens = c.MSDS_CAMERA_SENSITIVITIES[CAMERA].copy().align(shape).values
    e = c.SDS_ILLUMINANTS[ill].copy().align(shape).values
    cam_white, xyz_white = e @ sens, e @ cmfs
    xyz = (refl * e) @ cmfs / xyz_white[1]
    white_xy = xyz_white[:2] / xyz_white.sum()
    return {"cam": (refl * e) @ sens / cam_white.max(), "neutral": cam_white / cam_white.max(),
            "ref": xyz @ spaces.bradford(white_xy, spaces.D50_XY).T}


@pytest.fixture(scope="module")
def fitted() -> dcp.DCP:
    fits = [P.fit_chart(_render(ill)["cam"], ill, hue_sat_map=True,
                        reference=_render(ill)["ref"]) for ill in ("A", "D65")]
    return P.build_dcp(fits, "Nikon 5100 (simulated)")


@pytest.mark.parametrize("ill", ["D50", "D75", "FL7"])
def test_profile_on_illuminants_not_fitted(fitted, ill):
    r = _render(ill)
    cc = fitted.camera_color()
    cct, _ = color.xy_to_cct_tint(color.neutral_to_xy(cc, r["neutral"]))
    xyz = P.xyz_from_camera(r["cam"], fitted, r["neutral"], color.interpolation_weight(cc, cct))
    de = P.delta_e2000(P.lab_d50(xyz), P.lab_d50(r["ref"]))
    assert de.mean() <= 1.2 and de.max() <= 3.0, (de.mean(), de.max())
    # the matrices alone, through the develop pipeline's isp.color, agree with the profile path
    m = color.camera_to_xyz_d50(cc, r["neutral"])
    de_m = P.delta_e2000(P.lab_d50((r["cam"] / r["neutral"]) @ m.T), P.lab_d50(r["ref"]))
    assert de_m.mean() <= 1.2 and de.mean() < de_m.mean()  # the HueSatMap helps


def test_dcp_from_fit_is_ordered_and_roundtrips(fitted, tmp_path):
    assert (fitted.illuminant1, fitted.illuminant2) == (17, 21)  # warm first
    dcp.write_dcp(tmp_path / "f.dcp", fitted)
    back = dcp.read_dcp(tmp_path / "f.dcp")
    assert np.allclose(back.forward_matrix2, fitted.forward_matrix2, atol=5e-5)
    assert np.array_equal(back.hue_sat_map1.data, fitted.hue_sat_map1.data)
    # a ForwardMatrix maps the camera white to D50
    assert np.allclose(back.forward_matrix1 @ np.ones(3), spaces.xy_to_xyz(spaces.D50_XY),
                       atol=5e-4)


def test_patch_grid_with_corners():
    img = np.zeros((300, 400, 3), np.float32)
    vals = np.random.default_rng(2).random((24, 3)).astype(np.float32)
    corners = np.array([[50, 40], [350, 40], [350, 240], [50, 240]], float)
    for i, (x, y) in enumerate(P.patch_centres(corners)):
        img[int(y) - 12:int(y) + 13, int(x) - 12:int(x) + 13] = vals[i]
    assert np.allclose(P.patch_values(img, corners), vals, atol=1e-6)


def test_profile_command_on_synthetic_chart(tmp_path):
    from oneinch.commands.profile import profile_command
    from oneinch.synthetic import make_dng

    xyz = P.reference_xyz_d50() @ spaces.bradford(spaces.D50_XY, spaces.D65_XY).T
    lin = xyz @ np.linalg.inv(spaces.rgb_to_xyz_native(spaces.SPACES["srgb"])).T
    lin = np.clip(lin, 0.002, None) * 0.9
    img = np.full((4 * 48 + 16, 6 * 48 + 16, 3), 0.02, np.float32)
    for i in range(24):
        r, c = divmod(i, 6)
        img[8 + r * 48 + 4:8 + r * 48 + 44, 8 + c * 48 + 4:8 + c * 48 + 44] = lin[i]
    path = tmp_path / "chart.dng"
    make_dng(path, img, linear_input=True, headroom_ev=0.5)
    out = tmp_path / "cam.dcp"
    corners = "8,8,296,8,296,200,8,200"
    profile_command(path, out, illuminant="D65", corners=corners)
    d = dcp.read_dcp(out)
    assert d.illuminant1 == 21 and d.forward_matrix1 is not None and d.color_matrix2 is None
    from oneinch.raw.reader import open_raw

    cam = P.chart_camera_rgb(open_raw(path), np.array([8, 8, 296, 8, 296, 200, 8, 200.0]))
    fit = P.fit_chart(cam, "D65")
    in_gamut = (lin > 0.002 * 0.9 + 1e-6).all(axis=1)  # sRGB-clipped patches cannot match
    assert fit.delta_e[in_gamut].mean() < 0.5
    assert np.allclose(fit.forward_matrix, d.forward_matrix1, atol=2e-4)


def test_profile_command_refuses_a_frame_without_a_chart_and_one_light_twice(tmp_path):
    """A photo of no chart wrote a .dcp (fit ΔE2000 ~28 on average) with exit 0, and two
    charts under one light wrote a 'dual-illuminant' profile of one illuminant."""
    from oneinch.commands.profile import profile_command
    from oneinch.errors import InputError, OptionError

    sample = Path(__file__).resolve().parents[1] / "samples" / "oneinch_demo.dng"
    out = tmp_path / "x.dcp"
    with pytest.raises(InputError, match="no ColorChecker 24 found"):
        profile_command(sample, out, illuminant="D65")
    with pytest.raises(OptionError, match="one light"):
        profile_command(sample, out, illuminant="D65", chart2=sample, illuminant2="D65")
    assert not out.exists()
