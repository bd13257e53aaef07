"""A small CNN that refines the ``iri-lr`` demosaic (``iri-cnn``).

The ``iri-lr`` result (``_demosaic_learned``) is packed 2x2 (each RGGB quad's 4 pixels x 3
colours -> 12 channels at half resolution, so every channel has one CFA phase, as in Gharbi,
Chaurasia, Paris, Durand 2016, "Deep joint demosaicking and denoising", SIGGRAPH Asia, sec. 3)
and a plain stack of 3x3 convolutions with ReLU predicts from its detail (each channel minus
its 5x5 box mean, ``detail``) a 12-channel residual that is added to it (residual learning of
a demosaic's error, as in Tan, Zeng, Lai, Liu, Zhang 2017, "Color image demosaicking via deep
residual learning", ICME, and Kim, Lee, Lee 2016, VDSR, CVPR, sec. 3.1). The convolutions have
no bias (Mohan, Kadkhodaie, Simoncelli, Fernandez-Granda 2020, "Robust and interpretable
blind image denoising via bias-free convolutional neural networks", ICLR): the network is
positively homogeneous, so its correction scales with the image (an exposure change, values
above white) and is exactly zero on a flat field of any colour. The sampled values are put
back by ``demosaic``.

Weights: ``oneinch/data/demosaic_iri_cnn.onnx``, trained by scripts/train_demosaic_cnn.py with
PyTorch on images that are neither Kodak nor McMaster (the training set of ``iri-lr`` plus
colour variants of it; that script lists every image and the measured numbers). At run time
the network goes through OpenCV's DNN module (``cv2.dnn.readNetFromONNX``), in tiles with a
halo of the network's reach, so memory stays bounded on large images and tiled equals whole;
in develop's strips only over the rows the later stages read (``rows``: not the context rows
that make iri-lr's rows exact; 12 MP GoPro HERO6 develop 64 -> 45 s). ``refine_reference`` is
the same network in plain numpy from the same weights.

Network: 16 bias-free 3x3 convolutions, 64 channels, 0.53 M weights (2.12 MB): the earlier
10-layer network (0.31 M) made 6 layers deeper, the new ones started as the identity, and
trained on for 9000 iterations on the retrained iri-lr (scripts/train_demosaic_cnn.py).
Measured (bench/quality_demosaic.py, Kodak-24 / McMaster-18 CPSNR of the 8-bit output): iri-lr
41.19 / 37.37 dB; the 10-layer network 41.21 / 37.57; this one 41.27 / 37.66. The network
alone (``refine``, 2 cores, a 0.5 MP crop, min of 5, the two files alternated): 0.88 -> 1.55
s/MP; the whole method 3.5 s/MP in bench/quality_demosaic.py (iri-lr 0.86).
"""

from __future__ import annotations

import functools
import itertools
import threading
from importlib import resources

import cv2
import numpy as np

WEIGHTS_FILE = "demosaic_iri_cnn.onnx"
TILE = 192  # packed pixels per tile side (384 full-resolution pixels)
DETAIL = 5  # box (packed pixels) whose mean the network's input is taken relative to
_LOCK = threading.Lock()  # a cv2.dnn.Net runs one forward pass at a time


@functools.lru_cache(maxsize=1)
def load_net() -> cv2.dnn.Net:
    """The shipped network (``oneinch/data/demosaic_iri_cnn.onnx``) as a cv2.dnn.Net."""
    ref = resources.files("oneinch") / "data" / WEIGHTS_FILE
    with resources.as_file(ref) as path:
        net = cv2.dnn.readNetFromONNX(str(path))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net


@functools.lru_cache(maxsize=1)
def conv_layers() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """((weights (O, I, 3, 3), bias (O,)), ...) of the network's convolutions, in order (the
    shipped network's biases are zero)."""
    net = load_net()
    out = []
    for name in net.getLayerNames():
        layer = net.getLayer(net.getLayerId(name))
        if layer.type == "Convolution":
            w = np.array(layer.blobs[0], np.float32)
            b = np.array(layer.blobs[1], np.float32).ravel() if len(layer.blobs) > 1 else None
            out.append((w, np.zeros(w.shape[0], np.float32) if b is None else b))
    return tuple(out)


def reach() -> int:
    """Packed pixels an output pixel sees on each side (one per 3x3 convolution)."""
    return len(conv_layers())


def pack(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3), H and W even -> (12, H/2, W/2) float32: channel (2 * dy + dx) * 3 + c."""
    h, w = rgb.shape[:2]
    p = rgb.reshape(h // 2, 2, w // 2, 2, 3).transpose(1, 3, 4, 0, 2)
    return np.ascontiguousarray(p.reshape(12, h // 2, w // 2), np.float32)


def unpack(p: np.ndarray) -> np.ndarray:
    """Inverse of ``pack``."""
    _, h2, w2 = p.shape
    rgb = p.reshape(2, 2, 3, h2, w2).transpose(3, 0, 4, 1, 2)
    return np.ascontiguousarray(rgb.reshape(2 * h2, 2 * w2, 3), np.float32)


def detail(x: np.ndarray) -> np.ndarray:
    """(12, h, w) packed image minus its ``DETAIL`` x ``DETAIL`` box mean per channel
    (reflect-101 borders): zero on a flat field, the same under a constant offset per colour."""
    hwc = np.ascontiguousarray(x.transpose(1, 2, 0))
    mean = cv2.blur(hwc, (DETAIL, DETAIL), borderType=cv2.BORDER_REFLECT_101)
    return np.ascontiguousarray(x - mean.transpose(2, 0, 1), np.float32)


def _detail_reference(x: np.ndarray) -> np.ndarray:
    r = DETAIL // 2
    xp = np.pad(x, ((0, 0), (r, r), (r, r)), mode="reflect")
    win = np.lib.stride_tricks.sliding_window_view(xp, (DETAIL, DETAIL), axis=(1, 2))
    return x - win.mean(axis=(3, 4))


def _forward(net: cv2.dnn.Net, blob: np.ndarray) -> np.ndarray:
    with _LOCK:
        net.setInput(blob)
        return net.forward()


def refine(first: np.ndarray, tile: int = TILE, rows: tuple[int, int] | None = None
           ) -> np.ndarray:
    """The network on an RGGB-aligned first pass (H, W, 3), H and W even: its detail in tiles
    of at most ``tile`` packed pixels, each run with a halo of ``reach()`` (the zero padding of
    the convolutions only ever meets the image's own border, so tiled == whole), the residual
    added to the first pass. ``rows`` (lo, hi): only the tiles that cover these rows run;
    the other rows are the first pass."""
    net = load_net()
    x = pack(first)
    dx = detail(x)
    _, h, w = x.shape
    r = reach()
    out = x.copy()
    p0, p1 = (0, h) if rows is None else (max(0, rows[0] // 2), min(h, -(-rows[1] // 2)))
    n = max(1, -(-(p1 - p0) // tile))  # tile rows of equal height over p0..p1
    cuts = [p0 + (p1 - p0) * i // n for i in range(n + 1)]
    for y0, y1 in itertools.pairwise(cuts if p1 > p0 else ()):
        for x0 in range(0, w, tile):
            x1 = min(x0 + tile, w)
            a, b = max(y0 - r, 0), max(x0 - r, 0)
            c, d = min(y1 + r, h), min(x1 + r, w)
            res = _forward(net, np.ascontiguousarray(dx[None, :, a:c, b:d]))[0]
            out[:, y0:y1, x0:x1] += res[:, y0 - a : y1 - a, x0 - b : x1 - b]
    return unpack(out)


def _conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plain-numpy 3x3 convolution (cross-correlation, as in ONNX) with zero padding."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # (I, H, W, 3, 3)
    return np.einsum("ihwjk,oijk->ohw", win, w, optimize=True) + b[:, None, None]


def refine_reference(first: np.ndarray) -> np.ndarray:
    """Plain-numpy form of ``refine`` (float64, whole image): out = x + body(detail(x)), body =
    the 3x3 convolutions with a ReLU after each but the last."""
    x = pack(first).astype(np.float64)
    layers = conv_layers()
    h = _detail_reference(x)
    for i, (w, b) in enumerate(layers):
        h = _conv3x3(h, w.astype(np.float64), b.astype(np.float64))
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return unpack((x + h).astype(np.float32))


def iri_cnn_rggb(cfa: np.ndarray, weight: float = 1.0, rows: tuple[int, int] | None = None
                 ) -> np.ndarray:
    """``iri-lr`` then the CNN refinement, on an RGGB mosaic with even sizes (margin >= 68:
    iri-lr's 32 plus the network's reach of 2 x (``reach()`` + ``DETAIL // 2``) full-resolution
    pixels; isp.demosaic gives it 72). ``weight`` < 1 (noisy mosaics, isp.demosaic.
    learned_weight): iri-lr's correction and the network's each applied by that share.
    ``rows`` (lo, hi): the network runs on these rows only (``refine``), iri-lr's correction
    on those the network reads."""
    from oneinch.isp._demosaic_learned import iri_lr_rggb

    # the network reads the first pass 2 x (reach() + DETAIL // 2) px around its rows
    near = None if rows is None else 2 * (reach() + DETAIL // 2)
    first = iri_lr_rggb(cfa, weight, None if rows is None else (rows[0] - near, rows[1] + near))
    if weight <= 0.0:
        return first
    out = refine(first, rows=rows)
    if weight < 1.0:  # first + weight x (out - first), in place
        out -= first
        out *= np.float32(weight)
        out += first
    return np.ascontiguousarray(out, np.float32)

