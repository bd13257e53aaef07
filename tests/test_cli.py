"""The command: develop, inspect, bad inputs (one line, exit 2, input untouched)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DECODABLE, KODAK, SHARED, load_rgb8, sha256
from oneinch.synthetic import make_dng

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "oneinch", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=300,
    )


@pytest.fixture(scope="module")
def small_dng(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("dng")
    p = d / "kodim23.dng"
    make_dng(p, load_rgb8(KODAK / "kodim23.png"), iso=400)
    return p


def test_develop_writes_jpeg_with_icc_and_exif(small_dng, tmp_path):
    from PIL import Image

    before = sha256(small_dng)
    res = run("develop", str(small_dng), "-o", str(tmp_path))
    assert res.returncode == 0, res.stderr
    out = tmp_path / "kodim23.jpg"
    assert out.is_file()
    assert sha256(small_dng) == before
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.size == (768, 512)
        assert im.info.get("icc_profile")
        exif = im.getexif()
        sub = exif.get_ifd(0x8769)
        assert exif.get(0x010F) == "oneinch" and exif.get(0x0110) == "Synthetic Sensor"
        assert abs(float(sub.get(0x829A)) - 0.01) < 1e-9  # ExposureTime
        assert int(sub.get(0x8827)) == 400  # ISO
        assert sub.get(0x9003) == "2026:11:22 12:00:00"
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("fmt,suffix", [("tiff", ".tif"), ("png", ".png")])
def test_develop_other_formats_and_sizes(small_dng, tmp_path, fmt, suffix):
    res = run(
        "develop",
        str(small_dng),
        "-o",
        str(tmp_path),
        "--format",
        fmt,
        "--size",
        "300",
        "--space",
        "p3",
        "--wb",
        "5500,5",
        "--exposure",
        "0.5",
    )
    assert res.returncode == 0, res.stderr
    out = tmp_path / ("kodim23" + suffix)
    from PIL import Image

    if fmt == "tiff":
        import tifffile

        a = tifffile.imread(out)
        assert a.dtype == np.uint16 and max(a.shape[:2]) == 300
    else:
        with Image.open(out) as im:
            assert max(im.size) == 300


def test_inspect_json(small_dng):
    res = run("inspect", str(small_dng), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    text = json.dumps(info)
    assert "Synthetic Sensor" in text and "RGGB" in text


def test_inspect_table_on_real_dng():
    res = run("inspect", str(DECODABLE / "gopro_hero7_GOPR9231_gpr2dng.dng"))
    assert res.returncode == 0, res.stderr
    assert "GainMap" in res.stdout


def _bad_inputs(tmp: Path) -> list[Path]:
    empty = tmp / "empty.dng"
    empty.write_bytes(b"")
    text = tmp / "notes.dng"
    text.write_text("this is not a raw file\n" * 20)
    trunc = tmp / "truncated.dng"
    trunc.write_bytes((DECODABLE / "blackmagic_pocket4k_12bit_cfa.dng").read_bytes()[:40000])
    huge = tmp / "huge.dng"
    _write_huge_header(huge)
    files = [empty, text, trunc, huge, tmp / "missing.dng", tmp]
    files += sorted((SHARED / "raw" / "metadata_only").iterdir())
    files += sorted((SHARED / "dng" / "gpr_vc5").glob("*.GPR"))
    files += sorted((SHARED / "dng" / "metadata_only").glob("*.dng"))
    return files


def _write_huge_header(path: Path) -> None:
    """A TIFF/DNG header declaring a 100000 x 100000 CFA image with no data behind it."""
    import struct

    entries = [
        (254, 4, 1, 0),
        (256, 4, 1, 100_000),
        (257, 4, 1, 100_000),
        (258, 3, 1, 16),
        (259, 3, 1, 1),
        (262, 3, 1, 32803),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (279, 4, 1, 20_000_000_000 % (1 << 32)),
        (50706, 1, 4, 0x00000401),
    ]
    body = struct.pack("<H", len(entries))
    for tag, typ, cnt, val in entries:
        if typ == 3:
            body += struct.pack("<HHIHH", tag, typ, cnt, val, 0)
        elif typ == 1:
            body += struct.pack("<HHI4B", tag, typ, cnt, 1, 4, 0, 0)
        else:
            body += struct.pack("<HHII", tag, typ, cnt, val)
    body += struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + body)


def test_bad_inputs_one_line_exit_2_input_unchanged(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    for f in _bad_inputs(tmp_path):
        before = sha256(f) if f.is_file() else None
        res = run("develop", str(f), "-o", str(outdir))
        assert res.returncode == 2, (f, res.returncode, res.stderr)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, (f, res.stderr)
        assert lines[0].startswith("oneinch: error: ") and f.name in lines[0], lines[0]
        assert "Traceback" not in res.stderr
        if before:
            assert sha256(f) == before
    assert list(outdir.iterdir()) == []


def test_unwritable_output_is_one_line_and_leaves_nothing(small_dng, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    afile = tmp_path / "afile"
    afile.write_text("x")
    targets = [tmp_path / "nofolder" / "x.jpg", afile / "x.jpg"]
    if os.geteuid() != 0:  # root ignores permission bits
        ro.chmod(0o500)
        targets.append(ro / "x.jpg")
    try:
        for target in targets:
            res = run("develop", str(small_dng), "-o", str(target))
            assert res.returncode == 2, res.stderr
            assert len(res.stderr.strip().splitlines()) == 1, res.stderr
            assert str(target.parent) in res.stderr
    finally:
        ro.chmod(0o700)
    assert list(ro.iterdir()) == []
    assert afile.read_text() == "x"


def test_output_folder_is_made(small_dng, tmp_path):
    """`-o out/` (or `-o out` for several inputs), as the README writes it, makes the folder,
    as `oneinch frame` and `oneinch batch` do; a file's missing folder stays an error."""
    copy = tmp_path / "copy.dng"
    shutil.copy(small_dng, copy)
    res = run("develop", str(small_dng), str(copy), "-o", str(tmp_path / "new" / "deep"),
              "--size", "120")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "new" / "deep").iterdir()) == [
        "copy.jpg", "kodim23.jpg"]
    res = run("develop", str(small_dng), "-o", str(tmp_path / "one") + "/", "--size", "120")
    assert res.returncode == 0, res.stderr
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["kodim23.jpg"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = run("develop", str(small_dng), "-o", str(afile) + "/", "--size", "120")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "afile" in res.stderr and afile.read_text() == "x"


def test_version_and_bare_command():
    """`oneinch --version` says it; a bare `oneinch` shows the help as help (it used to be
    squeezed into one 'error' line, like a usage error's)."""
    from oneinch import __version__

    res = run("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"oneinch {__version__}", res.stderr
    res = run()
    lines = res.stderr.splitlines()
    assert res.returncode == 2 and lines[0].startswith("Usage: oneinch"), res.stderr
    assert any(ln.split()[:1] == ["develop"] for ln in lines) and "error" not in res.stderr


def test_ctrl_c_inside_a_compiled_call_is_an_interrupt(small_dng, tmp_path, monkeypatch, capsys):
    """A SIGINT that arrives while a numba kernel runs surfaces as SystemError('... returned a
    result with an exception set') caused by KeyboardInterrupt: that is Ctrl-C (exit 130),
    not an 'internal error, please report it' (exit 1)."""
    from oneinch import cli

    def interrupted(*a, **k):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise SystemError("CPUDispatcher returned a result with an exception set") from ki

    monkeypatch.setattr(cli, "_develop_one", interrupted)
    assert cli.main(["develop", str(small_dng), "-o", str(tmp_path / "x.jpg")]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "internal error" not in err


def test_wrong_options_are_one_line(small_dng, tmp_path):
    for args in (
        ["--format", "gif"],
        ["--space", "adobe"],
        ["--wb", "warm"],
        ["--quality", "0"],
        ["--denoise", "2"],
        ["--demosaic", "magic"],
        ["--bogus"],
        ["--wb", "5000,10,3"],  # (the third part was dropped)
        ["--wb", ""],  # (was as-shot)
    ):
        res = run("develop", str(small_dng), "-o", str(tmp_path), *args)
        assert res.returncode == 2, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
    # a binned preview never demosaics: the method used to go unchecked there
    res = run("develop", str(small_dng), "-o", str(tmp_path), "--size", "200",
              "--demosaic", "magic")
    assert res.returncode == 2 and "unknown demosaic method 'magic'" in res.stderr
    assert not list(tmp_path.glob("*.jpg"))


def test_batch_goes_on_past_a_bad_file(small_dng, tmp_path):
    bad = tmp_path / "bad.dng"
    bad.write_bytes(b"II*\x00garbage")
    good2 = tmp_path / "copy.dng"
    shutil.copy(small_dng, good2)
    out = tmp_path / "out"
    out.mkdir()
    res = run("develop", str(small_dng), str(bad), str(good2), "-o", str(out), "--size", "200")
    assert res.returncode == 2
    assert sorted(p.name for p in out.iterdir()) == ["copy.jpg", "kodim23.jpg"]
    assert "1 of 3 files failed" in res.stderr and "bad.dng" in res.stderr


def test_sidecar_recipe_is_used_and_options_override_it(small_dng, tmp_path):
    from PIL import Image

    from oneinch.recipe import Recipe, sidecar_path

    d = tmp_path / "in"
    d.mkdir()
    src = d / "shot.dng"
    shutil.copy(small_dng, src)
    Recipe().with_(output={"size": 200}, look={"style": "bw-hc"}).save(sidecar_path(src))
    out = tmp_path / "out"
    out.mkdir()
    assert run("develop", str(src), "-o", str(out)).returncode == 0
    with Image.open(out / "shot.jpg") as im:
        rgb = np.asarray(im.convert("RGB"), np.float32)
        assert max(im.size) == 200
    assert np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max() < 6  # monochrome style
    assert run("develop", str(src), "-o", str(out), "--size", "300").returncode == 0
    with Image.open(out / "shot.jpg") as im:
        assert max(im.size) == 300


@pytest.mark.parametrize("peer", ["rawtherapee-cli", "darktable-cli"])
def test_peers_open_our_synthetic_dng(small_dng, tmp_path, peer):
    """synthetic.py writes DNGs that the open peers develop (when they are installed)."""
    from PIL import Image

    if not shutil.which(peer):
        pytest.skip(f"{peer} not installed (make bench-peers installs it)")
    out = tmp_path / "peer.jpg"
    if peer == "rawtherapee-cli":
        cmd = [peer, "-o", str(out), "-d", "-Y", "-c", str(small_dng)]
    else:
        cmd = [peer, str(small_dng), str(out), "--core", "--configdir", str(tmp_path / "dt")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.is_file(), res.stderr[-500:]
    with Image.open(out) as im:
        a = np.asarray(im.convert("RGB"), np.float32)
    assert a.shape[0] >= 500 and 20 < a.mean() < 235 and a.std() > 10


def test_reuse_freed_memory_sets_glibc_threshold():
    """The command asks glibc to reuse freed large blocks (mallopt accepted on glibc Linux)."""
    import sys

    from oneinch.cli import reuse_freed_memory

    assert reuse_freed_memory() is sys.platform.startswith("linux")


def _faults_printed_by(code: str) -> int:
    """Run ``code`` in a new interpreter with 4 KB pages (page faults count bytes); the last
    number it prints."""
    env = dict(os.environ, NUMPY_MADVISE_HUGEPAGE="0")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 0, res.stderr[-500:]
    return int(res.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_reuse_freed_memory_keeps_freed_blocks_resident():
    """A strip's temporaries, freed and allocated again, reuse the same resident memory, in
    the strip threads too: five rounds of two threads each allocating and freeing 12 and
    36 MB blocks five times fault in almost nothing (with only the mmap threshold raised:
    ~19000 page faults on the main thread, as glibc trimmed the heap's top at every free;
    with the top pad too, ~59000 in the threads' own heaps)."""
    code = (
        "import resource, threading\n"
        "import numpy as np\n"
        "from oneinch.cli import reuse_freed_memory\n"
        "reuse_freed_memory()\n"
        "def faults():\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "def work():\n"
        "    for _ in range(5):\n"
        "        a = np.ones(3 << 20, np.float32); del a\n"
        "        b = np.ones(9 << 20, np.float32); del b\n"
        "def rounds():\n"
        "    ts = [threading.Thread(target=work) for _ in range(2)]\n"
        "    [t.start() for t in ts]\n"
        "    [t.join() for t in ts]\n"
        "held = [np.ones(9 << 20, np.float32) for _ in range(3)]\n"  # the most two threads
        "del held\n"  # can hold at once (36 + 36 MB), with room to spare, faulted in once:
        "rounds()\n"  # warm-up rounds alone had not always reached that peak (under load,
        "f0 = faults()\n"  # a measured round did: ~10000 faults, one suite run in three)
        "for _ in range(5):\n"
        "    rounds()\n"
        "print(faults() - f0)\n"
    )
    assert _faults_printed_by(code) < 10000  # (59000 with per-thread heaps)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
@pytest.mark.parametrize("prefault_mb", [0, 64])
def test_prefaulted_heap_serves_the_first_allocations(prefault_mb):
    """prefault_heap faults a block in on its own thread and frees it to malloc, which keeps
    it: a 48 MB array made afterwards (a strip's buffer in the first develop) lands on
    resident pages: no faults, against ~12250 (one per 4 KB page) without it."""
    code = (
        "import resource, sys\n"
        "import numpy as np\n"
        "import oneinch.cli as c\n"
        "assert c.reuse_freed_memory()\n"
        f"t = c.prefault_heap({prefault_mb} << 20)\n"
        "t is None or t.join()\n"
        "f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "a = np.ones(12 << 20, np.float32)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)\n"
    )
    faults = _faults_printed_by(code)
    if prefault_mb:
        assert faults < 1000, faults
    else:
        assert faults > 10000, faults  # (the test's premise: fresh pages fault)


def test_prefault_size_follows_the_largest_input(tmp_path):
    """2.5 bytes of heap a byte of the largest raw (a 100 MB 50 MP DNG: 250 MB), at most
    PREFAULT_MAX; missing files count 0 (the develop reports them)."""
    from oneinch import cli

    small, big = tmp_path / "a.dng", tmp_path / "b.dng"
    small.write_bytes(b"\0" * 1000)
    big.write_bytes(b"\0" * 40_000)
    assert cli._prefault_bytes([small, big, tmp_path / "missing.dng"]) == 100_000
    assert cli._prefault_bytes([tmp_path / "missing.dng"]) == 0
    with open(big, "r+b") as f:
        f.truncate(10**9)  # sparse: a 1 GB file
    assert cli._prefault_bytes([big]) == cli.PREFAULT_MAX


def test_preview_prefault_follows_the_binned_size(tmp_path):
    """A preview faults in 2.5 float32 RGB images of its binned size (30 bytes a binned
    pixel), the binning as the develop picks it from the long edge of a 4:3 16-bit raw of
    the file's size; a preview that is not binned takes the full-size figure."""
    from oneinch import cli

    raw = tmp_path / "12mp.dng"
    with open(raw, "wb") as f:
        f.truncate(2 * 4096 * 3072)  # sparse: a 12.6 MP 16-bit raw's bytes, long edge 4096
    pixels = 4096 * 3072
    assert cli._prefault_bytes([raw], 2048) == int(30 * pixels / 4)  # binned 2x2
    assert cli._prefault_bytes([raw], 1024) == int(30 * pixels / 16)  # binned 4x4
    assert cli._prefault_bytes([raw], 3000) == int(2.5 * 2 * pixels)  # developed, resized
    assert cli._prefault_bytes([tmp_path / "missing.dng"], 2048) == 0


def test_command_environment_before_numpy():
    """The command's process starts numpy with one OpenBLAS thread (no idle pool spinning
    beside the strip threads) and without numpy's huge-page advice; a user's setting wins."""
    code = (
        "import os\n"
        "import oneinch.cli\n"
        "import numpy as np\n"
        "from numpy._core.multiarray import _set_madvise_hugepage\n"
        "np.ones((64, 64)) @ np.ones((64, 64))\n"
        "print(len(os.listdir('/proc/self/task')), _set_madvise_hugepage(True),\n"
        "      os.environ['OPENBLAS_NUM_THREADS'])\n"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMPY_MADVISE_HUGEPAGE")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 0, res.stderr[-500:]
    assert res.stdout.split() == ["1", "False", "1"]  # (OpenBLAS's pool: a thread a core)
    env.update(OPENBLAS_NUM_THREADS="2", NUMPY_MADVISE_HUGEPAGE="1")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.stdout.split() == ["2", "True", "2"]  # (what the first assertion tells apart)


def test_develop_imports_only_its_own_command():
    """`oneinch develop` does not import the other commands' modules (web app, frames,
    burst...) nor, for one file, the progress bar's library; `oneinch --help` still lists
    every command."""
    code = (
        "import sys\n"
        "from oneinch.cli import main\n"
        "rc = main(['develop', 'no-such-file.dng'])\n"
        "print(rc, sorted(m for m in sys.modules if m.startswith('oneinch.commands.')),\n"
        "      'rich' in sys.modules)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                       timeout=300)
    assert p.stdout.strip() == "2 [] False", p.stdout + p.stderr  # (one file: no bar, no rich)
    h = run("--help")
    assert h.returncode == 0
    for name in ("develop", "inspect", "looks", "frame", "burst", "profile", "batch", "serve"):
        assert name in h.stdout, name


def test_parsing_options_does_not_load_pydantic(small_dng, tmp_path):
    """typer 0.29 validates every option through a pydantic TypeAdapter (pydantic's import
    and a schema per option: +0.15 s on each command); pyproject keeps typer below it. A
    develop with options parsed and a file written never imports pydantic."""
    code = (
        "import sys\n"
        "from oneinch.cli import main\n"
        f"rc = main(['develop', {str(small_dng)!r}, '-o', {str(tmp_path / 'p.jpg')!r},\n"
        "            '--size', '200', '--exposure', '0.3', '--look', 'vibrant', '-q', '90'])\n"
        "print(rc, 'pydantic' in sys.modules)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                       timeout=300)
    assert p.stdout.strip() == "0 False", p.stdout + p.stderr
    assert (tmp_path / "p.jpg").stat().st_size > 1000


def test_command_exit_code_survives_the_exit_path(small_dng, tmp_path):
    """entry() freezes the garbage collector before exiting: the exit code and the written
    file are the command's (0 and a whole JPEG; 2 for a missing input)."""
    out = tmp_path / "x.jpg"
    p = run("develop", str(small_dng), "-o", str(out), "--size", "256")
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[-2:] == b"\xff\xd9"
    assert run("develop", str(tmp_path / "missing.dng")).returncode == 2


def test_exit_runs_exit_handlers_and_flushes(tmp_path):
    """finish() ends the process without the interpreter's teardown, but after the exit
    handlers (pools, temporary directories, logging) and with buffered output written."""
    marker = tmp_path / "ran"
    code = (
        "import atexit, sys, tempfile\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "t = tempfile.TemporaryDirectory()\n"
        "print(t.name, end='')\n"
        "from oneinch.cli import finish\n"
        "finish(3)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                       timeout=120)
    assert p.returncode == 3, p.stderr
    assert marker.read_text() == "ran"
    assert p.stdout and not os.path.exists(p.stdout)  # printed, then removed at exit


def test_output_options_reach_the_recipe(small_dng, tmp_path):
    """--bits, --profile, --lens, --transfer and --hdr-headroom were parsed and then dropped:
    `--bits 8 -o x.tif` wrote 16 bits and no bad value was refused."""
    import tifffile

    res = run("develop", str(small_dng), "-o", str(tmp_path / "b8.tif"), "--bits", "8",
              "--size", "200")
    assert res.returncode == 0, res.stderr
    assert tifffile.imread(tmp_path / "b8.tif").dtype == np.uint8
    for args in (["--bits", "7", "-o", str(tmp_path / "b7.tif")],
                 ["--transfer", "pq", "-o", str(tmp_path / "x.jpg")],
                 ["--profile", str(tmp_path / "missing.dcp")],
                 ["--lens", "bogus"],
                 ["--hdr-headroom", "99", "-f", "uhdr"]):
        res = run("develop", str(small_dng), "--size", "200", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b8.tif"]


def test_look_options_checked_before_any_file(tmp_path):
    """A bad --style, --strength, --frame or --lut is one line before any input is opened (the
    inputs here do not even exist); names are case-blind as --look's are."""
    missing = [str(tmp_path / "a.dng"), str(tmp_path / "b.dng")]
    for args, said in ((["--style", "bogus"], "unknown style 'bogus'"),
                       (["--style", "sepia", "--strength", "2"], "--strength 2.0"),
                       (["--strength", "0.5"], "needs a style or a LUT"),
                       (["--frame", "bogus"], "unknown frame layout 'bogus'"),
                       (["--lut", str(tmp_path / "none.cube")], "no such file")):
        res = run("develop", *missing, "-o", str(tmp_path / "out") + "/", *args)
        assert res.returncode == 2, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and said in lines[0], (args, res.stderr)
    assert not (tmp_path / "out").exists()


def test_case_blind_option_words(small_dng, tmp_path):
    res = run("develop", str(small_dng), "-o", str(tmp_path / "p.jpg"), "--size", "120",
              "--style", "Sepia", "--space", "P3", "-f", "JPEG", "--lens", "OFF")
    assert res.returncode == 0, res.stderr


def test_outputs_that_would_collide_or_mislead_are_refused(small_dng, tmp_path):
    """Two inputs of one name into one folder overwrote each other; `-o one.jpg` for two
    inputs made a folder named one.jpg; `-o out.txt` and `-o noext` wrote JPEG bytes there.
    Each is one line before anything is developed, and nothing is written."""
    for sub in ("s1", "s2"):
        (tmp_path / sub).mkdir()
        shutil.copy(small_dng, tmp_path / sub / "x.dng")
    a, b = str(tmp_path / "s1" / "x.dng"), str(tmp_path / "s2" / "x.dng")
    out = tmp_path / "out"
    for args, said in (([a, b, "-o", f"{out}/"], "would both be written to"),
                       ([a, str(small_dng), "-o", str(out / "one.jpg")], "names one file"),
                       ([a, "-o", str(out / "x.txt")], "'.txt' is not an image format"),
                       ([a, "-o", str(out / "noext")], "name the file with its format")):
        res = run("develop", "--size", "100", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and said in res.stderr, res.stderr
    assert not out.exists()


def test_daemon_idle_must_be_a_number_of_minutes(tmp_path):
    """`daemon start --idle nan` started a zygote that never stopped."""
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    for idle in ("nan", "inf", "-1"):
        res = subprocess.run([sys.executable, "-m", "oneinch", "daemon", "start", "--idle", idle],
                             capture_output=True, text=True, timeout=60,
                             env={**ENV, "ONEINCH_RUNTIME_DIR": str(rt)})
        assert res.returncode == 2 and "--idle" in res.stderr, (idle, res.stderr)
    assert list(rt.iterdir()) == []


def test_lut_layout_option(small_dng, tmp_path):
    """An image LUT whose layout cannot be told from its pixels (a 64x64 image of noise reads
    as a level-4 HaldCLUT or as 8x8 tiles equally) was refused with 'declare the layout',
    which only a recipe could."""
    from PIL import Image

    lut = tmp_path / "noise.png"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(lut)
    res = run("develop", str(small_dng), "-o", str(tmp_path / "c.jpg"), "--size", "100",
              "--lut", str(lut))
    assert res.returncode == 2 and "declare the layout" in res.stderr
    res = run("develop", str(small_dng), "-o", str(tmp_path / "a.jpg"), "--size", "100",
              "--lut", str(lut), "--lut-layout", "HALD")
    assert res.returncode == 0, res.stderr
    res = run("develop", str(small_dng), "-o", str(tmp_path / "b.jpg"), "--size", "100",
              "--lut", str(lut), "--lut-layout", "spiral")
    assert res.returncode == 2 and "--lut-layout 'spiral'" in res.stderr
