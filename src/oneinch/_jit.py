"""numba, imported when first needed.

Importing numba costs ~0.2 s in every process, and a process whose kernels all come from the
ahead-of-time module (:mod:`oneinch._aot`) never needs it. The modules of the develop paths
therefore take their numba names from here::

    from .._jit import njit, numba, prange, types, intrinsic, ir

``njit(...)`` gives a :class:`LazyDispatcher` (the decorated function, its options) and the
other names are stand-ins. The first time anything needs the JIT — a lazy kernel is called,
an attribute of ``numba`` is read, :func:`load` — numba is imported, every lazy kernel and
intrinsic gets its real dispatcher, and every global of the package's modules that holds a
stand-in is rebound to the real object, before numba compiles anything: compiled code sees
exactly what ``import numba`` / ``@numba.njit`` at import time would have given it. Once numba
is loaded, ``njit`` returns real dispatchers directly.

Habits for kernels, each measured (perf on a 50 MP and a 12 MP develop, session 14): a
float32 kernel takes its constants as ``np.float32`` (a Python float is float64 to numba:
the arithmetic runs in double precision and converts back); a kernel with divisions whose
denominators LLVM cannot prove nonzero takes ``error_model="numpy"`` (python's puts a
zero-division branch on each, and the loop stays scalar); a table read (a gather), a call
such as ``pow`` or a running sum goes in a loop of its own, so that the rest of the row
vectorises; a float reduction needs ``reassoc`` (fastmath) to vectorise; arrays the kernel
reads before writing are not calloc'd (zero-page copies, TLB shootdowns).
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.RLock()
_lazy: list[Any] = []  # every LazyDispatcher / LazyIntrinsic made before numba was loaded
_numba: Any = None  # the real module, once loaded


def loaded() -> bool:
    """True once numba has been imported for the package (JIT kernels may run)."""
    return _numba is not None


def threads() -> int:
    """numba's thread count for the calling thread; 1 while numba is not loaded (no
    multi-threaded kernel can run then)."""
    return _numba.get_num_threads() if _numba is not None else 1


def load() -> Any:
    """Import numba, give every lazy object its real one, rebind the package's globals."""
    global _numba
    if _numba is not None:
        return _numba
    with _lock:
        if _numba is None:
            import numba
            from numba.core.typing.typeof import typeof_impl

            @typeof_impl.register(LazyDispatcher)
            def _typeof_lazy(val, c):  # a stand-in numba meets as a global: its dispatcher
                return typeof_impl(val.real(), c)

            for obj in _lazy:
                obj._make(numba)
            _rebind()
            _numba = numba
    return _numba


def _rebind() -> None:
    """Stand-ins in the globals of the package's modules, and of every module that made a
    lazy kernel, become the real objects."""
    prefix = __name__.rsplit(".", 1)[0] + "."
    makers = {getattr(getattr(o, "py_func", None) or getattr(o, "fn", None), "__module__", None)
              for o in _lazy}
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name.startswith(prefix) or name in makers):
            continue
        g = vars(mod)
        for key, val in list(g.items()):
            real = _real_of(val)
            if real is not None:
                g[key] = real


def _real_of(val: Any) -> Any:
    if isinstance(val, (LazyDispatcher, LazyIntrinsic)):
        return val._real
    if isinstance(val, _StandIn):
        return val._resolve()
    return None


class _StandIn:
    """A module (or one of its attributes) resolved when numba is loaded."""

    def __init__(self, module: str, attr: str | None = None) -> None:
        self._module, self._attr = module, attr

    def _resolve(self) -> Any:
        mod = importlib.import_module(self._module)
        return mod if self._attr is None else getattr(mod, self._attr)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._module == "numba" and self._attr is None and name in _LAZY_NAMES:
            return _LAZY_NAMES[name]  # numba.njit / numba.prange as decorators and stand-ins
        load()
        return getattr(self._resolve(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        load()
        return self._resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<oneinch._jit stand-in for {self._module}{'.' + self._attr if self._attr else ''}>"


numba = _StandIn("numba")
types = _StandIn("numba.core.types")
prange = _StandIn("numba", "prange")
ir = _StandIn("llvmlite.ir")


class LazyDispatcher:
    """``numba.njit(**options)(py_func)``, made when first needed (see the module docstring).
    ``py_func`` and ``targetoptions`` (the decorator's options) are known without numba; any
    other attribute, and a call, load numba."""

    def __init__(self, py_func: Callable, options: dict[str, Any]) -> None:
        self.py_func = py_func
        self.options = dict(options)
        self._real: Any = None
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__module__ = py_func.__module__
        self.__doc__ = py_func.__doc__
        self.__wrapped__ = py_func

    @property
    def targetoptions(self) -> dict[str, Any]:
        if self._real is not None:
            return self._real.targetoptions
        return {k: v for k, v in self.options.items() if k != "cache"}

    def _make(self, nb: Any) -> None:
        if self._real is None:
            self._real = nb.njit(**self.options)(self.py_func)

    def real(self) -> Any:
        if self._real is None:
            load()
        return self._real

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.real()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.real(), name)

    def __repr__(self) -> str:
        return f"<oneinch._jit.LazyDispatcher {self.__module__}.{self.__qualname__}>"


class LazyIntrinsic:
    """``numba.extending.intrinsic(fn)``, made when numba is loaded."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self._real: Any = None
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

    def _make(self, nb: Any) -> None:
        if self._real is None:
            from numba.extending import intrinsic as make

            self._real = make(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        load()
        return self._real(*args, **kwargs)


def njit(*args: Any, **options: Any) -> Any:
    """``numba.njit``: ``@njit(**options)`` or ``njit(**options)(fn)`` (no signatures)."""
    if args and callable(args[0]) and not options and len(args) == 1:
        return njit()(args[0])
    if args:
        raise TypeError("oneinch._jit.njit takes keyword options only (no signatures)")
    if _numba is not None:
        return _numba.njit(**options)

    def decorate(fn: Callable) -> Any:
        with _lock:
            if _numba is not None:
                return _numba.njit(**options)(fn)
            d = LazyDispatcher(fn, options)
            _lazy.append(d)
            return d

    return decorate


def intrinsic(fn: Callable) -> Any:
    """``numba.extending.intrinsic``."""
    with _lock:
        if _numba is not None:
            from numba.extending import intrinsic as make

            return make(fn)
        i = LazyIntrinsic(fn)
        _lazy.append(i)
        return i


_LAZY_NAMES = {"njit": njit, "prange": prange}
