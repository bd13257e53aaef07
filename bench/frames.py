"""Frames benchmark: a contact sheet of every layout (landscape and portrait) in out/frames/,
and a table of render times at 2 MP and 12 MP.

    .venv/bin/python bench/frames.py [--out out/frames] [--no-timing]
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageDraw

from oneinch.frame import list_templates, render
from oneinch.frame.fonts import load_font
from oneinch.raw.image import ShotInfo

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "benchmarks" / "kodak24"

SHOT = ShotInfo(
    make="Xiaomi",
    model="2203121C",
    lens="Summicron 1:1.9-4.1/13-120 ASPH.",
    focal_length=8.7,
    focal_length_35mm=23,
    f_number=1.9,
    exposure_time=0.01,
    iso=50,
    datetime=datetime(2022, 7, 4, 18, 31, tzinfo=timezone(timedelta(hours=8))),
    gps=(22.5431, 114.0579, 12.0),
)


def _photo(name: str) -> Image.Image:
    p = KODAK / name
    if p.is_file():
        with Image.open(p) as im:
            return im.convert("RGB")
    return Image.linear_gradient("L").convert("RGB").resize((768, 512))


def contact_sheet(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    photos = {"landscape": _photo("kodim01.png"), "portrait": _photo("kodim04.png")}
    layouts = list(list_templates())
    cell = 420
    label_font = load_font(("Roboto:bold", "DejaVu Sans:bold"), 18)
    sheet = Image.new("RGB", (cell * len(layouts), (cell + 30) * len(photos)), (235, 235, 235))
    d = ImageDraw.Draw(sheet)
    for row, (orient, photo) in enumerate(photos.items()):
        for col, name in enumerate(layouts):
            framed = render(photo, SHOT, name)
            framed.save(out / f"{name}_{orient}.jpg", quality=95, subsampling=0)
            thumb = framed.copy()
            thumb.thumbnail((cell - 20, cell - 20), Image.Resampling.LANCZOS)
            x = col * cell + (cell - thumb.width) // 2
            y = row * (cell + 30) + 30 + (cell - 20 - thumb.height) // 2
            sheet.paste(thumb, (x, y))
            d.text((col * cell + 10, row * (cell + 30) + 6), f"{name} · {orient}", fill=(0, 0, 0),
                   font=label_font)  # fmt: skip
    path = out / "contact_sheet.jpg"
    sheet.save(path, quality=92, subsampling=0)
    return path


def timing() -> None:
    base = _photo("kodim01.png")
    sizes = {"2 MP": (1728, 1152), "12 MP": (4000, 3000)}
    print(f"{'layout':14s}" + "".join(f"{k:>10s}" for k in sizes))
    imgs = {k: base.resize(v, Image.Resampling.BILINEAR) for k, v in sizes.items()}
    for name in list_templates():
        row = f"{name:14s}"
        for k in sizes:
            render(imgs[k], SHOT, name)  # warm font cache
            t0 = time.perf_counter()
            render(imgs[k], SHOT, name)
            row += f"{(time.perf_counter() - t0) * 1000:8.0f}ms"
        print(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "frames")
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    print("contact sheet:", contact_sheet(args.out))
    if not args.no_timing:
        timing()


if __name__ == "__main__":
    main()
