"""Round trip through a DNG: Kodak-24 unprocessed (no noise) by oneinch.synthetic, developed
back with a plain linear -> sRGB tone by each oneinch demosaic method and by rawpy (LibRaw) AHD;
mean CPSNR against the 8-bit source (sRGB-encoded, 10 px border), and time per image.

    .venv/bin/python bench/roundtrip.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rawpy
from PIL import Image

from oneinch.develop import develop
from oneinch.isp import spaces
from oneinch.raw import open_raw
from oneinch.recipe import Recipe
from oneinch.synthetic import make_dng, psnr

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks" / "kodak24"
PLAIN = Recipe().with_(tone={"curve": "linear"}, sharpen={"amount": 0.0}, denoise={"mode": "off"})
METHODS = ("bilinear", "malvar", "rcd", "ri", "iri", "auto")


def rawpy_ahd(path: Path) -> np.ndarray:
    with rawpy.imread(str(path)) as r:
        out = r.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, use_camera_wb=True,
                            output_color=rawpy.ColorSpace.sRGB, gamma=(1, 1), no_auto_bright=True,
                            output_bps=16, bright=2.0, highlight_mode=rawpy.HighlightMode.Clip,
                            user_flip=0)
    return spaces.encode(out.astype(np.float32) / 65535.0, "srgb")


def main() -> None:
    files = sorted(KODAK.glob("kodim*.png"))
    if "--quick" in sys.argv:
        files = files[:4]
    scores: dict[str, list[float]] = {m: [] for m in (*METHODS, "rawpy AHD")}
    times: dict[str, float] = dict.fromkeys(scores, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            src = np.asarray(Image.open(f).convert("RGB"))
            ref = src.astype(np.float32) / 255.0
            dng = Path(tmp) / (f.stem + ".dng")
            make_dng(dng, src)
            raw = open_raw(dng)
            for m in METHODS:
                t0 = time.perf_counter()
                out = develop(raw, PLAIN.with_(demosaic={"method": m})).rgb
                times[m] += time.perf_counter() - t0
                scores[m].append(psnr(out, ref, border=10))
            t0 = time.perf_counter()
            out = rawpy_ahd(dng)
            times["rawpy AHD"] += time.perf_counter() - t0
            scores["rawpy AHD"].append(psnr(out, ref, border=10))
    print(f"Kodak-{len(files)} DNG round trip, CPSNR sRGB-encoded, 10 px border, mean per image")
    print(f"{'method':<12} {'dB':>7} {'s/img':>7}")
    for m, s in scores.items():
        print(f"{m:<12} {np.mean(s):7.2f} {times[m] / len(files):7.3f}")


if __name__ == "__main__":
    main()
