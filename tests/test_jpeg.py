"""Parallel JPEG bands joined at restart markers: the same file as one encoder would write."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from oneinch.output import jpeg
from oneinch.output.icc import icc_profile
from oneinch.output.jpeg import _SAMPLING, JpegRows, encode_jpeg


def _scene(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(h * w)
    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(img, (7, 7), 2)


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
@pytest.mark.parametrize(("h", "w"), [(1000, 1304), (1003, 777), (77, 90)])
@pytest.mark.parametrize("bands", [2, 3])
def test_bands_join_to_the_single_encoder_bytes(subsampling, h, w, bands):
    img = _scene(h, w)
    joined = encode_jpeg(img, bgr=True, quality=90, subsampling=subsampling, bands=bands,
                         optimize=False)
    code, mcu_w, _ = _SAMPLING[subsampling]
    ok, single = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90,
                                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, code,
                                            cv2.IMWRITE_JPEG_RST_INTERVAL, -(-w // mcu_w)])
    assert ok and joined == single.tobytes()


def test_joined_file_decodes_like_an_unbanded_encode():
    img = _scene(1200, 1000)
    joined = encode_jpeg(img, bands=2, optimize=False)
    plain = encode_jpeg(img, bands=1, optimize=False)
    a = np.asarray(Image.open(io.BytesIO(joined)))
    b = np.asarray(Image.open(io.BytesIO(plain)))
    assert a.shape == (1200, 1000, 3) and np.array_equal(a, b)
    # and the pixels are the image (q92 4:4:4 of a smooth scene: close)
    err = a.astype(float) - img
    psnr = 10 * np.log10(255**2 / np.mean(err**2))
    assert psnr > 40


def test_icc_and_exif_segments_read_back():
    img = _scene(300, 200)
    icc = icc_profile("p3")
    exif = Image.Exif()
    exif[0x0110] = "oneinch test"
    data = encode_jpeg(img, icc=icc, exif=exif.tobytes(), bands=2, optimize=False)
    im = Image.open(io.BytesIO(data))
    assert im.info["icc_profile"] == icc
    assert im.getexif()[0x0110] == "oneinch test"
    big = bytes(range(256)) * 400  # 102400 bytes: two APP2 chunks
    im = Image.open(io.BytesIO(encode_jpeg(img, icc=big)))
    assert im.info["icc_profile"] == big


def test_optimised_huffman_is_smaller_and_lossless_the_same():
    img = _scene(400, 400)
    opt = encode_jpeg(img, optimize=True)
    std = encode_jpeg(img, optimize=False, bands=1)
    assert len(opt) < len(std)
    a = np.asarray(Image.open(io.BytesIO(opt)))
    b = np.asarray(Image.open(io.BytesIO(std)))
    assert np.array_equal(a, b)


def test_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        encode_jpeg(np.zeros((8, 8, 3), np.float32))


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
@pytest.mark.parametrize(("h", "w"), [(1003, 777), (77, 90)])
def test_rows_in_any_order_give_the_banded_file(subsampling, h, w, monkeypatch):
    """JpegRows (develop's streamed strips): rows in cuts that split MCU rows, added in any
    order, make the same bytes as the banded encode of the whole image."""
    monkeypatch.setattr(jpeg, "OPTIMIZE_MAX_PIXELS", 0)  # (rows from any size, here)
    img = np.ascontiguousarray(_scene(h, w)[..., ::-1])  # RGB
    want = encode_jpeg(img, quality=90, subsampling=subsampling, bands=2, optimize=False,
                       icc=b"icc", exif=b"Exif\x00\x00MM")
    rng = np.random.default_rng(h + w)
    for _ in range(3):
        cuts = np.unique(np.r_[0, h, rng.integers(1, h, rng.integers(1, 9))])
        order = rng.permutation(len(cuts) - 1)
        rows = JpegRows(quality=90, subsampling=subsampling)
        rows.start(h, w)
        for i in order:
            rows.add(img[cuts[i] : cuts[i + 1]], int(cuts[i]))
        assert rows.finish(icc=b"icc", exif=b"Exif\x00\x00MM") == want


def test_rows_missing_or_misshapen_are_errors(monkeypatch):
    monkeypatch.setattr(jpeg, "OPTIMIZE_MAX_PIXELS", 0)
    img = np.ascontiguousarray(_scene(40, 30)[..., ::-1])
    rows = JpegRows()
    rows.start(40, 30)
    rows.add(img[:13], 0)
    with pytest.raises(ValueError, match="missing"):
        rows.finish()
    with pytest.raises(ValueError, match="outside the image"):
        rows.add(img[:5], 38)
    with pytest.raises(ValueError, match="uint8"):
        rows.add(img[:5].astype(np.uint16), 20)
