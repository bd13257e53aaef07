"""Kernels compiled ahead of time: the numba kernels the develop paths call from Python, built
once into one extension module at install time, so that a process which only runs those
paths never starts numba's JIT (its first use costs ~0.4-0.6 s in every new process: the
typing and lowering registries, scipy's BLAS check, the cache loads).

The source of truth stays the ``@numba.njit`` function: :func:`entry` wraps its dispatcher,
``python -m oneinch.warm`` runs the common paths under the JIT (every entry collects the
signatures it is called with), then :func:`build` compiles exactly those signatures with
numba's ahead-of-time compiler (``numba.pycc``: the same typing and lowering, the decorator's
options — fastmath, error model, nogil — and the JIT's instruction set for this CPU).
``parallel`` kernels go through numba's parallel passes and have their prange loops lowered
sequentially: the code the JIT runs on one thread, which is how the strip engine calls them
(one thread per strip, two strips at once).

At run time an entry calls the compiled variant whose argument types match its arguments
exactly (dtype, dimensions, layout, read-only, alignment, as numba's ``typeof`` would type
them). Anything else goes to the JIT dispatcher, as without this module: other types, a
missing module, a stale one (the manifest's fingerprint covers the source of every package
module loaded when it was built, the Python, numpy, numba and llvmlite versions and the CPU),
``ONEINCH_AOT=0``. A ``parallel`` kernel goes back to its multi-threaded JIT version once the
JIT has started in the process, except on a strip's thread (:func:`serial`).
``ONEINCH_AOT_DEBUG=1`` prints each call the compiled module could not serve.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

MODULE = "_oneinch_kernels"
PACKAGE_DIR = Path(__file__).resolve().parent

_ENTRIES: dict[str, Entry] = {}
_state: dict[str, Any] = {"table": None, "jit": False, "enabled": None, "misses": set()}
_local = threading.local()


class Entry:
    """A numba dispatcher called from Python, with an ahead-of-time compiled variant when one
    matches the arguments (see the module docstring). Attributes are the dispatcher's."""

    def __init__(self, dispatcher: Any, name: str | None = None, noalias: bool = False) -> None:
        self.dispatcher = dispatcher
        self.noalias = noalias
        fn = dispatcher.py_func
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        self.parallel = bool(dispatcher.targetoptions.get("parallel"))
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        _ENTRIES[self.name] = self

    def __call__(self, *args: Any) -> Any:
        fn = _compiled(self, args)
        if fn is not None:
            return fn(*args)
        if _debug() and _enabled() and not (self.parallel and _state["jit"]):
            _note_miss(self, args)
        _state["jit"] = True
        return self.dispatcher(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dispatcher, name)

    def __repr__(self) -> str:
        return f"<oneinch._aot.Entry {self.name}>"


def entry(dispatcher: Any = None, name: str | None = None, *, noalias: bool = False) -> Any:
    """Decorator (outermost, over ``@numba.njit``): the kernel may run ahead-of-time compiled.
    Only for kernels called from Python, never from other numba code. ``name``: for a second
    dispatcher of the same Python function (default: its module and qualified name).

    ``noalias`` (``@entry(noalias=True)``): compile its array arguments as not aliasing (LLVM
    ``noalias``) — only for element-wise kernels, where the one overlap callers make is
    in place at the same index. A serial loop over an array written in place otherwise keeps
    LLVM's runtime overlap check, which fails and takes the scalar loop (the sRGB decode in
    place: 19 against 2.6 ns a value; numba's parallel lowering of the same loop, which the
    JIT uses, vectorises)."""
    if dispatcher is None:
        return lambda d: Entry(d, name, noalias)
    return Entry(dispatcher, name, noalias)


@contextmanager
def serial() -> Iterator[None]:
    """This thread runs one strip of a strip-parallel pass: ``parallel`` kernels may use
    their (serial) ahead-of-time variants even after the JIT has started."""
    depth = getattr(_local, "serial", 0)
    _local.serial = depth + 1
    try:
        yield
    finally:
        _local.serial = depth


def serves(e: Entry, *args: Any) -> bool:
    """True when ``e(*args)`` would run its ahead-of-time variant here: a ``parallel`` kernel
    then runs its loop on this one thread (a caller may split the work over threads itself)."""
    return _compiled(e, args) is not None


def on_strip_thread() -> bool:
    """This thread runs one strip of a strip-parallel pass (:func:`serial`)."""
    return bool(getattr(_local, "serial", 0))


def runs_alone(e: Entry, *calls: tuple) -> bool:
    """Each ``e(*args)`` of ``calls`` would run its ahead-of-time variant (its ``parallel``
    loop on this one thread), outside a strip-parallel pass: the other core is idle, and a
    caller whose rows are independent may run those calls on two threads (:func:`in_two`).
    (Never the JIT's ``parallel`` dispatcher from two threads at once: numba's workqueue
    threading layer does not allow it.)"""
    return not on_strip_thread() and all(serves(e, *args) for args in calls)


def in_two(first: Callable[[], Any], second: Callable[[], Any]) -> None:
    """Run ``second`` on another thread while ``first`` runs on this one (both should release
    the GIL: ``nogil`` kernels); an exception in either is raised here."""
    failed: list = []

    def run() -> None:
        try:
            second()
        except BaseException as e:
            failed.append(e)

    t = threading.Thread(target=run, name="oneinch-rows")
    t.start()
    try:
        first()
    finally:
        t.join()
    if failed:
        raise failed[0]


def rows_in_two(e: Entry, upper: tuple, lower: tuple, out: np.ndarray, mid: int) -> np.ndarray:
    """``out[:mid] = e(*upper)`` and ``out[mid:] = e(*lower)``, the two calls on two threads
    (:func:`in_two`): a kernel that returns its rows. Returns ``out``."""

    def first() -> None:
        out[:mid] = e(*upper)

    def second() -> None:
        out[mid:] = e(*lower)

    in_two(first, second)
    return out


SPLIT_MIN_ROWS = 64  # rows each half must have for a pixel kernel to be split (a thread: ~0.1 ms)


def pixels_in_two(e: Entry, rgb: np.ndarray, out: np.ndarray, *args: Any,
                  row0: int | None = None) -> None:
    """``e(rgb, out, *args)`` for a kernel of independent pixels that writes ``out`` row for
    row from ``rgb`` (both C-contiguous, the same rows): its two halves of rows on two threads
    (:func:`in_two`) when :func:`runs_alone` and each half has ``SPLIT_MIN_ROWS``, else one
    call. ``row0``: the kernel's last argument is the first row's index in a taller image
    (each half gets its own). Bit-identical to one call."""
    h = rgb.shape[0]
    tail = () if row0 is None else (int(row0),)
    if h < 2 * SPLIT_MIN_ROWS or not runs_alone(e, (rgb, out, *args, *tail)):
        e(rgb, out, *args, *tail)
        return
    mid = h // 2
    lower = () if row0 is None else (int(row0) + mid,)
    in_two(lambda: e(rgb[:mid], out[:mid], *args, *tail),
           lambda: e(rgb[mid:], out[mid:], *args, *lower))


def set_enabled(on: bool | None) -> None:
    """Force ahead-of-time kernels on or off in this process (None: ``ONEINCH_AOT``)."""
    _state["enabled"] = on


def available() -> bool:
    """True when a module matching these sources, versions and CPU is loaded (or loadable)."""
    return bool(_table())


def jit_started() -> bool:
    return bool(_state["jit"])


def _enabled() -> bool:
    on = _state["enabled"]
    if on is None:
        return os.environ.get("ONEINCH_AOT", "1") != "0"
    return bool(on)


def _debug() -> bool:
    return bool(os.environ.get("ONEINCH_AOT_DEBUG"))


def _note_miss(e: Entry, args: tuple) -> None:
    key = (e.name, repr(tuple(_key(a) for a in args)))
    if key not in _state["misses"]:
        _state["misses"].add(key)
        print(f"oneinch: JIT for {e.name} {key[1]}", file=sys.stderr)


def _compiled(e: Entry, args: tuple) -> Callable | None:
    if not _enabled():
        return None
    table = _table()
    variants = table.get(e.name) if table else None
    if not variants:
        return None
    if e.parallel and _state["jit"] and not getattr(_local, "serial", 0):
        return None  # the multi-threaded JIT version is loaded already: use it
    return variants.get(tuple(_key(a) for a in args))


# --------------------------------------------------------------------------------------------
# Argument types, as numba's typeof gives them (numba.core.typing.typeof), as hashable keys


def _key(v: Any) -> Any:
    if isinstance(v, tuple):
        return ("T", *(_key(x) for x in v))
    return _scalar_or_array_key(v)


def _scalar_or_array_key(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        f = v.flags
        layout = "C" if f.c_contiguous else ("F" if f.f_contiguous else "A")
        return ("A", v.dtype.str, v.ndim, layout, not f.writeable, bool(f.aligned))
    if isinstance(v, (bool, np.bool_)):
        return "b"
    if isinstance(v, int):
        return "<u8" if v >= 1 << 63 else "<i8"
    if isinstance(v, float):
        return "<f8"
    if isinstance(v, np.number):
        return v.dtype.str
    if v is None:
        return "none"
    return ("?", type(v).__name__)  # matches no compiled variant


def _type_key(t: Any) -> Any:
    """The key of a numba type (build side); None for types the runtime key cannot express."""
    from numba.core import types
    from numba.np.numpy_support import as_dtype

    if isinstance(t, types.Array):
        return ("A", as_dtype(t.dtype).str, t.ndim, t.layout, not t.mutable, bool(t.aligned))
    if isinstance(t, types.Boolean):
        return "b"
    if isinstance(t, (types.Integer, types.Float)):
        return as_dtype(t).str
    if isinstance(t, types.NoneType):
        return "none"
    if isinstance(t, types.BaseTuple):
        keys = tuple(_type_key(x) for x in t.types)
        return None if any(k is None for k in keys) else ("T", *keys)
    return None


def _tuples(k: Any) -> Any:
    return tuple(_tuples(x) for x in k) if isinstance(k, list) else k


# --------------------------------------------------------------------------------------------
# The module: where, fingerprint, load


def cache_dir() -> Path:
    d = os.environ.get("ONEINCH_AOT_DIR")
    return Path(d) if d else PACKAGE_DIR / "__pycache__"


def fingerprint(files: list[str]) -> str:
    """Hash of what the compiled code depends on: the source of the package's modules loaded
    when it was built (``files``, relative to the package), the Python, numpy, numba and
    llvmlite versions, and the CPU."""
    h = hashlib.blake2b(digest_size=16)
    for rel in files:
        h.update(rel.encode())
        try:
            h.update((PACKAGE_DIR / rel).read_bytes())
        except OSError:
            h.update(b"<missing>")
    h.update(sys.version.encode())
    h.update(np.__version__.encode())
    for name in ("numba", "llvmlite"):
        spec = importlib.util.find_spec(name)  # the package's files, without importing it
        if spec is None or spec.origin is None:
            h.update(b"-")
            continue
        version = Path(spec.origin).parent / "_version.py"
        h.update(version.read_bytes() if version.is_file() else b"?")
    h.update(_cpu().encode())
    return h.hexdigest()


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        import platform

        return platform.machine() + platform.processor()
    keep = [ln for ln in text.splitlines()[:40] if ln.startswith(("model name", "flags"))]
    return "\n".join(keep)


def _manifest_path() -> Path:
    return cache_dir() / f"{MODULE}.json"


def _table() -> dict[str, dict[Any, Callable]]:
    t = _state["table"]
    if t is None:
        with _lock:
            if _state["table"] is None:
                _state["table"] = _load()
        t = _state["table"]
    return t


_lock = threading.Lock()


def _load() -> dict[str, dict[Any, Callable]]:
    if not _enabled():
        return {}
    try:
        manifest = json.loads(_manifest_path().read_text())
        if manifest["fingerprint"] != fingerprint(manifest["files"]):
            if _debug():
                print("oneinch: ahead-of-time kernels are stale (python -m oneinch.warm)",
                      file=sys.stderr)
            return {}
        so = cache_dir() / manifest["module"]
        spec = importlib.util.spec_from_file_location(MODULE, so)
        if spec is None or spec.loader is None:
            return {}
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        table: dict[str, dict[Any, Callable]] = {}
        for name, variants in manifest["entries"].items():
            table[name] = {_tuples(k): getattr(mod, sym) for k, sym in variants}
        return table
    except (OSError, ImportError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # no usable module: the JIT serves every call


def _numba_sources() -> list[str]:
    """The package's modules loaded now (after the common paths ran: the kernels and every
    module whose constants or helpers they may have frozen in), as paths in the package."""
    files = {str(Path(__file__).resolve().relative_to(PACKAGE_DIR))}
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        if name.startswith(__package__ + ".") and path and path.endswith(".py"):
            files.add(str(Path(path).resolve().relative_to(PACKAGE_DIR)))
    return sorted(files)


# --------------------------------------------------------------------------------------------
# Build (python -m oneinch.warm, after the JIT has seen the common paths)


def build(out_dir: Path | None = None, names: list[str] | None = None) -> tuple[Path, int]:
    """Compile every signature the entries (all, or those in ``names``) have been called with
    into one extension module for this CPU, in ``out_dir`` (default :func:`cache_dir`);
    returns its path and the number of variants. Replaces older builds there."""
    import tempfile
    import warnings

    from numba.core import compiler as numba_compiler
    from numba.core.codegen import AOTCPUCodegen
    from numba.core.registry import cpu_target

    with warnings.catch_warnings():  # numba.pycc is "pending deprecation" (no replacement yet)
        warnings.simplefilter("ignore")
        import numba.pycc.compiler as pycc_compiler
        from numba.pycc import CC

    files = _numba_sources()
    fp = fingerprint(files)
    out = out_dir or cache_dir()
    so_path, manifest_path = out / f"{MODULE}.{fp[:20]}.so", out / f"{MODULE}.json"
    options: dict[Any, tuple[dict, bool]] = {}
    manifest: dict[str, list] = {}
    cc = CC(MODULE)
    cc.target_cpu = "host"
    cc.verbose = False
    n = 0
    for name in sorted(_ENTRIES if names is None else names):
        e = _ENTRIES[name]
        opts = dict(e.dispatcher.targetoptions)  # parallel kept: lowered sequentially below
        if opts.get("parallel"):  # numba compiles prange bodies so (parfor_lowering): the
            opts["error_model"] = "numpy"  # JIT's semantics, and no zero-division branches
        options[e.dispatcher.py_func] = (opts, e.noalias)
        for sig in e.dispatcher.signatures:
            keys = [_type_key(t) for t in sig]
            if any(k is None for k in keys):
                continue
            sym = f"k{n}"
            cc.export(sym, sig)(e.dispatcher.py_func)
            manifest.setdefault(name, []).append([keys, sym])
            n += 1

    plain = pycc_compiler.compile_extra

    def compile_extra(typingctx, targetctx, func, args, return_type, flags, locals, **kw):
        if func in options:  # the decorator's options (pycc would use its defaults)
            o, noalias = options[func]
            f = numba_compiler.Flags()
            cpu_target.options.parse_as_flags(f, o)
            f.no_compile = flags.no_compile
            f.nrt = flags.nrt
            f.release_gil = bool(o.get("nogil"))
            f.noalias = noalias
            flags = f
        return plain(typingctx, targetctx, func, args, return_type, flags, locals, **kw)

    # the JIT's instruction set: this CPU's name and its feature list as LLVM reads it (the
    # ahead-of-time codegen would take the features the CPU's name implies, which a virtual
    # machine may not offer)
    plain_features = AOTCPUCodegen._customize_tm_features
    # ``parallel`` kernels keep numba's parallel passes (array analysis, allocations hoisted
    # out of the prange bodies, loop fusion) and have their prange loops lowered as plain
    # loops (numba's own sequential parfor lowering): no threading layer to link, and the
    # code of the JIT's parallel version run on one thread (plain serial compilation of the
    # same source measured up to 1.7x slower, e.g. the Wiener pass of the DCT denoiser)
    import numba.parfors.parfor as parfor_module

    plain_sequential = parfor_module.sequential_parfor_lowering

    so_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=so_path.parent) as tmp:
        cc.output_dir = tmp
        pycc_compiler.compile_extra = compile_extra
        AOTCPUCodegen._customize_tm_features = AOTCPUCodegen._get_host_cpu_features
        parfor_module.sequential_parfor_lowering = True
        try:
            cc.compile()
        finally:
            pycc_compiler.compile_extra = plain
            AOTCPUCodegen._customize_tm_features = plain_features
            parfor_module.sequential_parfor_lowering = plain_sequential
        built = next(Path(tmp).glob(f"{MODULE}*.so"))
        for old in so_path.parent.glob(f"{MODULE}.*.so"):
            old.unlink()  # (a process may still map it: its pages stay until it exits)
        os.replace(built, so_path)
        part = manifest_path.with_suffix(".part")
        part.write_text(json.dumps({"fingerprint": fp, "files": files, "module": so_path.name,
                                    "entries": manifest}))
        os.replace(part, manifest_path)
    _state["table"] = None
    return so_path, n
