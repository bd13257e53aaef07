"""Demosaic quality on *linear* mosaics, as a develop sees them, and in which domain to demosaic.

The standard protocol (bench/quality_demosaic.py, issue #3) mosaics the 8-bit sRGB images
themselves, i.e. gamma-encoded values. A raw develop demosaics linear light instead. Here each
Kodak-24 / McMaster-18 image is linearised with the sRGB EOTF (IEC 61966-2-1), mosaicked
(RGGB) and demosaiced two ways:

- ``linear``: demosaic the linear mosaic (``demosaic(..., domain='linear')``);
- ``srgb``: ``domain='srgb'``, develop's default since session 4: the mosaic samples are
  encoded with the odd-extended sRGB transfer (a pointwise map, valid on a mosaic),
  demosaiced, decoded back to linear (isp._domain). Colour-difference interpolation assumes
  smooth G-R, G-B; in linear light a constant hue is a constant *ratio* (Cok 1987's hue model;
  Lukac & Plataniotis 2004, normalised colour-ratio model), which a log-like encoding turns
  into a near-constant difference.

Scores: CPSNR (10-px border, mean over images) of the displayed sRGB result against the 8-bit
source, and of the linear result against the linearised source.

``--noisy``: the whole front of ``develop`` instead, on synthetic raws with shot/read noise
(synthetic.unprocess at ISO 100, 800, 3200, 12800 (``--isos``); 8 Kodak + 6 McMaster images): levels, white
balance, demosaic (the recipe's ``demosaic.domain`` linear or srgb), denoise 'auto' (its noise
spectrum modelled for the linear demosaic), highlights, colour; displayed-sRGB CPSNR against
the unprocessed truth (one exposure scale fitted per image).

``--exposures``: each method in both domains on the linear mosaics exposed at 1, 1/10 and
1/50 (``--scales``), scored after the exposure is made up (displayed sRGB CPSNR): how much a
dark raw, brightened later, loses to the demosaic's constants (their absolute regularisers)
and to the encoding's dark toe. Session 17 (ri, iri with the MLRI R/B fit), Kodak-24 /
McMaster-18: ri linear 35.88 / 33.47, 35.51 / 33.84, 32.69 / 32.67; ri srgb 39.90 / 35.98,
39.15 / 35.23, 37.04 / 34.14; iri linear 36.97 / 34.20, 36.00 / 34.08, 34.14 / 31.93; iri srgb
40.75 / 36.28, 39.92 / 35.67, 37.44 / 34.63. A regulariser relative to the level made ri's
linear row flat (35.82 / 33.24-33.29) but lost on McMaster at 1 and 1/10: not kept.

    NUMBA_NUM_THREADS=1 .venv/bin/python bench/quality_demosaic_domain.py [--methods ri,iri,iri-lr]
    .venv/bin/python bench/quality_demosaic_domain.py --noisy [--methods rcd,iri]
    .venv/bin/python bench/quality_demosaic_domain.py --exposures [--methods ri,iri]
"""

from __future__ import annotations

import argparse

import numpy as np

from oneinch.isp import spaces
from oneinch.isp.demosaic import demosaic
from quality_demosaic import cpsnr, load_set, mosaic_of


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return spaces.decode(x, "srgb")


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return spaces.encode(x, "srgb")


def run(method: str, images: list, domain: str, scale: float = 1.0) -> tuple[float, float]:
    """(mean displayed-sRGB CPSNR, mean linear CPSNR) of ``method`` in ``domain``; ``scale``:
    the mosaic exposed that much, the result divided by it before scoring."""
    disp, lin_scores = [], []
    for _, rgb in images:
        lin = srgb_to_linear(rgb)
        m = mosaic_of(lin * np.float32(scale))
        out = np.asarray(demosaic(m, "RGGB", method, domain=domain), np.float32)
        out = out / np.float32(scale) if scale != 1.0 else out
        disp.append(cpsnr(rgb, linear_to_srgb(out)))
        lin_scores.append(cpsnr(lin, out))
    return float(np.mean(disp)), float(np.mean(lin_scores))


def noisy_table(methods: list[str], isos: tuple[int, ...] = (100, 800, 3200, 12800)) -> None:
    """Displayed-sRGB CPSNR of develop's front (until 'color') vs the truth, per ISO."""
    from oneinch import synthetic
    from oneinch.develop import develop
    from oneinch.recipe import Recipe

    images = load_set("kodak24")[:8] + load_set("mcmaster18")[:6]
    print("develop front (demosaic, denoise auto, highlights, colour) on noisy synthetic raws:")
    print(f"{'ISO':>5} {'method':<8} {'linear':>7} {'srgb':>7} {'gain':>6}")
    for iso in isos:
        for method in methods:
            res = {}
            for domain in ("linear", "srgb"):
                scores = []
                for i, (_, im) in enumerate(images):
                    raw, truth = synthetic.unprocess(im, iso=iso, seed=i)
                    rec = Recipe().with_(demosaic={"method": method, "domain": domain})
                    out = develop(raw, rec, until="color", tiled=False)
                    ref = truth.linear_srgb
                    scale = float(np.sum(out * ref) / np.sum(out * out))
                    scores.append(cpsnr(linear_to_srgb(ref), linear_to_srgb(out * scale)))
                res[domain] = float(np.mean(scores))
            print(f"{iso:>5} {method:<8} {res['linear']:7.2f} {res['srgb']:7.2f}"
                  f" {res['srgb'] - res['linear']:+6.2f}", flush=True)


def exposure_table(methods: list[str], scales: tuple[float, ...] = (1.0, 0.1, 0.02)) -> None:
    """Displayed-sRGB CPSNR, Kodak-24 / McMaster-18, of each method and domain at each
    exposure scale (noise-free linear mosaics)."""
    sets = {k: load_set(k) for k in ("kodak24", "mcmaster18")}
    print("displayed sRGB CPSNR dB, Kodak-24 / McMaster-18, at each exposure (made up after)")
    print(f"{'method':<8} {'domain':<7}" + "".join(f"{'x' + format(s, 'g'):>17}" for s in scales))
    for method in methods:
        for domain in ("linear", "srgb"):
            cells = []
            for sc in scales:
                k = run(method, sets["kodak24"], domain, sc)[0]
                m = run(method, sets["mcmaster18"], domain, sc)[0]
                cells.append(f"{k:8.2f} /{m:6.2f}")
            print(f"{method:<8} {domain:<7}" + " ".join(cells), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default=None)
    ap.add_argument("--noisy", action="store_true")
    ap.add_argument("--isos", default="100,800,3200,12800")
    ap.add_argument("--exposures", action="store_true")
    ap.add_argument("--scales", default="1,0.1,0.02")
    args = ap.parse_args()
    if args.exposures:
        exposure_table((args.methods or "ri,iri").split(","),
                       tuple(float(v) for v in args.scales.split(",")))
        return
    if args.noisy:
        noisy_table((args.methods or "rcd,iri").split(","),
                    tuple(int(v) for v in args.isos.split(",")))
        return
    args.methods = args.methods or "rcd,ri,iri,iri-lr"
    sets = {k: load_set(k) for k in ("kodak24", "mcmaster18")}
    print("CPSNR dB of linear-light mosaics: displayed sRGB / linear")
    print(f"{'method':<8} {'domain':<7} {'Kodak-24':>15} {'McMaster-18':>15}")
    for method in args.methods.split(","):
        for domain in ("linear", "srgb"):
            k = run(method, sets["kodak24"], domain)
            m = run(method, sets["mcmaster18"], domain)
            print(f"{method:<8} {domain:<7} {k[0]:7.2f} /{k[1]:6.2f} {m[0]:7.2f} /{m[1]:6.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
