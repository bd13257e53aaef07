"""A resident process that has imported the pipeline and forks one worker per command: the
``oneinch develop`` of a new process then costs its own work, not numpy's, OpenCV's,
Pillow's, tifffile's and typer's imports (~0.2 s of every command; a 50 MP preview's work is
~0.1 s). The model is Android's Zygote (a process that has loaded the framework and forks
each app from it) and the fork server of Python's ``multiprocessing``.

    oneinch daemon start | status | stop

While it runs, ``oneinch develop ...`` (the console script, ``python -m oneinch``) connects
to its socket before importing anything heavy and hands over its arguments, working
directory, environment, umask and its stdin/stdout/stderr (the descriptors themselves,
``SCM_RIGHTS``: the worker prints to the same terminal, progress bars included). The
zygote forks; the worker is an ordinary develop process from then on (its own memory, cwd
and exit) that reports its exit code and resource use back on the connection. The client
relays SIGINT/SIGTERM/SIGHUP to the worker (Ctrl-C stops the develop as it would in-process:
exit 130, no output file).

Nothing changes without the zygote: no socket, a refused connection, another user's or a
group/world-accessible runtime directory, ``ONEINCH_ZYGOTE=0``, or a zygote started from
other code or another environment (the fingerprint covers the package's files, the Python
and every ``ONEINCH_``, ``NUMBA_``, ``NUMPY_``, ``OMP_``, ``OPENBLAS_``, ``MKL_`` and
``PYTHON`` variable) all run the command in-process, as before. Only ``develop`` is
forwarded.

The runtime directory is ``$ONEINCH_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/oneinch``, else
``/tmp/oneinch-UID``: mode 0700, owned by the user; the zygote also checks each peer's uid
(``SO_PEERCRED``). It holds ``zygote.sock``, ``zygote.pid`` and ``zygote.log``.

This module is imported by every ``oneinch`` command: the client half uses the standard
library only; the server half imports the pipeline inside its functions.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys

TYPE_CHECKING = False  # (the client imports neither typing nor, without a zygote, socket)
if TYPE_CHECKING:
    import socket

SOCKET = "zygote.sock"
PIDFILE = "zygote.pid"
LOG = "zygote.log"
FORWARDED = ("develop",)  # commands a zygote runs; the rest always run in-process
ENV_PREFIXES = ("ONEINCH_", "NUMBA_", "NUMPY_", "OMP_", "OPENBLAS_", "MKL_", "PYTHON")
# read by the client only (not by what a worker imports)
CLIENT_ENV = ("ONEINCH_ZYGOTE", "ONEINCH_ZYGOTE_STATS", "ONEINCH_RUNTIME_DIR")
# the command's own process settings (oneinch.cli.command_environment: a user's value wins)
COMMAND_ENV = {"OPENBLAS_NUM_THREADS": "1", "NUMPY_MADVISE_HUGEPAGE": "0"}
_HEADER = struct.Struct(">I")  # every message: 4-byte big-endian length, then JSON
_MAX_MESSAGE = 1 << 22


class ZygoteError(Exception):
    """The runtime directory is unsafe, or a zygote could not be started or reached."""


def runtime_dir(create: bool = False) -> str:
    """The directory of the socket (module docstring); raises ZygoteError when it is not the
    user's own and private. ``create``: make it (mode 0700) when missing."""
    base = os.environ.get("ONEINCH_RUNTIME_DIR")
    if not base:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        base = os.path.join(xdg, "oneinch") if xdg else f"/tmp/oneinch-{os.getuid()}"
    if create:
        try:
            os.makedirs(base, mode=0o700, exist_ok=True)
        except OSError as e:
            raise ZygoteError(
                f"{base}: cannot create the runtime directory ({e.strerror})") from None
    st = os.lstat(base)  # FileNotFoundError when missing (the caller's "no zygote")
    import stat

    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ZygoteError(f"{base}: the runtime directory must be a directory of this user's "
                          "with mode 0700")
    return base


def fingerprint(env: dict[str, str] | None = None) -> str:
    """What a worker forked from a zygote shares with the process asking for it: the package's
    files (path, size, mtime), the interpreter, and the environment variables read at import
    time (``ENV_PREFIXES``), as one string compared whole (stat calls only, ~1 ms; no hashlib,
    whose OpenSSL load alone costs 5 ms)."""
    env = {**COMMAND_ENV, **(os.environ if env is None else env)}
    parts = [sys.executable, sys.version]
    parts += [f"{k}={env[k]}" for k in sorted(env)
              if k.startswith(ENV_PREFIXES) and k not in CLIENT_ENV]
    root = os.path.dirname(os.path.abspath(__file__))
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            parts.append(f"{os.path.relpath(path, root)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def _send(sock: socket.socket, obj: dict, fds: list[int] | None = None) -> None:
    import json
    import socket

    data = json.dumps(obj).encode()
    msg = _HEADER.pack(len(data)) + data
    if fds:
        n = socket.send_fds(sock, [msg], fds)
        msg = msg[n:]
    if msg:
        sock.sendall(msg)


def _recv(sock: socket.socket, with_fds: bool = False) -> tuple[dict | None, list[int]]:
    """One message (None at end of stream) and the descriptors that came with it. Reads
    exactly its bytes: the next message (a fast worker's exit right after its pid) stays in
    the socket for the next call."""
    import json
    import socket

    fds: list[int] = []

    def exactly(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            if with_fds and not fds and not buf:
                chunk, got, _, _ = socket.recv_fds(sock, n, 8)
                fds.extend(got)
            else:
                chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    head = exactly(_HEADER.size)
    n = _HEADER.unpack(head)[0] if head else 0
    if n > _MAX_MESSAGE:
        for fd in fds:
            os.close(fd)
        raise ZygoteError("message too long")
    body = exactly(n) if head else None
    if body is None:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(body), fds


def _connect(timeout: float = 5.0) -> socket.socket | None:
    try:
        path = os.path.join(runtime_dir(), SOCKET)
    except (OSError, ZygoteError):
        return None
    if not os.path.exists(path):
        return None
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError:
        s.close()
        return None
    return s


# ------------------------------------------------------------------------------------------
# client


def forward(argv: list[str]) -> int | None:
    """Run ``argv`` (without the program name) in a worker forked by the zygote and return
    its exit code; None when no zygote can take it (the caller runs it in-process)."""
    if not argv or argv[0] not in FORWARDED or os.environ.get("ONEINCH_ZYGOTE") == "0":
        return None
    try:  # the three descriptors to hand over (a closed one would become the socket's number)
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return None
    s = _connect()
    if s is None:
        return None
    import signal

    with s:
        umask = os.umask(0o022)
        os.umask(umask)
        try:
            request = {"op": "run", "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
                       "umask": umask, "fp": fingerprint()}
            _send(s, request, [0, 1, 2])
            reply, _ = _recv(s)
        except (OSError, ZygoteError, ValueError):
            return None  # nothing has run yet
        if not reply or "pid" not in reply:
            return None  # a stale or stopping zygote: in-process
        pid = int(reply["pid"])

        def relay(signum: int, frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):  # (the worker has ended already)
                os.kill(pid, signum)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, relay)
        s.settimeout(None)
        try:  # (a relayed signal interrupts nothing here: PEP 475 resumes the recv)
            done, _ = _recv(s)
        except (OSError, ZygoteError, ValueError):
            done = None
    if not done or "exit" not in done:
        print(f"oneinch: the develop process {pid} ended without an exit status (killed?)",
              file=sys.stderr)
        return 1
    stats = os.environ.get("ONEINCH_ZYGOTE_STATS")
    if stats:  # for bench/speed.py: the worker's resource use (not this process's)
        import json

        with open(stats, "w") as f:
            json.dump(done, f)
    return int(done["exit"])


def entry() -> None:
    """The ``oneinch`` console script: through a running zygote when there is one, else the
    command in this process (``oneinch.cli``)."""
    code = forward(sys.argv[1:])
    if code is None:
        from .cli import entry as run_here

        run_here()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def request(op: str, timeout: float = 5.0) -> dict | None:
    """Send ``op`` ('ping' or 'stop') to the running zygote; its reply, None when none runs."""
    s = _connect(timeout)
    if s is None:
        return None
    with s:
        try:
            _send(s, {"op": op})
            reply, _ = _recv(s)
        except (OSError, ZygoteError, ValueError):
            return None
    return reply


# ------------------------------------------------------------------------------------------
# server


def preload() -> object:
    """Import what a develop uses, load the ahead-of-time kernels and build the command's
    parser, without starting a thread (a worker is forked from this state); returns the
    click command."""
    import gc
    import importlib

    from . import _aot, cli

    for name in ("api", "develop", "raw.reader", "raw.dng", "raw.opcodes", "isp.demosaic",
                 "isp.denoise", "isp.highlights", "isp.tiles", "isp.color", "isp.lens",
                 "isp.sharpen", "isp.geometry", "looks", "looks.tone", "looks.looks",
                 "looks._fused", "output.encode", "output.jpeg", "output.metadata",
                 "output.icc", "output.atomic", "recipe"):
        importlib.import_module(f".{name}", __package__)
    _aot.available()  # the compiled kernels' module and its table
    command = cli.command(list(FORWARDED))  # (the other commands always run in-process)
    gc.collect()
    gc.freeze()  # the workers' collections then never walk (and copy) the zygote's objects
    return command


def _peer_uid(conn: socket.socket) -> int:
    import socket

    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _worker(conn: socket.socket, listener: socket.socket, lock: int, command: object,
            req: dict, fds: list[int]) -> None:
    """In the forked child: become the client's develop process, run it, report, exit."""
    import resource
    import signal

    code = 1
    try:
        listener.close()
        os.close(lock)  # (the zygote's own copy keeps the lock)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        for target, fd in zip((0, 1, 2), fds, strict=False):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False, buffering=1 if os.isatty(1) else -1)
        sys.stderr = open(2, "w", closefd=False, buffering=1, errors="backslashreplace")
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update({**COMMAND_ENV, **req["env"]})
        os.umask(int(req["umask"]))
        sys.argv = ["oneinch", *req["argv"]]
        _send(conn, {"pid": os.getpid()})
        from . import cli

        code = cli.main(req["argv"], command=command)
    except BaseException as e:
        print(f"oneinch: internal error in the develop process ({type(e).__name__}: {e})",
              file=sys.stderr)
        code = 130 if isinstance(e, KeyboardInterrupt) else 1
    finally:
        # whatever fails here (a client gone: nobody to report to), the worker still ends; a
        # client still there says 'ended without an exit status'
        with contextlib.suppress(BaseException):
            import atexit

            sys.stdout.flush()
            sys.stderr.flush()
            atexit._run_exitfuncs()  # the exit handlers, as the command's own exit runs them
            sys.stdout.flush()
            sys.stderr.flush()
            ru = resource.getrusage(resource.RUSAGE_SELF)
            _send(conn, {"exit": int(code), "maxrss_kb": ru.ru_maxrss,
                         "cpu_s": ru.ru_utime + ru.ru_stime})
        os._exit(int(code))


def serve(idle_timeout: float = 0.0, ready_fd: int | None = None) -> int:
    """The zygote's loop (in the foreground): listen on the runtime directory's socket, fork a
    worker per 'run' request, answer 'ping' and 'stop'; ``idle_timeout`` seconds without a
    request (0: none) end it. ``ready_fd``: written to and closed once it listens."""
    import fcntl
    import signal
    import socket
    import time

    directory = runtime_dir(create=True)
    path = os.path.join(directory, SOCKET)
    # the pid file's lock is held for the zygote's life: a second one started at the same
    # moment stops here instead of replacing the first one's socket
    lock = os.open(os.path.join(directory, PIDFILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        raise ZygoteError(f"{path}: a zygote is already running") from None
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())
    command = preload()
    fp = fingerprint()
    if os.path.exists(path):
        os.unlink(path)  # a dead zygote's (it held no lock)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    listener.settimeout(1.0)

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(0)  # through the cleanup below

    signal.signal(signal.SIGTERM, terminate)
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    last = time.monotonic()
    try:
        while True:
            _reap()
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                if idle_timeout and time.monotonic() - last > idle_timeout:
                    return 0
                continue
            last = time.monotonic()
            fds: list[int] = []
            try:
                conn.settimeout(5.0)
                if _peer_uid(conn) != os.getuid():
                    continue
                req, fds = _recv(conn, with_fds=True)
                if not req:
                    continue
                op = req.get("op")
                if op == "ping":
                    _send(conn, {"ok": True, "pid": os.getpid(), "fp": fp})
                elif op == "stop":
                    _send(conn, {"ok": True, "pid": os.getpid()})
                    return 0
                elif op == "run":
                    if req.get("fp") != fp or len(fds) != 3:
                        _send(conn, {"fallback": "stale"})
                        continue
                    conn.settimeout(None)
                    if os.fork() == 0:
                        _worker(conn, listener, lock, command, req, fds)
            except (OSError, ValueError, ZygoteError, KeyError, TypeError):
                continue  # one bad connection never stops the zygote
            finally:
                for fd in fds:
                    os.close(fd)
                conn.close()
    finally:
        listener.close()
        for name in (SOCKET, PIDFILE):
            with contextlib.suppress(OSError):  # (already gone)
                os.unlink(os.path.join(directory, name))
        os.close(lock)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def start(idle_timeout: float = 0.0, timeout: float = 60.0) -> int:
    """Start a zygote in the background (a new session, output to ``zygote.log``) and wait
    until it listens; returns its pid. Raises ZygoteError when one runs or it fails."""
    import subprocess

    directory = runtime_dir(create=True)
    running = request("ping")
    if running is not None:
        raise ZygoteError(f"a zygote is already running (pid {running.get('pid')})")
    r, w = os.pipe()
    log = open(os.path.join(directory, LOG), "ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "oneinch.zygote", "--idle", str(idle_timeout),
             "--ready-fd", str(w)],
            env={**COMMAND_ENV, **os.environ},  # before numpy loads there
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(w,),
            start_new_session=True, close_fds=True,
        )
    finally:
        os.close(w)
        log.close()
    import select

    ready, _, _ = select.select([r], [], [], timeout)
    ok = bool(ready) and os.read(r, 16).startswith(b"ready")
    os.close(r)
    if not ok:
        proc.poll()
        raise ZygoteError(f"the zygote did not start (see {os.path.join(directory, LOG)})")
    return proc.pid


def stop(timeout: float = 10.0) -> int | None:
    """Stop the running zygote (its workers finish their commands); its pid, or None."""
    import time

    reply = request("stop")
    if reply is None:
        return None
    path = os.path.join(runtime_dir(), SOCKET)
    t0 = time.monotonic()
    while os.path.exists(path) and time.monotonic() - t0 < timeout:
        time.sleep(0.02)
    return int(reply.get("pid", 0))


def _main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m oneinch.zygote")
    p.add_argument("--idle", type=float, default=0.0)
    p.add_argument("--ready-fd", type=int, default=None)
    a = p.parse_args(argv)
    try:
        return serve(a.idle, a.ready_fd)
    except ZygoteError as e:
        print(f"oneinch: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
