"""open_raw on every real DNG, exact tags via an independent tifffile/struct path, bad inputs."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct

import numpy as np
import pytest
import rawpy
import tifffile

from conftest import DECODABLE, SHARED, sha256
from oneinch.errors import InputError, UnsupportedError
from oneinch.raw import describe, embedded_preview, open_raw
from oneinch.raw.reader import libraw_levels

FILES = {
    "blackmagic_pocket4k_12bit_cfa.dng": ((2176, 4128), "RGGB"),
    "gopro_fusion_front_GPFR7066_gpr2dng.dng": ((3000, 3104), "RGGB"),
    "gopro_hero6_GOPR0024_gpr2dng.dng": ((3000, 4000), "RGGB"),
    "gopro_hero7_GOPR9231_gpr2dng.dng": ((3000, 4000), "RGGB"),
    "lg_g4_h815_linearraw_lossy_1mp.dng": ((338, 600, 3), None),
}


def _raw_page(tf: tifffile.TiffFile) -> tifffile.TiffPage:
    page = tf.pages[0]
    if page.tags[254].value == 0:
        return page
    tf.filehandle.seek(page.subifds[0])
    return tifffile.TiffPage(tf, index=0)


def _rat(tf_page: tifffile.TiffPage, code: int) -> np.ndarray:
    v = np.asarray(tf_page.tags[code].value, dtype=np.float64)
    return v[0::2] / v[1::2]


def test_decodable_corpus_is_what_we_test() -> None:
    assert sorted(p.name for p in DECODABLE.iterdir()) == sorted(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_open_every_decodable_dng(name: str) -> None:
    path = DECODABLE / name
    before = sha256(path)
    raw = open_raw(path)
    shape, cfa = FILES[name]
    assert raw.data.shape == shape and raw.data.dtype == np.uint16
    assert raw.data.flags.c_contiguous and raw.is_dng
    assert (raw.cfa.name if raw.cfa else None) == cfa
    with tifffile.TiffFile(path) as tf:
        ifd0 = tf.pages[0]
        rp = _raw_page(tf)
        # colour tags live in IFD0; compare with rationals divided here
        np.testing.assert_array_equal(raw.color.color_matrix1.ravel(), _rat(ifd0, 50721))
        np.testing.assert_array_equal(raw.color.color_matrix2.ravel(), _rat(ifd0, 50722))
        np.testing.assert_array_equal(raw.color.as_shot_neutral, _rat(ifd0, 50728))
        np.testing.assert_array_equal(raw.color.analog_balance, _rat(ifd0, 50727))
        assert raw.color.illuminant1 == ifd0.tags[50778].value
        assert raw.color.illuminant2 == ifd0.tags[50779].value
        assert raw.color.baseline_exposure == _rat(ifd0, 50730)[0]
        for code, attr in ((50964, "forward_matrix1"), (50965, "forward_matrix2")):
            got = getattr(raw.color, attr)
            if code in ifd0.tags:
                np.testing.assert_array_equal(got.ravel(), _rat(ifd0, code))
            else:
                assert got is None
        assert raw.dng_version == tuple(ifd0.tags[50706].value)
        assert raw.unique_camera_model == ifd0.tags[50708].value
        if 51041 in ifd0.tags:
            np.testing.assert_array_equal(raw.noise_profile.ravel(), ifd0.tags[51041].value)
        if cfa is not None:
            white = rp.tags[50717].value
            assert raw.levels.white.tolist() == [white]
            dims = tuple(rp.tags[50713].value) if 50713 in rp.tags else (1, 1)
            assert raw.levels.black.shape == (*dims, 1)
            if rp.compression == 1:  # uncompressed: independent decode by tifffile
                np.testing.assert_array_equal(raw.data, rp.asarray())
    with rawpy.imread(str(path)) as r:
        ref = r.raw_image.copy()
    np.testing.assert_array_equal(raw.data, ref[..., :3] if ref.ndim == 3 else ref)
    json.dumps(describe(raw))
    assert sha256(path) == before


def test_gopro_tags_exact() -> None:
    raw = open_raw(DECODABLE / "gopro_hero7_GOPR9231_gpr2dng.dng")
    assert (raw.shot.make, raw.shot.model) == ("GoPro", "HERO7 Black")
    assert raw.shot.exposure_time == pytest.approx(1 / 576) and raw.shot.f_number == 2.8
    assert raw.shot.iso == 252 and raw.shot.orientation == 2
    np.testing.assert_array_equal(raw.color.as_shot_neutral, [0.565121, 1.0, 0.527835])
    assert raw.color.color_matrix1[0, 0] == 1.8331 and raw.color.illuminant1 == 3
    np.testing.assert_array_equal(
        raw.noise_profile, [[0.00039362526149488986, 1.2297640239467e-07]]
    )
    assert raw.levels.black.shape == (2, 2, 1) and not raw.levels.black.any()
    assert raw.default_crop == (0, 0, 3000, 4000) and raw.default_scale == (1.0, 1.0)
    assert [op.name for op in raw.opcodes[2]] == ["GainMap"] * 4
    assert raw.opcodes[2][0].params["MapGain"].shape == (23, 22, 1)
    assert 1 not in raw.opcodes and 3 not in raw.opcodes
    fusion = open_raw(DECODABLE / "gopro_fusion_front_GPFR7066_gpr2dng.dng")
    assert [op.name for op in fusion.opcodes[3]] == ["WarpRectilinear"]


def test_blackmagic_linearization_is_applied_by_libraw() -> None:
    """The 12-bit LJ92 samples come back through the LinearizationTable (values > 4095)."""
    path = DECODABLE / "blackmagic_pocket4k_12bit_cfa.dng"
    raw = open_raw(path)
    with tifffile.TiffFile(path) as tf:
        table = np.asarray(tf.pages[0].tags[50712].value)
        assert tf.pages[0].tags[258].value == 12
    assert table.size == 4096 and raw.data.max() > 4095
    assert raw.data.max() <= table[-1]
    high = np.unique(raw.data[raw.data > 4095])
    assert np.isin(high, table).all()  # only table outputs occur above the 12-bit range
    assert raw.levels.linearization is None and raw.tags["linearization_applied_by_libraw"]
    assert raw.levels.black.ravel().tolist() == [512.0] and raw.levels.white.tolist() == [65535.0]
    assert raw.default_crop == (8, 16, 2160, 4096)
    np.testing.assert_array_equal(raw.color.forward_matrix1[0], [0.40018, 0.46878, 0.09517])


def test_lg_linear_raw_pixels_and_applied_polynomials() -> None:
    """LinearRaw lossy DNG: LibRaw decodes the JPEG tiles and maps them through the
    OpcodeList2 MapPolynomials to 16 bits; we check that with Pillow + our parser."""
    from PIL import Image

    from oneinch.raw.opcodes import parse_opcode_list

    path = DECODABLE / "lg_g4_h815_linearraw_lossy_1mp.dng"
    raw = open_raw(path)
    assert raw.is_linear and raw.cfa is None and raw.data.shape == (338, 600, 3)
    with tifffile.TiffFile(path) as tf:
        rp = _raw_page(tf)
        offs, cnts = rp.tags[324].value, rp.tags[325].value
        ops = parse_opcode_list(rp.tags[51009].value)
    buf = path.read_bytes()
    tiles = [
        np.asarray(Image.open(io.BytesIO(buf[o : o + c]))) for o, c in zip(offs, cnts, strict=False)
    ]
    jpeg = np.concatenate(tiles, axis=1)[:338, :600].astype(np.float64) / 255
    expect = (
        np.stack(
            [
                np.polyval(op.params["Coefficient"][::-1], jpeg[..., op.params["Plane"]])
                for op in ops
            ],
            axis=-1,
        )
        * 65535
    )
    err = np.abs(raw.data - expect)
    assert np.median(err) <= 1.0  # same JPEG decode up to IDCT rounding
    assert 2 not in raw.opcodes and len(raw.tags["opcodes_applied"][2]) == 3
    assert raw.levels.white.tolist() == [65535.0] * 3
    assert raw.shot.make == "LG Mobile" and raw.shot.model == "LG-H815"


def test_embedded_preview_lg() -> None:
    from PIL import Image

    path = DECODABLE / "lg_g4_h815_linearraw_lossy_1mp.dng"
    pv = embedded_preview(path)
    assert pv is not None and pv.dtype == np.uint8 and pv.shape == (144, 256, 3)
    with tifffile.TiffFile(path) as tf:
        o, c = tf.pages[0].tags[273].value[0], tf.pages[0].tags[279].value[0]
    ref = np.asarray(Image.open(io.BytesIO(path.read_bytes()[o : o + c])).convert("RGB"))
    np.testing.assert_array_equal(pv, ref)
    assert embedded_preview(DECODABLE / "gopro_hero7_GOPR9231_gpr2dng.dng") is None


def test_libraw_metadata_path_agrees_with_dng_tags() -> None:
    """The non-DNG (LibRaw-only) path, checked on a DNG where the tags are the truth."""
    from oneinch.raw.reader import _libraw_pattern

    path = DECODABLE / "gopro_hero6_GOPR0024_gpr2dng.dng"
    raw = open_raw(path)
    with rawpy.imread(str(path)) as rp:
        cfa = _libraw_pattern(rp, path)
        levels = libraw_levels(rp, cfa, 1)
    assert cfa == raw.cfa
    assert levels.white.tolist() == raw.levels.white.tolist()
    np.testing.assert_array_equal(levels.black, raw.levels.black)


# ------------------------------------------------------------------ bad inputs


def _assert_one_line(err: BaseException, path) -> None:
    msg = str(err)
    assert str(path) in msg and "\n" not in msg and len(msg) < 300


METADATA_ONLY = sorted((SHARED / "raw" / "metadata_only").iterdir()) + sorted(
    (SHARED / "dng" / "metadata_only").iterdir()
)


@pytest.mark.parametrize("path", METADATA_ONLY, ids=lambda p: p.name)
def test_header_only_files_are_input_errors(path) -> None:
    before = sha256(path)
    with pytest.raises(InputError) as e:
        open_raw(path)
    _assert_one_line(e.value, path)
    assert sha256(path) == before


@pytest.mark.parametrize(
    "path", sorted((SHARED / "dng" / "gpr_vc5").iterdir()), ids=lambda p: p.name
)
def test_gpr_vc5_is_unsupported(path) -> None:
    before = sha256(path)
    with pytest.raises(UnsupportedError) as e:
        open_raw(path)
    _assert_one_line(e.value, path)
    assert "VC-5" in str(e.value) and "gpr_tools" in str(e.value)
    assert sha256(path) == before


def test_missing_dir_empty_notraw(tmp_path) -> None:
    cases = {
        tmp_path / "nope.dng": "not found",
        tmp_path: "directory",
    }
    empty = tmp_path / "empty.dng"
    empty.write_bytes(b"")
    cases[empty] = "empty"
    png = SHARED / "benchmarks" / "kodak24" / "kodim01.png"
    cases[png] = "not a raw"
    heic = tmp_path / "x.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40)
    cases[heic] = "not a raw"
    tif = SHARED / "benchmarks" / "mcmaster18" / "1.tif"
    cases[tif] = "LibRaw"
    for path, needle in cases.items():
        with pytest.raises(InputError) as e:
            open_raw(path)
        _assert_one_line(e.value, path)
        assert needle in str(e.value), (path, str(e.value))


def test_truncated_dng(tmp_path) -> None:
    src = DECODABLE / "gopro_hero7_GOPR9231_gpr2dng.dng"
    cut = tmp_path / "cut.dng"
    with open(src, "rb") as f:
        cut.write_bytes(f.read(2_000_000))
    before = sha256(cut)
    with pytest.raises(InputError) as e:
        open_raw(cut)
    _assert_one_line(e.value, cut)
    assert "truncated" in str(e.value)
    assert sha256(cut) == before


def _tiff_declaring(width: int, height: int) -> bytes:
    """A minimal little-endian TIFF whose IFD declares width x height with a 2-byte strip."""
    entries = [
        (254, 4, 1, 0), (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 16),
        (259, 3, 1, 1), (262, 3, 1, 32803), (273, 4, 1, 8 + 2 + 12 * 9 + 4), (277, 3, 1, 1),
        (279, 4, 1, 2),
    ]  # fmt: skip
    ifd = struct.pack("<H", len(entries))
    for code, typ, count, value in entries:
        fmt = "<HHIHH" if typ == 3 else "<HHII"
        ifd += (
            struct.pack(fmt, code, typ, count, value, 0)
            if typ == 3
            else struct.pack(fmt, code, typ, count, value)
        )
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + b"\x00\x00"


def test_gigapixel_refused_before_decoding(tmp_path) -> None:
    big = tmp_path / "big.dng"
    big.write_bytes(_tiff_declaring(40_000, 30_000))
    with pytest.raises(InputError) as e:
        open_raw(big)
    _assert_one_line(e.value, big)
    assert "gigapixel" in str(e.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable(tmp_path) -> None:
    p = tmp_path / "locked.dng"
    shutil.copy(DECODABLE / "lg_g4_h815_linearraw_lossy_1mp.dng", p)
    p.chmod(0)
    try:
        with pytest.raises(InputError) as e:
            open_raw(p)
        assert "permission" in str(e.value)
    finally:
        p.chmod(0o600)


@pytest.mark.parametrize(
    "name", ["gopro_hero7_GOPR9231_gpr2dng.dng", "gopro_fusion_front_GPFR7066_gpr2dng.dng"]
)
def test_plain_dng_read_without_libraw_equals_libraw(shared, monkeypatch, name):
    """Uncompressed 16-bit CFA DNGs are read by tifffile alone; every field of the RawImage is
    what the LibRaw path gives (the GoPro files carry GainMap / WarpRectilinear opcodes)."""
    import dataclasses

    from oneinch.raw import reader

    path = shared / "dng" / "decodable" / name
    fast = reader.open_raw(path)
    monkeypatch.setattr(reader, "_plain_cfa", lambda raw: False)
    slow = reader.open_raw(path)
    assert fast.data.dtype == np.uint16 and np.array_equal(fast.data, slow.data)
    for f in dataclasses.fields(fast):
        if f.name != "data":
            assert repr(getattr(fast, f.name)) == repr(getattr(slow, f.name)), f.name


def test_all_zero_sensor_data_is_one_clear_error(tmp_path):
    """A DNG whose every sample is zero (header-only or blanked) is refused by name; one
    non-zero sample in the last row is enough to read it."""
    from dataclasses import replace

    from oneinch.raw.dng import write_dng
    from oneinch.raw.reader import _all_zero
    from oneinch.synthetic import demo_scene, unprocess

    raw, _ = unprocess(demo_scene(64, 96), iso=100, seed=1)
    blank = tmp_path / "blank.dng"
    write_dng(blank, replace(raw, data=np.zeros_like(raw.data)))
    with pytest.raises(InputError, match="all pixels are zero") as e:
        open_raw(blank)
    assert "blank.dng" in str(e.value)
    data = np.zeros_like(raw.data)
    data[-1, -1] = 1
    one = tmp_path / "one.dng"
    write_dng(one, replace(raw, data=data))
    assert open_raw(one).data.max() == 1
    assert _all_zero(np.zeros((2, 3), np.uint16)) and not _all_zero(np.array([0, 7], np.uint16))
    assert not _all_zero(np.array([0.0, -1.0])) and _all_zero(np.zeros(0, np.uint16))
    big = np.zeros((300, 40), np.uint16)  # tall enough for the every-64th-row look first
    assert _all_zero(big)
    big[65, 3] = 2  # not on a looked-at row: the full scan still finds it
    assert not _all_zero(big)
    big[65, 3], big[128, 0] = 0, 9  # on one
    assert not _all_zero(big)


def test_plain_dng_pixels_are_a_copy_on_write_map_of_the_file(tmp_path):
    """An uncompressed DNG's samples are mapped from the file, not read into new memory: the
    array is a view of a memory map with tifffile's values; writing into it (no stage does)
    changes a private copy, never the input file."""
    import mmap

    src = tmp_path / "hero7.dng"
    shutil.copy(DECODABLE / "gopro_hero7_GOPR9231_gpr2dng.dng", src)
    before = sha256(src)
    raw = open_raw(src)
    base = raw.data
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)
    with tifffile.TiffFile(src) as tf:
        expected = _raw_page(tf).asarray()
    assert np.array_equal(raw.data, expected[: raw.data.shape[0], : raw.data.shape[1]])
    assert raw.data.flags.writeable
    raw.data[:8, :8] = 12345
    del raw, base
    assert sha256(src) == before


def test_plain_dng_is_read_when_it_cannot_be_mapped(tmp_path, monkeypatch):
    """Where the file cannot be memory-mapped (some network or FUSE file systems refuse), the
    samples are read into memory instead: the same values, no error."""
    import mmap

    from oneinch.raw import reader

    src = DECODABLE / "gopro_hero7_GOPR9231_gpr2dng.dng"
    mapped = open_raw(src)
    real = mmap.mmap

    class Refusing(real):
        def __new__(cls, *a, **k):
            raise OSError(19, "No such device")

    monkeypatch.setattr(reader.mmap, "mmap", Refusing)
    read = open_raw(src)
    base = read.data
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    assert not (isinstance(base, memoryview) and isinstance(base.obj, real))
    assert np.array_equal(read.data, mapped.data)


def test_a_finished_photo_is_named_as_such(tmp_path):
    """Handing develop a JPEG, PNG, HEIF... says what it is and where it belongs, instead of
    'unrecognised header' with its bytes; and `frame` on a raw says to develop it."""
    import io

    from PIL import Image

    from oneinch.errors import InputError
    from oneinch.frame.files import frame_file
    from oneinch.raw import open_raw

    img = Image.new("RGB", (8, 8), (10, 20, 30))
    for fmt, name, word in (("JPEG", "a.jpg", "a JPEG image"), ("PNG", "a.png", "a PNG image"),
                            ("GIF", "a.gif", "a GIF image"), ("WEBP", "a.webp", "a WebP image")):
        buf = io.BytesIO()
        img.save(buf, fmt)
        (tmp_path / name).write_bytes(buf.getvalue())
        with pytest.raises(InputError, match=f"{word}, not a raw file.*frame"):
            open_raw(tmp_path / name)
    (tmp_path / "a.avif").write_bytes(b"\x00\x00\x00\x1cftypavif" + bytes(40))
    with pytest.raises(InputError, match="an AVIF image"):
        open_raw(tmp_path / "a.avif")
    from oneinch.synthetic import make_dng

    make_dng(tmp_path / "r.dng", np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(InputError, match="a raw file: develop it"):
        frame_file(tmp_path / "r.dng", tmp_path / "o.jpg")
    assert not (tmp_path / "o.jpg").exists()
    with pytest.raises(InputError, match=r"a directory.*oneinch batch"):  # and a folder
        open_raw(tmp_path)
