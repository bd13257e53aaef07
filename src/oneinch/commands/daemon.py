"""`oneinch daemon start | status | stop`: the resident zygote that forks each `oneinch
develop` from an already imported pipeline (the work is in oneinch.zygote)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="A resident process that starts each develop without the imports.",
                  no_args_is_help=True)


def _fail(e: Exception) -> None:
    from ..errors import OptionError

    raise OptionError(str(e)) from None


@app.command()
def start(
    idle: Annotated[float, typer.Option(
        "--idle", help="stop after this many minutes without a command (0: never)")] = 0.0,
) -> None:
    """Start the zygote in the background; `oneinch develop` then goes through it."""
    from .. import zygote

    if not idle >= 0 or idle == float("inf"):  # (NaN: never stopped)
        _fail(ValueError("--idle must be 0 or more minutes"))
    try:
        pid = zygote.start(idle * 60.0)
    except zygote.ZygoteError as e:
        _fail(e)
    print(f"oneinch: zygote {pid} listening in {zygote.runtime_dir()}")


@app.command()
def status() -> None:
    """Say whether a zygote runs, and whether it serves this installation."""
    from .. import zygote

    reply = zygote.request("ping")
    if reply is None:
        print("oneinch: no zygote running")
        raise typer.Exit(1)
    same = reply.get("fp") == zygote.fingerprint()
    print(f"oneinch: zygote {reply.get('pid')} running"
          + ("" if same else " (for other code or another environment: not used from here)"))


@app.command()
def stop() -> None:
    """Stop the zygote (commands it started finish)."""
    from .. import zygote

    pid = zygote.stop()
    if pid is None:
        print("oneinch: no zygote running")
        raise typer.Exit(1)
    print(f"oneinch: zygote {pid} stopped")
