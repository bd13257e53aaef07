"""Look measurements and contact sheets: neutral | authentic | vibrant.

    .venv/bin/python bench/looks.py [--kodak N] [--no-dng] [--speed]

Kodak-24: each sRGB PNG is treated as display-referred: decoded to linear and the neutral tone
curve inverted (``oneinch.looks.measure.scene_from_display``; source white becomes 1 EV above
the neutral white point), so neutral reproduces the published image and the other looks are
differences from it. Real DNGs (``../shared/data/dng/decodable``) go through
``oneinch.develop.develop`` with each preset, when that module is available.

Per look: mean chroma C*ab relative to neutral, 5th-percentile L* (shadows), median L*
(mid-tones), L* interquartile range (mid-tone contrast), local contrast (mean |L* − blur|), and
the fraction of pixels with a channel at 255. Contact sheets go to out/looks/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from oneinch.isp.spaces import decode, encode  # noqa: E402
from oneinch.looks.looks import PRESETS, preset  # noqa: E402
from oneinch.looks.measure import (  # noqa: E402
    look_stats,
    read_srgb_png,
    render,
    scene_from_display,
)

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "out" / "looks"
LOOKS = list(PRESETS)
KEYS = ["saturation", "shadows", "midtones", "contrast", "local", "clipped"]


def thumb(display_linear: np.ndarray, width: int = 320) -> np.ndarray:
    h, w = display_linear.shape[:2]
    small = cv2.resize(display_linear, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    return np.round(encode(small, "srgb") * 255).astype(np.uint8)


def sheet(rows: list[list[np.ndarray]], labels: list[str], path: Path) -> None:
    pad = 6
    width = sum(t.shape[1] for t in rows[0]) + pad * (len(rows[0]) + 1)
    blocks = []
    header = np.full((28, width, 3), 255, np.uint8)
    x = pad
    for lab, t in zip(labels, rows[0], strict=True):
        cv2.putText(header, lab, (x + 4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1,
                    cv2.LINE_AA)
        x += t.shape[1] + pad
    blocks.append(header)
    for row in rows:
        h = max(t.shape[0] for t in row)
        line = np.full((h + pad, width, 3), 255, np.uint8)
        x = pad
        for t in row:
            line[: t.shape[0], x: x + t.shape[1]] = t
            x += t.shape[1] + pad
        blocks.append(line)
    img = np.concatenate(blocks)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img[..., ::-1])


def report(title: str, stats: dict[str, list[dict[str, float]]]) -> None:
    print(f"\n{title}: mean over {len(stats['neutral'])} images")
    print(f"{'look':<10} {'sat/neutral':>11} {'C*ab':>6} {'L*5%':>6} {'L*50%':>6} "
          f"{'L*IQR':>6} {'local':>6} {'clipped%':>8}")
    nsat = np.array([s["saturation"] for s in stats["neutral"]])
    for look in LOOKS:
        a = {k: np.array([s[k] for s in stats[look]]) for k in KEYS}
        print(f"{look:<10} {a['saturation'].mean() / nsat.mean():>11.3f} "
              f"{a['saturation'].mean():>6.2f} {a['shadows'].mean():>6.2f} "
              f"{a['midtones'].mean():>6.2f} {a['contrast'].mean():>6.2f} "
              f"{a['local'].mean():>6.2f} {100 * a['clipped'].mean():>8.3f}")


def kodak(n: int) -> None:
    files = sorted((DATA / "benchmarks" / "kodak24").glob("kodim*.png"))[:n]
    if not files:
        print("Kodak-24 not found under", DATA)
        return
    stats = {look: [] for look in LOOKS}
    rows = []
    t0 = time.perf_counter()
    for f in files:
        scene = scene_from_display(read_srgb_png(f))
        row = []
        for look in LOOKS:
            out = render(scene, look)
            stats[look].append(look_stats(out))
            row.append(thumb(out))
        rows.append(row)
    report(f"Kodak-24 ({time.perf_counter() - t0:.1f} s)", stats)
    sheet(rows, LOOKS, OUT / "contact_kodak.png")
    print("contact sheet:", OUT / "contact_kodak.png")


def dngs() -> None:
    try:
        from oneinch.develop import develop
        from oneinch.raw import open_raw
    except ImportError as e:
        print(f"\nreal DNGs skipped: oneinch.develop / open_raw not available ({e})")
        return
    files = sorted((DATA / "dng" / "decodable").glob("*.dng"))
    stats = {look: [] for look in LOOKS}
    rows = []
    for f in files:
        try:
            raw = open_raw(f)
            row = []
            for look in LOOKS:
                photo = develop(raw, preset(look).with_(output={"size": 1024}))
                disp = decode(photo.rgb, "srgb")
                stats[look].append(look_stats(disp))
                row.append(thumb(disp))
            rows.append(row)
        except Exception as e:  # a bench reports and goes on
            print(f"{f.name}: {type(e).__name__}: {e}")
    if rows:
        report("real DNGs (develop with each preset, 1024 px)", stats)
        sheet(rows, LOOKS, OUT / "contact_dng.png")
        print("contact sheet:", OUT / "contact_dng.png")


def speed() -> None:
    from oneinch.looks.looks import apply_look
    from oneinch.looks.tone import tone_map

    rng = np.random.default_rng(0)
    x = (0.18 * 2.0 ** rng.uniform(-6, 3, (5800, 8700, 3))).astype(np.float32)  # 50 MP
    r = preset("vibrant")
    tone_map(x[:64, :64], r.tone)
    apply_look(x[:64, :64].clip(0, 1), r.look)
    for label, fn in [("tone_map global", lambda: tone_map(x, preset("authentic").tone)),
                      ("tone_map local", lambda: tone_map(x, r.tone)),
                      ("apply_look vibrant", lambda: apply_look(x.clip(0, 1), r.look))]:
        t0 = time.perf_counter()
        fn()
        print(f"{label:<20} 50 MP: {time.perf_counter() - t0:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", type=int, default=24, help="number of Kodak images")
    ap.add_argument("--no-dng", action="store_true")
    ap.add_argument("--speed", action="store_true", help="time 50 MP tone/look passes")
    a = ap.parse_args()
    kodak(a.kodak)
    if not a.no_dng:
        dngs()
    if a.speed:
        speed()


if __name__ == "__main__":
    main()
