"""Demosaic quality on *linear* mosaics, as a develop sees them, and in which domain to demosaic.

The standard protocol (bench/quality_demosaic.py, issue #3) mosaics the 8-bit sRGB images
themselves, i.e. gamma-encoded values. A raw develop demosaics linear light instead. Here each
Kodak-24 / McMaster-18 image is linearised with the sRGB EOTF (IEC 61966-2-1), mosaicked
(RGGB) and demosaiced two ways:

- ``linear``: demosaic the linear mosaic (what ``develop`` does today);
- ``gamma``:  sRGB-encode the mosaic samples (a pointwise map, valid on a mosaic), demosaic,
  decode back to linear. Colour-difference interpolation assumes smooth G-R, G-B; in linear
  light a constant hue is a constant *ratio* (Cok 1987's hue model; Lukac & Plataniotis 2004,
  normalised colour-ratio model), which a log-like encoding turns into a constant difference.

Scores: CPSNR (10-px border, mean over images) of the displayed sRGB result against the 8-bit
source, and of the linear result against the linearised source. Noise-free: what noise does to
the gamma path (shadow amplification, bias through the non-linearity) is not measured here.

    NUMBA_NUM_THREADS=1 .venv/bin/python bench/quality_demosaic_domain.py [--methods ri,iri,iri-lr]
"""

from __future__ import annotations

import argparse

import numpy as np

from oneinch.isp.demosaic import demosaic
from quality_demosaic import cpsnr, load_set, mosaic_of


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def run(method: str, images: list, domain: str) -> tuple[float, float]:
    """(mean displayed-sRGB CPSNR, mean linear CPSNR) of ``method`` in ``domain``."""
    disp, lin_scores = [], []
    for _, rgb in images:
        lin = srgb_to_linear(rgb)
        m = mosaic_of(lin)
        if domain == "gamma":
            out = srgb_to_linear(np.clip(demosaic(linear_to_srgb(m), "RGGB", method), 0, 1))
        else:
            out = np.asarray(demosaic(m, "RGGB", method), np.float32)
        disp.append(cpsnr(rgb, linear_to_srgb(out)))
        lin_scores.append(cpsnr(lin, out))
    return float(np.mean(disp)), float(np.mean(lin_scores))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="rcd,ri,iri,iri-lr")
    args = ap.parse_args()
    sets = {k: load_set(k) for k in ("kodak24", "mcmaster18")}
    print("CPSNR dB of linear-light mosaics: displayed sRGB / linear")
    print(f"{'method':<8} {'domain':<7} {'Kodak-24':>15} {'McMaster-18':>15}")
    for method in args.methods.split(","):
        for domain in ("linear", "gamma"):
            k = run(method, sets["kodak24"], domain)
            m = run(method, sets["mcmaster18"], domain)
            print(f"{method:<8} {domain:<7} {k[0]:7.2f} /{k[1]:6.2f} {m[0]:7.2f} /{m[1]:6.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
