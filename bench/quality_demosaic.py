"""Demosaic quality table: Kodak-24 and McMaster-18, oneinch methods vs colour-demosaicing.

Protocol (REFERENCES.md): RGGB mosaic of the 8-bit images / 255 treated as linear, CPSNR over
R, G, B of the 8-bit output (clipped to [0, 1], rounded; ``--float``: the float output as is,
which gives overshoot past 0 and 1 its full error: 0.05-0.25 dB less), 10-px border crop, mean
of the per-image CPSNR. Time is mean seconds per image.
Rows are every oneinch method in ``METHODS`` (``iri-lr``: iri + the learned correction trained by
scripts/train_demosaic.py on neither set; ``iri-cnn``: iri-lr refined by the CNN trained by
scripts/train_demosaic_cnn.py on neither set) and colour-demosaicing's peers. s/MP: seconds per
megapixel over both sets (numba's threads: NUMBA_NUM_THREADS; OpenCV's, which run iri-cnn's
network: all cores unless ``--cv-threads N``). ``--only a,b``: just those rows.

    .venv/bin/python bench/quality_demosaic.py [--quick] [--only iri-lr,iri-cnn] [--cv-threads 1]
        [--float]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from oneinch.isp.demosaic import METHODS, demosaic
from oneinch.raw.image import CFAPattern

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/benchmarks")


def load_set(name: str) -> list[tuple[str, np.ndarray]]:
    """[(file name, float32 RGB in [0, 1])] for 'kodak24' or 'mcmaster18'."""
    files = sorted((DATA / name).glob("*.png")) + sorted((DATA / name).glob("*.tif"))
    files.sort(key=lambda p: (len(p.stem), p.stem))
    out = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        out.append((f.name, np.ascontiguousarray(bgr[..., ::-1], np.float32) / 255.0))
    return out


def mosaic_of(rgb: np.ndarray, pattern: str | CFAPattern = "RGGB") -> np.ndarray:
    pat = CFAPattern.bayer(pattern) if isinstance(pattern, str) else pattern
    masks = pat.masks(*rgb.shape[:2])
    return np.ascontiguousarray(sum(rgb[..., c] * masks[c] for c in range(3)), np.float32)


FLOAT = "--float" in sys.argv  # score the unclipped float output instead of the 8-bit image


def as_8bit(out: np.ndarray) -> np.ndarray:
    """The demosaiced image as the 8-bit image the protocol compares: clipped to [0, 1] and
    rounded to 1/255 (as the published figures are measured on 8-bit outputs, and as rawpy's
    integer output already is)."""
    return np.rint(np.clip(np.asarray(out, np.float64), 0.0, 1.0) * 255.0) / 255.0


def cpsnr(ref: np.ndarray, out: np.ndarray, border: int = 10) -> float:
    """CPSNR (dB) over R, G, B of the 8-bit output (:func:`as_8bit`; ``--float``: as is)
    against ``ref`` in [0, 1], ``border`` pixels cropped."""
    b = border
    o = np.asarray(out, np.float64) if FLOAT else as_8bit(out)
    d = ref[b:-b, b:-b].astype(np.float64) - o[b:-b, b:-b]
    return float(10 * np.log10(1.0 / np.mean(d * d)))


def _peers() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    try:
        import colour_demosaicing as cd
    except ImportError:  # pragma: no cover
        return {}
    return {
        "cd bilinear": lambda m: cd.demosaicing_CFA_Bayer_bilinear(m, "RGGB"),
        "cd Malvar2004": lambda m: cd.demosaicing_CFA_Bayer_Malvar2004(m, "RGGB"),
        "cd Menon2007": lambda m: cd.demosaicing_CFA_Bayer_Menon2007(m, "RGGB"),
    }


def evaluate(fn: Callable[[np.ndarray], np.ndarray], images: list) -> tuple[float, float]:
    """(mean CPSNR dB, mean seconds per image); also adds (seconds, megapixels) to ``_TOTAL``."""
    scores, times = [], []
    for _, rgb in images:
        m = mosaic_of(rgb)
        t = time.perf_counter()
        out = np.asarray(fn(m), np.float32)
        times.append(time.perf_counter() - t)
        scores.append(cpsnr(rgb, out))
        _TOTAL[0] += times[-1]
        _TOTAL[1] += rgb.shape[0] * rgb.shape[1] / 1e6
    return float(np.mean(scores)), float(np.mean(times))


_TOTAL = [0.0, 0.0]


def demosaic_table(quick: bool = False, peers: bool = True, only: str = "") -> list[tuple]:
    """Print (and return) the Kodak-24 / McMaster-18 demosaic table."""
    sets = {k: load_set(k) for k in ("kodak24", "mcmaster18")}
    if quick:
        sets = {k: v[:4] for k, v in sets.items()}
    methods: dict[str, Callable] = {
        m: (lambda mm, _m=m: demosaic(mm, "RGGB", _m)) for m in METHODS if m != "auto"
    }
    if peers:
        methods.update(_peers())
    if only:
        methods = {k: v for k, v in methods.items() if k in only.split(",")}
    demosaic(mosaic_of(sets["kodak24"][0][1]), "RGGB", "rcd")  # numba compile/cache load
    rows = []
    head = f"{'method':<16} {'Kodak-24 dB':>12} {'s/img':>7} {'McMaster-18 dB':>15} {'s/img':>7}"
    print("CPSNR of the " + ("float output, unclipped" if FLOAT else "8-bit output (clipped, rounded)"))
    print(head + f" {'s/MP':>6}")
    for name, fn in methods.items():
        _TOTAL[:] = [0.0, 0.0]
        k, tk = evaluate(fn, sets["kodak24"])
        mc, tm = evaluate(fn, sets["mcmaster18"])
        spm = _TOTAL[0] / _TOTAL[1]
        rows.append((name, k, tk, mc, tm, spm))
        print(f"{name:<16} {k:12.2f} {tk:7.3f} {mc:15.2f} {tm:7.3f} {spm:6.2f}", flush=True)
    return rows


def _arg(name: str, default: str = "") -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


if __name__ == "__main__":
    if "--cv-threads" in sys.argv:
        cv2.setNumThreads(int(_arg("--cv-threads")))
    demosaic_table(quick="--quick" in sys.argv, only=_arg("--only"))
