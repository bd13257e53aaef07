"""Errors a user can cause. The CLI prints ``str(err)`` in one line and exits 2.

Every message names the file (when there is one) and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path


class OneinchError(Exception):
    """Base class: bad input or usage, never a bug. ``exit_code`` is what the CLI returns."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.detail = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(OneinchError):
    """An input file is unreadable, truncated, of an unknown kind or declares absurd values."""


class UnsupportedError(OneinchError):
    """A valid file uses something oneinch does not (yet) handle, e.g. VC-5 compressed GPR."""


class OptionError(OneinchError):
    """A setting or command-line option has a wrong value."""


class OutputError(OneinchError):
    """An output cannot be written (unwritable directory, disk full...). Nothing partial is left."""
