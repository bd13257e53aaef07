"""What one fuzz case runs, and the verdict: pass, or a finding.

A case passes when the target returns normally or raises a ``OneinchError`` whose message
names the input (or output) file. Anything else — another exception type, a OneinchError that
does not say which file, a MemoryError, a timeout, a crash of the process — is a finding.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import numpy as np

_TINY = None


def _tiny_photo() -> np.ndarray:
    global _TINY
    if _TINY is None:
        y, x = np.mgrid[0:48, 0:64].astype(np.float32)
        _TINY = np.ascontiguousarray(
            np.stack([x / 64, y / 48, np.full_like(x, 0.5)], axis=-1), dtype=np.float32
        )
    return _TINY


_RAW = None


def _tiny_raw():
    """A 64 x 96 synthetic Bayer raw (made once per worker)."""
    global _RAW
    if _RAW is None:
        from oneinch.synthetic import demo_scene, unprocess

        _RAW, _ = unprocess(demo_scene(64, 96), linear_input=True, iso=400, seed=0)
    return _RAW


def _recipe_case(path: Path, workdir: Path) -> None:
    """Load the recipe, then develop the tiny raw with it and write the result in its format:
    a recipe the loader accepts must develop to a finite image or fail with a clear error
    (until session 19 only the loading was fuzzed, and NaN exposures or a 1e9-px sharpening
    radius passed it). A OneinchError the develop raises is the recipe's: it is reported with
    the recipe's name."""
    from oneinch.develop import develop
    from oneinch.errors import OneinchError
    from oneinch.output.encode import write
    from oneinch.recipe import Recipe

    r = Recipe.load(path)
    r.to_toml()
    r.hash()
    out = workdir / f"{path.stem}_developed.{r.output.format}"
    try:
        photo = develop(_tiny_raw(), r)
        if not np.isfinite(photo.rgb).all():
            raise AssertionError(f"{path}: the developed image is not finite")
        write([photo], out, r.output)
    except OneinchError as e:
        raise type(e)(e.detail, str(path)) from None
    finally:
        if out.exists():
            out.unlink()


def run_target(target: str, path: Path, workdir: Path) -> None:
    """Run one target on one input file; raise whatever the library raises."""
    if target == "raw":
        from oneinch.raw import describe, open_raw

        describe(open_raw(path))
    elif target == "develop":
        from oneinch.develop import develop
        from oneinch.raw import open_raw
        from oneinch.recipe import Recipe

        # every demosaic method, whole and in strips, as the case's name picks (the sizes of
        # the seeds keep each develop at full resolution)
        methods = ("auto", "bilinear", "malvar", "rcd", "ri", "iri", "iri-lr", "iri-cnn")
        k = sum(path.name.encode())
        recipe = Recipe().with_(output={"size": 256}, demosaic={"method": methods[k % 8]})
        photo = develop(open_raw(path), recipe, tiled=bool(k // 8 % 2))
        if not np.isfinite(photo.rgb).all():
            raise AssertionError(f"{path}: the developed image is not finite")
    elif target == "image":
        from oneinch.frame import frame_file

        out = workdir / f"{path.stem}_framed.jpg"
        layout = ("classic", "border", "text", "square", "blur")[len(path.name) % 5]
        try:
            frame_file(path, out, layout=layout)
        finally:
            if out.exists():
                out.unlink()
    elif target in ("cube", "hald"):
        from oneinch.looks.lut import apply_table, load_lut

        lut = load_lut(path)
        apply_table(_tiny_photo(), lut)
    elif target == "template":
        from oneinch.frame import render
        from oneinch.frame.templates import read_template
        from oneinch.raw.image import ShotInfo

        t = read_template(path)
        render(_tiny_photo(), ShotInfo(make="Xiaomi", model="2203121C", f_number=1.9), t.name, t)
    elif target == "recipe":
        _recipe_case(path, workdir)
    else:
        raise ValueError(f"unknown fuzz target {target!r}")


def verdict(target: str, path: Path, workdir: Path) -> tuple[str, str]:
    """('ok' | 'error' | 'finding', detail). 'error' = a proper OneinchError naming the file."""
    from oneinch.errors import OneinchError

    try:
        run_target(target, path, workdir)
    except OneinchError as e:
        msg = str(e)
        if "\n" in msg.strip():
            return "finding", f"OneinchError message spans lines: {msg[:300]!r}"
        names = (str(path), path.name, str(workdir))
        if not any(n in msg for n in names):
            return "finding", f"{type(e).__name__} without the file name: {msg[:300]}"
        return "error", f"{type(e).__name__}: {msg[:200]}"
    except RecursionError as e:
        return "finding", _describe(e)
    except MemoryError as e:
        return "finding", _describe(e)
    except Exception as e:
        return "finding", _describe(e)
    return "ok", ""


def signature(detail: str) -> str:
    """A short key grouping findings of the same bug: exception type + innermost oneinch frame."""
    first = detail.splitlines()[0] if detail else ""
    for line in detail.splitlines():
        if line.startswith("oneinch frame: "):
            return f"{first.split(':')[0]} @ {line[15:]}"
    return first[:120]


def _describe(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    ours = [f for f in tb if "/src/oneinch/" in f.filename]
    where = f"{os.path.relpath(ours[-1].filename)}:{ours[-1].lineno} in {ours[-1].name}" if ours \
        else "(outside oneinch)"
    frames = [f"  File {os.path.relpath(f.filename)}:{f.lineno} in {f.name}" for f in tb[-6:]]
    msg = " ".join(str(e).split())[:300]
    return f"{type(e).__name__}: {msg}\noneinch frame: {where}\n" + "\n".join(frames)
