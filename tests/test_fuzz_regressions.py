"""Regression corpus of the fuzzer (fuzz/): inputs that once crashed a reader, now refused cleanly.

Every file in tests/fuzz_corpus is named ``<target>__<what>.<ext>`` and must give the verdict
'ok' or 'error' (a OneinchError naming the file) through the same target the fuzzer ran
(fuzz/targets.py). The explicit tests below pin the exact error each fix introduced.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "fuzz_corpus"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.mutate import TiffMap, mutate, opcode_mutate  # noqa: E402
from fuzz.run import target_of  # noqa: E402
from fuzz.targets import verdict  # noqa: E402

from oneinch.errors import InputError, OneinchError  # noqa: E402

CASES = sorted(p for p in CORPUS.iterdir() if "__" in p.name) if CORPUS.is_dir() else []


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_corpus_case_is_refused_cleanly(path: Path, tmp_path: Path) -> None:
    status, detail = verdict(target_of(path), path, tmp_path)
    assert status in ("ok", "error"), detail


def test_corpus_is_small() -> None:
    assert CASES, "regression corpus is empty"
    assert sum(p.stat().st_size for p in CASES) < 2 * 2**20


# ----------------------------------------------------------------------------- the fixes


def test_cube_with_size_but_no_table(tmp_path: Path) -> None:
    from oneinch.looks.lut import read_cube

    p = tmp_path / "empty.cube"
    p.write_text("LUT_3D_SIZE 2\n")
    with pytest.raises(InputError, match=r"empty\.cube.*0 of 8 table lines"):
        read_cube(p)


def test_recipe_nested_too_deep(tmp_path: Path) -> None:
    from oneinch.recipe import Recipe

    p = tmp_path / "deep.toml"
    p.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(InputError, match=r"deep\.toml.*nested too deeply"):
        Recipe.load(p)


def test_template_nested_too_deep(tmp_path: Path) -> None:
    from oneinch.frame.templates import read_template

    p = tmp_path / "deep.toml"
    p.write_text("kind = 'banner'\nx = " + "{a=" * 3000 + "1" + "}" * 3000 + "\n")
    with pytest.raises(InputError, match=r"deep\.toml.*nested too deeply"):
        read_template(p)


# ----------------------------------------------------------------------------- the mutators


def test_mutations_are_deterministic() -> None:
    import random

    data = (CORPUS / "cube__size_without_table.cube").read_bytes() * 20
    a = mutate(data, "cube", random.Random(7))
    b = mutate(data, "cube", random.Random(7))
    assert a == b


def test_tiff_map_finds_the_dng_ifd_and_opcode_lists(tmp_path: Path) -> None:
    from oneinch.raw.dng import write_dng
    from oneinch.raw.opcodes import make_opcode, parse_opcode_list
    from oneinch.synthetic import unprocess

    raw, _ = unprocess(np.full((8, 12, 3), 0.5, np.float32))
    op = make_opcode("FixVignetteRadial", k0=0.1, k1=0, k2=0, k3=0, k4=0, cx=0.5, cy=0.5)
    from dataclasses import replace

    p = tmp_path / "t.dng"
    write_dng(p, replace(raw, opcodes={3: (op,)}))
    b = p.read_bytes()
    m = TiffMap(b)
    tags = {e[1] for e in m.entries}
    assert {256, 257, 273, 50706, 51022} <= tags
    entry = next(e for e in m.entries if e[1] == 51022)
    pos, n = m.value_pos(b, entry)
    blob = b[pos : pos + n]
    assert parse_opcode_list(blob)[0].name == "FixVignetteRadial"
    import random

    seen = set()
    for k in range(40):  # corrupted lists are refused with InputError, never anything else
        x = bytearray(blob)
        opcode_mutate(x, random.Random(k))
        try:
            parse_opcode_list(bytes(x), "t.dng")
            seen.add("ok")
        except InputError:
            seen.add("error")
    assert "error" in seen


def test_png_mutation_keeps_crcs_valid() -> None:
    from fuzz.mutate import png_fix_crcs
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    b = bytearray(buf.getvalue())
    b[-20] ^= 0xFF  # corrupt some chunk data, then repair the CRCs
    png_fix_crcs(b)
    try:
        Image.open(io.BytesIO(bytes(b))).load()
    except OSError as e:  # decoding may fail, but not on a CRC
        assert "crc" not in str(e).lower()


def test_verdict_flags_foreign_exceptions(tmp_path: Path, monkeypatch) -> None:
    import fuzz.targets as t

    def boom(target, path, workdir):
        raise KeyError("x")

    monkeypatch.setattr(t, "run_target", boom)
    status, detail = t.verdict("raw", tmp_path / "a.dng", tmp_path)
    assert status == "finding" and detail.startswith("KeyError")

    def nameless(target, path, workdir):
        raise OneinchError("something is wrong")

    monkeypatch.setattr(t, "run_target", nameless)
    assert t.verdict("raw", tmp_path / "a.dng", tmp_path)[0] == "finding"


def _dng_with_opcodes(path: Path) -> None:
    from dataclasses import replace

    from oneinch.raw.dng import write_dng
    from oneinch.raw.opcodes import make_opcode
    from oneinch.synthetic import unprocess

    raw, _ = unprocess(np.full((16, 24, 3), 0.4, np.float32))
    poly = make_opcode(
        "MapPolynomial", Top=0, Left=0, Bottom=16, Right=24, Plane=0, Planes=1, RowPitch=1,
        ColPitch=1, Coefficient=np.array([0.0, 1.0]),
    )  # fmt: skip
    write_dng(path, replace(raw, opcodes={2: (poly,)}))


def _patch_tag_value(path: Path, tag: int, data: bytes, at: int = 0) -> None:
    b = bytearray(path.read_bytes())
    m = TiffMap(bytes(b))
    entry = next(e for e in m.entries if e[1] == tag)
    pos, _ = m.value_pos(bytes(b), entry)
    b[pos + at : pos + at + len(data)] = data
    path.write_bytes(bytes(b))


def test_opcode_count_checked_before_libraw(tmp_path: Path) -> None:
    """OpcodeList2 declaring 2^32-1 opcodes made LibRaw (which applies list 2 for lossy DNGs)
    spin for minutes; the list is now parsed, and refused, before LibRaw sees the file."""
    from oneinch.raw import open_raw

    p = tmp_path / "ops.dng"
    _dng_with_opcodes(p)
    _patch_tag_value(p, 51009, b"\xff\xff\xff\xff")
    with pytest.raises(InputError, match=r"ops\.dng.*declares 4294967295 opcodes"):
        open_raw(p)


def test_tag_of_wrong_type_is_input_error(tmp_path: Path) -> None:
    """A raw IFD whose BitsPerSample became a text tag raised TypeError/ValueError."""
    import struct

    from oneinch.raw import open_raw

    p = tmp_path / "types.dng"
    _dng_with_opcodes(p)
    b = bytearray(p.read_bytes())
    m = TiffMap(bytes(b))
    e = next(x for x in m.entries if x[1] == 50717)  # WhiteLevel -> ASCII
    struct.pack_into("<H", b, e[0] + 2, 2)
    p.write_bytes(bytes(b))
    try:
        open_raw(p)
    except OneinchError as err:
        assert "types.dng" in str(err)


def test_develop_errors_name_the_file(tmp_path: Path) -> None:
    """Stage errors (no colour matrix...) did not say which file they were about."""
    from dataclasses import replace

    from oneinch.develop import develop
    from oneinch.raw.image import CameraColor
    from oneinch.synthetic import unprocess

    raw, _ = unprocess(np.full((16, 24, 3), 0.4, np.float32), path=str(tmp_path / "nocm.dng"))
    raw = replace(raw, color=CameraColor(source="dng"))
    with pytest.raises(OneinchError, match=r"nocm\.dng"):
        develop(raw)


def test_frame_refuses_bomb_before_decoding(tmp_path: Path) -> None:
    """A 7 kB PNG whose IHDR declared 100000x100000 px reached Pillow's allocator
    (DecompressionBombError / MemoryError); now refused from the header."""
    import struct
    import zlib

    from PIL import Image

    from oneinch.frame import frame_file

    p = tmp_path / "bomb.png"
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    b = bytearray(buf.getvalue())
    struct.pack_into(">II", b, 16, 12000, 12000)  # 144 MP: under Pillow's bomb error
    struct.pack_into(">I", b, 29, zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    p.write_bytes(bytes(b))
    with pytest.raises(InputError, match=r"bomb\.png.*declares 12000x12000 pixels"):
        frame_file(p, tmp_path / "out.jpg")
    assert not (tmp_path / "out.jpg").exists()


def test_frame_corrupt_exif_type(tmp_path: Path) -> None:
    """An EXIF tag whose type no longer fits its value made Pillow's EXIF writer raise
    struct.error / AttributeError; now an InputError naming the file."""
    from PIL import Image

    from oneinch.frame import frame_file

    img = Image.fromarray(np.full((24, 32, 3), 128, np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "Xiaomi"
    exif[0x0131] = 1.5  # Software as a float: Pillow cannot write it back
    p = tmp_path / "badexif.tif"
    img.save(p, format="TIFF")
    import PIL.TiffImagePlugin as tip

    def fake_getexif(self):
        return exif

    orig = Image.Image.getexif
    Image.Image.getexif = fake_getexif
    try:
        with pytest.raises(InputError, match=r"badexif\.tif.*EXIF"):
            frame_file(p, tmp_path / "out.jpg")
    finally:
        Image.Image.getexif = orig
    assert tip and not (tmp_path / "out.jpg").exists()


def test_hald_bomb_is_input_error(tmp_path: Path) -> None:
    import struct
    import zlib

    from PIL import Image

    from oneinch.looks.lut import load_lut

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    b = bytearray(buf.getvalue())
    struct.pack_into(">II", b, 16, 524288, 524288)
    struct.pack_into(">I", b, 29, zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    p = tmp_path / "bomb.png"
    p.write_bytes(bytes(b))
    with pytest.raises(InputError, match=r"bomb\.png"):
        load_lut(p)


def test_template_section_of_wrong_type(tmp_path: Path) -> None:
    from oneinch.errors import OptionError
    from oneinch.frame.templates import read_template

    p = tmp_path / "t.toml"
    p.write_text("kind = 'banner'\n[fonts]\nprimary = 7\n")
    with pytest.raises(OptionError, match=r"t\.toml.*font primary"):
        read_template(p)
    p.write_text("kind = 'banner'\ncolours = 3\n")
    with pytest.raises(OptionError, match=r"t\.toml.*must be a table"):
        read_template(p)
