"""Fit the share of iri-lr's / iri-cnn's learned correction to the noise (isp.demosaic.
learned_weight) on training images, not on Kodak or McMaster.

For each ISO of the synthetic sensor (synthetic.unprocess), each image of the pool is made a
noisy raw and developed up to colour (levels, white balance, demosaic, denoise 'auto',
highlights, colour) with the learned correction forced to each weight (``develop.
_learned_weight`` replaced); the table gives the mean displayed-sRGB CPSNR against the
unprocessed truth (one exposure scale fitted per image, 10-px border) and the mean noise level
develop measured (isp.denoise.noise_level).

The pool: the one ``scripts/train_demosaic_cnn.py prep`` writes (one .npz per training image,
``truth`` (variants, H, W, 3) uint8; variant 0 is the image as it is); every ``--step``-th
file, ``--images`` of them, a centred ``--crop`` px square of each.

    .venv/bin/python scripts/fit_learned_weight.py --pool POOL --method iri-lr
    .venv/bin/python scripts/fit_learned_weight.py --pool POOL --method iri-cnn

Session 20 (12 images, 384 px, step 10), best of w = 0, 0.25, 0.5, 0.75, 1, iri-lr / iri-cnn:
ISO 100 (noise 0.024) 0.5-0.75 / 0.5; 200 (0.034) 0.5 / 0.5; 400 (0.048) 0.25 / 0.25-0.5;
800 (0.068) 0.25 / 0.25; 1600 (0.098) 0.25, within 0.01-0.04 dB of 0. w = 1 / (1 + (n /
0.034)^2) follows these: isp.demosaic.LEARNED_HALF.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import oneinch.develop as dv
from oneinch import synthetic
from oneinch.isp import spaces
from oneinch.isp.denoise import noise_level
from oneinch.recipe import Recipe
from quality_demosaic import cpsnr


def load(pool: Path, n: int, step: int, crop: int) -> list[np.ndarray]:
    out = []
    for f in sorted(pool.glob("*.npz"))[::step][:n]:
        t = np.load(f)["truth"][0]
        h, w = t.shape[:2]
        y, x = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        out.append(t[y : y + crop, x : x + crop].astype(np.float32) / 255.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=Path, required=True)
    ap.add_argument("--method", default="iri-lr", choices=("iri-lr", "iri-cnn"))
    ap.add_argument("--isos", default="100,200,400,800,1600")
    ap.add_argument("--weights", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--crop", type=int, default=384)
    ap.add_argument("--domain", default="srgb", choices=("srgb", "linear"),
                    help="the demosaic's domain (develop's 'auto' is srgb below noise 0.16)")
    args = ap.parse_args()
    images = load(args.pool, args.images, args.step, args.crop)
    if not images:
        sys.exit(f"fit_learned_weight: no .npz in {args.pool}")
    weights = [float(w) for w in args.weights.split(",")]
    recipe = Recipe().with_(demosaic={"method": args.method, "domain": args.domain})
    print(f"{args.method} ({args.domain} domain), {len(images)} images of {args.pool}:"
          " displayed-sRGB CPSNR (dB)")
    print(f"{'ISO':>5} {'noise':>6} " + " ".join(f"{'w=' + format(w, 'g'):>8}" for w in weights))
    for iso in (int(v) for v in args.isos.split(",")):
        scores: dict[float, list[float]] = {w: [] for w in weights}
        levels: list[float] = []
        for i, im in enumerate(images):
            raw, truth = synthetic.unprocess(im, iso=iso, seed=i)
            ref = truth.linear_srgb
            for w in weights:
                def forced(noise, domain="srgb", w=w, levels=levels):
                    if noise is not None:
                        levels.append(noise_level(noise))
                    return w

                dv._learned_weight = forced
                out = dv.develop(raw, recipe, until="color", tiled=False)
                s = float(np.sum(out * ref) / np.sum(out * out))
                scores[w].append(cpsnr(spaces.encode(ref, "srgb"),
                                       spaces.encode(np.clip(out * s, 0, None), "srgb")))
        level = float(np.mean(levels)) if levels else float("nan")
        print(f"{iso:>5} {level:6.3f} " + " ".join(f"{np.mean(scores[w]):8.3f}" for w in weights),
              flush=True)


if __name__ == "__main__":
    main()
