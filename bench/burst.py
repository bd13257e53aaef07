"""Burst merge benchmark: 8 frames of 12.5 MP (4096×3072, the IMX989's binned size), ISO 3200,
handheld shake and a moving disc. Prints raw-domain PSNR gain over the reference frame, the
ghosting check (PSNR inside the moving object's region) and time / peak memory of the merge.

    .venv/bin/python bench/burst.py [--width 4096 --height 3072 --frames 8 --iso 3200]
                                    [--resample remosaic,remosaic:rcd,tile]

``--resample`` lists the merge variants to time in the same run (merge.RESAMPLE): ``remosaic``
(sub-pixel, the default; ``remosaic:rcd`` picks its demosaic) and ``tile`` (whole grey-pixel
displacements, the former default).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from oneinch import synthetic
from oneinch.burst import merge as mg


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--height", type=int, default=3072)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--iso", type=float, default=3200)
    ap.add_argument("--resample", default="remosaic,remosaic:rcd,tile")
    a = ap.parse_args()
    t0 = time.perf_counter()
    scene = np.clip(synthetic.demo_scene(a.height, a.width), 0.0, 1.0)
    raws, truth = synthetic.make_burst(scene, a.frames, iso=a.iso, moving_object=True,
                                       object_frames=tuple(range(0, a.frames, 2)), seed=1)
    del scene
    t_gen = time.perf_counter() - t0
    rss_before = _rss_mb()
    # warm the numba kernels on a small burst so the timing is the merge, not compilation
    small, _ = synthetic.make_burst(np.full((64, 96, 3), 0.2, np.float32), 2, iso=a.iso)
    clean = mg.normalized_planes(truth.clean)
    ref = mg.normalized_planes(raws[0])
    b = 16
    crop = (slice(None), slice(b, -b), slice(b, -b))
    m = truth.moving[0::2, 0::2][None].repeat(4, axis=0)
    p_ref = synthetic.psnr(ref[crop], clean[crop])
    g_ref = synthetic.psnr(ref[m], clean[m])
    mp = a.width * a.height / 1e6
    print(f"burst: {a.frames} × {a.width}×{a.height} ({mp:.1f} MP) ISO {a.iso:.0f}, "
          f"frames made in {t_gen:.1f} s")
    print(f"ideal gain 10·log10({a.frames}) = {10 * np.log10(a.frames):.2f} dB")
    print("| resample | PSNR whole (dB) | gain | PSNR moving region (dB) | gain | merge time (s) "
          "| noise ratio | mean A | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for variant in a.resample.split(","):
        kind, _, dm = variant.partition(":")
        kw = {"resample": kind, **({"resample_demosaic": dm} if dm else {})}
        mg.merge_raws(small, **kw)  # warm-up (numba compile / cache load)
        t1 = time.perf_counter()
        merged, info = mg.merge_raws(raws, reference=0, **kw)
        t_merge = time.perf_counter() - t1
        rss_after = _rss_mb()
        out = mg.normalized_planes(merged)
        del merged
        p_out = synthetic.psnr(out[crop], clean[crop])
        g_out = synthetic.psnr(out[m], clean[m])
        print(f"| {variant} | {p_out:.2f} (ref {p_ref:.2f}) | {p_out - p_ref:+.2f} | {g_out:.2f} "
              f"(ref {g_ref:.2f}) | {g_out - g_ref:+.2f} | {t_merge:.1f} | "
              f"{info.noise_ratio:.3f} | {info.mean_rejection:.3f} | {rss_after:.0f} |",
              flush=True)
    print(f"peak RSS before the merges {rss_before:.0f} MB (the frames themselves)")


if __name__ == "__main__":
    main()
