"""`oneinch frame IMG... [-o DIR] [--layout NAME] [--template FILE] [--set key=value]`.

Parsing only: the work is ``oneinch.frame.frame_file``. Mount with
``app.command("frame")(frame_command)``. ``frame_app`` is a one-command Typer for tests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OneinchError, OptionError


def parse_sets(values: list[str] | None) -> dict[str, str]:
    """['lens=Summicron 28', 'iso=100'] → {'lens': 'Summicron 28', 'iso': '100'}."""
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"--set expects key=value, got {item!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key.strip().lower()] = value
    return out


def frame_command(
    images: Annotated[
        list[Path] | None, typer.Argument(help="JPEG, PNG, TIFF or HEIC files")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="output folder (default: beside input)")
    ] = None,
    layout: Annotated[
        str,
        typer.Option(
            "--layout", "-l", help="classic, classic-dark, border, blur, square, text or yours"
        ),
    ] = "classic",
    template: Annotated[
        Path | None, typer.Option("--template", "-t", help="a frame template TOML file")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help='override a field: --set lens="Summicron 28"'),
    ] = None,
    quality: Annotated[int, typer.Option("--quality", "-q", min=1, max=100)] = 95,
    subsampling: Annotated[
        str, typer.Option("--subsampling", help="JPEG chroma: 4:4:4, 4:2:2 or 4:2:0")
    ] = "4:4:4",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="output extension (jpg, png, tif, heic); default: input's"
        ),
    ] = None,
    list_layouts: Annotated[bool, typer.Option("--list", help="list the layouts and exit")] = False,
) -> None:
    """Add an EXIF frame (camera, lens, exposure, date, logo) to finished photos."""
    from rich.console import Console
    from rich.progress import Progress

    from ..frame import frame_file, list_templates, output_path

    if list_layouts:
        for name, desc in list_templates().items():
            typer.echo(f"{name:14s} {desc}")
        raise typer.Exit(0)
    images = images or []
    if not images:
        typer.echo("oneinch: error: no image given (--list shows the layouts)", err=True)
        raise typer.Exit(2)
    try:
        overrides = parse_sets(set_)
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
        tmpl = str(template) if template is not None else None
        name = template.stem if template is not None else layout
        suffix = None if fmt is None else "." + fmt.lower().lstrip(".")
    except OneinchError as e:
        typer.echo(f"oneinch: error: {e}", err=True)
        raise typer.Exit(e.exit_code) from None
    failed: list[str] = []
    console = Console(stderr=True)
    with Progress(transient=True, console=console,
                  disable=len(images) < 2 or not console.is_terminal) as progress:
        task = progress.add_task("framing", total=len(images))
        for src in images:
            dst = output_path(src, output, name, suffix)
            try:
                frame_file(src, dst, layout, tmpl, overrides, quality, subsampling)
                print(f"{src} -> {dst}", flush=True)
            except OneinchError as e:  # one plain line per bad file; the batch goes on
                failed.append(str(e))
                print(f"oneinch: error: {e}", file=sys.stderr, flush=True)
            progress.advance(task)
    if failed:
        if len(images) > 1:
            print(f"oneinch: {len(failed)} of {len(images)} files failed", file=sys.stderr)
        raise typer.Exit(2)


frame_app = typer.Typer(help="EXIF watermark frames")
frame_app.command("frame")(frame_command)
