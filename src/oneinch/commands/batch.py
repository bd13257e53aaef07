"""`oneinch batch DIR|GLOB -o OUT`: resumable many-file develop (the work is in oneinch.batch)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def batch_command(
    inputs: Annotated[str, typer.Argument(help="a folder of raws or a glob ('shots/*.dng')")],
    output: Annotated[Path, typer.Option("-o", "--output", help="output folder")],
    recipe: Annotated[
        Path | None, typer.Option("--recipe", help="recipe TOML for all files (else sidecars)")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", "-j", help="parallel workers (default: cores)")
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="local | ray")] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (--engine ray)")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="re-hash finished outputs before skipping them")
    ] = False,
) -> None:
    """Develop many files into OUT with a journal: a rerun skips what is done, retries failures."""
    from ..batch import run_batch
    from ..recipe import Recipe

    base = Recipe.load(recipe) if recipe else None

    def progress(done: int, total: int, src: str, err: str | None) -> None:
        if err:
            print(f"oneinch: error: {err}", file=sys.stderr)
        elif src:
            print(f"[{done}/{total}] {src}", file=sys.stderr, flush=True)

    res = run_batch(
        inputs, output, base, workers=workers, engine=engine, address=address, verify=verify,
        on_progress=progress,
    )  # fmt: skip
    print(
        f"{res.total} files: {res.done} developed, {res.skipped} already done, "
        f"{res.failed} failed (journal {res.journal})"
    )
    if res.failed:
        raise typer.Exit(2)
