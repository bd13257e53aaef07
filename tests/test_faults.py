"""Fault injection: full disk, unwritable output, a file vanishing mid-batch, SIGKILL mid-write.

What must hold every time: no partial file at the final output name, the input unchanged
(sha256), a one-line error naming the file. After SIGKILL a hidden ``.NAME.*.part`` temp file
may remain (the killed process cannot clean it up); it never carries the output's name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from oneinch.errors import OutputError
from oneinch.recipe import Recipe

SMALL = Recipe().with_(output={"size": 64})


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _scene(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([x / w, y / h, np.full_like(x, 0.4)], axis=-1)


@pytest.fixture(scope="module")
def dng(tmp_path_factory) -> Path:
    from oneinch.synthetic import make_dng

    p = tmp_path_factory.mktemp("faults") / "in.dng"
    make_dng(p, _scene(32, 48))
    p.chmod(0o444)
    return p


def _leftovers(folder: Path) -> list[str]:
    return sorted(x.name for x in folder.iterdir())


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_disk_full_leaves_nothing(dng: Path, tmp_path: Path, monkeypatch, where: str) -> None:
    from oneinch import api
    from oneinch.output import atomic

    before = _sha(dng)

    def enospc(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", enospc)
    else:  # the encoder's first write into the temp file fails
        real_open = open

        def full_open(file, mode="r", *a, **k):
            if "w" in str(mode) and str(file).endswith(".part"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
            return real_open(file, mode, *a, **k)

        monkeypatch.setattr("builtins.open", full_open)
    out = tmp_path / "out"
    out.mkdir()
    dst = out / "photo.jpg"
    with pytest.raises(OutputError) as ei:
        api.develop_file(dng, dst, SMALL)
    monkeypatch.undo()
    assert "photo.jpg" in str(ei.value)
    if where == "fsync":
        assert "disk full" in str(ei.value)
    assert _leftovers(out) == []  # neither the output nor a temp file
    assert _sha(dng) == before


def test_output_folder_unwritable(dng: Path, tmp_path: Path) -> None:
    """As root permission bits do not stop writes, so the 'folder' is below a regular file."""
    from oneinch.cli import main

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    rc = main(["develop", str(dng), "-o", str(blocker / "sub" / "x.jpg"), "--size", "64"])
    assert rc == 2
    assert _leftovers(tmp_path) == ["afile"]


def test_output_folder_read_only_mocked(dng: Path, tmp_path: Path, monkeypatch) -> None:
    from oneinch import api
    from oneinch.output import atomic

    def eacces(*a, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", eacces)
    with pytest.raises(OutputError, match=r"x\.jpg.*ermission"):
        api.develop_file(dng, tmp_path / "x.jpg", SMALL)
    assert _leftovers(tmp_path) == []


def test_file_vanishes_mid_batch(tmp_path: Path, monkeypatch, capsys) -> None:
    """`oneinch develop a b c`: b is deleted while a is being developed; a and c are written,
    b is reported by name, the exit code is 2."""
    from oneinch import cli
    from oneinch.synthetic import make_dng

    files = []
    for name in ("a", "b", "c"):
        p = tmp_path / f"{name}.dng"
        make_dng(p, _scene(24, 32))
        files.append(p)
    sums = {p.name: _sha(p) for p in files}
    out = tmp_path / "out"
    out.mkdir()
    real = cli._develop_one

    def develop_one(src, dst, recipe):
        if src.name == "a.dng":
            files[1].unlink()
        return real(src, dst, recipe)

    monkeypatch.setattr(cli, "_develop_one", develop_one)
    rc = cli.main(["develop", *map(str, files), "-o", str(out), "--size", "64"])
    err = capsys.readouterr().err
    assert rc == 2
    assert _leftovers(out) == ["a.jpg", "c.jpg"]
    assert "b.dng" in err and "not found" in err
    assert _sha(files[0]) == sums["a.dng"] and _sha(files[2]) == sums["c.dng"]


def test_inputs_unchanged_by_frame(tmp_path: Path) -> None:
    from PIL import Image

    from oneinch.frame import frame_file

    src = tmp_path / "p.jpg"
    Image.fromarray((_scene(40, 60) * 255).astype(np.uint8)).save(src, quality=90)
    before = _sha(src)
    out = frame_file(src, tmp_path / "p_framed.jpg", layout="classic")
    assert out.is_file() and _sha(src) == before


@pytest.mark.parametrize("delay", [0.3, 1.2, 2.5])
def test_sigkill_mid_develop(tmp_path: Path, delay: float) -> None:
    """kill -9 at some point of `oneinch develop`: the final name holds either nothing or a
    complete photo; only hidden `.NAME.*.part` files may remain besides it."""
    from PIL import Image

    from oneinch.synthetic import make_dng

    src = tmp_path / "big.dng"
    make_dng(src, _scene(600, 900))
    before = _sha(src)
    out = tmp_path / "out"
    out.mkdir()
    dst = out / "big.tif"
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "oneinch", "develop", str(src), "-o", str(dst)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    for name in _leftovers(out):
        assert name == "big.tif" or (name.startswith(".big.tif.") and name.endswith(".part")), name
    if dst.exists():
        with Image.open(dst) as im:
            im.load()
            assert im.size == (900, 600)
    assert _sha(src) == before
