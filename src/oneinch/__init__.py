"""oneinch: an open computational camera.

Public API: ``open_raw``, ``develop``, ``Recipe``, ``looks``, ``write``. Heavy modules load on
first use so that ``import oneinch`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import OneinchError
from .recipe import Recipe

__version__ = "0.1.0"
__all__ = ["OneinchError", "Recipe", "develop", "looks", "open_raw", "write"]

if TYPE_CHECKING:
    from .develop import develop
    from .output.encode import write
    from .raw.reader import open_raw


def __getattr__(name: str) -> Any:
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
