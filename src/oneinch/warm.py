"""Compile (or load from numba's on-disk cache) the kernels of the common develop paths once,
at install time (`make install` / `make dev` run it), so that no user's first photo pays for
JIT compilation: the strip engine with each demosaic, the fused uint16 fronts, the binned
previews, integer output, the looks.

    python -m oneinch.warm
"""

from __future__ import annotations

import time

import numpy as np


def warm() -> float:
    """Develop a small synthetic raw through every common path; returns the seconds taken."""
    from .develop import develop
    from .looks.looks import preset
    from .recipe import Recipe
    from .synthetic import demo_scene, unprocess

    t0 = time.perf_counter()
    raw, _ = unprocess(demo_scene(96, 128), linear_input=True, iso=400, seed=1)
    for method in ("rcd", "ri", "iri", "iri-lr"):
        r = Recipe().with_(demosaic={"method": method})
        develop(raw, r, tiled=True, dtype=np.uint8)
        develop(raw, r, tiled=False)
    for size in (64, 32):  # binned 2x2 and 4x4
        develop(raw, Recipe().with_(output={"size": size}), tiled=True, dtype=np.uint8)
    for look in ("authentic", "vibrant"):
        develop(raw, preset(look), tiled=True, dtype=np.uint8)
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"oneinch: kernels ready ({warm():.1f} s)")
