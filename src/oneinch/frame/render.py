"""Draw a frame around a photo from a template and the shot's fields.

Every size is a fraction of the photo's short side (long side for 'square'), so a 50 MP and a
2 MP photo get the same-looking frame. Text that would not fit the width is scaled down as a
whole (fonts, logo, gaps) — never clipped; at the fonts' minimum size a line that still does
not fit is shortened with an ellipsis or dropped, and a text area too low for the text (a
photo under ~110 px) grows to hold it. The photo's pixels are copied untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFilter, ImageFont

from ..errors import InputError, OptionError
from ..raw.image import ShotInfo
from .fields import expand_slot, shot_fields
from .fonts import load_font
from .logos import logo_image
from .templates import Template, load_template

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)

MAX_CANVAS_PIXELS = 400_000_000  # no layout may make a canvas larger than this


@dataclass
class Rendered:
    """The framed image and where things went (for tests and the web preview)."""

    image: Image.Image
    photo: Box
    text_area: Box
    items: list[tuple[str, Box]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    template: Template | None = None


def as_pil_rgb(image: Image.Image | np.ndarray) -> Image.Image:
    """8-bit RGB Pillow image from a Pillow image or an array (float in [0, 1], uint8, uint16;
    (H, W) or (H, W, 3|4)). Float and uint16 arrays are rounded, not dithered."""
    if isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            a = np.asarray(image).astype(np.float32) / 65535.0
            return as_pil_rgb(a)
        return image if image.mode == "RGB" else image.convert("RGB")
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"frame: expected an (H, W, 3) image, got shape {a.shape}")
    a = a[..., :3]
    if a.dtype == np.uint8:
        u8 = a
    elif a.dtype == np.uint16:
        u8 = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    else:
        f = np.nan_to_num(a.astype(np.float32), nan=0.0)
        u8 = (np.clip(f, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(u8), "RGB")


@dataclass
class _Line:
    text: str
    font_spec: tuple[str, ...]
    colour: str
    rel_size: float  # of the text area height
    logo: Image.Image | None = None  # drawn left of the text (centred kinds, first line)


def _rgb(c: str) -> tuple[int, int, int]:
    return ImageColor.getrgb(c)[:3]


def _text_w(font: ImageFont.FreeTypeFont, text: str) -> int:
    return int(np.ceil(font.getlength(text))) if text else 0


def _line_h(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


def _ink_box(draw_x: int, draw_y: int, font: ImageFont.FreeTypeFont, text: str) -> Box:
    x0, y0, x1, y1 = font.getbbox(text, anchor="la")
    return (draw_x + x0, draw_y + y0, draw_x + x1, draw_y + y1)


class _Block:
    """Lines stacked and measured at a given scale."""

    def __init__(self, lines: list[_Line], area_h: int, gap_rel: float, scale: float) -> None:
        self.lines = [ln for ln in lines if ln.text]
        self.fonts = [load_font(ln.font_spec, ln.rel_size * area_h * scale) for ln in self.lines]
        self.gap = round(gap_rel * area_h * scale)
        self.heights = [_line_h(f) for f in self.fonts]
        self.widths = [_text_w(f, ln.text) for f, ln in zip(self.fonts, self.lines, strict=True)]

    @property
    def width(self) -> int:
        return max(self.widths, default=0)

    @property
    def height(self) -> int:
        if not self.lines:
            return 0
        return sum(self.heights) + self.gap * (len(self.lines) - 1)

    def draw(self, d: ImageDraw.ImageDraw, x: int, y: int, align: str, out: list) -> None:
        for ln, font, h, w in zip(self.lines, self.fonts, self.heights, self.widths, strict=True):
            lx = x if align == "left" else x - w if align == "right" else x - w // 2
            d.text((lx, y), ln.text, font=font, fill=_rgb(ln.colour), anchor="la")
            out.append((ln.text, _ink_box(lx, y, font, ln.text)))
            y += h + self.gap


def _fit_scale(measure: Any, available: int, lines: list[_Line], tries: int = 8) -> float:
    """Largest scale ≤ 1 whose measured width fits (fonts are integer sizes: iterate). When even
    the smallest font size does not fit, the longest line is shortened with an ellipsis; lines
    that still do not fit are dropped (the longest first) and a logo left alone is scaled
    down: text is never drawn past the area (the caller drops a logo that still does not
    fit)."""
    scale = 1.0
    if available <= 0:
        for ln in lines:
            ln.text = ""

    def shrink(scale: float) -> float:
        for _ in range(tries):
            need = measure(scale)
            if need <= max(0, available):
                break
            scale *= max(0.5, max(1, available) / need * 0.995)
        return scale

    scale = shrink(scale)
    while measure(scale) > available:
        longest = max(lines, key=lambda ln: len(ln.text))
        if len(longest.text) <= 2:
            break
        keep = max(1, int(len(longest.text.rstrip("…")) * 0.9))
        longest.text = longest.text[:keep].rstrip() + "…"
    while measure(scale) > available and any(ln.text for ln in lines):
        max(lines, key=lambda ln: len(ln.text)).text = ""
    return shrink(scale)


@dataclass
class _BannerPlan:
    """A banner's text measured at one scale: left and right blocks, the logo and divider."""

    lb: _Block
    rb: _Block
    gap: int
    logo: Image.Image | None
    div_w: int
    div_h: int
    pad: int

    @property
    def height(self) -> int:
        return max(self.lb.height, self.rb.height,
                   self.logo.height if self.logo is not None else 0, self.div_h)


def _banner_plan(w: int, bh: int, t: Template, texts: dict[str, str],
                 make: str | None) -> _BannerPlan:
    g, col = t.geometry, t.colours
    left = [
        _Line(texts.get("left_primary", ""), t.fonts["primary"], col["primary"], g["primary_size"]),
        _Line(
            texts.get("left_secondary", ""),
            t.fonts["secondary"],
            col["secondary"],
            g["secondary_size"],
        ),
    ]
    right = [
        _Line(
            texts.get("right_primary", ""), t.fonts["primary"], col["primary"], g["primary_size"]
        ),
        _Line(
            texts.get("right_secondary", ""),
            t.fonts["secondary"],
            col["secondary"],
            g["secondary_size"],
        ),
    ]
    dark = sum(_rgb(col["background"])) < 3 * 128
    logo_full = (
        logo_image(t.logo, make, max(2, round(g["logo_height"] * bh)), col["primary"], dark)
        if g["logo_height"] > 0
        else None
    )
    pad = max(1, round(g["padding"] * bh))

    def layout(scale: float) -> tuple[_Block, _Block, int, int, int]:
        lb = _Block(left, bh, g["line_gap"], scale)
        rb = _Block(right, bh, g["line_gap"], scale)
        gap = round(g["gap"] * bh * scale)
        logo_w = round(logo_full.width * scale) if logo_full is not None else 0
        div_w = max(1, round(g["divider_width"] * bh * scale)) if g["divider_width"] > 0 else 0
        return lb, rb, gap, logo_w, div_w

    def need(scale: float) -> int:
        lb, rb, gap, logo_w, div_w = layout(scale)
        right_w = rb.width
        if logo_w:
            right_w += logo_w + (
                gap + div_w + gap if rb.width and div_w else gap if rb.width else 0
            )
        middle = round(g["min_middle"] * bh * scale) if lb.width and right_w else 0
        return lb.width + middle + right_w

    scale = _fit_scale(need, w - 2 * pad, left + right)
    if logo_full is not None and need(scale) > w - 2 * pad:
        logo_full = None  # no room even for the logo
    lb, rb, gap, logo_w, div_w = layout(scale)
    logo = None
    if logo_full is not None and logo_w:
        lh = max(1, round(logo_full.height * scale))
        logo = logo_full.resize((logo_w, lh), Image.Resampling.LANCZOS)
    div_h = max(1, round(g["divider_height"] * bh * scale)) if logo and rb.lines and div_w else 0
    return _BannerPlan(lb, rb, gap, logo, div_w if div_h else 0, div_h, pad)


def _banner(photo: Image.Image, t: Template, fields: dict[str, str], make: str | None) -> Rendered:
    g, col = t.geometry, t.colours
    w, h = photo.size
    bh = max(8, round(g["banner"] * min(w, h)))
    texts = {k: expand_slot(v, fields, t.separator) for k, v in t.slots.items()}
    plan = _banner_plan(w, bh, t, texts, make)
    # A small photo's text at the fonts' minimum size may be taller than the banner: the
    # banner grows to hold it, 1 px clear above and below (never drawn over the photo).
    bh = max(bh, plan.height + 2)
    canvas = Image.new("RGB", (w, h + bh), _rgb(col["background"]))
    canvas.paste(photo, (0, 0))
    d = ImageDraw.Draw(canvas)
    lb, rb, gap, logo = plan.lb, plan.rb, plan.gap, plan.logo
    items: list[tuple[str, Box]] = []
    y_mid = h + bh // 2
    if lb.lines:
        lb.draw(d, plan.pad, y_mid - lb.height // 2, "left", items)
    x = w - plan.pad
    if rb.lines:
        rb.draw(d, x, y_mid - rb.height // 2, "right", items)
        x -= rb.width
    if logo is not None:
        if plan.div_h:
            x -= gap
            dw, dh = plan.div_w, plan.div_h
            d.rectangle(
                (x - dw, y_mid - dh // 2, x - 1, y_mid - dh // 2 + dh - 1),
                fill=_rgb(col["divider"]),
            )
            items.append(("|divider", (x - dw, y_mid - dh // 2, x, y_mid - dh // 2 + dh)))
            x -= dw + gap
        elif rb.lines:
            x -= gap
        pos = (x - logo.width, y_mid - logo.height // 2)
        canvas.paste(logo, pos, logo)
        items.append(("|logo", (pos[0], pos[1], pos[0] + logo.width, pos[1] + logo.height)))
    return Rendered(canvas, (0, 0, w, h), (0, h, w, h + bh), items, texts, t)


@dataclass
class _CentredPlan:
    """Centred lines measured at one scale: the logo left of the first line, then the rest."""

    first: _Block
    rest: _Block
    gap: int
    logo: Image.Image | None
    line_gap: int

    @property
    def row_h(self) -> int:
        return max(self.first.height, self.logo.height if self.logo is not None else 0)

    @property
    def height(self) -> int:
        return self.row_h + (self.line_gap + self.rest.height if self.rest.lines else 0)


def _centred_plan(area_w: int, ah: int, t: Template, texts: dict[str, str],
                  make: str | None) -> _CentredPlan:
    g, col = t.geometry, t.colours
    lines = [
        _Line(texts.get("primary", ""), t.fonts["primary"], col["primary"], g["primary_size"]),
        _Line(
            texts.get("secondary", ""), t.fonts["secondary"], col["secondary"], g["secondary_size"]
        ),
    ]
    dark = sum(_rgb(col["background"])) < 3 * 128 or t.kind == "blur"
    logo_full = (
        logo_image(t.logo, make, max(2, round(g["logo_height"] * ah)), col["primary"], dark)
        if g["logo_height"] > 0
        else None
    )
    pad = max(1, round(g["padding"] * ah))

    def widths(scale: float) -> tuple[_Block, _Block, int, int]:
        first = _Block(lines[:1], ah, 0.0, scale)
        rest = _Block(lines[1:], ah, 0.0, scale)
        gap = round(g["gap"] * ah * scale)
        logo_w = round(logo_full.width * scale) if logo_full is not None else 0
        return first, rest, gap, logo_w

    def need(scale: float) -> int:
        first, rest, gap, logo_w = widths(scale)
        row = first.width + (logo_w + (gap if first.width else 0) if logo_w else 0)
        return max(row, rest.width)

    scale = _fit_scale(need, area_w - 2 * pad, lines)
    if logo_full is not None and need(scale) > area_w - 2 * pad:
        logo_full = None  # no room even for the logo
    first, rest, gap, logo_w = widths(scale)
    logo = None
    if logo_full is not None and logo_w:
        lh = max(1, round(logo_full.height * scale))
        logo = logo_full.resize((logo_w, lh), Image.Resampling.LANCZOS)
    return _CentredPlan(first, rest, gap, logo, round(g["line_gap"] * ah * scale))


def _centred_text(canvas: Image.Image, area: Box, plan: _CentredPlan) -> list[tuple[str, Box]]:
    """Draw ``plan`` centred in ``area`` (at least ``plan.height + 2`` pixels high)."""
    ax0, ay0, ax1, ay1 = area
    first, rest, gap, logo = plan.first, plan.rest, plan.gap, plan.logo
    row_h = plan.row_h
    y = ay0 + (ay1 - ay0 - plan.height) // 2
    cx = (ax0 + ax1) // 2
    d = ImageDraw.Draw(canvas)
    items: list[tuple[str, Box]] = []
    logo_w = logo.width if logo is not None else 0
    row_w = first.width + (logo_w + (gap if first.width else 0) if logo is not None else 0)
    x = cx - row_w // 2
    if logo is not None:
        pos = (x, y + (row_h - logo.height) // 2)
        canvas.paste(logo, pos, logo)
        items.append(("|logo", (pos[0], pos[1], pos[0] + logo_w, pos[1] + logo.height)))
        x += logo_w + gap
    if first.lines:
        first.draw(d, x, y + (row_h - first.height) // 2, "left", items)
    if rest.lines:
        rest.draw(d, cx, y + row_h + plan.line_gap, "centre", items)
    return items


def _text_area(area_w: int, ta: int, t: Template, fields: dict[str, str],
               make: str | None) -> tuple[int, _CentredPlan, dict[str, str]]:
    """The text area's height — ``ta``, or more when a small photo's text at the fonts'
    minimum size needs it (1 px clear above and below) — its plan and its texts."""
    texts = {k: expand_slot(v, fields, t.separator) for k, v in t.slots.items()}
    plan = _centred_plan(area_w, ta, t, texts, make)
    return max(ta, plan.height + 2), plan, texts


def _border(photo: Image.Image, t: Template, fields: dict[str, str], make: str | None) -> Rendered:
    g = t.geometry
    w, h = photo.size
    u = min(w, h)
    b = round(g["border"] * u)
    ta, plan, texts = _text_area(w + 2 * b, max(8, round(g["text_area"] * u)), t, fields, make)
    canvas = Image.new("RGB", (w + 2 * b, h + b + ta), _rgb(t.colours["background"]))
    canvas.paste(photo, (b, b))
    area = (0, h + b, w + 2 * b, h + b + ta)
    items = _centred_text(canvas, area, plan)
    return Rendered(canvas, (b, b, b + w, b + h), area, items, texts, t)


def _text(photo: Image.Image, t: Template, fields: dict[str, str], make: str | None) -> Rendered:
    g = t.geometry
    w, h = photo.size
    ta, plan, texts = _text_area(w, max(8, round(g["text_area"] * min(w, h))), t, fields, make)
    canvas = Image.new("RGB", (w, h + ta), _rgb(t.colours["background"]))
    canvas.paste(photo, (0, 0))
    area = (0, h, w, h + ta)
    items = _centred_text(canvas, area, plan)
    return Rendered(canvas, (0, 0, w, h), area, items, texts, t)


def _square(photo: Image.Image, t: Template, fields: dict[str, str], make: str | None) -> Rendered:
    g = t.geometry
    w, h = photo.size
    L = max(w, h)
    m = round(g["margin"] * L)
    ta = max(8, round(g["text_area"] * L))
    # planned at the nominal side; a taller text area only widens the square
    ta, plan, texts = _text_area(max(w + 2 * m, h + 2 * m + ta), ta, t, fields, make)
    s = max(w + 2 * m, h + 2 * m + ta)
    if s * s > MAX_CANVAS_PIXELS:
        raise InputError(f"a {w}x{h} photo is too long and thin for the square layout "
                         f"({s}x{s} canvas)")
    canvas = Image.new("RGB", (s, s), _rgb(t.colours["background"]))
    x = (s - w) // 2
    y = max(m, (s - h - ta) // 2)  # photo and text centred together
    canvas.paste(photo, (x, y))
    area = (0, y + h, s, y + h + ta)
    items = _centred_text(canvas, area, plan)
    return Rendered(canvas, (x, y, x + w, y + h), area, items, texts, t)


def _blur(photo: Image.Image, t: Template, fields: dict[str, str], make: str | None) -> Rendered:
    g = t.geometry
    w, h = photo.size
    u = min(w, h)
    m = round(g["margin"] * u)
    ta, plan, texts = _text_area(w + 2 * m, max(8, round(g["text_area"] * u)), t, fields, make)
    cw, ch = w + 2 * m, h + m + ta
    # Background: the photo scaled to cover the canvas, blurred at low resolution (cheap for
    # 50 MP), darkened so light text reads on it.
    small = max(1.0, u / 256.0)
    sw, sh = max(1, round(cw / small)), max(1, round(ch / small))
    k = max(sw / w, sh / h)
    bg = photo.resize((max(sw, round(w * k)), max(sh, round(h * k))), Image.Resampling.BILINEAR)
    bx, by = (bg.width - sw) // 2, (bg.height - sh) // 2
    bg = bg.crop((bx, by, bx + sw, by + sh))
    bg = bg.filter(ImageFilter.GaussianBlur(max(0.5, g["blur"] * u / small)))
    bg = Image.eval(bg, lambda v: round(v * g["darken"]))
    canvas = bg.resize((cw, ch), Image.Resampling.BICUBIC)
    # shadow
    sr = g["shadow"] * u
    if sr > 0:
        pad = round(3 * sr)
        sh_mask = Image.new("L", (w + 2 * pad, h + 2 * pad), 0)
        ImageDraw.Draw(sh_mask).rectangle((pad, pad, pad + w - 1, pad + h - 1), fill=150)
        sh_small = sh_mask.resize(
            (max(1, round(sh_mask.width / small)), max(1, round(sh_mask.height / small))),
            Image.Resampling.BILINEAR,
        ).filter(ImageFilter.GaussianBlur(max(0.5, sr / small)))
        sh_mask = sh_small.resize(sh_mask.size, Image.Resampling.BICUBIC)
        off = round(sr * 0.5)
        shadow = Image.new("RGB", sh_mask.size, _rgb(t.colours["shadow"]))
        canvas.paste(shadow, (m - pad + off, m - pad + off), sh_mask)
    radius = round(g["corner"] * u)
    if radius > 0:
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).rounded_rectangle((0, 0, w - 1, h - 1), radius=radius, fill=255)
        canvas.paste(photo, (m, m), mask)
    else:
        canvas.paste(photo, (m, m))
    area = (0, m + h, cw, ch)
    items = _centred_text(canvas, area, plan)
    return Rendered(canvas, (m, m, m + w, m + h), area, items, texts, t)


_KINDS = {"banner": _banner, "border": _border, "blur": _blur, "square": _square, "text": _text}


def render_detailed(
    image: Image.Image | np.ndarray,
    shot: ShotInfo,
    layout: str = "classic",
    template: Template | str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Rendered:
    """Like :func:`render`, also returning the boxes of the photo, the text area and each
    drawn item."""
    t = load_template(template if template is not None else layout)
    photo = as_pil_rgb(image)
    make = (overrides or {}).get("make") or shot.make
    try:
        fields = shot_fields(shot, overrides, date_format=t.date_format, focal=t.focal)
        return _KINDS[t.kind](photo, t, fields, make)
    except OptionError as e:  # a template's bad field: name the template file
        if e.path is None and t.source:
            raise OptionError(e.detail, t.source) from None
        raise
    except InputError as e:  # e.g. the template's logo file is unreadable: name both
        if t.source and e.path is not None and e.path != t.source:
            raise InputError(f"{e}", t.source) from None
        raise


def render(
    image: Image.Image | np.ndarray,
    shot: ShotInfo,
    layout: str = "classic",
    template: Template | str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Image.Image:
    """The photo (already upright) framed by ``layout`` — a built-in or user template name —
    or by ``template`` (a Template or a TOML path). ``overrides`` replace fields
    ({'lens': 'Summicron 28'}). Returns an 8-bit RGB image; the photo's pixels are unchanged."""
    return render_detailed(image, shot, layout, template, overrides).image
