"""rawpy (LibRaw) demosaicing on the same protocol as bench/quality_demosaic.py.

Each test image (8-bit / 255 treated as linear) is mosaicked RGGB and written as a DNG whose
camera space *is* linear sRGB (ColorMatrix = inverse sRGB->XYZ, neutral 1,1,1, black 0, white
65535); LibRaw then demosaics with output_color=raw, linear gamma, unit white balance and no
brightening, so only the demosaicing differs. Methods: those rawpy's wheels offer (REFERENCES.md:
LINEAR, VNG, PPG, AHD, DCB, DHT, AAHD; others silently fall back to AHD).

    .venv/bin/python bench/quality_demosaic_rawpy.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rawpy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oneinch.isp import spaces
from oneinch.raw.dng import write_dng
from oneinch.raw.image import CameraColor, CFAPattern, Levels, RawImage, ShotInfo
from quality_demosaic import FLOAT, cpsnr, load_set, mosaic_of

METHODS = ("LINEAR", "VNG", "PPG", "AHD", "DCB", "DHT", "AAHD")


def _dng(path: Path, rgb: np.ndarray) -> None:
    mosaic = mosaic_of(rgb, "RGGB")
    data = np.clip(np.rint(mosaic * 65535.0), 0, 65535).astype(np.uint16)
    cm = np.linalg.inv(spaces.rgb_to_xyz_native(spaces.SPACES["srgb"]))
    raw = RawImage(
        path=str(path),
        data=data,
        cfa=CFAPattern.bayer("RGGB"),
        levels=Levels(black=np.zeros((1, 1, 1)), white=np.array([65535.0])),
        color=CameraColor(color_matrix1=cm, illuminant1=21, as_shot_neutral=np.ones(3)),
        shot=ShotInfo(make="oneinch", model="Demosaic Protocol"),
        is_dng=True,
    )
    write_dng(path, raw)


def _develop(path: Path, method: str) -> np.ndarray:
    with rawpy.imread(str(path)) as r:
        out = r.postprocess(
            demosaic_algorithm=getattr(rawpy.DemosaicAlgorithm, method),
            output_color=rawpy.ColorSpace.raw,
            gamma=(1, 1),
            no_auto_bright=True,
            user_wb=[1.0, 1.0, 1.0, 1.0],
            output_bps=16,
            user_flip=0,
            user_black=0,
            user_sat=65535,
            highlight_mode=rawpy.HighlightMode.Ignore,
        )
    return out.astype(np.float32) / 65535.0


def rawpy_demosaic_table(quick: bool = False) -> list[tuple]:
    rows = []
    sets = {name: load_set(name) for name in ("kodak24", "mcmaster18")}
    if quick:
        sets = {k: v[:4] for k, v in sets.items()}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, images in sets.items():
            for fname, rgb in images:
                p = Path(tmp) / f"{name}_{Path(fname).stem}.dng"
                _dng(p, rgb)
                paths[(name, fname)] = p
        for method in METHODS:
            row = [f"rawpy {method}"]
            for name, images in sets.items():
                scores, t = [], 0.0
                for fname, rgb in images:
                    t0 = time.perf_counter()
                    out = _develop(paths[(name, fname)], method)
                    t += time.perf_counter() - t0
                    scores.append(cpsnr(rgb, out))
                row += [float(np.mean(scores)), t / len(images)]
            rows.append(tuple(row))
            print(
                f"{row[0]:<14} {row[1]:7.2f} dB {row[2]:6.3f} s   {row[3]:7.2f} dB {row[4]:6.3f} s",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    print("CPSNR of the " + ("16-bit output" if FLOAT else "8-bit output (rounded)"))
    print(f"{'method':<14} {'Kodak-24':>10} {'s/img':>7}   {'McMaster-18':>10} {'s/img':>7}")
    rawpy_demosaic_table(quick="--quick" in sys.argv)
