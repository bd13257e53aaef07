"""A bug seen by the HDR engineer: Pillow's optimised JPEG writer fails on pure noise at q100."""

from __future__ import annotations

import numpy as np
from PIL import Image

from oneinch.output.encode import write
from oneinch.photo import Photo
from oneinch.recipe import Output


def test_pure_noise_jpeg_at_high_quality_is_written(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.random((256, 256, 3)).astype(np.float32)
    out = write(Photo(rgb=rgb), tmp_path / "noise.jpg", Output(quality=100))
    with Image.open(out) as im:
        back = np.asarray(im, np.float32) / 255
    assert back.shape == rgb.shape
    assert np.abs(back - rgb).mean() < 0.02
