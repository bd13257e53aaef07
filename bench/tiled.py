"""Tiled against untiled: the strip path's quality on the quality benchmark's images.

develop() runs large images in strips of rows (develop_strips, from 4 MP up); the whole-image
path is the reference. On every Kodak-24 and McMaster-18 image, unprocessed into a noisy
14-bit raw (bench/quality_denoise.make_case: ISO 100 and 3200), this develops the raw both
ways with the default recipe and the large-image demosaic (RCD: 'auto' picks iterative
residual interpolation at this size, which is never run in strips), in strips of 64 rows so
that each image has several seams, to 8-bit sRGB. Each is scored by PSNR against the same
develop of the noise-free raw (untiled): the issue's bound is |tiled - untiled| <= 0.01 dB.
Also printed: the largest difference between the two 8-bit images, and the share of pixels
that differ at all.

    .venv/bin/python bench/tiled.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oneinch import synthetic
from oneinch.develop import develop
from oneinch.isp import tiles
from oneinch.recipe import Recipe
from quality_denoise import BORDER, load_set

ISOS = (100, 3200)
RECIPE = Recipe().with_(demosaic={"method": "rcd"})


def _psnr(ref: np.ndarray, out: np.ndarray) -> float:
    b = BORDER
    d = ref[b:-b, b:-b].astype(np.float64) - out[b:-b, b:-b].astype(np.float64)
    return float(10 * np.log10(255.0**2 / max(np.mean(d * d), 1e-12)))


def tiled_table(quick: bool = False) -> str:
    tiles.ROWS = 64  # several strips per 512-row image
    limit = 4 if quick else None
    lines = [
        "| set | ISO | images | untiled dB | tiled dB | tiled - untiled dB | max diff (8-bit)"
        " | pixels differing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for name in ("kodak24", "mcmaster18"):
        images = load_set(name, limit)
        for iso in ISOS:
            p_whole, p_strips, maxd, share = [], [], 0, []
            for i, (_, srgb) in enumerate(images):
                noisy, _ = synthetic.unprocess(srgb, iso=iso, seed=i)
                clean, _ = synthetic.unprocess(srgb)
                ref = develop(clean, RECIPE, tiled=False, dtype=np.uint8).rgb
                whole = develop(noisy, RECIPE, tiled=False, dtype=np.uint8).rgb
                strips = develop(noisy, RECIPE, tiled=True, dtype=np.uint8).rgb
                p_whole.append(_psnr(ref, whole))
                p_strips.append(_psnr(ref, strips))
                d = np.abs(whole.astype(np.int16) - strips.astype(np.int16))
                maxd = max(maxd, int(d.max()))
                share.append(float(np.mean(d.max(axis=-1) > 0)))
            a, b = float(np.mean(p_whole)), float(np.mean(p_strips))
            worst = max(worst, abs(b - a))
            lines.append(f"| {name} | {iso} | {len(images)} | {a:.3f} | {b:.3f} | {b - a:+.4f}"
                         f" | {maxd} | {100 * np.mean(share):.3f} % |")
    lines.append(f"\nlargest |tiled - untiled|: {worst:.4f} dB (bound 0.01 dB)")
    return "\n".join(lines)


def main() -> None:
    t0 = time.perf_counter()
    print(tiled_table(quick="--quick" in sys.argv))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
