"""Develop many files, resumably: a SQLite job journal, a local process pool or Ray tasks.

The journal (``oneinch-journal.sqlite`` in the output folder, WAL mode) holds one row per input:
its state (pending, running, done, failed), the recipe hash, the output's SHA-256 and the last
error. Only the coordinating process writes it; workers develop and report back. A rerun skips
rows that are done with the same recipe hash and an intact output, and retries everything else.
Outputs appear by atomic rename (oneinch.output.atomic), so a kill -9 loses at most the files in
flight and never leaves a partial output; stray ``.part`` temp files of a killed run are removed
on the next run.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, OneinchError, OptionError
from .output.formats import FORMAT_SUFFIX
from .recipe import Recipe, sidecar_path

JOURNAL_NAME = "oneinch-journal.sqlite"
RAW_SUFFIXES = frozenset(
    ".dng .arw .cr2 .cr3 .crw .nef .nrw .orf .raf .rw2 .rwl .pef .srw .x3f .3fr .iiq .erf .mos "
    ".mrw .kdc .dcr .srf .sr2 .gpr".split()
)
ENGINES = ("local", "ray")
STATES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    src TEXT PRIMARY KEY,
    dst TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    recipe_hash TEXT NOT NULL,
    src_stamp TEXT,
    sha256 TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Job:
    """One input, where it goes and how it is developed."""

    src: Path
    dst: Path
    recipe: Recipe
    stamp: str = ""  # the input's size and modification time when planned (input_stamp)


@dataclass
class BatchResult:
    """What a run did: counts, the failures (src -> message) and the journal path."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    journal: Path | None = None


def collect_inputs(spec: str | Path) -> list[Path]:
    """A folder (its raw files, not recursive) or a glob pattern -> sorted input paths."""
    p = Path(spec)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in RAW_SUFFIXES]
    elif p.is_file():
        files = [p]
    else:
        files = [Path(f) for f in glob.glob(str(spec), recursive=True) if Path(f).is_file()]
        if not files and not glob.has_magic(str(spec)):
            raise InputError("no such file or folder", spec)
    if not files:
        raise InputError("no raw files found", spec)
    return sorted(files, key=lambda f: str(f))


def plan(inputs: Sequence[Path], out_dir: Path, recipe: Recipe | None = None) -> list[Job]:
    """Jobs for ``inputs``: ``recipe`` for all, else each file's sidecar, else the default."""
    jobs: list[Job] = []
    seen: dict[Path, Path] = {}
    for src in inputs:
        r = recipe
        if r is None:
            side = sidecar_path(src)
            r = Recipe.load(side) if side.is_file() else Recipe()
        dst = out_dir / (src.stem + FORMAT_SUFFIX[r.output.format])
        if dst in seen:
            raise OptionError(f"{src} and {seen[dst]} would both be written to {dst}")
        seen[dst] = src
        jobs.append(Job(src=src.resolve(), dst=dst.resolve(), recipe=r, stamp=input_stamp(src)))
    return jobs


def input_stamp(path: str | Path) -> str:
    """The input file as the journal knows it: size and modification time (ns). A file
    replaced or edited since its photo was made is developed again."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Journal:
    """The SQLite job journal (stdlib sqlite3, WAL). One writer: the coordinating process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(_SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(jobs)")}
            if "src_stamp" not in columns:  # a journal from before inputs were stamped
                self.db.execute("ALTER TABLE jobs ADD COLUMN src_stamp TEXT")
        except sqlite3.DatabaseError as e:
            raise InputError(f"not a usable batch journal ({e})", self.path) from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recover(self) -> int:
        """Rows left 'running' by a killed run go back to 'pending'; returns how many."""
        cur = self.db.execute(
            "UPDATE jobs SET state='pending', updated=? WHERE state='running'", (time.time(),)
        )
        return cur.rowcount

    def get(self, src: str | Path) -> dict | None:
        cur = self.db.execute("SELECT * FROM jobs WHERE src=?", (str(src),))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def rows(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM jobs ORDER BY src")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def set_state(
        self,
        job: Job,
        state: str,
        *,
        sha256: str | None = None,
        error: str | None = None,
        attempt: bool = False,
    ) -> None:
        self.db.execute(
            "INSERT INTO jobs (src, dst, state, recipe_hash, src_stamp, sha256, error, attempts, "
            "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(src) DO UPDATE SET "
            "dst=excluded.dst, state=excluded.state, recipe_hash=excluded.recipe_hash, "
            "src_stamp=excluded.src_stamp, sha256=excluded.sha256, error=excluded.error, "
            "attempts=attempts+excluded.attempts, updated=excluded.updated",
            (
                str(job.src), str(job.dst), state, job.recipe.hash(), job.stamp, sha256, error,
                int(attempt), time.time(),
            ),
        )  # fmt: skip

    def is_done(self, job: Job, verify: bool = False) -> bool:
        """Done with this recipe from this very input (its size and modification time), and
        the output is still there (and, with verify, intact)."""
        row = self.get(job.src)
        if not row or row["state"] != "done" or row["recipe_hash"] != job.recipe.hash():
            return False
        if row.get("src_stamp") != job.stamp:
            return False
        if row["dst"] != str(job.dst) or not job.dst.is_file():
            return False
        return not verify or file_sha256(job.dst) == row["sha256"]


def develop_job(src: str, dst: str, recipe_toml: str) -> tuple[str, str | None, str | None]:
    """Worker side: develop one file -> (src, sha256 of the output, error message or None).

    Takes plain strings so it pickles the same way for a process pool and for Ray.
    """
    import tomllib

    from .api import develop_file

    try:
        recipe = Recipe.from_dict(tomllib.loads(recipe_toml))
        out = develop_file(src, dst, recipe)
        return src, file_sha256(out), None
    except OneinchError as e:
        return src, None, str(e)
    except Exception as e:  # a bug in one file must not stop the batch; it is journaled
        return src, None, f"{src}: internal error ({type(e).__name__}: {e})"


def _worker_init() -> None:
    # one worker per core: keep each worker's numba/OpenCV pools to one thread
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(1)
    from .cli import reuse_freed_memory
    from .isp import tiles

    reuse_freed_memory()
    tiles.reuse_buffers()  # file after file: each develop's working image reused


def _ray_develop_job(src: str, dst: str, recipe_toml: str) -> tuple[str, str | None, str | None]:
    _worker_init()  # before the first develop imports numba in this Ray worker
    return develop_job(src, dst, recipe_toml)


def _serial_engine(
    jobs: Sequence[Job], on_submit: Callable[[Job], None]
) -> Iterator[tuple[str, str | None, str | None]]:
    """One worker: develop in this process (no pool start-up)."""
    for job in jobs:
        on_submit(job)
        yield develop_job(str(job.src), str(job.dst), job.recipe.to_toml())


def _remove_stale_parts(jobs: Iterable[Job]) -> None:
    """Temp files of outputs a killed run was writing (``.NAME.*.part``, see output.atomic)."""
    by_dir: dict[Path, set[str]] = {}
    for j in jobs:
        by_dir.setdefault(j.dst.parent, set()).add(j.dst.name)
    for folder, names in by_dir.items():
        for part in folder.glob(".*.part"):
            name = part.name[1:].rsplit(".", 2)[0]
            if name in names:
                with contextlib.suppress(OSError):
                    part.unlink()


def _local_engine(
    jobs: Sequence[Job], workers: int, on_submit: Callable[[Job], None]
) -> Iterator[tuple[str, str | None, str | None]]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # numba/OpenCV thread pools do not survive fork
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)
    try:
        todo = iter(jobs)
        running: set = set()
        while True:
            # keep at most 2 tasks per worker queued so a kill loses little
            for job in todo:
                on_submit(job)
                running.add(pool.submit(develop_job, str(job.src), str(job.dst),
                                        job.recipe.to_toml()))
                if len(running) >= 2 * workers:
                    break
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                yield f.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _ray_engine(
    jobs: Sequence[Job], workers: int, address: str | None, on_submit: Callable[[Job], None]
) -> Iterator[tuple[str, str | None, str | None]]:
    try:
        import ray
    except ImportError:
        raise OptionError("--engine ray needs Ray: pip install 'ray>=2.9'") from None
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        task = ray.remote(num_cpus=1)(_ray_develop_job)
        todo = iter(jobs)
        pending: list = []
        window = 2 * workers
        while True:
            for job in todo:
                on_submit(job)
                pending.append(task.remote(str(job.src), str(job.dst), job.recipe.to_toml()))
                if len(pending) >= window:
                    break
            if not pending:
                break
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()


def run_batch(
    inputs: str | Path | Sequence[Path],
    out_dir: str | Path,
    recipe: Recipe | None = None,
    *,
    workers: int | None = None,
    engine: str = "local",
    address: str | None = None,
    verify: bool = False,
    on_progress: Callable[[int, int, str, str | None], None] | None = None,
) -> BatchResult:
    """Develop ``inputs`` (a folder, a glob or a list) into ``out_dir``, journaled and resumable.

    ``engine`` 'local' is a process pool of ``workers`` (default: the cores; one worker develops
    in this process); 'ray' runs the same
    job as Ray tasks on ``ray.init(address=address)`` or a local Ray with ``workers`` CPUs.
    ``on_progress(finished, total, src, error)`` is called after each file.
    """
    if engine not in ENGINES:
        raise OptionError(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
    if workers is not None and workers < 1:
        raise OptionError(f"--workers {workers} must be at least 1")
    workers = workers or os.cpu_count() or 1
    files = collect_inputs(inputs) if isinstance(inputs, str | Path) else list(inputs)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from .errors import OutputError

        raise OutputError(f"cannot create the output folder ({e.strerror})", out) from None
    jobs = plan(files, out, recipe)
    result = BatchResult(total=len(jobs), journal=out / JOURNAL_NAME)
    with Journal(result.journal) as journal:
        journal.recover()
        _remove_stale_parts(jobs)
        todo: list[Job] = []
        for job in jobs:
            if journal.is_done(job, verify=verify):
                result.skipped += 1
            else:
                journal.set_state(job, "pending")
                todo.append(job)
        finished = result.skipped
        if on_progress and result.skipped:
            on_progress(finished, result.total, "", None)
        if not todo:
            return result
        by_src = {str(j.src): j for j in todo}

        def submitted(job: Job) -> None:  # 'running' = handed to a worker; recover() resets it
            journal.set_state(job, "running", attempt=True)

        n = min(workers, len(todo))
        if engine == "ray":
            stream = _ray_engine(todo, n, address, submitted)
        elif n == 1:
            stream = _serial_engine(todo, submitted)
        else:
            stream = _local_engine(todo, n, submitted)
        try:
            for src, sha, err in stream:
                job = by_src[src]
                if err is None:
                    journal.set_state(job, "done", sha256=sha)
                    result.done += 1
                else:
                    journal.set_state(job, "failed", error=err)
                    result.failed += 1
                    result.errors[src] = err
                finished += 1
                if on_progress:
                    on_progress(finished, result.total, src, err)
        except BaseException:
            journal.recover()  # Ctrl-C: whatever did not finish is pending again
            raise
    return result
