"""Strips of rows: run a neighbourhood stage on bounded memory, both cores busy.

A stage ``fn`` that maps an image (rows, ...) to an image of the same rows (or ``scale`` times
as many: a 2x2 bin gives 0.5) is applied to overlapping strips: each strip is read with
``margin`` extra rows above and below (clamped at the image edges, where the stage sees the
real border exactly as it would on the whole image) and only its own rows are kept. When every
output row depends on input rows at most ``margin`` away, the result equals the whole-image
call (this is the classic overlap-save / "halo" tiling of image pipelines, e.g. Ragan-Kelley
et al. 2013, Halide, §3: overlapping tiles trade redundant work on the halo for locality).
Strip starts are multiples of ``align`` (keeps the CFA phase and any patch grid of the stage).

Strips run on a small thread pool (the stages are numpy / OpenCV / numba code that releases
the GIL); outputs are written in order by the calling thread, so ``out`` may be ``src`` itself
(in-place): each strip's input, margins included, is copied before any neighbouring output is
written.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

ROWS = 384  # output rows per strip (input rows for scale != 1)
WORKERS = min(2, os.cpu_count() or 1)  # strips in flight at once


def strip_bounds(h: int, rows: int, align: int) -> list[tuple[int, int]]:
    """[(a, b)] covering 0..h, every ``a`` a multiple of ``align``."""
    step = max(align, (rows // align) * align)
    return [(a, min(h, a + step)) for a in range(0, h, step)]


class Walks:
    """Strips 0..n-1 handed to workers in walks down the image, so that a worker's next strip
    is usually the one below its last (whose overlap rows it can pass on: develop's RCD
    rows). A worker continues its walk while the next strip is free; else (and at its start)
    it begins a walk at the first free strip when nobody walks into it, or in the middle of
    the longest run of free strips: with two workers, one walks the top half and the other
    the bottom half, and the one done first takes half of what the other has left.
    Thread-safe; after :meth:`stop` nothing more is handed out."""

    def __init__(self, n: int) -> None:
        self.free = [True] * n
        self.lock = threading.Lock()

    def claim(self, last: int | None = None) -> int | None:
        """The next strip for a worker whose previous strip was ``last``, or None."""
        with self.lock:
            f, n = self.free, len(self.free)
            if last is not None and last + 1 < n and f[last + 1]:
                i = last + 1
            else:
                best = None  # (length, first) of the longest run of free strips
                j = 0
                while j < n:
                    if f[j]:
                        k = j
                        while k < n and f[k]:
                            k += 1
                        if best is None or k - j > best[0]:
                            best = (k - j, j)
                        j = k
                    else:
                        j += 1
                if best is None:
                    return None
                length, first = best
                i = first if first == 0 or length == 1 else first + length // 2
            f[i] = False
            return i

    def stop(self) -> None:
        with self.lock:
            self.free = [False] * len(self.free)


def map_rows(
    src: np.ndarray,
    fn: Callable[[np.ndarray, int], np.ndarray],
    *,
    out: np.ndarray | None = None,
    margin: int = 0,
    rows: int | None = None,
    align: int = 1,
    scale: float = 1.0,
    workers: int | None = None,
    consumed: Callable[[int], None] | None = None,
    kept: Callable[[np.ndarray, int], None] | None = None,
    mutates: bool = True,
) -> np.ndarray:
    """``fn(rows, first_row)`` applied to overlapping strips of ``src``'s rows; returns ``out``
    (allocated when None, with ``scale`` x the rows of ``src`` and the trailing shape of
    ``fn``'s results).

    ``margin`` rows of context (input rows) on each side; ``align``: strip starts (input rows)
    are multiples of it, and so is ``margin`` rounded up to. ``out`` may share memory with
    ``src`` (in place, or a compacted alias of a cropped view whose row i starts no later than
    src's row i): strip inputs are then copied before neighbouring outputs are written.
    ``consumed(row)``: called (in place only) once no strip will read ``src`` rows < row
    again — the caller may hand their memory back (:func:`release`). ``kept(rows, first)``:
    called in the worker with each strip's kept output rows and the index of the first (a
    place to gather statistics while the rows are hot in cache). In place, each strip gets a
    copy of its input rows; with ``mutates=False`` (``fn`` never writes into the array it is
    given) a strip reads ``src`` itself unless outputs already written may reach its rows.
    """
    h = src.shape[0]
    rows = ROWS if rows is None else rows  # read at call time (tests shrink ROWS)
    margin = -(-margin // align) * align if margin else 0
    bounds = strip_bounds(h, rows, align)
    workers = WORKERS if workers is None else max(1, int(workers))
    in_place = out is not None and np.may_share_memory(out, src)
    if in_place and margin > bounds[0][1] - bounds[0][0] and len(bounds) > 1:
        raise ValueError(f"strips of {rows} rows cannot carry a margin of {margin} in place")

    direct = out is not None and not in_place  # each worker writes its own rows

    def job(a: int, b: int, inp: np.ndarray, top: int) -> tuple[int, int, np.ndarray | None]:
        res = fn(inp, a - top)
        o0, o1 = round(top * scale), round((top + b - a) * scale)
        if kept is not None:
            kept(res[o0:o1], round(a * scale))
        if direct:  # disjoint rows: copies (and first-touch page faults) on both cores
            out[round(a * scale) : round(a * scale) + o1 - o0] = res[o0:o1]
            return a, b, None
        return a, b, res[o0:o1]

    def write(a: int, b: int, res: np.ndarray | None) -> None:
        nonlocal out
        if res is None:
            return
        if out is None:
            shape = (round(h * scale), *res.shape[1:])
            out = empty(shape, res.dtype)  # its own map: callers may release() pages
        out[round(a * scale) : round(a * scale) + res.shape[0]] = res

    pending: deque = deque()
    depth = workers + 1  # results wait one strip: in place, a strip's input is copied first
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    overlaps = _overlap_test(src, out, scale) if in_place else None
    try:
        for a, b in bounds:
            lo, hi = max(0, a - margin), min(h, b + margin)
            inp = src[lo:hi]
            copied = overlaps is not None and (mutates or overlaps(a, lo, hi))
            if copied:
                inp = inp.copy()
            if pool is None:
                pending.append(_Done(job(a, b, inp, a - lo), lo, copied))
            else:
                pending.append(_Pending(pool.submit(job, a, b, inp, a - lo), lo, copied))
            if consumed is not None:  # rows no strip still reads from src (copies do not)
                consumed(min((p.lo for p in pending if not p.copied), default=lo))
            while len(pending) >= depth:
                write(*pending.popleft().result())
        while pending:
            write(*pending.popleft().result())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    assert out is not None
    return out


class _Done:
    def __init__(self, value: tuple, lo: int = 0, copied: bool = True) -> None:
        self.value, self.lo, self.copied = value, lo, copied

    def result(self) -> tuple:
        return self.value


class _Pending:
    def __init__(self, future: Future, lo: int, copied: bool) -> None:
        self.future, self.lo, self.copied = future, lo, copied

    def result(self) -> tuple:
        return self.future.result()


def _overlap_test(src: np.ndarray, out: np.ndarray, scale: float):
    """For map_rows in place: ``overlaps(a, lo, hi)`` is True when the strip starting at row
    ``a`` must read a copy of its input rows ``src[lo:hi]`` — when that memory may meet the
    output of the strips before it (written while it runs). Outputs are written in order, so
    by the time any of them lands, at most ``out`` rows < round(a * scale) exist: they end
    at out's address of row round(a * scale). An integer image written over the start of a
    float image's memory (4x fewer bytes a row) stays far behind the rows being read: only
    the first strips need copies. Conservative (True) for any layout it does not model."""
    s0 = src.__array_interface__["data"][0]
    o0 = out.__array_interface__["data"][0]
    ss, os_ = src.strides[0], out.strides[0]
    simple = (
        src.ndim >= 1 and out.ndim >= 1 and ss > 0 and os_ > 0
        and src[0].flags.c_contiguous and out[0].flags.c_contiguous
    )

    def overlaps(a: int, lo: int, hi: int) -> bool:
        if not simple:
            return True
        written_end = o0 + round(a * scale) * os_  # the output rows before the strip
        return o0 < s0 + hi * ss and written_end > s0 + lo * ss

    return overlaps


_HEAP = False  # reuse_buffers(): working images from malloc's heap, not maps of their own


def reuse_buffers(on: bool = True) -> None:
    """For the command's processes (``oneinch develop``, batch workers), whose malloc keeps
    freed memory (``cli.reuse_freed_memory``): :func:`empty` takes its arrays from malloc's
    heap, handed to the next file's develop already faulted in, instead of a fresh memory map
    whose pages are zeroed and faulted in for every file (50 MP: 600 MB, ~150k page faults a
    file). There is then no :func:`release` of pages mid-develop and no :func:`alias` (the
    integer image gets its own memory). Measured at 50 MP: a warm develop 2.43-2.58 ->
    2.16-2.33 s; one file in a new process 3.06 -> 2.93 s (median, n=6 interleaved; the
    page releases' TLB work is gone), peak RSS the same for JPEG (~1.05 GB) and +100 MB for
    16-bit TIFF (1.10 GB). A library user's process (malloc untouched) keeps the maps."""
    global _HEAP
    _HEAP = bool(on)


def empty(shape: tuple[int, ...], dtype: type | np.dtype = np.float32) -> np.ndarray:
    """An uninitialised array in its own anonymous memory map, whose pages :func:`release`
    can hand back to the system while the array (or an alias of it) is still in use (after
    :func:`reuse_buffers`: a plain heap array, for which release and alias do nothing)."""
    if _HEAP:
        return np.empty(shape, dtype)
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    # private, not the default shared mapping: anonymous shared memory is shmem-backed, and
    # first-touch faults on it cost ~35 % more (600 MB: 0.45 s -> 0.33 s of system time here)
    private = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    mm = mmap.mmap(-1, max(n, 1), flags=private) if private else mmap.mmap(-1, max(n, 1))
    return np.frombuffer(mm, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


_MADV_POPULATE_WRITE = 23  # Linux 5.14+: fault in (and zero) a range of pages now


def prefault(arr: np.ndarray) -> threading.Thread | None:
    """Fault in the pages of a fresh :func:`empty` array on a background thread, while the
    caller goes on (e.g. loading kernels, single-threaded): touching 600 MB of new anonymous
    memory costs ~0.35 s of kernel time, paid here on the otherwise idle core rather than by
    the strips that first write each page. madvise(MADV_POPULATE_WRITE) through ctypes, which
    releases the GIL; None (nothing done) where that is unavailable. The thread keeps ``arr``
    alive until it is done (then its ``populated`` says whether the kernel did it); the
    caller need not wait for it."""
    if _map_of(arr) is None or not sys.platform.startswith("linux") or arr.nbytes < (1 << 24):
        return None
    libc = _libc()
    if libc is None:
        return None
    addr = arr.__array_interface__["data"][0]
    page = mmap.PAGESIZE
    start = -(-addr // page) * page
    length = (addr + arr.nbytes) // page * page - start
    if length <= 0:
        return None

    def run(keep: np.ndarray = arr) -> None:
        rc = libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), _MADV_POPULATE_WRITE)
        t.populated = rc == 0  # type: ignore[attr-defined]  # (older kernels: EINVAL)

    t = threading.Thread(target=run, name="oneinch-prefault", daemon=True)
    t.populated = False  # type: ignore[attr-defined]
    t.start()
    return t


def _libc() -> ctypes.CDLL | None:
    global _LIBC
    if _LIBC is False:
        try:
            lib = ctypes.CDLL("libc.so.6", use_errno=True)
            lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            lib.madvise.restype = ctypes.c_int
            _LIBC = lib
        except (OSError, AttributeError):
            _LIBC = None
    return _LIBC


_LIBC: ctypes.CDLL | bool | None = False


def release(arr: np.ndarray, start: int, stop: int) -> None:
    """Hand back the whole pages within bytes [start, stop) of ``arr``'s memory map (offsets
    from the map's start), made by :func:`empty`; a no-op for other arrays. The released
    bytes read as zeros afterwards: only for memory that will not be read again."""
    base = _map_of(arr)
    if base is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    page = mmap.PAGESIZE
    a, b = -(-int(start) // page) * page, (int(stop) // page) * page
    if b > a:
        base.madvise(mmap.MADV_DONTNEED, a, b - a)


def map_offset(arr: np.ndarray) -> int | None:
    """Byte offset of ``arr``'s first element from the start of its :func:`empty` memory map."""
    mm = _map_of(arr)
    if mm is None:
        return None
    start = np.frombuffer(mm, np.uint8, count=1).__array_interface__["data"][0]
    return arr.__array_interface__["data"][0] - start


def alias(arr: np.ndarray, shape: tuple[int, ...], dtype: type | np.dtype) -> np.ndarray | None:
    """A new (shape, dtype) array over the start of ``arr``'s :func:`empty` memory map (None
    when ``arr`` has none or the map is too small): e.g. an 8-bit image written in place over
    the float image it is made from (:func:`map_rows` with ``out`` sharing ``src``'s memory)."""
    base = _map_of(arr)
    n = int(np.prod(shape))
    if base is None or n * np.dtype(dtype).itemsize > len(base):
        return None
    return np.frombuffer(base, dtype=dtype, count=n).reshape(shape)


def _map_of(arr: np.ndarray) -> mmap.mmap | None:
    """The :func:`empty` memory map under ``arr`` (through views and memoryviews), or None."""
    base = arr
    while isinstance(base, np.ndarray | memoryview):
        base = base.obj if isinstance(base, memoryview) else base.base
    return base if isinstance(base, mmap.mmap) else None
