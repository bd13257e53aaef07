"""Frame regressions: TIFF inputs/outputs carry only EXIF metadata, output suffixes, truncated
TIFFs, small photos, logo bombs, missing fonts and 16-bit framed develops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import ExifTags, Image

from conftest import KODAK, load_rgb8
from oneinch.frame import frame_file, render_detailed
from oneinch.output.encode import write
from oneinch.photo import Photo
from oneinch.raw.image import ShotInfo
from oneinch.recipe import Output

SHOT = ShotInfo(make="NIKON CORPORATION", model="NIKON Z 6", exposure_time=1 / 250,
                f_number=2.8, iso=200.0, focal_length=35.0)
LAYOUTS = ("classic", "classic-dark", "border", "blur", "square", "text")
# TIFF tags that describe a file's pixel layout: never EXIF metadata to carry over
STRUCTURAL = {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338,
              339}


def _rgb(h: int = 150, w: int = 220) -> np.ndarray:
    src = KODAK / "kodim05.png"
    if src.is_file():
        return load_rgb8(src)[:h, :w].astype(np.float32) / 255.0
    rng = np.random.default_rng(1)
    return rng.random((h, w, 3), dtype=np.float32)


def _input(tmp: Path, kind: str) -> Path:
    fmt, bits = {"jpg": ("jpeg", 8), "png": ("png", 8), "tif8": ("tiff", 8),
                 "tif16": ("tiff", 16)}[kind]
    suffix = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif"}[fmt]
    return write(Photo(rgb=_rgb(), shot=SHOT), tmp / f"in_{kind}{suffix}",
                 Output(format=fmt, bits=bits, quality=95))


@pytest.mark.parametrize("kind", ["jpg", "png", "tif8", "tif16"])
@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg", ".webp"])
def test_frame_file_any_input_to_any_output(tmp_path: Path, kind: str, suffix: str) -> None:
    """A TIFF input's whole first IFD (width, height, bits, strips) was passed on as EXIF: the
    framed TIFF kept the input's size and bit depth over the framed 8-bit data."""
    src = _input(tmp_path, kind)
    with Image.open(src) as im:
        photo = np.asarray(im.convert("RGB"))
    want = render_detailed(photo, SHOT, "classic")
    dst = frame_file(src, tmp_path / f"out{suffix}", "classic")
    with Image.open(dst) as im:
        assert im.size == want.image.size
        got = np.asarray(im.convert("RGB"))
        exif = im.getexif()
        if suffix == ".tif":
            assert im.tag_v2[258] == (8, 8, 8)
        else:
            assert not STRUCTURAL & set(exif)
        assert exif[ExifTags.Base.Model] == "NIKON Z 6"
        assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.ISOSpeedRatings] == 200
    if suffix in (".tif", ".png"):  # lossless: the very pixels
        assert np.array_equal(got, np.asarray(want.image))
    else:
        assert np.abs(got.astype(int) - np.asarray(want.image).astype(int)).mean() < 4
    if suffix == ".tif":
        assert np.array_equal(tifffile.imread(dst), np.asarray(want.image))
