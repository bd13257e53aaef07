"""HEIF / AVIF / JPEG XL: round trips within codec loss, bit depth, ICC / CICP, EXIF, HDR."""

from __future__ import annotations

import json
import shutil
import subprocess

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


def _exif(d: modern.Decoded) -> dict:
    from PIL import Image

    from oneinch.output.metadata import exif_to_dict

    assert d.exif, "no EXIF read back"
    e = Image.Exif()
    e.load(d.exif)
    return exif_to_dict(e)


def _check_exif(d: modern.Decoded) -> None:
    tags = _exif(d)
    assert (tags["Make"], tags["Model"]) == (SHOT.make, SHOT.model)
    assert tags["ExposureTime"] == pytest.approx(SHOT.exposure_time)
    assert tags["FNumber"] == pytest.approx(SHOT.f_number)
    assert tags["ISOSpeedRatings"] == SHOT.iso


CASES = [
    ("heif", ".heic", 8), ("heif", ".heic", 10), ("heif", ".heic", 12),
    ("avif", ".avif", 8), ("avif", ".avif", 10), ("avif", ".avif", 12),
    ("jxl", ".jxl", 8), ("jxl", ".jxl", 16),
]


@pytest.mark.parametrize("space", ["srgb", "p3", "rec2020", "prophoto"])
@pytest.mark.parametrize(("fmt", "ext", "bits"), CASES)
def test_round_trip(tmp_path, fmt, ext, bits, space):
    photo = _photo()
    path = write(photo, tmp_path / f"x{ext}", Output(format=fmt, bits=bits, space=space,
                                                      quality=90))
    d = modern.read_modern(path)
    assert d.format == fmt and d.bits == bits and d.rgb.shape == photo.rgb.shape
    # codec loss at quality 90, measured 45-55 dB on this image
    assert modern.psnr_codes(d.rgb, _expected(photo, space)) > 42
    assert d.icc == icc_profile(space)  # every SDR file carries our ICC profile, byte for byte
    assert modern.space_of(d) == space
    if fmt in ("heif", "avif"):  # and the nclx colour box with the CICP triple (H.273)
        tr = spaces.SPACES[space].transfer
        assert d.cicp == (modern.CICP_PRIMARIES.get(space, 2), modern.CICP_TRANSFER.get(tr, 2),
                          modern.CICP_MATRIX.get(space, 6))
    _check_exif(d)
    back = modern.read_photo(path)
    assert back.space == space and back.rgb.dtype == np.float32
    assert back.shot.make == SHOT.make and back.shot.exposure_time == pytest.approx(0.01)


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


def test_twelve_bit_heif_is_per_call(tmp_path):
    """12-bit HEIF is asked per write (pillow-heif's global SAVE_HDR_TO_12_BIT stays off): a
    near-lossless ramp keeps 12-bit precision, and a 10-bit write afterwards is 10-bit."""
    import pillow_heif

    ramp = np.linspace(0.2, 0.3, 256, dtype=np.float32)
    rgb = np.ascontiguousarray(np.broadcast_to(ramp[None, :, None], (32, 256, 3)))
    photo = Photo(rgb=rgb, space="srgb", shot=SHOT)
    err = {}
    for bits in (12, 10):
        p = write(photo, tmp_path / f"r{bits}.heic", Output(format="heif", bits=bits,
                                                             quality=100))
        d = modern.read_modern(p)
        assert d.bits == bits
        err[bits] = np.abs(d.rgb - rgb).mean()
    assert not pillow_heif.options.SAVE_HDR_TO_12_BIT
    assert err[12] < err[10] / 2


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
    _check_exif(d)
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
    with pytest.raises(OptionError, match="heif supports 8, 10, 12-bit"):
        write(photo, tmp_path / "a.heic", Output(format="heif", bits=16))
    with pytest.raises(OptionError, match="jxl supports 8, 16-bit"):
        write(photo, tmp_path / "a.jxl", Output(format="jxl", bits=10))
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


# ----------------------------------------------------------------------------- AVIF boxes


def _tree(data: bytes) -> dict[bytes, bytes]:
    """{box type: body} of the meta children, iprp children and ipco children (flattened)."""
    out: dict[bytes, bytes] = {}
    meta = next(b for b in modern._boxes(data) if b.kind == b"meta")
    for b in modern._boxes(data, meta.start + 12, meta.end):
        out[b.kind] = b.body(data)
        if b.kind == b"iprp":
            for c in modern._boxes(data, b.start + 8, b.end):
                out[c.kind] = c.body(data)
    return out


def test_avif_boxes_link_icc_and_exif(tmp_path):
    """The 10-bit AVIF's boxes (ISO/IEC 23008-12): a 'prof' colr property associated with the
    primary item in 'ipma', an 'Exif' infe, 'cdsc' from it to the primary item, and its 'iloc'
    extent holding the 4-byte TIFF-header offset (0) then the TIFF header."""
    photo = _photo(32, 48)
    path = write(photo, tmp_path / "a.avif", Output(format="avif", bits=10, space="p3"))
    data = path.read_bytes()
    tree = _tree(data)
    ipco = tree[b"ipco"]
    props = [(b.kind, ipco[b.start + 8 : b.start + 12]) for b in modern._boxes(ipco)]
    assert (b"colr", b"nclx") in props and (b"colr", b"prof") in props
    prof_index = props.index((b"colr", b"prof")) + 1
    ipma = tree[b"ipma"]  # version 0, flags 0: 16-bit item IDs, 7-bit property indices
    assert ipma[:4] == b"\0\0\0\0" and int.from_bytes(ipma[4:8], "big") == 1
    item, n = int.from_bytes(ipma[8:10], "big"), ipma[10]
    assert item == 1 and prof_index in [x & 0x7F for x in ipma[11 : 11 + n]]
    assert b"infe" in tree[b"iinf"] and b"Exif" in tree[b"iinf"]
    cdsc = tree[b"iref"][4:]
    assert cdsc[4:8] == b"cdsc" and cdsc[8:] == (2).to_bytes(2, "big") + b"\0\1" + b"\0\1"
    iloc = modern._Iloc.parse(tree[b"iloc"])
    ext = {item_id: extents for item_id, _, _, _, extents in iloc.items}
    _, off, length = ext[2][0]
    assert data[off : off + 8] == b"\0\0\0\0MM\0*" and off + length <= len(data)
    _, off, length = ext[1][0]  # the AV1 item moved with the grown meta box: still decodable
    assert off > next(b for b in modern._boxes(data) if b.kind == b"meta").end
    # what is there already is kept: adding ICC, EXIF and CICP again changes nothing
    again = modern.heif_add_metadata(data, icc_profile("srgb"), b"Exif\0\0MM\0*\0\0\0\x08",
                                     (1, 13, 6))
    assert again == data


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool (scripts/test-deps.sh)")
@pytest.mark.parametrize(("fmt", "bits"), [("avif", 10), ("avif", 12), ("heif", 10),
                                           ("jxl", 16)])
def test_exiftool_reads_high_bit_depth_files(tmp_path, fmt, bits):
    path = write(_photo(32, 48), tmp_path / f"e.{fmt}", Output(format=fmt, bits=bits,
                                                                space="rec2020"))
    cmd = ["exiftool", "-j", "-G1", "-a", "-all", "-validate", "-warning", str(path)]
    tags = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)[0]
    assert tags["IFD0:Make"] == "Xiaomi" and tags["IFD0:Model"] == "2203121C"
    assert tags["ExifIFD:ExposureTime"] == "1/100"
    if fmt != "jxl":  # exiftool does not decode the ICC inside a JPEG XL codestream
        assert tags["ICC_Profile:ProfileDescription"] == "oneinch ITU-R BT.2020"
    if fmt == "avif":
        assert tags["QuickTime:ImagePixelDepth"] == f"{bits} {bits} {bits}"
    assert "ExifTool:Warning" not in tags
