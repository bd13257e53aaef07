"""`oneinch frame IMG... [-o DIR | -o FILE] [--layout NAME] [--template FILE] [--set key=value]`.

Parsing only: the work is ``oneinch.frame.frame_file``. Mount with
``app.command("frame")(frame_command)``. ``frame_app`` is a one-command Typer for tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OneinchError, OptionError, OutputError


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


def _image_suffixes() -> tuple[str, ...]:
    """The suffixes frame_file writes (its format table: one source of truth)."""
    from ..frame.files import _FORMATS

    return tuple(_FORMATS)


def _ext(suffix: str) -> str:
    s = suffix.lower().lstrip(".")
    return {"jpeg": "jpg", "tiff": "tif", "heif": "heic"}.get(s, s)


def _names_a_file(output: str, count: int) -> bool:
    """``-o`` names the output file itself (an image extension, no trailing separator, not an
    existing folder, as ``oneinch develop -o``), else a folder. OptionError when it names a
    file of an unknown format (``x.txt``, ``x.gif``: never taken as a folder name) or a file
    for several inputs; a trailing separator or an existing folder is always a folder."""
    p = Path(output)
    if output.endswith(("/", os.sep)) or p.is_dir() or not p.suffix:
        return False
    if p.suffix.lower() not in _image_suffixes():
        raise OptionError(
            f"unknown output format {p.suffix!r} (use {', '.join(sorted(_image_suffixes()))}; "
            "end the name with / for a folder)", output)
    if count != 1:
        raise OptionError(
            f"{count} inputs need an output folder, not a file (end it with / for a folder)",
            output)
    return True


def frame_command(
    images: Annotated[
        list[Path] | None, typer.Argument(help="JPEG, PNG, TIFF or HEIC files")
    ] = None,
    output: Annotated[
        str | None, typer.Option(
            "--output", "-o",
            help="output FILE (one image, an image extension) or FOLDER (default: beside input)")
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
            "--format", "-f",
            help="output extension (jpg, png, tif, heic, avif, webp, jxl); default: input's",
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
    out_file = None
    try:
        overrides = parse_sets(set_)
        tmpl = str(template) if template is not None else None
        name = template.stem if template is not None else layout
        suffix = None if fmt is None else "." + fmt.lower().lstrip(".")
        if suffix is not None and suffix not in _image_suffixes():
            raise OptionError(f"--format {fmt}: unknown output format (use "
                              f"{', '.join(s.lstrip('.') for s in sorted(_image_suffixes()))})")
        folder = Path(output) if output is not None else None
        if output is not None and _names_a_file(output, len(images)):
            out_file, folder = Path(output), None
            if suffix is not None and _ext(suffix) != _ext(out_file.suffix):
                raise OptionError(f"--format {fmt} and -o {output} disagree")
        elif folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OutputError(f"cannot make the output folder ({e.strerror})",
                                  folder) from None
    except OneinchError as e:
        typer.echo(f"oneinch: error: {e}", err=True)
        raise typer.Exit(e.exit_code) from None
    failed: list[str] = []
    console = Console(stderr=True)
    with Progress(transient=True, console=console,
                  disable=len(images) < 2 or not console.is_terminal) as progress:
        task = progress.add_task("framing", total=len(images))
        for src in images:
            dst = out_file if out_file is not None else output_path(src, folder, name, suffix)
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
