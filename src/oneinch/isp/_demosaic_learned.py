"""Learned residual correction of the ``iri`` demosaic (``iri-lr``), RAISR-style.

The first pass is ``iri`` (``_demosaic_iri``) without its colour-difference refinement (the
learned stage replaces that step; the shipped model's ``refine`` = 0). Each pixel is then put in
a bucket by its CFA phase (R, Gr, Gb, B) and by the local structure of the first-pass green: the
angle, strength and coherence of the smoothed structure tensor, quantised as in RAISR (Romano,
Isidoro, Milanfar 2017, "RAISR: Rapid and Accurate Image Super Resolution", IEEE TCI, sec.
III-B, eqs. 8-10). For each bucket and each colour the pixel lacks, a linear filter over the PxP
x 3 patch of first-pass RGB (each channel taken relative to its value at the centre, so the
correction ignores a constant offset) predicts the residual truth - first pass; the filters are
the ridge-regularised least-squares fits of RAISR sec. III-A (cf. Wu, Timofte, Van Gool 2016,
"Demosaicing based on directional difference regression and efficient regression priors", IEEE
TIP, sec. III, who learn such per-cluster linear regressions of a demosaic's residual). Sampled
pixels keep their value.

Buckets: 4 phases x 12 angles x 4 strengths x 3 coherences x 3 levels of a local chroma ratio
(share of colour-difference detail, ``chroma_ratio``: separates scenes where the colours move
together from saturated ones, which want different corrections); 5x5 filters, float16 on disk.

Cascade (``stages``): a second set of filters of the same form runs on the first correction's
output, its buckets recomputed on that output (own thresholds ``s_thr2``, ``c_thr2``,
``k_thr2``), fitted to the residual the first stage leaves on the training images (a cascade of
regressors, Timofte, Rothe, Van Gool 2016, "Seven ways to improve example-based single image
super resolution", CVPR). The shipped model has one (``weights2``); a model without it runs
the first stage alone.

Weights: ``oneinch/data/demosaic_iri_lr.npz``, made by ``scripts/train_demosaic.py --cascade``
from images that are neither Kodak nor McMaster (candidates are screened against both by name
and content): the real camera mosaics of ../shared/data (GoPro HERO6, HERO7, Fusion; Blackmagic
Pocket 4K; the openISP, Nikon and Nokia headerless mosaics), each reduced 3x, 4x and 5x to RGB
without any demosaicing (every colour resampled from its own samples only, co-sited),
white-balanced and sRGB-encoded to 8 bits; plus 80 colour photographs that ship inside
packages: Debian packages (wallpapers: lomiri-wallpapers-16.04/-20.04, mate-backgrounds,
plasma-workspace-wallpapers, sddm-theme-maldives; sample and demo photos: kphotoalbum,
palapeli-data, digikam-data, qtdeclarative5-examples, hugin-data) and PyPI wheels
(scikit-image, matplotlib, scikit-learn, imgaug, mahotas, scipy), each area-downscaled to a
long edge of at most 1500 and 1000 px. Per-bucket ridge chosen by 2-fold cross-validation over
scenes; buckets where no ridge helps on held-out scenes get no correction. See that script for
the exact list and the measured fit. Measured on Kodak-24 / McMaster-18
(bench/quality_demosaic.py; ``iri``: 40.20 / 36.23 dB): 11 photographs, one stage, 40.37 /
36.59; 46 photographs, one stage, 40.94 / 37.24; 80 photographs, one stage, 41.05 / 37.27; the
same with the cascade, 41.09 / 37.32 dB (41.19 / 37.35 scored on the 8-bit output, as the
benchmark now does). Finer buckets (24 angles and/or 8 strengths) measured no better on either
set, also with 50 photographs. The shipped model is that recipe retrained on ``iri``'s R/B
from the minimized-Laplacian fit (session 17; the same 132 images, train mean 41.06 -> 41.98
-> 42.02 dB): 41.19 / 37.37 (8-bit); the guided-filter first pass retrained the same way, in
the same run, 41.18 / 37.35: the learned correction had already taken up most of what the
better first pass gives (``iri`` alone: +0.44 / +0.02 dB).

The filters were fitted on 8-bit display-referred images (the benchmark protocol treats them as
linear); on scene-linear data the bucket thresholds see darker values, which shifts pixels to
weaker-structure buckets (the correction stays a small, bounded linear term).
"""

from __future__ import annotations

import functools
from importlib import resources

import cv2
import numpy as np

from .. import _aot as aot
from .._jit import numba

PATCH = 5  # filter size (pixels); odd (7 measured no better, also with 50 photos)
# colours each CFA phase lacks: phase = 2 * (y % 2) + (x % 2) on RGGB
MISSING = np.array([[1, 2], [0, 2], [0, 2], [0, 1]], np.int64)
WEIGHTS_FILE = "demosaic_iri_lr.npz"


def structure_tensor(green: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(angle in [0, pi), sqrt of the largest eigenvalue, coherence in [0, 1]) per pixel.

    Gradients by central differences, tensor smoothed by a Gaussian of ``sigma`` (RAISR sec.
    III-B: angle of the dominant eigenvector, strength, coherence (sqrt l1 - sqrt l2) /
    (sqrt l1 + sqrt l2)).
    """
    g = np.ascontiguousarray(green, np.float32)
    k = np.array([[-0.5, 0.0, 0.5]], np.float32)
    gx = cv2.filter2D(g, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.filter2D(g, cv2.CV_32F, k.T, borderType=cv2.BORDER_REFLECT_101)
    ks = int(2 * round(2.5 * sigma) + 1)

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (ks, ks), sigma, borderType=cv2.BORDER_REFLECT_101)

    jxx, jxy, jyy = blur(gx * gx), blur(gx * gy), blur(gy * gy)
    tr = jxx + jyy
    disc = np.sqrt(np.maximum((jxx - jyy) ** 2 + 4 * jxy * jxy, 0))
    l1 = np.maximum(0.5 * (tr + disc), 0)
    l2 = np.maximum(0.5 * (tr - disc), 0)
    angle = 0.5 * np.arctan2(2 * jxy, jxx - jyy)  # gradient direction, (-pi/2, pi/2]
    angle = np.mod(angle, np.pi)
    s1, s2 = np.sqrt(l1), np.sqrt(l2)
    coh = (s1 - s2) / (s1 + s2 + 1e-9)
    return angle.astype(np.float32), s1.astype(np.float32), coh.astype(np.float32)


def chroma_ratio(first: np.ndarray, win: int = 7) -> np.ndarray:
    """Local share of colour-difference detail in [0, 1]: windowed |high-pass| of R - G and
    B - G over that plus windowed |high-pass| of G. Near 0 where the channels move together
    (the constant-colour-difference model holds), near 1 where they do not."""
    lap = np.array([[0, -0.25, 0], [-0.25, 1, -0.25], [0, -0.25, 0]], np.float32)

    def hp(a: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a, np.float32)
        return np.abs(cv2.filter2D(a, cv2.CV_32F, lap, borderType=cv2.BORDER_REFLECT_101))

    g = first[..., 1]
    num = hp(first[..., 0] - g) + hp(first[..., 2] - g)
    den = hp(g)
    num = cv2.blur(num, (win, win), borderType=cv2.BORDER_REFLECT_101)
    den = cv2.blur(den, (win, win), borderType=cv2.BORDER_REFLECT_101)
    return num / (num + den + 1e-6)


def bucket_map(first: np.ndarray, model: dict) -> np.ndarray:
    """int32 bucket per pixel of an RGGB-aligned first pass (H, W, 3):
    (((phase * NA + angle) * NS + strength) * NC + coherence) * NK + chroma."""
    n_angle = int(model["n_angle"])
    s_thr, c_thr, k_thr = model["s_thr"], model["c_thr"], model["k_thr"]
    h, w = first.shape[:2]
    ang, s, c = structure_tensor(first[..., 1], float(model["sigma"]))
    ai = np.minimum((ang * (n_angle / np.pi)).astype(np.int32), n_angle - 1)
    si = np.searchsorted(s_thr, s.ravel()).reshape(h, w).astype(np.int32)
    ci = np.searchsorted(c_thr, c.ravel()).reshape(h, w).astype(np.int32)
    ns, nc, nk = len(s_thr) + 1, len(c_thr) + 1, len(k_thr) + 1
    b = (ai * ns + si) * nc + ci
    if nk > 1:
        ki = np.searchsorted(k_thr, chroma_ratio(first).ravel()).reshape(h, w).astype(np.int32)
        b = b * nk + ki
    yy, xx = np.mgrid[0:h, 0:w]
    phase = (2 * (yy % 2) + (xx % 2)).astype(np.int32)
    return phase * (n_angle * ns * nc * nk) + b


def patch_features(first: np.ndarray, ys: np.ndarray, xs: np.ndarray, patch: int) -> np.ndarray:
    """(N, 3 * patch * patch) float32: the patch of ``first`` around each (y, x), each channel
    minus its centre value; ``first`` is padded by patch // 2 (coordinates are unpadded)."""
    win = np.lib.stride_tricks.sliding_window_view(first, (patch, patch), axis=(0, 1))
    f = win[ys, xs]  # (N, 3, P, P)
    r = patch // 2
    f = f - f[:, :, r : r + 1, r : r + 1]
    return np.ascontiguousarray(f.reshape(len(ys), -1), np.float32)


@functools.lru_cache(maxsize=1)
def load_model() -> dict:
    """The shipped filters and bucket thresholds (``oneinch/data/demosaic_iri_lr.npz``)."""
    ref = resources.files("oneinch") / "data" / WEIGHTS_FILE
    with resources.as_file(ref) as path, np.load(path) as z:
        return {k: z[k] for k in z.files}


@aot.entry
@numba.njit(parallel=True, cache=True, nogil=True)
def _apply_numba(fp, buckets, weights, out):
    """out = first pass + per-bucket linear correction at the missing colours (numba)."""
    h, w = buckets.shape
    p = weights.shape[3]
    r = p // 2
    for y in numba.prange(h):
        for x in range(w):
            ph = 2 * (y % 2) + (x % 2)
            b = buckets[y, x]
            acc0 = 0.0
            acc1 = 0.0
            for c in range(fp.shape[2]):
                cen = fp[y + r, x + r, c]
                for dy in range(p):
                    for dx in range(p):
                        v = fp[y + dy, x + dx, c] - cen
                        acc0 += weights[b, 0, c, dy, dx] * v
                        acc1 += weights[b, 1, c, dy, dx] * v
            for c in range(3):
                out[y, x, c] = fp[y + r, x + r, c]
            c0 = 1 if ph == 0 else 0
            c1 = 1 if ph == 3 else 2
            out[y, x, c0] += acc0
            out[y, x, c1] += acc1
    return out


def apply_correction(first: np.ndarray, model: dict) -> np.ndarray:
    """The learned correction of an RGGB-aligned first-pass image (H, W, 3) (numba)."""
    w = np.ascontiguousarray(model["weights"], np.float32)
    p = w.shape[3]
    buckets = bucket_map(first, model)
    r = p // 2
    fp = np.ascontiguousarray(np.pad(first, ((r, r), (r, r), (0, 0)), mode="reflect"))
    out = np.empty((*first.shape[:2], 3), np.float32)
    # a whole image's rows on two threads (aot.in_two): row y reads the padded rows y..y+2r
    # and its CFA phase from y's parity, so the halves split at an even row
    h = out.shape[0]
    mid = (h // 4) * 2
    halves = ((fp[: mid + 2 * r], buckets[:mid], w, out[:mid]),
              (fp[mid:], buckets[mid:], w, out[mid:]))
    if h < 64 or not aot.runs_alone(_apply_numba, *halves):
        return _apply_numba(fp, buckets, w, out)
    aot.in_two(lambda: _apply_numba(*halves[0]), lambda: _apply_numba(*halves[1]))
    return out


def apply_correction_reference(first: np.ndarray, model: dict) -> np.ndarray:
    """Plain-numpy form of ``apply_correction``."""
    w = np.asarray(model["weights"], np.float32)
    p = w.shape[3]
    h, wd = first.shape[:2]
    buckets = bucket_map(first, model)
    r = p // 2
    fp = np.pad(first, ((r, r), (r, r), (0, 0)), mode="reflect")
    ys, xs = np.mgrid[0:h, 0:wd]
    ys, xs = ys.ravel(), xs.ravel()
    feats = patch_features(fp, ys, xs, p).astype(np.float64)
    wf = w.reshape(w.shape[0], 2, -1).astype(np.float64)[buckets.ravel()]  # (N, 2, F)
    corr = np.einsum("nkf,nf->nk", wf, feats)
    out = first[..., :3].astype(np.float64).reshape(-1, 3).copy()
    phase = 2 * (ys % 2) + (xs % 2)
    idx = np.arange(len(ys))
    for k in range(2):
        out[idx, MISSING[phase, k]] += corr[:, k]
    return out.reshape(h, wd, 3).astype(np.float32)


def first_pass_rggb(cfa: np.ndarray, refine: bool = True, stack: bool = False) -> np.ndarray:
    """The ``iri`` first pass on an RGGB mosaic (margin >= 24), its samples put back.

    ``stack``: (H, W, 6), the full ``iri`` result and, behind it, the same without the
    colour-difference refinement (both come out of one run); the filters then see both.
    """
    parts = first_pass_parts(cfa, refine, stack)
    if len(parts) == 1:
        return parts[0]
    return np.ascontiguousarray(np.concatenate(parts, axis=-1), np.float32)


def first_pass_parts(cfa: np.ndarray, refine: bool = True, both: bool = False
                     ) -> list[np.ndarray]:
    """``first_pass_rggb`` as a list of (H, W, 3) arrays: the ``iri`` result, and with ``both``
    the full ``iri`` result and the same without the colour-difference refinement (both from
    one run; no 6-channel copy)."""
    from oneinch.isp import _demosaic_iri as iri

    c = np.ascontiguousarray(cfa, np.float32)
    if not both:
        parts = [iri.iri_rggb(c, refine=refine)]
    else:  # the body of iri_rggb, keeping both of its results
        g = iri.green_iri(c)
        tents: list = []
        r, b = iri.rb_iri(c, g, tents)
        base = np.stack([r, g, b], axis=-1)
        del r, b
        ref = np.stack(iri.refine_cd(c, base[..., 0], g, base[..., 2]), axis=-1)
        ref -= base
        ref *= iri.refine_weight(c, g, tents)[..., None]
        ref += base  # base + weight x (refined - base), in place
        parts = [ref, base]
    for first in parts:
        first[0::2, 0::2, 0] = c[0::2, 0::2]
        first[0::2, 1::2, 1] = c[0::2, 1::2]
        first[1::2, 0::2, 1] = c[1::2, 0::2]
        first[1::2, 1::2, 2] = c[1::2, 1::2]
    return parts


def first_pass(mosaic: np.ndarray, refine: bool = True, stack: bool = False) -> np.ndarray:
    """``first_pass_rggb`` of an RGGB mosaic of any size (mirror margin added and removed)."""
    from oneinch.isp.demosaic import _bayer_pad, _unpad
    from oneinch.raw.image import CFAPattern

    padded, crop = _bayer_pad(np.asarray(mosaic, np.float32), CFAPattern.bayer("RGGB"), 24)
    return _unpad(first_pass_rggb(padded, refine, stack), crop)


def stages(model: dict) -> list[dict]:
    """The correction stages of a model: the first, and the second of a cascade when the model
    carries one (``weights2`` with its own thresholds ``s_thr2``, ``c_thr2``, ``k_thr2``): its
    buckets are recomputed on the first stage's output and its filters, over that output,
    predict the residual the first stage left (a cascade of regressors as in Timofte, Rothe,
    Van Gool 2016, "Seven ways to improve example-based single image super resolution", CVPR,
    "cascade" way)."""
    out = [model]
    if "weights2" in model:
        keys = ("weights", "s_thr", "c_thr", "k_thr")
        out.append({**model, **{k: model[k + "2"] for k in keys}})
    return out


def stage_input(out: np.ndarray, first: np.ndarray, model: dict) -> np.ndarray:
    """What a later stage's filters see: the previous stage's output (H, W, 3), and behind it
    the first pass's RGB when the stage's filters have 6 channels."""
    if model["weights"].shape[2] == 3:
        return out
    return np.ascontiguousarray(np.concatenate([out, first[..., :3]], axis=-1), np.float32)


CASCADE_PAD = 8  # extra mirror margin (even: keeps the CFA parity) for the second stage's reach
# rows around demosaic(rows=) that the correction is run on: its two stages (5x5 filters,
# buckets from a Gaussian of sigma 1.2 and 7x7 windows) reach < 8 rows (McMaster 1, Kodak 5
# and 19: a slice with 8 rows more each side gives exactly the whole image's rows; with 4,
# up to 1.9e-2)
CORRECTION_REACH = 16


def iri_lr_rggb(cfa: np.ndarray, weight: float = 1.0, rows: tuple[int, int] | None = None
                ) -> np.ndarray:
    """``iri`` first pass + learned residual correction (each stage of it) on an RGGB mosaic
    (margin >= 30; a cascade pads ``CASCADE_PAD`` more itself). ``weight`` < 1 (noisy mosaics,
    isp.demosaic.learned_weight): that share of the corrected result, the rest ``iri``'s own
    (with its colour-difference refinement, which a model fitted without it, ``refine`` 0,
    leaves out of its first pass: on noisy mosaics the refinement is the better of the two,
    bench/quality_demosaic_domain.py --noisy); one run of ``iri`` makes both. ``rows`` (lo,
    hi): the correction runs on these rows (and ``CORRECTION_REACH`` around them) only; the
    others are the first pass."""
    model = load_model()
    stack = model["weights"].shape[2] == 6
    steps = stages(model)
    pad = CASCADE_PAD if len(steps) > 1 else 0
    c = np.pad(cfa, pad, mode="reflect") if pad else cfa
    refine = bool(model.get("refine", 1))
    if weight < 1.0 and not refine and not stack:  # (iri, its first pass) from one run
        plain, first = first_pass_parts(c, True, both=True)
    else:
        first = first_pass_rggb(c, refine, stack)
        plain = first[..., :3]
    lo, hi = 0, first.shape[0]
    if rows is not None:
        lo = max(0, rows[0] + pad - CORRECTION_REACH)
        hi = min(first.shape[0], rows[1] + pad + CORRECTION_REACH)
    if weight <= 0.0 or lo >= hi:
        out = plain
    else:
        part = first if (lo, hi) == (0, first.shape[0]) else np.ascontiguousarray(first[lo:hi])
        out = apply_correction(part, model)
        for m in steps[1:]:
            out = apply_correction(stage_input(out, part, m), m)
        if weight < 1.0:  # plain + weight x (out - plain), in place, on the corrected rows
            under = plain[lo:hi]
            out -= under
            out *= np.float32(weight)
            out += under
        if part is not first:  # the rows around: the first pass
            out, corrected = np.array(plain, np.float32), out
            out[lo:hi] = corrected
    return np.ascontiguousarray(out[pad : out.shape[0] - pad, pad : out.shape[1] - pad],
                                np.float32)
