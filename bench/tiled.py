"""Tiled against untiled: the strip path's quality on the quality benchmark's images.

develop() runs large images in strips of rows (develop_strips, from 4 MP up); the whole-image
path is the reference. On every Kodak-24 and McMaster-18 image, unprocessed into a noisy
14-bit raw (bench/quality_denoise.make_case: ISO 100 and 3200), this develops the raw both
ways with the default recipe and the large-image demosaic (RCD: 'auto' picks iterative
residual interpolation at this size), in strips of 64 rows so that each image has several
seams, to 8-bit sRGB; then the same with iri, iri-lr and iri-cnn (run in strips since session
19, each strip given 96-128 rows of context: isp.demosaic.strip_context) in strips of 128 rows. Each is scored by PSNR against the same
develop of the noise-free raw (untiled): the issue's bound is |tiled - untiled| <= 0.01 dB.
Also printed: the largest difference between the two 8-bit images, and the share of pixels
that differ at all.

The streamed path (develop._develop_streamed: sensor to 8-bit rows in one pass, strips near
clipped highlights shown after the reconstruction) needs a highlight field reduced from an
image over 1024 px, so each set is also developed as one canvas of centre crops (Kodak: 512
px, 6 x 4, 3072 x 2048, a field by 3 x 3 block means; McMaster: its whole 500 px, 6 x 3,
3000 x 1500, by area tables), at ISO 100 and 3200 as they are and at ISO 100 exposed 1.6
stops up (x3, clipping the bright crops: deferred strips), in strips of 256 rows; each crop
is scored alone.

    .venv/bin/python bench/tiled.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oneinch import synthetic
from oneinch.develop import demosaic_context, develop
from oneinch.isp import tiles
from oneinch.recipe import Recipe
from quality_denoise import BORDER, load_set

ISOS = (100, 3200)
RECIPE = Recipe().with_(demosaic={"method": "rcd"})


def _psnr(ref: np.ndarray, out: np.ndarray) -> float:
    b = BORDER
    d = ref[b:-b, b:-b].astype(np.float64) - out[b:-b, b:-b].astype(np.float64)
    return float(10 * np.log10(255.0**2 / max(np.mean(d * d), 1e-12)))


def tiled_table(quick: bool = False, method: str = "rcd", rows: int = 64,
                isos: tuple[int, ...] = ISOS) -> str:
    """The table for one demosaic ``method``, in strips of ``rows`` rows."""
    tiles.ROWS = rows  # several strips per 512-row image
    limit = 4 if quick else None
    recipe = Recipe().with_(demosaic={"method": method})
    lines = [
        f"demosaic {method}, strips of {rows} rows (+ {demosaic_context(method)} rows of context for"
        " the demosaic)\n",
        "| set | ISO | images | untiled dB | tiled dB | tiled - untiled dB | max diff (8-bit)"
        " | pixels differing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for name in ("kodak24", "mcmaster18"):
        images = load_set(name, limit)
        for iso in isos:
            p_whole, p_strips, maxd, share = [], [], 0, []
            for i, (_, srgb) in enumerate(images):
                noisy, _ = synthetic.unprocess(srgb, iso=iso, seed=i)
                clean, _ = synthetic.unprocess(srgb)
                ref = develop(clean, recipe, tiled=False, dtype=np.uint8).rgb
                whole = develop(noisy, recipe, tiled=False, dtype=np.uint8).rgb
                strips = develop(noisy, recipe, tiled=True, dtype=np.uint8).rgb
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


def _canvas(images: list[tuple[str, np.ndarray]], cols: int, size: int) -> np.ndarray:
    """size x size centre crops of ``images``, ``cols`` to a row (uint8)."""
    crops = []
    for _, rgb in images:
        top, left = (rgb.shape[0] - size) // 2, (rgb.shape[1] - size) // 2
        crops.append(rgb[top : top + size, left : left + size])
    rows = [np.concatenate(crops[i : i + cols], axis=1) for i in range(0, len(crops), cols)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def streamed_table(quick: bool = False) -> str:
    import oneinch.develop as dv

    tiles.ROWS = 128
    calls: list[int] = []
    real = dv._develop_streamed

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    dv._develop_streamed = counted
    lines = [
        "| set (canvas) | ISO | crops | untiled dB | streamed dB | streamed - untiled dB"
        " | max diff (8-bit) | pixels differing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    try:
        for name, cols, size in (("kodak24", 6, 512), ("mcmaster18", 6, 500)):
            images = load_set(name, cols if quick else None)
            canvas = _canvas(images, cols, size)
            n_rows, n_cols = canvas.shape[0] // size, canvas.shape[1] // size
            for iso, gain in ((100, 1.0), (3200, 1.0), (100, 3.0)):
                lin = synthetic.srgb_to_linear(canvas.astype(np.float32) / 255.0) * gain
                noisy, _ = synthetic.unprocess(lin, linear_input=True, iso=iso, seed=1)
                clean, _ = synthetic.unprocess(lin, linear_input=True)
                ref = develop(clean, RECIPE, tiled=False, dtype=np.uint8).rgb
                whole = develop(noisy, RECIPE, tiled=False, dtype=np.uint8).rgb
                before = len(calls)
                streamed = develop(noisy, RECIPE, tiled=True, dtype=np.uint8).rgb
                assert len(calls) == before + 1, "the canvas was not streamed"
                p_whole, p_stream = [], []
                for i in range(n_rows):
                    for j in range(n_cols):
                        box = (slice(size * i, size * (i + 1)), slice(size * j, size * (j + 1)))
                        p_whole.append(_psnr(ref[box], whole[box]))
                        p_stream.append(_psnr(ref[box], streamed[box]))
                d = np.abs(whole.astype(np.int16) - streamed.astype(np.int16))
                a, b = float(np.mean(p_whole)), float(np.mean(p_stream))
                worst = max(worst, abs(b - a))
                label = f"{iso}" + ("" if gain == 1.0 else f", x{gain:g} (clipped)")
                lines.append(f"| {name} ({canvas.shape[1]} x {canvas.shape[0]}) | {label}"
                             f" | {len(p_whole)} | {a:.3f} | {b:.3f} | {b - a:+.4f}"
                             f" | {int(d.max())} | {100 * float(np.mean(d.max(-1) > 0)):.4f} % |")
    finally:
        dv._develop_streamed = real
    lines.append(f"\nlargest |streamed - untiled|: {worst:.4f} dB (bound 0.01 dB)")
    return "\n".join(lines)


def main() -> None:
    t0 = time.perf_counter()
    quick = "--quick" in sys.argv
    print(tiled_table(quick))
    print()
    # the long-reach methods (96-128 rows of context): strips of 128 rows, so that a 512-row
    # image still has seams and the redundant context stays ~3x
    for method in ("iri", "iri-lr", "iri-cnn"):
        print(tiled_table(quick, method, rows=128))
        print()
    print(streamed_table(quick="--quick" in sys.argv))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
