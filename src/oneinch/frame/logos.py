"""Logos: the user's PNG/SVG files by normalised make, else a neutral built-in mark.

oneinch ships no third-party trademarks. Users put ``<slug>.png`` or ``<slug>.svg`` (slug =
lower-case brand with spaces as '-': 'leica.png', 'om-system.svg') in ``<config>/logos``;
``<slug>-dark.*`` is preferred on dark backgrounds. SVG needs ``resvg-py`` or ``cairosvg``.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
from pathlib import Path

from PIL import Image, ImageChops, ImageColor, ImageDraw

from ..errors import InputError, OptionError, UnsupportedError
from .config import logos_dir
from .makes import normalise_make


def slug(brand: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", brand.lower()).strip("-")


def find_logo(make: str | None, dark: bool = False, folder: Path | None = None) -> Path | None:
    """The user's logo file for this make, or None."""
    brand = normalise_make(make)
    if not brand:
        return None
    base = folder or logos_dir()
    if not base.is_dir():
        return None
    names = [f"{slug(brand)}-dark", slug(brand)] if dark else [slug(brand)]
    for name in names:
        for ext in (".png", ".svg", ".webp"):
            p = base / f"{name}{ext}"
            if p.is_file():
                return p
    return None


def _render_svg(path: Path, height: int) -> Image.Image:
    data = path.read_bytes()
    png: bytes | None = None
    try:
        import resvg_py  # type: ignore[import-not-found]

        png = bytes(resvg_py.svg_to_bytes(svg_string=data.decode("utf-8"), height=height))
    except ImportError:
        try:
            import cairosvg  # type: ignore[import-not-found]

            png = cairosvg.svg2png(bytestring=data, output_height=height)
        except (ImportError, OSError):
            png = None
    except Exception as e:
        raise InputError(f"cannot render SVG logo ({e})", path) from None
    if png is None:
        raise UnsupportedError(
            "SVG logos need an SVG renderer: pip install resvg-py (or cairosvg), "
            "or save the logo as PNG",
            path,
        )
    try:
        return Image.open(io.BytesIO(png)).convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"cannot render SVG logo ({e})", path) from None


MAX_LOGO_PIXELS = 64_000_000  # a logo is drawn a few hundred pixels high
MAX_EXPANSION = 2000  # decoded bytes per file byte: deflate tops out near 1032:1 (RFC 1951)


def _open_logo(path: Path) -> Image.Image:
    """The logo file as RGBA; InputError naming it when it is unreadable or declares more
    pixels than a logo needs or than its bytes can hold (a decompression bomb), checked
    before Pillow allocates them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: refused below instead
            with Image.open(path) as im:
                w, h = im.size
                have = path.stat().st_size
                if w * h > MAX_LOGO_PIXELS or w * h * 4 > MAX_EXPANSION * have + 2**20:
                    raise InputError(f"logo declares {w}x{h} pixels in {have} bytes "
                                     "(too large, truncated or a decompression bomb)", path)
                return im.convert("RGBA")
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, TypeError, IndexError, KeyError, EOFError,
            ZeroDivisionError, struct.error, Image.DecompressionBombError) as e:
        raise InputError(f"cannot read logo ({e})", path) from None
    except MemoryError:
        raise InputError("logo too large to decode in memory", path) from None


def load_logo(path: Path, height: int) -> Image.Image:
    """An RGBA logo scaled to ``height`` pixels (aspect kept)."""
    height = max(1, int(height))
    if path.suffix.lower() == ".svg":
        img = _render_svg(path, height * 2)
    else:
        img = _open_logo(path)
    bbox = img.getchannel("A").getbbox()
    if bbox is None:
        raise InputError("logo is fully transparent", path)
    img = img.crop(bbox)
    w = max(1, round(img.width * height / img.height))
    return img.resize((w, height), Image.Resampling.LANCZOS)


def builtin_mark(height: int, colour: str = "#1a1a1a") -> Image.Image:
    """oneinch's own neutral mark: a six-blade aperture (hexagon ring with a hexagonal pupil
    turned 30°), drawn with Pillow at 4x and downsampled. RGBA, ``height`` square."""
    height = max(2, int(height))
    s = height * 4
    img = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(img)
    c = s / 2
    r_out, r_in = s * 0.5, s * 0.22

    def hexagon(r: float, rot: float) -> list[tuple[float, float]]:
        return [
            (c + r * math.cos(rot + k * math.pi / 3), c + r * math.sin(rot + k * math.pi / 3))
            for k in range(6)
        ]

    d.polygon(hexagon(r_out, math.pi / 6), fill=255)
    d.polygon(hexagon(r_in, 0.0), fill=0)
    # blade edges: from each inner vertex to the outer ring, tangent-wise
    w = max(2, round(s * 0.035))
    inner = hexagon(r_in, 0.0)
    for k, (x, y) in enumerate(inner):
        a = k * math.pi / 3 + math.pi / 2 + 0.35
        d.line([(x, y), (x + r_out * math.cos(a), y + r_out * math.sin(a))], fill=0, width=w)
    # clip the blade lines to the outer hexagon, then downsample (antialiasing)
    outer = Image.new("L", (s, s), 0)
    ImageDraw.Draw(outer).polygon(hexagon(r_out, math.pi / 6), fill=255)
    mask = ImageChops.darker(img, outer).resize((height, height), Image.Resampling.LANCZOS)
    rgb = ImageColor.getrgb(colour)[:3]
    out = Image.new("RGBA", (height, height), (*rgb, 0))
    out.putalpha(mask)
    return out


def logo_image(
    spec: str, make: str | None, height: int, colour: str, dark: bool = False
) -> Image.Image | None:
    """Resolve a template's logo setting: 'auto' (user logo for the make, else the built-in
    mark), 'mark', 'none', or a file path."""
    spec = (spec or "auto").strip()
    if spec == "none":
        return None
    if spec == "mark":
        return builtin_mark(height, colour)
    if spec == "auto":
        p = find_logo(make, dark)
        return load_logo(p, height) if p else builtin_mark(height, colour)
    p = Path(spec).expanduser()
    if not p.is_file():
        cand = logos_dir() / spec
        if not cand.is_file():
            raise OptionError(f"logo file not found: {spec}")
        p = cand
    return load_logo(p, height)
