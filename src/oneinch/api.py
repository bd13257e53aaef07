"""File-level helpers the CLI, batch runner and browser app share: open, develop, frame, write."""

from __future__ import annotations

from pathlib import Path

from .errors import OptionError
from .recipe import Recipe


def develop_file(src: str | Path, dst: str | Path, recipe: Recipe | None = None) -> Path:
    """open_raw -> develop -> (frame) -> write, atomically. Returns the written path."""
    from .develop import develop
    from .output.encode import check_target, write, write_jpeg_rows
    from .output.jpeg import JpegRows
    from .raw import open_raw

    r = recipe or Recipe()
    check_target(dst, r.output)  # a target the output cannot be written to: before the work
    hdr = r.output.format == "uhdr" or r.output.transfer != "sdr"
    if hdr and r.frame.layout:
        raise OptionError("frames are not supported with Ultra HDR / HDR output yet")
    raw = open_raw(src)
    # straight to the file's integers when nothing float follows (frame, HDR, dither)
    direct = not (hdr or r.frame.layout) and r.output.format in ("jpeg", "png", "tiff")
    rows = None
    if direct and r.output.format == "jpeg":  # a large streamed develop: rows to the encoder
        rows = JpegRows(quality=r.output.quality, subsampling=r.output.subsampling)
    photo = develop(raw, r, dtype=_integer_dtype(r) if direct else None, rows=rows)
    if rows is not None and rows.started:
        return write_jpeg_rows(photo, rows, dst, r.output)
    if hdr:
        from .output.uhdr import hdr_rendition, with_hdr

        photo = with_hdr(photo, hdr_rendition(raw, r, photo))
    del raw  # the sensor data (100 MB at 50 MP) is not needed to write
    if r.frame.layout:
        photo = _framed(photo, r)
    held = [photo]  # handed over: write() frees the float image once it is quantised
    del photo
    return write(held, dst, r.output)


def _integer_dtype(r: Recipe):
    import numpy as np

    bits = r.output.bits or (16 if r.output.format == "tiff" else 8)
    return np.uint16 if bits == 16 else np.uint8


def _framed(photo, recipe: Recipe):
    """The photo framed by the recipe. The frame (border, text, logo) is drawn in 8 bit; the
    photo's own pixels keep their full precision: wherever the frame left the photo's 8-bit
    values as they were (all of it but a 'blur' layout's rounded corners), the float pixels
    are put back, so a framed 16-bit TIFF carries the same photo as an unframed one."""
    from dataclasses import replace

    import numpy as np

    from .frame import render_detailed
    from .frame.render import as_pil_rgb

    r = render_detailed(
        photo.rgb,
        photo.shot,
        layout=recipe.frame.layout,
        template=recipe.frame.template,
        overrides=dict(recipe.frame.overrides),
    )
    canvas = np.asarray(r.image)
    rgb = canvas.astype(np.float32) / 255.0
    x0, y0, x1, y1 = r.photo
    src = np.asarray(photo.rgb)
    if src.dtype == np.uint16:
        full = src.astype(np.float32) / 65535.0
    elif src.dtype == np.uint8:
        full = src.astype(np.float32) / 255.0
    else:
        full = src.astype(np.float32, copy=False)
    kept = np.all(canvas[y0:y1, x0:x1] == np.asarray(as_pil_rgb(photo.rgb)), axis=2)
    box = rgb[y0:y1, x0:x1]
    box[kept] = full[..., :3][kept]
    return replace(photo, rgb=np.ascontiguousarray(rgb))
