"""`oneinch frame` on AVIF and JPEG XL photos: read (JPEG XL via our decoder), framed, ICC and
EXIF kept, written in the same format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import KODAK, load_rgb8, sha256
from oneinch.frame import frame_file
from oneinch.output.encode import write
from oneinch.output.icc import icc_profile
from oneinch.output.modern import read_modern
from oneinch.photo import Photo
from oneinch.raw.image import ShotInfo
from oneinch.recipe import Output

SHOT = ShotInfo(make="NIKON CORPORATION", model="NIKON Z 6", exposure_time=1 / 250,
                f_number=2.8, iso=200.0, focal_length=35.0)


@pytest.mark.parametrize("fmt,suffix", [("jxl", ".jxl"), ("avif", ".avif")])
def test_frame_modern_formats_keep_icc_and_exif(tmp_path: Path, fmt: str, suffix: str) -> None:
    rgb = load_rgb8(KODAK / "kodim05.png")[:200, :300].astype(np.float32) / 255.0
    src = write(Photo(rgb=rgb, space="p3", shot=SHOT), tmp_path / f"in{suffix}",
                Output(format=fmt, space="p3", quality=90))
    before = sha256(src)
    dst = frame_file(src, tmp_path / f"out{suffix}", "classic")
    d = read_modern(dst)
    assert d.rgb.shape[1] == 300 and d.rgb.shape[0] > 200  # the banner below the photo
    assert d.icc == icc_profile("p3")
    assert d.exif is not None and b"NIKON Z 6" in d.exif
    photo_part = d.rgb[:200]
    assert np.abs(photo_part - read_modern(src).rgb).mean() < 0.02  # photo pixels kept
    assert sha256(src) == before
