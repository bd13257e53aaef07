"""Single-threaded ns/pixel of the sensor-side kernels on one 50 MP-width strip (issue 7).

Times, on a 256-row x 8192 strip of a real (or synthetic) mosaic, numba on one thread, min of
``--repeat`` runs: RCD demosaic (kernel only, and through ``demosaic()`` with its mirror pad),
RI demosaic, and denoise at the 'light' and 'medium' tiers. Compare against a baseline measured
in the same run (the machine is shared and noisy).

    .venv/bin/python bench/profile_sensor.py [--dng /tmp/ab50.dng] [--repeat 5] [--only rcd,...]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

ROWS, COLS = 256, 8192


def strip_mosaic(dng: str | None) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(float32 white-balanced RGGB mosaic rows+pad, raw uint16 rows+pad or None, front args)."""
    pad = 12
    if dng and os.path.exists(dng):
        from oneinch import open_raw
        from oneinch.isp import levels, whitebalance
        from oneinch.recipe import Recipe

        raw = open_raw(dng)
        y0 = raw.data.shape[0] // 2 - ROWS // 2 - pad
        x0 = max(0, raw.data.shape[1] // 2 - COLS // 2 - pad)
        u16 = np.ascontiguousarray(raw.data[y0 : y0 + ROWS + 2 * pad, x0 : x0 + COLS + 2 * pad])
        if u16.shape[1] < COLS + 2 * pad:
            u16 = np.pad(u16, ((0, 0), (0, COLS + 2 * pad - u16.shape[1])), mode="reflect")
        neutral = whitebalance.neutral(raw.color, Recipe().white_balance, None, raw.cfa)
        gains = whitebalance.gains(neutral)
        m = whitebalance.apply_gains(levels.normalize(u16, raw.levels), gains, raw.cfa)
        black = float(np.mean(raw.levels.black))
        white = float(np.max(raw.levels.white))
        front = {"black": black, "scale": 1.0 / (white - black), "gains": tuple(gains)}
        return np.ascontiguousarray(m, np.float32), u16, front
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : ROWS + 2 * pad, 0 : COLS + 2 * pad].astype(np.float32)
    m = 0.3 + 0.2 * np.sin(xx * 0.05) * np.cos(yy * 0.07) + rng.normal(0, 0.01, yy.shape)
    return m.astype(np.float32), None, {}


def best(fn, repeat: int) -> float:
    fn()  # compile / warm
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dng", default="/tmp/ab50.dng")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    import numba

    numba.set_num_threads(1)
    from oneinch.isp import _demosaic_rcd as rcd
    from oneinch.isp import _demosaic_ri as ri
    from oneinch.isp.demosaic import demosaic
    from oneinch.isp.denoise import denoise
    from oneinch.recipe import Denoise

    m, u16, front = strip_mosaic(args.dng)

    def front_np() -> np.ndarray:  # develop's per-strip front: levels, then WB gains
        from oneinch.isp import whitebalance

        if u16 is None:
            return m[12:-12, 12:-12]
        x = (u16[12:-12, 12:-12].astype(np.float32) - np.float32(front["black"]))
        x *= np.float32(front["scale"])
        return whitebalance.apply_gains(x, front["gains"], "RGGB")

    crop = (12, 12, ROWS, COLS)
    npx = ROWS * COLS
    rgb = rcd.rcd_rggb(m, crop)
    prof = np.array([[1e-4, 1e-6]] * 3)  # noise level ~0.024: the 'light' tier (ISO 100)
    cases = {
        "rcd": lambda: rcd.rcd_rggb(m, crop),
        "rcd_demosaic": lambda: demosaic(m[12:-12, 12:-12], "RGGB", "rcd"),
        "front+rcd_demosaic": lambda: demosaic(front_np(), "RGGB", "rcd"),
        "ri": lambda: ri.ri_rggb(m),
        "denoise_light": lambda: denoise(rgb, Denoise(), prof, tier="light"),
        "denoise_medium": lambda: denoise(rgb, Denoise(), prof, tier="medium"),
    }
    if u16 is not None and "black" in (rcd.rcd_rggb.__kwdefaults__ or {}):
        cases["rcd_u16_front"] = lambda: rcd.rcd_rggb(u16, crop, **front)
    only = [s for s in args.only.split(",") if s]
    for name, fn in cases.items():
        if only and name not in only:
            continue
        t = best(fn, args.repeat)
        print(f"{name:16s} {t * 1e3:8.1f} ms  {t * 1e9 / npx:6.1f} ns/px", flush=True)


if __name__ == "__main__":
    main()
