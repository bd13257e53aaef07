"""The quality benchmark, in one run: demosaicing, raw denoising, highlights, ColorChecker.

Each section is its own script in bench/ (runnable alone); this prints them all, in order:

    .venv/bin/python bench/quality.py [--quick]       (make bench-quality)
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SECTIONS = (
    ("Demosaicing: oneinch and colour-demosaicing", "quality_demosaic", "demosaic_table"),
    (
        "Demosaicing: rawpy (LibRaw) on the same protocol",
        "quality_demosaic_rawpy",
        "rawpy_demosaic_table",
    ),
    ("Raw denoising per ISO", "quality_denoise", "denoise_table"),
    ("Highlight reconstruction", "quality_highlights", "highlight_table"),
    ("ColorChecker 24, ΔE2000", "quality_color", "colorchecker_table"),
    ("Strips (tiled) against the whole-image reference", "tiled", "tiled_table"),
    ("Streamed develop against the whole-image reference", "tiled", "streamed_table"),
)


def main() -> None:
    quick = "--quick" in sys.argv
    for title, module, func in SECTIONS:
        print(f"\n## {title}\n", flush=True)
        t0 = time.perf_counter()
        fn = getattr(importlib.import_module(module), func)
        try:
            result = fn(quick=quick)
        except TypeError:  # sections without a quick mode
            result = fn()
        if isinstance(result, str):  # sections that return their table instead of printing it
            print(result)
        print(f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
