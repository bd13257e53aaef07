"""`oneinch serve [FOLDER]`: the browser app (the work is in oneinch.web.server)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve_command(
    folder: Annotated[
        Path | None, typer.Argument(help="folder to open (default: a new empty workspace)")
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="address to listen on (loopback by default)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port")] = 8000,
    max_upload_mb: Annotated[
        int, typer.Option("--max-upload-mb", help="largest accepted upload, in MB")
    ] = 200,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="open a browser tab")
    ] = False,
) -> None:
    """Browse a folder of raws in the browser: looks, styles, frames, before/after, export."""
    from ..errors import InputError, OptionError
    from ..web.server import serve

    if folder is not None and not folder.is_dir():
        raise InputError("not a folder", folder)
    if not 0 < port < 65536:
        raise OptionError(f"--port {port} must be within 1..65535")
    if max_upload_mb < 1:
        raise OptionError("--max-upload-mb must be at least 1")
    serve(folder, host=host, port=port, max_upload=max_upload_mb * 1024 * 1024,
          open_browser=open_browser)
