"""`oneinch looks list|show|export` (parsing only; the work is in oneinch.looks)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Looks, film styles and LUTs.", no_args_is_help=True)


@app.command("list")
def list_looks() -> None:
    """List the look presets and film styles."""
    from ..looks.looks import DESCRIPTIONS
    from ..looks.styles import STYLES

    typer.echo("looks (--look):")
    for name, text in DESCRIPTIONS.items():
        typer.echo(f"  {name:<11} {text}")
    typer.echo("styles (--style, with --strength 0..1):")
    for name, st in STYLES.items():
        typer.echo(f"  {name:<11} {st.description}")


@app.command("show")
def show(name: str = typer.Argument(..., help="a look preset or a style")) -> None:
    """Print the numbers that define a look (as recipe TOML) or a style."""
    import dataclasses

    from ..errors import OptionError
    from ..looks.looks import PRESETS
    from ..looks.styles import STYLES
    from ..recipe import _dump_toml

    if name in PRESETS:
        typer.echo(_dump_toml(PRESETS[name]).rstrip())
    elif name in STYLES:
        for k, v in dataclasses.asdict(STYLES[name]).items():
            typer.echo(f"{k} = {v}")
    else:
        raise OptionError(f"unknown look or style {name!r} (see `oneinch looks list`)")


@app.command("export")
def export(
    name: str = typer.Argument(..., help="a look preset or a style"),
    out: Path | None = typer.Argument(None, help="output .cube, or HaldCLUT .png/.tif"),
    output: Path | None = typer.Option(None, "-o", "--output", help="the same, as an option"),
    size: int = typer.Option(33, help=".cube grid size (33 or 65)"),
    level: int = typer.Option(8, help="HaldCLUT level (8 or 12)"),
    strength: float = typer.Option(1.0, help="0..1 blend with the input"),
    space: str = typer.Option("srgb", help="LUT colour space: srgb, p3, rec2020, prophoto, "
                              "or e.g. srgb-linear"),
) -> None:
    """Write a look or style as a LUT for Lightroom, Resolve, darktable, RawTherapee, ffmpeg."""
    from ..errors import OptionError
    from ..looks.looks import export_lut

    if (out is None) == (output is None):
        raise OptionError("give the output file once: `looks export NAME OUT` or `-o OUT`")
    out = out if out is not None else output
    if out.suffix.lower() == ".cube" and size not in (33, 65):
        raise OptionError(f"--size {size}: use 33 or 65")
    if out.suffix.lower() != ".cube" and level not in (8, 12):
        raise OptionError(f"--level {level}: use 8 or 12")
    export_lut(name, out, size=size, level=level, strength=strength, lut_space=space)
    typer.echo(f"wrote {out}")
