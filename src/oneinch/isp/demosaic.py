"""Demosaicing: a CFA mosaic (H, W) -> linear RGB (H, W, 3), float32.

Input is linear (0 = black, 1 = white), already white-balanced; values above 1 and slightly
below 0 are kept (never clipped). Sampled pixels come back unchanged in their own channel.

Bayer methods (any phase; every method works internally on RGGB, reached by mirror padding):

- ``bilinear``: per-channel bilinear interpolation.
- ``malvar``: Malvar, He, Cutler 2004, "High-quality linear interpolation for demosaicing of
  Bayer-patterned color images" (ICASSP), gradient-corrected 5x5 linear filters (Fig. 2).
- ``rcd``: Ratio Corrected Demosaicing (L. Sanz Rodriguez, 2017), numba kernel.
- ``ri``: gradient-weighted directional green (Pekkucuksen & Glotzbach 2010, GBTF) followed by
  residual interpolation of R/B (Kiku, Monno, Tanaka, Okutomi 2013), its tentative plane
  fitted by minimizing the residual's Laplacian (MLRI, Kiku et al. 2014/2016).
- ``iri``: iterated directional residual interpolation of green (Kiku et al. 2013 RI along
  rows/columns, iterated as in Ye & Ma 2015, combined with GBTF weights) and green-guided
  residual interpolation of R/B (the MLRI fit) with an edge-directed residual fill
  (``_demosaic_iri``).
- ``iri-lr``: ``iri`` (without its colour-difference refinement) plus a learned, RAISR-style
  per-bucket linear correction of the missing colours (Romano et al. 2017; weights trained by
  scripts/train_demosaic.py on images that are neither Kodak nor McMaster,
  ``_demosaic_learned``).
- ``iri-cnn``: ``iri-lr`` refined by a small CNN on the 2x2-packed image (residual learning;
  Gharbi et al. 2016 packing, Tan et al. 2017 / Kim et al. 2016 residual; trained by
  scripts/train_demosaic_cnn.py on images that are neither Kodak nor McMaster, run through
  OpenCV's DNN module, ``_demosaic_cnn``). The best quality here and the slowest.
- ``auto``: the default, currently ``ri`` (see ``AUTO_METHOD``).

Other CFAs: X-Trans 6x6 (``CFAPattern.xtrans()``) and Quad-Bayer (``CFAPattern.quad_bayer()``,
``quad_mode='remosaic'`` or ``'bin'``).

``domain``: 'linear' interpolates the linear samples; 'srgb' (develop's default) interpolates
their odd-extended sRGB encoding and decodes the result (``_domain``: in linear light a constant
hue is a constant channel ratio, which the encoding makes a near-constant colour difference,
the model every colour-difference method assumes; 2-3.6 dB better displayed CPSNR on linear
mosaics, bench/quality_demosaic_domain.py). Sampled values come back exact either way.
"""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np

from oneinch.errors import InputError, OptionError
from oneinch.raw.image import CFAPattern, as_pattern
from oneinch.recipe import DEMOSAIC_METHODS, QUAD_MODES

METHODS: tuple[str, ...] = DEMOSAIC_METHODS  # (the recipe checks them without loading this)
DOMAINS: tuple[str, ...] = ("linear", "srgb")
AUTO_METHOD = "ri"

_BORDER = cv2.BORDER_REFLECT_101


def _filt(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.filter2D(img, cv2.CV_32F, np.asarray(kernel, np.float32), borderType=_BORDER)


# --------------------------------------------------------------------------------------------
# Bayer phase handling: every Bayer algorithm runs on an RGGB array with even size and a margin.


def _bayer_pad(mosaic: np.ndarray, pattern: CFAPattern, margin: int) -> tuple[np.ndarray, tuple]:
    """Mirror-pad (reflect-101 keeps the CFA parity) so that (0, 0) is R and sizes are even."""
    tile = pattern.array()
    ry, rx = (int(v[0]) for v in np.nonzero(tile == 0))
    h, w = mosaic.shape
    m = margin + (margin % 2)
    top, left = m + ry, m + rx
    bottom = m + (h + top + m) % 2
    right = m + (w + left + m) % 2
    padded = np.pad(mosaic, ((top, bottom), (left, right)), mode="reflect")
    return np.ascontiguousarray(padded, dtype=np.float32), (top, left, h, w)


def _unpad(rgb: np.ndarray, crop: tuple) -> np.ndarray:
    top, left, h, w = crop
    return np.ascontiguousarray(rgb[top : top + h, left : left + w])


def _rggb_masks(h: int, w: int) -> np.ndarray:
    """(3, H, W) float32 sampling masks of an RGGB mosaic with even H, W."""
    m = np.zeros((3, h, w), np.float32)
    m[0, 0::2, 0::2] = 1
    m[1, 0::2, 1::2] = 1
    m[1, 1::2, 0::2] = 1
    m[2, 1::2, 1::2] = 1
    return m


def _bilinear_rggb(cfa: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of each colour plane (normalised convolution on the grid)."""
    masks = _rggb_masks(*cfa.shape)
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
    out = np.empty((*cfa.shape, 3), np.float32)
    for c in range(3):
        out[..., c] = _filt(cfa * masks[c], k_g if c == 1 else k_rb)
    return out


# Malvar-He-Cutler 2004, Fig. 2 (coefficients x 8).
_MHC_G_AT_RB = (
    np.array(
        [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]],
        np.float32,
    )
    / 8
)
_MHC_ROW = (
    np.array(  # R at G in an R row (R neighbours left/right)
        [
            [0, 0, 0.5, 0, 0],
            [0, -1, 0, -1, 0],
            [-1, 4, 5, 4, -1],
            [0, -1, 0, -1, 0],
            [0, 0, 0.5, 0, 0],
        ],
        np.float32,
    )
    / 8
)
_MHC_COL = np.ascontiguousarray(_MHC_ROW.T)
_MHC_DIAG = (
    np.array(
        [
            [0, 0, -1.5, 0, 0],
            [0, 2, 0, 2, 0],
            [-1.5, 0, 6, 0, -1.5],
            [0, 2, 0, 2, 0],
            [0, 0, -1.5, 0, 0],
        ],
        np.float32,
    )
    / 8
)


def _malvar_rggb(cfa: np.ndarray) -> np.ndarray:
    """Malvar, He, Cutler 2004: bilinear plus a scaled Laplacian of the sampled colour."""
    g_rb = _filt(cfa, _MHC_G_AT_RB)
    f_row = _filt(cfa, _MHC_ROW)
    f_col = _filt(cfa, _MHC_COL)
    f_diag = _filt(cfa, _MHC_DIAG)
    out = np.empty((*cfa.shape, 3), np.float32)
    r, g, b = out[..., 0], out[..., 1], out[..., 2]
    # R sites (even, even)
    r[0::2, 0::2] = cfa[0::2, 0::2]
    g[0::2, 0::2] = g_rb[0::2, 0::2]
    b[0::2, 0::2] = f_diag[0::2, 0::2]
    # G in R rows (even, odd): R left/right, B up/down
    r[0::2, 1::2] = f_row[0::2, 1::2]
    g[0::2, 1::2] = cfa[0::2, 1::2]
    b[0::2, 1::2] = f_col[0::2, 1::2]
    # G in B rows (odd, even): B left/right, R up/down
    r[1::2, 0::2] = f_col[1::2, 0::2]
    g[1::2, 0::2] = cfa[1::2, 0::2]
    b[1::2, 0::2] = f_row[1::2, 0::2]
    # B sites (odd, odd)
    r[1::2, 1::2] = f_diag[1::2, 1::2]
    g[1::2, 1::2] = g_rb[1::2, 1::2]
    b[1::2, 1::2] = cfa[1::2, 1::2]
    return out


def _rcd_rggb(cfa: np.ndarray) -> np.ndarray:
    from oneinch.isp._demosaic_rcd import rcd_rggb

    return rcd_rggb(cfa)


def _ri_rggb(cfa: np.ndarray) -> np.ndarray:
    from oneinch.isp._demosaic_ri import ri_rggb

    return ri_rggb(cfa)


def _iri_rggb(cfa: np.ndarray) -> np.ndarray:
    from oneinch.isp._demosaic_iri import iri_rggb

    return iri_rggb(cfa)


def _iri_lr_rggb(cfa: np.ndarray, weight: float = 1.0, rows: tuple[int, int] | None = None
                 ) -> np.ndarray:
    from oneinch.isp._demosaic_learned import iri_lr_rggb

    return iri_lr_rggb(cfa, weight, rows)


def _iri_cnn_rggb(cfa: np.ndarray, weight: float = 1.0, rows: tuple[int, int] | None = None
                  ) -> np.ndarray:
    from oneinch.isp._demosaic_cnn import iri_cnn_rggb

    return iri_cnn_rggb(cfa, weight, rows)


# The learned corrections (iri-lr's filters, iri-cnn's network) were fitted on noise-free
# images; on a noisy mosaic they cost more than they give (bench/quality_demosaic_domain.py
# --noisy, ISO 3200: iri-lr 27.49 dB, iri 28.65). develop blends them with iri itself by a
# weight w of isp.denoise.noise_level n (the synthetic sensor: 0.024 at ISO 100, 0.034 at 200,
# 0.048 at 400, 0.068 at 800, 0.098 at 1600, 0.143 at 3200, 0.33 at 12800):
# w = a / (1 + (n / n0)^2), in steps of 0.05, none below LEARNED_MIN (denoise models the noise
# of the weighted method: isp.denoise._cfa_of). The correction's gain is about the same at any
# noise and its cost grows with the noise's variance: a Wiener-style blend of two estimates.
# a and n0 per demosaic domain (LEARNED_BLEND), fitted by scripts/fit_learned_weight.py on 12
# images of iri-lr's training set (384 px crops; not Kodak or McMaster), the best of w = 0,
# 0.25, 0.5, 0.75, 1:
# - srgb (develop's 'auto' below noise 0.16), iri-lr / iri-cnn: ISO 100 0.5-0.75 / 0.5, 200
#   0.5 / 0.5, 400 0.25 / 0.25-0.5, 800 0.25 / 0.25, 1600 0.25 / 0.25 (both within 0.04 dB of
#   0); noise-free (the 8-bit protocol) 0.9 / 0.75-0.9, +0.01 / +0.04 dB over 1 (noise-free
#   stays 1): a = 1, n0 = 0.034;
# - linear, iri-lr: 0.5 from ISO 100 to 1600, 0.25 at 3200, 0 at 12800 (iri is weaker in
#   linear light, so the correction keeps a larger share): a = 0.55, n0 = 0.15.
# The linear ramp before (1 up to n = 0.03, 0 from 0.13, in both domains) gave 0.1-0.3 dB
# less at ISO 100-800 (srgb) and 100-400 (linear).
LEARNED = ("iri-lr", "iri-cnn")
RESTRICTABLE = ("iri-lr", "iri-cnn")  # methods that skip work outside demosaic(rows=)
LEARNED_BLEND = {"srgb": (1.0, 0.034), "linear": (0.55, 0.15)}  # domain -> (a, n0)
LEARNED_MIN = 0.1  # below this weight, none: the correction's cost for little effect


def learned_weight(noise: float | None, domain: str = "srgb") -> float:
    """Weight of the learned corrections at relative noise ``noise`` (None: noise-free) for a
    demosaic in ``domain``."""
    if noise is None or not noise > 0.0:
        return 1.0
    a, n0 = LEARNED_BLEND[domain]
    w = round(20.0 * a / (1.0 + (noise / n0) ** 2)) / 20.0
    return w if w >= LEARNED_MIN else 0.0


def _kernel(name: str, weight: float, rows: tuple[int, int] | None = None):
    """The RGGB kernel of ``name`` with its options: ``weight`` (the learned methods) and
    ``rows`` (the padded mosaic's rows that must be exact: iri-lr's correction and iri-cnn's
    network run on them only)."""
    fn = _BAYER[name][0]
    kw: dict = {}
    if name in LEARNED and weight < 1.0:
        kw["weight"] = weight
    if name in RESTRICTABLE and rows is not None:
        kw["rows"] = rows
    return partial(fn, **kw) if kw else fn


def _padded_rows(rows: tuple[int, int] | None, crop: tuple) -> tuple[int, int] | None:
    return None if rows is None else (rows[0] + crop[0], rows[1] + crop[0])


_BAYER = {  # name -> (RGGB kernel, margin it needs)
    "bilinear": (_bilinear_rggb, 2),
    "malvar": (_malvar_rggb, 4),
    "rcd": (_rcd_rggb, 12),
    "ri": (_ri_rggb, 18),
    "iri": (_iri_rggb, 24),
    "iri-lr": (_iri_lr_rggb, 32),
    "iri-cnn": (_iri_cnn_rggb, 72),
}


# Rows of mosaic on each side of an output row that a strip must be given so that its rows
# equal the whole image's, for the methods whose influence reaches past their mirror margin.
# iri's 4 feedback iterations of 1-D guided filters (window 23, its coefficients averaged over
# another 23) and its refinement reach ~100 px, with weights that decay fast; measured on
# 600-row crops of the GoPro HERO6 / HERO7 and Blackmagic raws (3 places each) and of 3 Kodak
# and 3 McMaster mosaics (at full scale and at 5 %): 40 rows demosaiced with M rows of context
# on each side against the same rows of the whole crop, worst difference over the crop's
# largest value: iri M = 64: 3.6e-5, 80: 4.4e-6, 96: 1.0e-6, 112: 3.3e-7; iri-lr (iri without
# the refinement, then 5x5 filters) M = 64: 1.1e-3 (a bucket that flips on a 1e-6 change),
# 80: 1.4e-7, 96: 1.1e-7 (below full weight, part iri: McMaster 1, 10, 11 at weight 0.5 and
# 0, M = 64: 5.2e-5, 80: 4.1e-6, 88: 4.8e-7); iri-cnn (iri-lr, then the network's 2 x (16 + 2)
# px) M = 96-160: 1-5e-7, the float rounding of OpenCV's DNN on differently shaped inputs.
_STRIP_CONTEXT = {"iri": 96, "iri-lr": 88, "iri-cnn": 128}


def context(method: str) -> int | None:
    """Pixels of mosaic a Bayer ``method`` is given on each side as a mirror margin at the
    image's border, or None for a name that is not a Bayer method."""
    entry = _BAYER.get(method)
    return None if entry is None else entry[1]


def strip_context(method: str) -> int | None:
    """Rows of mosaic a strip of a Bayer ``method`` needs on each side for its rows to equal
    the whole-image result (to ~1e-6 of white; exactly, for the methods whose reach is their
    margin), or None for a name that is not a Bayer method."""
    margin = context(method)
    return None if margin is None else max(margin, _STRIP_CONTEXT.get(method, 0))


def _demosaic_bayer(mosaic: np.ndarray, pattern: CFAPattern, method: str,
                    weight: float = 1.0, rows: tuple[int, int] | None = None) -> np.ndarray:
    margin = _BAYER[method][1]
    if method == "rcd":  # any phase, borders mirrored by index: no padded copy
        from oneinch.isp._demosaic_rcd import rcd_bayer

        ry, rx = (int(v[0]) for v in np.nonzero(pattern.array() == 0))
        return rcd_bayer(mosaic, (ry, rx))
    padded, crop = _bayer_pad(mosaic, pattern, margin)
    rgb = _kernel(method, weight, _padded_rows(rows, crop))(padded)
    return _unpad(rgb, crop)


def _restore_samples(rgb: np.ndarray, mosaic: np.ndarray, pattern: CFAPattern) -> np.ndarray:
    """Put every sampled value back, bit-exact, in its own channel."""
    ph, pw = pattern.shape
    if ph * pw <= 4:  # Bayer: strided views, no masks
        for (y, x), c in np.ndenumerate(pattern.array()):
            rgb[y::ph, x::pw, c] = mosaic[y::ph, x::pw]
        return rgb
    masks = pattern.masks(*mosaic.shape)
    for c in range(3):
        rgb[..., c][masks[c]] = mosaic[masks[c]]
    return rgb


# --------------------------------------------------------------------------------------------
# Quad-Bayer


def _quad_remosaic(mosaic: np.ndarray, pattern: CFAPattern) -> tuple[np.ndarray, CFAPattern]:
    """Quad-Bayer -> Bayer of the same size (remosaic).

    Where the Bayer target colour equals the Quad sample's colour the sample is kept (1/4 of
    R and B, 1/2 of G sites); elsewhere the target colour is interpolated from the Quad mosaic
    by the directional, colour-difference interpolator of ``_demosaic_xtrans`` (which works on
    any periodic CFA). Returns the Bayer mosaic and its pattern.
    """
    from oneinch.isp._demosaic_xtrans import xtrans_demosaic

    q = pattern.array()
    bayer = CFAPattern(((int(q[0, 0]), int(q[0, 2])), (int(q[2, 0]), int(q[2, 2]))), "bayer")
    h, w = mosaic.shape
    full = xtrans_demosaic(mosaic, pattern)
    want = bayer.masks(h, w)
    out = np.where(want[0], full[..., 0], np.where(want[1], full[..., 1], full[..., 2]))
    return np.ascontiguousarray(out, np.float32), bayer


def _quad_bin(mosaic: np.ndarray, pattern: CFAPattern) -> tuple[np.ndarray, CFAPattern]:
    """2x2 binning of Quad-Bayer same-colour blocks -> half-size Bayer mosaic (odd edge dropped)."""
    q = pattern.array()
    bayer = CFAPattern(((int(q[0, 0]), int(q[0, 2])), (int(q[2, 0]), int(q[2, 2]))), "bayer")
    h, w = (mosaic.shape[0] // 2) * 2, (mosaic.shape[1] // 2) * 2
    m = mosaic[:h, :w]
    binned = 0.25 * (m[0::2, 0::2] + m[0::2, 1::2] + m[1::2, 0::2] + m[1::2, 1::2])
    return np.ascontiguousarray(binned, np.float32), bayer


# --------------------------------------------------------------------------------------------


def demosaic(
    mosaic: np.ndarray,
    pattern: CFAPattern | str,
    method: str = "auto",
    quad_mode: str = "remosaic",
    domain: str = "linear",
    weight: float = 1.0,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """Demosaic a linear CFA mosaic into float32 RGB (H, W, 3), C-contiguous.

    ``pattern`` is a CFAPattern or a Bayer name. ``method`` is one of ``METHODS`` (Bayer
    methods; X-Trans uses its own directional method whatever the name). For Quad-Bayer,
    ``quad_mode='remosaic'`` keeps the size, ``'bin'`` returns a half-size image.
    ``domain``: 'linear' or 'srgb' (interpolate the encoded samples; see the module notes).
    ``weight`` (0..1): the share of iri-lr's and iri-cnn's learned corrections applied
    (:func:`learned_weight` of the noise); other methods ignore it. ``rows`` (lo, hi): only
    these output rows must be exact (a strip's rows that its later stages read; the rest is
    context); iri-lr then runs its correction and iri-cnn its network on them (and their
    reach) only, and leave the stage before in the others (``RESTRICTABLE``); other methods
    ignore it.
    """
    if method not in METHODS:
        raise OptionError(f"unknown demosaic method {method!r}; valid: {', '.join(METHODS)}")
    if quad_mode not in QUAD_MODES:
        raise OptionError(f"unknown quad_mode {quad_mode!r}; valid: {', '.join(QUAD_MODES)}")
    if domain not in DOMAINS:
        raise OptionError(f"unknown demosaic domain {domain!r}; valid: {', '.join(DOMAINS)}")
    try:
        pat = as_pattern(pattern)
    except ValueError as err:
        raise OptionError(str(err)) from None
    arr = np.asarray(mosaic)
    if arr.ndim != 2:
        raise InputError(f"demosaic needs a 2-D mosaic, got shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputError(f"mosaic too small to demosaic: {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    name = AUTO_METHOD if method == "auto" else method

    if domain == "srgb":
        from oneinch.isp import _domain

        if pat.kind == "quad" and quad_mode == "bin":  # bin the linear samples, then demosaic
            binned, bayer = _quad_bin(arr, pat)
            return demosaic(binned, bayer, method, domain=domain, weight=weight)
        if pat.kind == "bayer" and name != "rcd":  # a padded method: encoded in place in the
            # padded copy, then decode, crop, restore: one pass
            padded, crop = _bayer_pad(arr, pat, _BAYER[name][1])
            fn = _kernel(name, weight, _padded_rows(rows, crop))
            rgb = fn(_domain.encode(padded, out=padded))
            return _domain.decode_crop_restore(rgb, arr, crop, pat.array())
        # (the encoded samples are not put back: the linear ones are, after decoding)
        rgb = _demosaic_linear(_domain.encode(arr), pat, name, quad_mode, restore=False,
                               weight=weight)
        return _restore_samples(_domain.decode(rgb, out=rgb), arr, pat)
    return _demosaic_linear(arr, pat, name, quad_mode, weight=weight, rows=rows)


def _demosaic_linear(arr: np.ndarray, pat: CFAPattern, name: str, quad_mode: str,
                     restore: bool = True, weight: float = 1.0,
                     rows: tuple[int, int] | None = None) -> np.ndarray:
    """demosaic() of a C-contiguous float32 mosaic, options checked, in the linear domain;
    ``restore=False``: the samples are not put back (a caller that puts others back)."""
    if pat.kind == "quad":
        if quad_mode == "bin":
            binned, bayer = _quad_bin(arr, pat)
            return _demosaic_linear(binned, bayer, name, quad_mode, restore, weight)
        bayer_mosaic, bayer = _quad_remosaic(arr, pat)
        # the Quad samples the Bayer target moved (R/B: 3 of 4, G: half) go back as well
        rgb = _demosaic_linear(bayer_mosaic, bayer, name, quad_mode, weight=weight)
        return _restore_samples(rgb, arr, pat) if restore else rgb
    if pat.kind == "xtrans":
        from oneinch.isp._demosaic_xtrans import xtrans_demosaic

        rgb = xtrans_demosaic(arr, pat)
    elif pat.kind == "bayer":
        rgb = _demosaic_bayer(arr, pat, name, weight, rows)
    else:
        from oneinch.isp._demosaic_xtrans import generic_bilinear

        rgb = generic_bilinear(arr, pat)
    rgb = np.ascontiguousarray(rgb, np.float32)
    if not restore or (pat.kind == "bayer" and name == "rcd"):
        return rgb  # (the RCD kernel writes every sample unchanged already: tested)
    return _restore_samples(rgb, arr, pat)
