"""Fuzz oneinch's readers with mutated files, in worker processes with time and memory limits.

    python -m fuzz.run --cases 100000 --workers 2          # the `make fuzz` run
    python -m fuzz.run --cases 2000 --targets raw,cube     # a short run on some targets
    python -m fuzz.run --replay tests/fuzz_corpus          # re-run saved inputs
    python -m fuzz.run --minimise out/fuzz/findings/x/case_12.dng --target raw

Each case: pick a target by weight (fuzz.seeds.WEIGHTS), a seed of that target, mutate it
(fuzz.mutate, deterministic from --seed and the case number), write it to the worker's scratch
folder, run the target. Workers are long-lived (``spawn``ed) processes that run many cases;
each case has a SIGALRM time limit and the parent kills a worker that stops answering (hangs
inside C code); the address space is capped with RLIMIT_AS. Verdicts (fuzz.targets): ok, a
OneinchError naming the file (expected), or a *finding* — another exception, MemoryError,
a message without the file name, a timeout (hang), or a dead worker (crash/signal).
Findings are saved under ``--out``/findings/<signature>/ with the traceback; exit status 1
when there was any.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from multiprocessing.connection import Connection, wait
from pathlib import Path

from .mutate import mutate
from .seeds import EXT, REPO, TARGETS, WEIGHTS, Seed, build_seeds

THREAD_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}  # fmt: skip


class CaseTimeout(BaseException):  # BaseException: library `except Exception` cannot eat it
    pass


def _alarm(signum, frame):
    raise CaseTimeout()


def _vsz_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def make_case(seed: Seed, case_no: int, base_seed: int, cache: dict) -> bytes:
    """The mutated bytes of case ``case_no`` (deterministic)."""
    data = cache.get(seed.path)
    if data is None:
        data = cache[seed.path] = seed.path.read_bytes()
    rng = random.Random(base_seed * 1_000_003 + case_no)
    splice = cache.get(("splice", seed.target))
    return mutate(data, seed.target, rng, splice)


def _warm_up(seeds: list[Seed], workdir: Path) -> None:
    from .targets import verdict

    done = set()
    for s in seeds:
        if s.target not in done and s.path.stat().st_size < 200_000:
            verdict(s.target, s.path, workdir)
            done.add(s.target)


def worker_main(conn: Connection, seeds: list[Seed], workdir: str, mem_mb: int,
                timeout: float, base_seed: int) -> None:
    """A long-lived worker: receive case numbers + seed index, answer verdicts."""
    os.environ.update(THREAD_ENV)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # libpng/LibRaw chatter; crashes are seen through the exit status
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from .targets import verdict

    _warm_up(seeds, wd)
    limit = int((_vsz_mb() + mem_mb) * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    cache: dict = {}
    conn.send(("ready", os.getpid(), limit))
    while True:
        msg = conn.recv()
        if msg is None:
            break
        case_no, seed_idx = msg
        seed = seeds[seed_idx]
        path = wd / f"case_{case_no}{_ext(seed)}"
        t0 = time.perf_counter()
        try:
            path.write_bytes(make_case(seed, case_no, base_seed, cache))
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                status, detail = verdict(seed.target, path, wd)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except CaseTimeout:
            status, detail = "hang", f"timeout after {timeout:g} s (SIGALRM)"
        finally:
            for p in wd.iterdir():  # the case and anything it left behind
                if p.is_file():
                    p.unlink()
                elif p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
        conn.send((case_no, status, detail, time.perf_counter() - t0))


def _ext(seed: Seed) -> str:
    suf = seed.path.suffix.lower()
    return suf if suf else EXT[seed.target]


class Pool:
    """Workers fed one case at a time; a worker that dies or stops answering is replaced."""

    def __init__(self, n: int, seeds: list[Seed], scratch: Path, mem_mb: int, timeout: float,
                 base_seed: int) -> None:
        self.ctx = mp.get_context("spawn")
        self.args = (seeds, mem_mb, timeout, base_seed)
        self.scratch = scratch
        self.timeout = timeout
        self.workers: dict[int, list] = {}  # slot -> [proc, conn, case or None, start time]
        for slot in range(n):
            self._start(slot)

    def _start(self, slot: int) -> None:
        seeds, mem_mb, timeout, base_seed = self.args
        parent, child = self.ctx.Pipe()
        wd = self.scratch / f"w{slot}"
        p = self.ctx.Process(
            target=worker_main, args=(child, seeds, str(wd), mem_mb, timeout, base_seed),
            daemon=True,
        )
        p.start()
        child.close()
        msg = parent.recv()
        assert msg[0] == "ready", msg
        self.workers[slot] = [p, parent, None, 0.0]

    def free(self) -> list[int]:
        return [s for s, w in self.workers.items() if w[2] is None]

    def submit(self, slot: int, case: tuple[int, int]) -> None:
        w = self.workers[slot]
        w[1].send(case)
        w[2], w[3] = case, time.monotonic()

    def collect(self) -> list[tuple]:
        """Results ready now (waits up to 1 s); kills and replaces stuck or dead workers."""
        busy = {w[1]: s for s, w in self.workers.items() if w[2] is not None}
        out = []
        for conn in wait(list(busy), timeout=1.0):
            slot = busy[conn]
            w = self.workers[slot]
            try:
                out.append(conn.recv())
                w[2] = None
            except (EOFError, OSError):
                w[0].join(5)
                code = w[0].exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
                out.append((w[2][0], "crash", f"worker died ({how})", time.monotonic() - w[3]))
                self._start(slot)
        now = time.monotonic()
        for slot, w in list(self.workers.items()):
            if w[2] is not None and now - w[3] > self.timeout + 20:
                w[0].kill()
                w[0].join(5)
                out.append((w[2][0], "hang", f"no answer in {self.timeout + 20:g} s: killed",
                            now - w[3]))
                self._start(slot)
        return out

    def close(self) -> None:
        for w in self.workers.values():
            try:
                w[1].send(None)
            except OSError:
                pass
        for w in self.workers.values():
            w[0].join(5)
            if w[0].is_alive():
                w[0].kill()


def schedule(seeds: list[Seed], targets: tuple[str, ...], n: int, base_seed: int):
    """(case number, seed index) for every case: target by WEIGHTS, seed by its weight."""
    by_t: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(seeds):
        if s.target in targets:
            by_t[s.target].append(i)
    ts = [t for t in targets if by_t[t]]
    tw = [WEIGHTS[t] for t in ts]
    rng = random.Random(base_seed)
    for case_no in range(n):
        t = rng.choices(ts, tw)[0]
        idx = by_t[t]
        yield case_no, rng.choices(idx, [seeds[i].weight for i in idx])[0]


def fuzz(args: argparse.Namespace) -> int:
    out = Path(args.out)
    seeds = build_seeds(out / "seeds")
    targets = tuple(args.targets.split(",")) if args.targets else TARGETS
    scratch = Path(tempfile.mkdtemp(prefix="oneinch-fuzz-", dir=_scratch_root()))
    findings_dir = out / "findings"
    t0 = time.monotonic()
    stats: Counter = Counter()
    per_target: dict[str, Counter] = defaultdict(Counter)
    time_target: Counter = Counter()
    sigs: dict[str, int] = {}
    pending = schedule(seeds, targets, args.cases, args.seed)
    cases: dict[int, int] = {}
    pool = Pool(args.workers, seeds, scratch, args.mem_mb, args.timeout, args.seed)
    cache: dict = {}
    done = 0
    last = t0
    try:
        exhausted = False
        while True:
            for slot in pool.free():
                nxt = next(pending, None)
                if nxt is None:
                    exhausted = True
                    break
                cases[nxt[0]] = nxt[1]
                pool.submit(slot, nxt)
            if exhausted and len(pool.free()) == len(pool.workers):
                break
            for case_no, status, detail, secs in pool.collect():
                seed = seeds[cases.pop(case_no)]
                done += 1
                stats[status] += 1
                per_target[seed.target][status] += 1
                time_target[seed.target] += secs
                if status in ("finding", "hang", "crash"):
                    _save_finding(findings_dir, seed, case_no, status, detail, args.seed, cache,
                                  sigs)
            if time.monotonic() - last > 30 and not args.quiet:
                last = time.monotonic()
                rate = done / (last - t0)
                print(f"  {done}/{args.cases} cases, {rate:.1f}/s, findings "
                      f"{stats['finding']} hangs {stats['hang']} crashes {stats['crash']}",
                      flush=True)
    finally:
        pool.close()
        shutil.rmtree(scratch, ignore_errors=True)
    secs = time.monotonic() - t0
    lines = [
        f"oneinch fuzz: {done} cases in {secs:.0f} s ({done / max(secs, 1e-9):.1f} cases/s), "
        f"{args.workers} workers, {args.timeout:g} s / case, +{args.mem_mb} MB address space",
        f"  ok {stats['ok']}, OneinchError {stats['error']}, findings {stats['finding']}, "
        f"hangs {stats['hang']}, crashes {stats['crash']}",
    ]
    for t in targets:
        c = per_target[t]
        n = sum(c.values())
        if n:
            lines.append(f"  {t:9s} {n:7d} cases  ok {c['ok']:6d}  error {c['error']:6d}  "
                         f"bad {c['finding'] + c['hang'] + c['crash']:4d}  "
                         f"{1000 * time_target[t] / n:6.1f} ms/case")
    for sig, n in sorted(sigs.items(), key=lambda kv: -kv[1]):
        lines.append(f"  FINDING x{n}: {sig}")
    text = "\n".join(lines)
    print(text)
    (out / "summary.txt").write_text(text + "\n")
    return 1 if stats["finding"] + stats["hang"] + stats["crash"] else 0


def _scratch_root() -> str | None:
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def _save_finding(root: Path, seed: Seed, case_no: int, status: str, detail: str,
                  base_seed: int, cache: dict, sigs: dict[str, int]) -> None:
    from .targets import signature

    sig = f"{seed.target} {status}: " + (signature(detail) if status == "finding" else detail)
    sigs[sig] = sigs.get(sig, 0) + 1
    d = root / hashlib.sha1(sig.encode()).hexdigest()[:10]
    d.mkdir(parents=True, exist_ok=True)
    if len(list(d.glob("case_*"))) >= 3:
        return
    f = d / f"case_{case_no}{_ext(seed)}"
    f.write_bytes(make_case(seed, case_no, base_seed, cache))
    with open(d / "info.txt", "a") as fh:
        fh.write(f"{f.name}: target={seed.target} seed={seed.path} --seed {base_seed}\n"
                 f"{status}: {detail}\n\n")


# ----------------------------------------------------------------------------- replay / minimise


def _check(target: str, path: Path, timeout: float) -> tuple[str, str]:
    from .targets import verdict

    signal.signal(signal.SIGALRM, _alarm)
    wd = Path(tempfile.mkdtemp(prefix="oneinch-fuzz-"))
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return verdict(target, path, wd)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except CaseTimeout:
        return "hang", "timeout"
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def target_of(path: Path) -> str:
    """Corpus files are named ``<target>__<what>.<ext>``."""
    t = path.name.split("__", 1)[0]
    if t not in TARGETS:
        raise ValueError(f"{path.name}: name must start with one of {TARGETS} and '__'")
    return t


def replay(folder: Path, timeout: float) -> int:
    bad = 0
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or "__" not in f.name:
            continue
        status, detail = _check(target_of(f), f, timeout)
        print(f"{status:8s} {f.name}  {detail.splitlines()[0] if detail else ''}")
        bad += status not in ("ok", "error")
    return 1 if bad else 0


def minimise(path: Path, target: str, timeout: float, budget: int = 400) -> Path:
    """Shrink a finding by deleting chunks (ddmin-like) while the same signature reproduces."""
    from .targets import signature

    os.environ.update(THREAD_ENV)
    data = path.read_bytes()
    work = path.with_name(f"min_{path.name}")
    work.write_bytes(data)
    status, detail = _check(target, work, timeout)
    if status in ("ok", "error"):
        raise SystemExit(f"{path}: does not reproduce ({status})")
    want = (status, signature(detail) if status == "finding" else status)
    tries = 0
    chunk = max(1, len(data) // 2)
    while chunk >= 1 and tries < budget:
        i = 0
        shrunk = False
        while i < len(data) and tries < budget:
            cand = data[:i] + data[i + chunk :]
            work.write_bytes(cand)
            tries += 1
            s, d = _check(target, work, timeout)
            if cand and (s, signature(d) if s == "finding" else s) == want:
                data = cand
                shrunk = True
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    work.write_bytes(data)
    print(f"minimised {path.name}: {path.stat().st_size} -> {len(data)} bytes in {tries} tries "
          f"-> {work}")
    return work


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=2000, help="number of cases (make fuzz: 100000)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="base random seed (reproducible runs)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per case")
    ap.add_argument("--mem-mb", type=int, default=2048, help="address space a case may add")
    ap.add_argument("--targets", default="", help=f"comma list of {','.join(TARGETS)}")
    ap.add_argument("--out", default=str(REPO / "out" / "fuzz"))
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--replay", type=Path, help="run the files of a corpus folder and exit")
    ap.add_argument("--minimise", type=Path, help="shrink one finding (needs --target)")
    ap.add_argument("--target", choices=TARGETS)
    args = ap.parse_args(argv)
    os.environ.update(THREAD_ENV)
    if args.replay:
        return replay(args.replay, args.timeout)
    if args.minimise:
        if not args.target:
            ap.error("--minimise needs --target")
        minimise(args.minimise, args.target, args.timeout)
        return 0
    return fuzz(args)


if __name__ == "__main__":
    from fuzz.run import main as _main  # workers pickle fuzz.run.worker_main, not __main__'s

    sys.exit(_main())
