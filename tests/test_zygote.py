"""The resident zygote (oneinch.zygote, `oneinch daemon`): a develop forked from it is the
develop the command makes in its own process, errors and signals included, and nothing is
forwarded where it must not be (another environment or code, an unsafe directory)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import load_rgb8
from oneinch import zygote

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "oneinch_demo.dng"


def _env(rt: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ONEINCH_ZYGOTE",
                                                           "ONEINCH_ZYGOTE_STATS")}
    env["ONEINCH_RUNTIME_DIR"] = str(rt)
    env.update(extra)
    return env


def _oneinch(args: list[str], env: dict, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oneinch", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A zygote in a private runtime directory, stopped afterwards."""
    rt = tmp_path / "rt"
    monkeypatch.setenv("ONEINCH_RUNTIME_DIR", str(rt))
    monkeypatch.delenv("ONEINCH_ZYGOTE", raising=False)
    pid = zygote.start()
    try:
        yield rt, pid
    finally:
        zygote.stop()
        with contextlib.suppress(ProcessLookupError):  # (stopped, as it should be)
            os.kill(pid, signal.SIGKILL)


def test_forwarded_develop_is_the_in_process_develop(running, tmp_path: Path) -> None:
    rt, pid = running
    stats = tmp_path / "stats.json"
    # relative paths: the worker works in the client's directory, with its umask
    res = _oneinch(["develop", str(SAMPLE), "-o", "z.jpg", "--size", "640"],
                   _env(rt, ONEINCH_ZYGOTE_STATS=str(stats)), tmp_path,
                   preexec_fn=lambda: os.umask(0o077))
    assert res.returncode == 0, res.stderr
    assert "z.jpg" in res.stderr  # the worker printed to the client's own stderr
    done = json.loads(stats.read_text())  # written only when a worker ran it
    assert done["exit"] == 0 and done["maxrss_kb"] > 10_000 and done["cpu_s"] > 0
    assert (tmp_path / "z.jpg").stat().st_mode & 0o777 == 0o600
    here = _oneinch(["develop", str(SAMPLE), "-o", "p.jpg", "--size", "640"],
                    _env(rt, ONEINCH_ZYGOTE="0"), tmp_path)
    assert here.returncode == 0, here.stderr
    a, b = load_rgb8(tmp_path / "z.jpg"), load_rgb8(tmp_path / "p.jpg")
    assert a.shape == b.shape and np.array_equal(a, b)
    assert zygote.request("ping")["pid"] == pid  # the zygote outlives its workers


def test_errors_come_back_as_they_would_in_process(running, tmp_path: Path) -> None:
    rt, _ = running
    bad = tmp_path / "cut.dng"
    bad.write_bytes(SAMPLE.read_bytes()[:5000])
    before = bad.read_bytes()
    stats = tmp_path / "stats.json"
    res = _oneinch(["develop", str(bad), "-o", "x.jpg"],
                   _env(rt, ONEINCH_ZYGOTE_STATS=str(stats)), tmp_path)
    assert json.loads(stats.read_text())["exit"] == 2
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cut.dng" in lines[0], res.stderr
    assert not (tmp_path / "x.jpg").exists() and bad.read_bytes() == before
    usage = _oneinch(["develop", str(SAMPLE), "--quality", "500"], _env(rt), tmp_path)
    assert usage.returncode == 2 and "quality" in usage.stderr


def test_other_environment_or_command_runs_in_process(running, tmp_path: Path) -> None:
    rt, _ = running
    stats = tmp_path / "stats.json"
    # a variable read at import time differs: the zygote's imports would not be this process's
    res = _oneinch(["develop", str(SAMPLE), "-o", "e.jpg", "--size", "320"],
                   _env(rt, ONEINCH_ZYGOTE_STATS=str(stats), NUMBA_NUM_THREADS="1"), tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "e.jpg").is_file() and not stats.exists()
    other = zygote.fingerprint({**os.environ, "NUMBA_NUM_THREADS": "1"})
    assert other != zygote.fingerprint()
    # only develop is forwarded
    assert zygote.forward(["inspect", str(SAMPLE)]) is None


def test_ctrl_c_stops_the_worker(running, tmp_path: Path) -> None:
    rt, _ = running
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "oneinch", "develop", str(SAMPLE), "-o", "slow.jpg",
         "--demosaic", "iri-cnn"],
        env=_env(rt, ONEINCH_ZYGOTE_STATS=str(stats)), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)  # connected and developing (iri-cnn takes ~10 s on this raw)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert json.loads(stats.read_text())["exit"] == 130
    assert not (tmp_path / "slow.jpg").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".slow")]


def test_without_a_working_directory_or_stdin_it_runs_in_process(running, tmp_path: Path) -> None:
    """A deleted working directory (os.getcwd fails) or a closed stdin (no descriptor to hand
    over): the command runs in-process and says what it would have said there."""
    rt, _ = running
    stats = tmp_path / "stats.json"
    gone = tmp_path / "gone"
    gone.mkdir()
    code = (f"import os, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
            "sys.argv = ['oneinch', 'develop', 'nofile.dng']; "
            "from oneinch.zygote import entry; entry()")
    res = subprocess.run([sys.executable, "-c", code], env=_env(rt, ONEINCH_ZYGOTE_STATS=str(
        stats)), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert not stats.exists()
    res = subprocess.run([sys.executable, "-m", "oneinch", "develop", str(SAMPLE), "-o",
                          str(tmp_path / "c.jpg"), "--size", "100"], stdin=subprocess.DEVNULL,
                         env=_env(rt, ONEINCH_ZYGOTE_STATS=str(stats)), capture_output=True,
                         text=True, timeout=120, preexec_fn=lambda: os.close(0))
    assert res.returncode == 0 and (tmp_path / "c.jpg").is_file(), res.stderr
    assert not stats.exists()


def test_unsafe_runtime_directory_is_not_used(tmp_path: Path, monkeypatch) -> None:
    rt = tmp_path / "open"
    rt.mkdir(mode=0o755)
    rt.chmod(0o755)
    monkeypatch.setenv("ONEINCH_RUNTIME_DIR", str(rt))
    monkeypatch.delenv("ONEINCH_ZYGOTE", raising=False)
    with pytest.raises(zygote.ZygoteError, match="0700"):
        zygote.runtime_dir()
    # a socket someone else could have put there is never connected to
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(rt / zygote.SOCKET))
        s.listen(1)
        assert zygote.forward(["develop", str(SAMPLE)]) is None
    res = _oneinch(["daemon", "start"], _env(rt), tmp_path)
    assert res.returncode == 2 and "0700" in res.stderr and len(res.stderr.splitlines()) == 1


def test_daemon_commands(tmp_path: Path) -> None:
    rt = tmp_path / "rt"
    env = _env(rt)
    assert _oneinch(["daemon", "status"], env, tmp_path).returncode == 1
    started = _oneinch(["daemon", "start"], env, tmp_path)
    assert started.returncode == 0, started.stderr
    try:
        assert (rt / zygote.SOCKET).exists() and (rt.stat().st_mode & 0o777) == 0o700
        assert (rt / zygote.SOCKET).stat().st_mode & 0o777 == 0o600
        again = _oneinch(["daemon", "start"], env, tmp_path)
        assert again.returncode == 2 and "already running" in again.stderr
        st = _oneinch(["daemon", "status"], env, tmp_path)
        assert st.returncode == 0 and "running" in st.stdout and "other" not in st.stdout
    finally:
        stopped = _oneinch(["daemon", "stop"], env, tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert not (rt / zygote.SOCKET).exists() and not (rt / zygote.PIDFILE).exists()
    assert _oneinch(["daemon", "stop"], env, tmp_path).returncode == 1


def test_one_zygote_per_directory_and_sigterm_cleans_up(running) -> None:
    rt, pid = running
    with pytest.raises(zygote.ZygoteError, match="already running"):
        zygote.serve()  # (the first one's lock; its socket is left alone)
    assert zygote.request("ping")["pid"] == pid
    os.kill(pid, signal.SIGTERM)
    t0 = time.monotonic()
    while (rt / zygote.SOCKET).exists() and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert not (rt / zygote.SOCKET).exists() and not (rt / zygote.PIDFILE).exists()
    assert zygote.forward(["develop", str(SAMPLE)]) is None


def test_bad_connections_do_not_stop_it(running, tmp_path: Path) -> None:
    rt, pid = running
    path = str(rt / zygote.SOCKET)
    for junk in (b"", b"\xff\xff\xff\xff", b"\x00\x00\x00\x05{nope", b"\x00\x00"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(junk)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:  # a run without descriptors
        s.connect(path)
        zygote._send(s, {"op": "run", "argv": ["develop"], "fp": zygote.fingerprint()})
        assert zygote._recv(s)[0] == {"fallback": "stale"}
    assert zygote.request("ping")["pid"] == pid
    stats = tmp_path / "stats.json"
    res = _oneinch(["develop", str(SAMPLE), "-o", "ok.jpg", "--size", "200"],
                   _env(rt, ONEINCH_ZYGOTE_STATS=str(stats)), tmp_path)
    assert res.returncode == 0 and json.loads(stats.read_text())["exit"] == 0


def test_status_names_a_zygote_of_another_environment(running, tmp_path: Path) -> None:
    rt, _ = running
    st = _oneinch(["daemon", "status"], _env(rt, NUMBA_NUM_THREADS="1"), tmp_path)
    assert st.returncode == 0 and "not used from here" in st.stdout


def test_back_to_back_messages_are_both_read() -> None:
    """A worker that fails at once sends its pid and its exit together: the client read both
    in one recv and dropped the second ('ended without an exit status', exit 1 for a usage
    error, now and then in the full suite)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        zygote._send(a, {"pid": 7})
        zygote._send(a, {"exit": 2})
        a.shutdown(socket.SHUT_WR)
        assert zygote._recv(b) == ({"pid": 7}, [])
        assert zygote._recv(b) == ({"exit": 2}, [])
        assert zygote._recv(b) == (None, [])


def test_the_worker_runs_the_exit_handlers(tmp_path: Path) -> None:
    """A worker ends as the command's own process does (cli.finish): its exit handlers run
    (temporary folders, logging) before it reports."""
    # imported before the fork, as the zygote has them: the child imports nothing in a
    # process whose other threads (xdist's) do not exist in it
    import atexit
    import resource  # noqa: F401

    from oneinch import cli  # noqa: F401

    marker = tmp_path / "bye"

    class Command:  # stands for the click command: registers an exit handler, exits 0
        def main(self, args, standalone_mode, prog_name):
            atexit.register(marker.write_text, "bye")
            return 0

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lock = os.open(tmp_path / "lock", os.O_CREAT | os.O_RDWR)
    req = {"cwd": str(tmp_path), "env": dict(os.environ), "umask": 0o022, "argv": ["develop"]}
    pid = os.fork()
    if pid == 0:  # (never returns: _worker ends the child)
        zygote._worker(b, listener, lock, Command(), req, [os.dup(0), os.dup(1), os.dup(2)])
    b.close()
    listener.close()
    os.close(lock)
    with a:
        assert zygote._recv(a)[0] == {"pid": pid}
        assert zygote._recv(a)[0]["exit"] == 0
    assert os.waitpid(pid, 0)[1] == 0
    assert marker.read_text() == "bye"


def test_peer_credentials_are_read() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        assert zygote._peer_uid(a) == os.getuid()
        zygote._send(a, {"x": "y" * 100_000}, [0, 1, 2])
        msg, fds = zygote._recv(b, with_fds=True)
        for fd in fds:
            os.close(fd)
    assert msg == {"x": "y" * 100_000} and len(fds) == 3
