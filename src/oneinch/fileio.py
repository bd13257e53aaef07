"""Reading input files with one clear error (names the file, says what went wrong)."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError


def read_input_bytes(path: str | Path) -> bytes:
    """The whole file, or InputError('file not found' / 'cannot read (...)') naming it."""
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", p) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", p) from None
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", p) from None
