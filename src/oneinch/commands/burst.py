"""`oneinch burst FRAMES... -o merged.dng [--reference auto|N] [--develop OUT --look NAME]
[--night]`.

Parsing only: the work is ``oneinch.burst.merge_files`` (align + merge, or bracket merge when
the frames' exposure times differ) and, with ``--develop``, the ordinary develop of the merged
DNG. Mount with ``app.command("burst")(command)``; ``burst_app`` is a one-command Typer for tests.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OptionError


def parse_reference(value: str) -> int | str:
    """'auto' or a 0-based frame index."""
    v = value.strip().lower()
    if v == "auto":
        return "auto"
    try:
        n = int(v)
    except ValueError:
        raise OptionError(f"--reference {value!r}: use auto or a frame number (0-based)") from None
    if n < 0:
        raise OptionError(f"--reference {value!r} must be 0 or more")
    return n


def command(
    frames: Annotated[list[Path], typer.Argument(help="raw frames of one burst (same camera)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="merged DNG to write")],
    reference: Annotated[str, typer.Option("--reference", help="auto | frame index (0-based)")]
    = "auto",
    develop_to: Annotated[
        Path | None, typer.Option("--develop", help="also develop the merge to this file")
    ] = None,
    look: Annotated[str | None, typer.Option("--look", help="neutral | authentic | vibrant")]
    = None,
    night: Annotated[bool, typer.Option("--night", help="develop with the night preset")] = False,
    recipe: Annotated[Path | None, typer.Option("--recipe", help="recipe TOML for --develop")]
    = None,
) -> None:
    """Align and merge a burst of raw frames into one DNG (HDR+-style); optionally develop it."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..burst import merge_files

    ref = parse_reference(reference)
    if len(frames) < 2:
        raise OptionError("a burst needs at least two frames")
    if isinstance(ref, int) and ref >= len(frames):
        raise OptionError(f"--reference {ref} but only {len(frames)} frames were given")
    if output.suffix.lower() != ".dng":
        raise OptionError(f"output {output} must be a .dng file")
    if any(output.resolve() == f.resolve() for f in frames):
        raise OptionError(f"output {output} would overwrite an input frame")
    if develop_to is None and (look or night or recipe):
        raise OptionError("--look, --night and --recipe need --develop OUT")
    _same_frames(frames)
    # the develop's settings and target are checked before the merge, not after it
    develop_recipe = None if develop_to is None else _develop_recipe(develop_to, look, night,
                                                                     recipe)
    console = Console(stderr=True)
    t0 = time.perf_counter()
    with Progress(TextColumn("merging"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("merge", total=1.0)
        info = merge_files(frames, output, ref,
                           progress=lambda f: progress.update(task, completed=f))
    typer.echo(
        f"{len(frames)} frames -> {output} (reference {info.reference}, noise variance x"
        f"{info.noise_ratio:.3f}, {time.perf_counter() - t0:.1f} s)"
    )
    if develop_to is not None:
        from ..api import develop_file

        out = develop_file(output, develop_to, develop_recipe)
        typer.echo(f"{output} -> {out}")


def _develop_recipe(dst: Path, look: str | None, night: bool, recipe: Path | None):
    """The recipe ``--develop`` develops the merge with, once the target can take it."""
    from ..burst.night import night_recipe
    from ..cli import build_recipe
    from ..output.encode import check_target, format_from_path
    from ..recipe import Recipe

    check_target(dst)  # (a suffix that names no format, or one not written)
    base = Recipe.load(recipe) if recipe else None
    if night:
        base = night_recipe(base)
    r = build_recipe(base, look=look, format=format_from_path(dst))
    if night and look:  # the look preset must not undo the night tone
        r = night_recipe(r)
    check_target(dst, r.output)
    return r


def _same_frames(frames: list[Path]) -> None:
    """A frame given twice (the same file, or two files of the same bytes) is an OptionError:
    merging it with itself averages no noise away, though the merge's NoiseProfile would say
    it did. Files of equal size are compared by their first and last 64 KB, and in full only
    when those agree (real frames differ in both: time stamps and pixels)."""
    import filecmp
    import os

    def ends(p: Path, size: int) -> bytes:
        with open(p, "rb") as f:
            head = f.read(1 << 16)
            f.seek(max(0, size - (1 << 16)))
            return head + f.read()

    seen: dict[tuple, Path] = {}
    for f in frames:
        try:
            st = os.stat(f)
        except OSError:
            continue  # (the merge reports a missing frame)
        key = (st.st_dev, st.st_ino)
        if key in seen:
            raise OptionError(f"frame {f} is given twice ({seen[key]}): a burst needs "
                              "different exposures")
        seen[key] = f
    by_size: dict[int, list[Path]] = {}
    for f in seen.values():
        by_size.setdefault(os.path.getsize(f), []).append(f)
    for size, group in by_size.items():
        if len(group) < 2:
            continue
        by_ends: dict[bytes, Path] = {}
        for f in group:
            e = ends(f, size)
            other = by_ends.get(e)
            if other is not None and filecmp.cmp(other, f, shallow=False):
                raise OptionError(f"frames {other} and {f} are the same file's bytes: a burst "
                                  "needs different exposures")
            by_ends.setdefault(e, f)


burst_app = typer.Typer(help="burst merge")
burst_app.command("burst")(command)
