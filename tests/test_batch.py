"""oneinch batch: journal, kill -9 and resume, retry of failures, Ray engine = local engine."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oneinch.batch import JOURNAL_NAME, Journal, collect_inputs, file_sha256, run_batch
from oneinch.errors import InputError, OptionError
from oneinch.recipe import Recipe

N_FILES = 20


def _scene(i: int) -> np.ndarray:
    """A small, distinct sRGB scene per index: gradients, a patch, mild noise."""
    h, w = 64, 96
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(i)
    img = np.stack([x / w, y / h, 0.5 + 0.4 * np.sin((x + y + 7 * i) / 9.0)], axis=-1)
    img[10:30, 20 + i : 40 + i] = rng.random(3)
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def raws(tmp_path_factory) -> Path:
    from oneinch.synthetic import make_dng

    d = tmp_path_factory.mktemp("raws")
    for i in range(N_FILES):
        make_dng(d / f"shot{i:02d}.dng", _scene(i), iso=100 * (1 + i % 4))
    return d


def _done_count(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE state='done'").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def _check_complete(path: Path) -> tuple[int, int]:
    """Decode the whole file (a truncated JPEG raises); returns (width, height)."""
    with Image.open(path) as im:
        im.load()
        return im.size


@pytest.fixture(scope="module")
def killed_and_resumed(raws, tmp_path_factory):
    """Run `oneinch batch` in a subprocess, SIGKILL its whole process group once some files are
    done, inspect what is left, then rerun to completion."""
    out = tmp_path_factory.mktemp("out")
    journal = out / JOURNAL_NAME
    cmd = [sys.executable, "-m", "oneinch", "batch", str(raws), "-o", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while _done_count(journal) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    time.sleep(0.3)  # orphaned pool workers (killed with the group) are gone
    after_kill = {
        "outputs": sorted(out.glob("*.jpg")),
        "done": _done_count(journal),
    }
    # whatever exists after the kill is a complete file
    for p in after_kill["outputs"]:
        _check_complete(p)
    result = run_batch(raws, out, workers=2)
    return out, after_kill, result


def test_kill_then_rerun_completes_without_partial_outputs(killed_and_resumed):
    out, after_kill, result = killed_and_resumed
    assert 2 <= after_kill["done"] < N_FILES, "the kill did not land mid-run"
    assert result.total == N_FILES
    assert result.failed == 0 and result.errors == {}
    assert result.skipped >= after_kill["done"]
    assert result.skipped + result.done == N_FILES
    outputs = sorted(out.glob("*.jpg"))
    assert [p.stem for p in outputs] == [f"shot{i:02d}" for i in range(N_FILES)]
    assert not list(out.glob(".*.part")), "temp files of the killed run were not cleaned up"
    with Journal(out / JOURNAL_NAME) as j:
        rows = j.rows()
    assert len(rows) == N_FILES
    recipe_hash = Recipe().hash()
    for row, p in zip(rows, outputs, strict=True):
        assert row["state"] == "done" and row["error"] is None
        assert Path(row["dst"]) == p.resolve()
        assert row["recipe_hash"] == recipe_hash
        assert row["sha256"] == file_sha256(p)
        assert _check_complete(p) == (96, 64)


def test_rerun_skips_everything_done(killed_and_resumed):
    out, _, _ = killed_and_resumed
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg")}
    res = run_batch(_raws_of(out), out, workers=2)
    assert (res.done, res.skipped, res.failed) == (0, N_FILES, 0)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg")} == before


def _raws_of(out: Path) -> list[Path]:
    with Journal(out / JOURNAL_NAME) as j:
        return [Path(r["src"]) for r in j.rows()]


def test_failed_file_is_journaled_then_retried(raws, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    good = src / "good.dng"
    good.write_bytes((raws / "shot00.dng").read_bytes())
    bad = src / "bad.dng"
    bad.write_bytes(b"II*\x00" + b"\x00" * 60)  # a TIFF header and nothing else
    out = tmp_path / "out"
    res = run_batch(src, out, workers=1)
    assert (res.done, res.failed) == (1, 1)
    msg = res.errors[str(bad.resolve())]
    assert "bad.dng" in msg
    with Journal(out / JOURNAL_NAME) as j:
        row = j.get(bad.resolve())
        assert row["state"] == "failed" and "bad.dng" in row["error"] and row["sha256"] is None
        assert row["attempts"] == 1
    assert not (out / "bad.jpg").exists()
    # the user fixes the file; the rerun retries only it
    bad.write_bytes((raws / "shot01.dng").read_bytes())
    res = run_batch(src, out, workers=1)
    assert (res.done, res.skipped, res.failed) == (1, 1, 0)
    with Journal(out / JOURNAL_NAME) as j:
        row = j.get(bad.resolve())
        assert row["state"] == "done" and row["error"] is None and row["attempts"] == 2
        assert row["sha256"] == file_sha256(out / "bad.jpg")


def test_journal_done_means_same_recipe_and_output(killed_and_resumed):
    from oneinch.batch import plan

    out, _, _ = killed_and_resumed
    inputs = _raws_of(out)[:3]
    with Journal(out / JOURNAL_NAME) as j:
        assert all(j.is_done(job, verify=True) for job in plan(inputs, out, None))
        changed = plan(inputs, out, Recipe().with_(exposure={"ev": 1.0}))
        assert not any(j.is_done(job) for job in changed)
        elsewhere = plan(inputs, out / "elsewhere", None)
        assert not any(j.is_done(job) for job in elsewhere)


def test_ray_engine_outputs_identical_to_local(killed_and_resumed, raws, tmp_path):
    pytest.importorskip("ray")
    local_out, _, _ = killed_and_resumed
    ray_out = tmp_path / "ray"
    subset = sorted(raws.glob("*.dng"))[:8]  # Ray start-up dominates: a subset is enough
    res = run_batch(subset, ray_out, workers=2, engine="ray")  # a local Ray with 2 CPUs
    assert (res.done, res.failed) == (len(subset), 0)
    for src in subset:
        name = src.stem + ".jpg"
        assert (ray_out / name).read_bytes() == (local_out / name).read_bytes(), name
    with Journal(ray_out / JOURNAL_NAME) as j:
        assert {r["state"] for r in j.rows()} == {"done"}


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="no raw files"):
        collect_inputs(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        collect_inputs(tmp_path / "missing")
    (tmp_path / "a.dng").write_bytes(b"x")
    with pytest.raises(OptionError, match="engine"):
        run_batch(tmp_path, tmp_path / "o", engine="spark")
    with pytest.raises(OptionError, match="workers"):
        run_batch(tmp_path, tmp_path / "o", workers=0)


def test_a_changed_input_is_developed_again(tmp_path):
    """The journal compared only the recipe and the output: an input replaced since its photo
    was made kept the old photo ('1 already done'). Now its size and time are journaled."""
    from oneinch.synthetic import make_dng

    src = tmp_path / "in"
    src.mkdir()
    make_dng(src / "p.dng", _scene(1))
    out = tmp_path / "out"
    assert run_batch(src, out).done == 1
    first = (out / "p.jpg").read_bytes()
    assert run_batch(src, out).skipped == 1
    make_dng(src / "p.dng", _scene(7))  # another picture under the same name
    again = run_batch(src, out)
    assert again.done == 1 and again.skipped == 0
    assert (out / "p.jpg").read_bytes() != first


@pytest.mark.parametrize("fmt, suffix", [("heif", ".heic"), ("avif", ".avif"),
                                         ("jxl", ".jxl"), ("uhdr", ".jpg")])
def test_every_output_format_batches(tmp_path, fmt, suffix):
    """A batch to heif, avif, jxl or uhdr was an internal error (KeyError: its suffix)."""
    from oneinch.synthetic import make_dng

    src = tmp_path / "in"
    src.mkdir()
    make_dng(src / "p.dng", _scene(2))
    res = run_batch(src, tmp_path / "out", Recipe().with_(output={"format": fmt}))
    assert res.done == 1, res.errors
    assert (tmp_path / "out" / f"p{suffix}").is_file()
