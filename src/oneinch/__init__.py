"""oneinch: an open computational camera.

Public API: ``open_raw``, ``develop``, ``Recipe``, ``looks``, ``write``. Heavy modules load on
first use so that ``import oneinch`` stays fast.
"""

from __future__ import annotations

import sys

__version__ = "0.1.0"
__all__ = ["OneinchError", "Recipe", "develop", "looks", "open_raw", "write"]

TYPE_CHECKING = False  # (typing itself costs 3-13 ms of every command's start)
if TYPE_CHECKING:
    from typing import Any

    from .develop import develop
    from .errors import OneinchError
    from .output.encode import write
    from .raw.reader import open_raw
    from .recipe import Recipe


class _DeferredNumpyTools:  # a sys.meta_path finder (importlib.abc would cost 30 ms)
    """Load ``numpy.f2py`` and ``numpy.testing`` lazily (their code runs on first attribute
    access).

    Numba's first kernel call imports scipy.linalg (its BLAS check), whose array-API shim does
    ``from numpy import *``, and numpy 2 lists ``f2py`` and ``testing`` in ``__all__``: every
    process that develops a photo used to import the Fortran wrapper generator (and, through
    it, charset_normalizer) and unittest, ~0.12 s of a cold start that a develop never uses.
    """

    NAMES = ("numpy.f2py", "numpy.testing")

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.NAMES:
            return None
        import importlib.util

        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


if not any(isinstance(f, _DeferredNumpyTools) for f in sys.meta_path):
    sys.meta_path.insert(0, _DeferredNumpyTools())


def __getattr__(name: str) -> Any:
    if name == "Recipe":
        from .recipe import Recipe

        return Recipe
    if name == "OneinchError":
        from .errors import OneinchError

        return OneinchError
    if name == "open_raw":
        from .raw.reader import open_raw

        return open_raw
    if name == "develop":
        from .develop import develop

        return develop
    if name == "write":
        from .output.encode import write

        return write
    if name == "looks":
        import importlib

        return importlib.import_module(".looks", __name__)
    raise AttributeError(f"module 'oneinch' has no attribute {name!r}")
