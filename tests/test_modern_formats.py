"""HEIF / AVIF / JPEG XL: round trips within codec loss, bit depth, ICC / CICP, EXIF, HDR."""

from __future__ import annotations

import numpy as np
import pytest

from oneinch.errors import InputError, OptionError
from oneinch.isp import spaces
from oneinch.output import modern, uhdr
from oneinch.output.encode import _space_converter, format_from_path, write
from oneinch.output.icc import icc_profile
from oneinch.photo import Photo
from oneinch.raw.image import ShotInfo
from oneinch.recipe import Output

SHOT = ShotInfo(make="Xiaomi", model="2203121C", iso=50, f_number=1.9, exposure_time=0.01)


def _photo(h: int = 96, w: int = 128) -> Photo:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin(xx / 7) * np.cos(yy / 9)], -1)
    return Photo(rgb=np.ascontiguousarray(rgb, np.float32), space="srgb", shot=SHOT)


def _expected(photo: Photo, space: str) -> np.ndarray:
    conv = _space_converter(photo.space, space)
    return photo.rgb if conv is None else conv(photo.rgb)


def _exif_make(d: modern.Decoded) -> str | None:
    from PIL import Image

    from oneinch.output.metadata import exif_to_dict

    if not d.exif:
        return None
    e = Image.Exif()
    e.load(d.exif)
    return exif_to_dict(e).get("Make")


CASES = [
    ("heif", ".heic", 8), ("heif", ".heic", 10),
    ("avif", ".avif", 8), ("avif", ".avif", 10), ("avif", ".avif", 12),
    ("jxl", ".jxl", 8), ("jxl", ".jxl", 16),
]


@pytest.mark.parametrize("space", ["srgb", "p3", "rec2020"])
@pytest.mark.parametrize(("fmt", "ext", "bits"), CASES)
def test_round_trip(tmp_path, fmt, ext, bits, space):
    if fmt == "jxl" and bits == 16 and space != "srgb":
        pytest.skip("16-bit JPEG XL is sRGB only (tested in test_errors)")
    photo = _photo()
    path = write(photo, tmp_path / f"x{ext}", Output(format=fmt, bits=bits, space=space,
                                                      quality=90))
    d = modern.read_modern(path)
    assert d.format == fmt and d.bits == bits and d.rgb.shape == photo.rgb.shape
    # codec loss at quality 90, measured 45-55 dB on this image
    assert modern.psnr_codes(d.rgb, _expected(photo, space)) > 42
    assert modern.space_of(d) == space
    if d.icc is not None:
        assert d.icc == icc_profile(space)
    elif fmt == "jxl":  # 16-bit: libjxl's enumerated sRGB colour encoding, no ICC
        assert bits == 16 and space == "srgb"
    else:  # high-bit-depth AVIF: colour is the CICP triple
        assert d.cicp == (modern.CICP_PRIMARIES[space],
                          modern.CICP_TRANSFER[spaces.SPACES[space].transfer],
                          modern.CICP_MATRIX[space])
    if not (fmt == "avif" and bits > 8):  # imagecodecs' AVIF encoder has no EXIF (report)
        assert _exif_make(d) == "Xiaomi"
    back = modern.read_photo(path)
    assert back.space == space and back.rgb.dtype == np.float32


def test_ten_bits_are_finer_than_eight(tmp_path):
    """A smooth ramp: 10-bit HEIF keeps more than 8-bit can (quality 100 = near lossless)."""
    ramp = np.linspace(0.2, 0.3, 256, dtype=np.float32)
    rgb = np.ascontiguousarray(np.broadcast_to(ramp[None, :, None], (64, 256, 3)))
    photo = Photo(rgb=rgb, space="srgb", shot=SHOT)
    err = {}
    for bits in (8, 10):
        p = write(photo, tmp_path / f"r{bits}.heic", Output(format="heif", bits=bits,
                                                             quality=100))
        err[bits] = np.abs(modern.read_modern(p).rgb - rgb).mean()
    assert err[10] < err[8] / 2


@pytest.mark.parametrize("fmt", ["heif", "avif"])
@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_hdr_pq_hlg(tmp_path, fmt, transfer):
    photo = _photo()
    lin = spaces.decode(photo.rgb, "srgb")
    gain = np.where(np.arange(photo.width) > 64, 3.5, 1.0).astype(np.float32)
    hdr = lin * gain[None, :, None]
    out = Output(format=fmt, space="rec2020", transfer=transfer, bits=10, quality=90)
    path = write(uhdr.with_hdr(photo, hdr), tmp_path / f"h.{fmt}", out)
    d = modern.read_modern(path)
    assert d.bits == 10
    assert d.cicp == (9, 16 if transfer == "pq" else 18, 9)
    assert d.icc is None  # an ICC profile would override the HDR transfer in viewers
    lin_back = modern.pq_decode(d.rgb) if transfer == "pq" else modern.hlg_decode(d.rgb)
    m = spaces.xyz_d50_to_rgb("rec2020") @ spaces.rgb_to_xyz_d50("srgb")
    ref = np.maximum(hdr @ m.astype(np.float32).T, 0)
    assert lin_back.max() > 3  # really above SDR white
    assert uhdr.log_error_stops(lin_back, ref) < 0.05  # measured 0.013-0.024 stops


def test_transfer_functions_invert():
    x = np.array([0, 1e-3, 0.18, 1.0, 3.0, 3.7], np.float32)
    np.testing.assert_allclose(modern.pq_decode(modern.pq_encode(x)), x, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(modern.hlg_decode(modern.hlg_encode(x)), x, rtol=1e-4, atol=1e-6)
    assert modern.hlg_encode(np.float32(1.0)) == pytest.approx(0.75, abs=1e-3)  # BT.2408
    assert modern.pq_encode(np.float32(1.0)) == pytest.approx(0.5806, abs=1e-3)  # 203 cd/m²


def test_errors(tmp_path):
    photo = _photo()
    with pytest.raises(OptionError, match="sRGB only"):
        write(photo, tmp_path / "a.jxl", Output(format="jxl", bits=16, space="p3"))
    with pytest.raises(OptionError, match="heif supports 8, 10-bit"):
        write(photo, tmp_path / "a.heic", Output(format="heif", bits=12))
    with pytest.raises(OptionError, match="needs format heif or avif"):
        Output(format="jpeg", transfer="pq")
    with pytest.raises(OptionError, match="HDR rendition"):
        write(photo, tmp_path / "b.avif", Output(format="avif", transfer="hlg"))
    with pytest.raises(OptionError, match="suffix says heif"):
        write(photo, tmp_path / "c.heic", Output(format="avif"))
    with pytest.raises(OptionError, match="unknown transfer"):
        Output(format="avif", transfer="slog3")
    bad = tmp_path / "bad.avif"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="not a HEIF, AVIF or JPEG XL"):
        modern.read_modern(bad)
    assert not list(tmp_path.glob("*.part"))


def test_suffixes():
    assert format_from_path("a.HEIC") == "heif" and format_from_path("a.avif") == "avif"
    assert format_from_path("a.jxl") == "jxl" and format_from_path("a.jpg") == "jpeg"
