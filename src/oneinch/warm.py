"""Compile the kernels of the common develop paths once, at install time (`make install` /
`make dev` run it), so that no user's first photo pays for compilation:

1. the JIT (numba's on-disk cache): every common path is developed once on small synthetic
   raws — the strip engine with each demosaic, the fused uint16 fronts, binned previews,
   8-bit, 16-bit and float output, clipped highlights, high-ISO denoising, the looks, a style
   and a LUT;
2. ahead of time (:mod:`oneinch._aot`): the signatures those paths called the Python-facing
   kernels with, into one extension module for this CPU, so that a process running only these
   paths never starts numba's JIT.

    python -m oneinch.warm [--no-aot] [--if-stale]

``--if-stale``: only when the ahead-of-time module is missing or older than the sources
(``make test`` runs it, so a kernel edited since the last install is rebuilt, not skipped).

Either way the package's modules are compiled to bytecode (:func:`bytecode`): an editable
install is never byte-compiled by pip, and with ``PYTHONDONTWRITEBYTECODE`` set (as on
containers and CI machines) Python compiles every module from source in every process,
0.1-0.15 s of each ``oneinch`` command's start.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def bytecode(root: Path | None = None) -> int:
    """Write the ``__pycache__`` bytecode of every module under ``root`` (the package's own
    directory by default) that is missing or older than its source; Python reads bytecode
    even when ``PYTHONDONTWRITEBYTECODE`` forbids it to write any. Returns the number of
    modules compiled; a read-only tree compiles nothing and is not an error."""
    import py_compile
    from importlib.util import MAGIC_NUMBER, cache_from_source

    def fresh(src: Path, cached: Path) -> bool:
        # the header Python itself checks (PEP 552, timestamp-based): magic, flags 0, the
        # source's mtime and size
        st = src.stat()
        want = MAGIC_NUMBER + bytes(4) + (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
        want += (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
        try:
            with open(cached, "rb") as f:
                return f.read(16) == want
        except OSError:
            return False

    root = Path(__file__).parent if root is None else Path(root)
    n = 0
    for src in sorted(root.rglob("*.py")):
        cached = Path(cache_from_source(str(src)))
        try:
            if fresh(src, cached):
                continue
            py_compile.compile(str(src), cfile=str(cached), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
        except (OSError, py_compile.PyCompileError):
            continue
        n += 1
    return n


def warm(aot: bool = True) -> float:
    """Develop small synthetic raws through every common path (and build the ahead-of-time
    module when ``aot``); returns the seconds taken."""
    from . import _aot
    from .develop import develop
    from .looks.looks import preset
    from .recipe import Recipe
    from .synthetic import demo_scene, unprocess

    t0 = time.perf_counter()
    _aot.set_enabled(False)  # every call through the JIT: its signatures are what gets built
    try:
        scene = demo_scene(96, 128)
        raw, _ = unprocess(scene, linear_input=True, iso=400, seed=1)
        for method in ("rcd", "ri", "iri", "iri-lr"):
            r = Recipe().with_(demosaic={"method": method})
            develop(raw, r, tiled=True, dtype=np.uint8)
            develop(raw, r, tiled=False)
        for size in (64, 32):  # binned 2x2 and 4x4
            develop(raw, Recipe().with_(output={"size": size}), tiled=True, dtype=np.uint8)
        for look in ("authentic", "vibrant"):
            develop(raw, preset(look), tiled=True, dtype=np.uint8)
        plain = Recipe()
        develop(raw, plain, tiled=True, dtype=np.uint16)  # 16-bit TIFF / PNG
        develop(raw, plain, tiled=True)  # float: HDR, frames, dithering
        develop(raw, plain.with_(look={"style": "bw-hc"}), tiled=True, dtype=np.uint8)
        with tempfile.TemporaryDirectory() as tmp:
            from .looks.lut import Lut, identity_grid, write_cube

            cube = Path(tmp) / "warm.cube"
            write_cube(cube, Lut(table=identity_grid(9), title="warm"))
            develop(raw, plain.with_(look={"lut": str(cube)}), tiled=True, dtype=np.uint8)
            develop(raw, plain.with_(look={"lut": str(cube)}), tiled=False)
        # clipped highlights (reconstruction's kernels run only near clips), with the field
        # reduced by block means (128 x 2048 -> 64 x 1024) with clips from the first rows
        # and from the lower half only, and by area tables (128 x 2000: factor 1.95)
        wide = demo_scene(128, 2048)
        lower = np.where(np.arange(128)[:, None, None] >= 64, 6.0, 1.0).astype(np.float32)
        # (rcd: develop's strips, streamed; auto picks iri at this size: whole, under 4 MP)
        rcd = plain.with_(demosaic={"method": "rcd"})
        for lit in (scene * 6.0, wide * 6.0, wide * lower, demo_scene(128, 2000) * 6.0):
            bright, _ = unprocess(lit, linear_input=True, iso=100, seed=2)
            for tiled in (True, False):
                develop(bright, plain, tiled=tiled, dtype=np.uint8)
            develop(bright, rcd, tiled=True, dtype=np.uint8)
        # statistics from the binned prepass (a look's local tone, auto exposure), streamed
        bright, _ = unprocess(demo_scene(128, 2560) * 3.0, linear_input=True, iso=100, seed=2)
        for r in (preset("vibrant").with_(demosaic={"method": "rcd"}),
                  rcd.with_(exposure={"auto": True})):
            develop(bright, r, tiled=True, dtype=np.uint8)
            develop(bright, r, tiled=False)
        # DNG warp opcodes (WarpRectilinear on GoPro files; every model shares one kernel)
        from .isp.lens import warp_rectilinear

        warp_rectilinear(np.zeros((16, 24, 3), np.float32), [1.0, -0.01, 0.0, 0.0],
                         [0.001, 0.0], 0.5, 0.5)
        # high ISO: the heavier denoise tiers, and the linear demosaic domain
        for iso in (3200, 12800):
            noisy, _ = unprocess(scene, linear_input=True, iso=iso, seed=3)
            for method in ("rcd", "ri"):
                r = Recipe().with_(demosaic={"method": method})
                develop(noisy, r, tiled=True, dtype=np.uint8)
                develop(noisy, r, tiled=False)
        # a raw without a NoiseProfile (most camera raws): the noise estimated from the image
        from dataclasses import replace

        develop(replace(raw, noise_profile=None), rcd, tiled=True, dtype=np.uint8)
    finally:
        _aot.set_enabled(None)
    if aot:
        try:
            path, n = _aot.build()
        except Exception as e:  # no C compiler / linker, numba without pycc: the JIT serves
            print(f"oneinch: no ahead-of-time kernels ({type(e).__name__}: {e}); "
                  "the JIT compiles them in each process instead")
        else:
            print(f"oneinch: {n} kernel variants compiled ahead of time into {path.name}")
    return time.perf_counter() - t0


if __name__ == "__main__":
    args = sys.argv[1:]
    bytecode()
    if "--if-stale" in args:
        from . import _aot

        if _aot.available():
            sys.exit(0)
        print("oneinch: kernel sources changed since the last build: compiling them again")
    print(f"oneinch: kernels ready ({warm(aot='--no-aot' not in args):.1f} s)")
