"""Denoise quality table: synthetic raws of Kodak-24 + McMaster-18 at ISO 100/800/3200/12800.

Ground truth (oneinch.synthetic.unprocess, Brooks et al. 2019): each 8-bit sRGB image is
unprocessed into a 14-bit RGGB raw with shot + read noise of the given ISO (variance S*x + O,
``noise_profile_for_iso``), and once without noise (the clean twin, same scene, same chain).

Fairness: every method is scored against the *clean twin developed by the same pipeline*, so
demosaicing differences cancel and only the denoising is measured:

- oneinch chain: levels -> WB gains -> demosaic ('auto') -> denoise -> camera->linear sRGB (the
  exact inverse of the synthetic colour transform). 'noisy' is the same chain without denoise.
- rawpy (LibRaw): the raw written as a DNG, ``postprocess`` with output sRGB, linear gamma
  (1, 1), no auto-bright, user_wb = 1/AsShotNeutral, 16-bit, AHD; once on the clean DNG
  (reference), once on the noisy one with FBDD (Full) + 3 median passes, once with the wavelet
  denoiser ``noise_thr`` (best of a few thresholds per ISO, chosen on the whole set: an oracle
  in rawpy's favour).
- bm3d (PyPI ``bm3d``, Makinen, Azzari, Foi 2020) on the oneinch chain in the same VST/opponent
  space as oneinch (``BM3DProfile`` default, sigma from the noise model): a strong reference.

Scores: every output is multiplied by 2^headroom (BaselineExposure), clipped to [0, 1] and
sRGB-encoded (as displayed); PSNR (peak 1) and SSIM (Wang et al. 2004, Gaussian 11x11,
sigma 1.5, mean over R, G, B) with a 10-px border dropped.

    .venv/bin/python bench/quality_denoise.py [--quick] [--no-rawpy] [--bm3d N]
    .venv/bin/python bench/quality_denoise.py --speed     # ms/MP per tier at 12 MP
    .venv/bin/python bench/quality_denoise.py --floor     # auto's floor: gains at low ISO
    .venv/bin/python bench/quality_denoise.py --binned    # binned previews (white noise)
    .venv/bin/python bench/quality_denoise.py --linear    # LinearRaw's noise model
    .venv/bin/python bench/quality_denoise.py --estimate [--quick]  # no NoiseProfile
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from oneinch import synthetic
from oneinch.isp import levels, spaces
from oneinch.isp.demosaic import demosaic
from oneinch.isp.denoise import denoise
from oneinch.recipe import Denoise

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/benchmarks")

ISOS = (100, 800, 3200, 12800)
BORDER = 10


def load_set(name: str, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """[(file name, uint8 RGB)] for 'kodak24' or 'mcmaster18'."""
    files = sorted((DATA / name).glob("*.png")) + sorted((DATA / name).glob("*.tif"))
    files.sort(key=lambda p: (len(p.stem), p.stem))
    out = []
    for f in files[:limit]:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        out.append((f.name, np.ascontiguousarray(bgr[..., ::-1])))
    return out


# ---------------------------------------------------------------------------------------------
# oneinch chain


def wb_gains(raw) -> np.ndarray:
    return 1.0 / np.asarray(raw.color.as_shot_neutral, np.float64)


def to_camera_wb(raw) -> np.ndarray:
    """levels -> WB gains -> demosaic: white-balanced camera RGB (what denoise receives)."""
    x = levels.normalize(raw.data, raw.levels)
    g = wb_gains(raw).astype(np.float32)
    masks = raw.cfa.masks(*x.shape)
    x = x * sum(g[c] * masks[c] for c in range(3)).astype(np.float32)
    return demosaic(np.ascontiguousarray(x, np.float32), raw.cfa, "auto")


def profile_wb(raw) -> np.ndarray | None:
    """DNG NoiseProfile scaled for the WB gains, as develop() does: (3, 2) [g*S, g^2*O]."""
    if raw.noise_profile is None:
        return None
    p = np.repeat(np.asarray(raw.noise_profile, np.float64).reshape(-1, 2)[:1], 3, axis=0)
    g = wb_gains(raw)
    return np.stack([g * p[:, 0], g * g * p[:, 1]], axis=1)


def srgb_from_camera_wb(raw) -> np.ndarray:
    """3x3: white-balanced camera RGB -> linear sRGB (exact inverse of the synthetic forward)."""
    cm = np.asarray(raw.color.color_matrix1, np.float64)
    cam_from_lin = cm @ spaces.rgb_to_xyz_native(spaces.SPACES["srgb"])
    wb_from_lin = np.diag(wb_gains(raw)) @ cam_from_lin
    return np.linalg.inv(wb_from_lin)


def display(lin_srgb: np.ndarray, headroom_ev: float) -> np.ndarray:
    """Linear sRGB at sensor exposure -> displayed sRGB in [0, 1] (BaselineExposure applied)."""
    x = np.clip(lin_srgb * np.float32(2.0**headroom_ev), 0.0, 1.0)
    return spaces.encode(x.astype(np.float32), "srgb")


def cam_to_display(cam: np.ndarray, m: np.ndarray, headroom_ev: float = 1.0) -> np.ndarray:
    lin = (cam.reshape(-1, 3) @ m.T.astype(np.float32)).reshape(cam.shape)
    return display(lin, headroom_ev)


# ---------------------------------------------------------------------------------------------
# metrics


def psnr(ref: np.ndarray, out: np.ndarray, border: int = BORDER) -> float:
    return synthetic.psnr(ref, out, 1.0, border)


def ssim(ref: np.ndarray, out: np.ndarray, border: int = BORDER) -> float:
    """Mean SSIM over channels (Wang, Bovik, Sheikh, Simoncelli 2004, eq. 13; K1 .01, K2 .03)."""
    b = border
    a = np.asarray(ref, np.float64)[b:-b, b:-b]
    c = np.asarray(out, np.float64)[b:-b, b:-b]
    c1, c2 = 0.01**2, 0.03**2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    vals = []
    for ch in range(a.shape[2]):
        x, y = np.ascontiguousarray(a[..., ch]), np.ascontiguousarray(c[..., ch])
        mx, my = blur(x), blur(y)
        sxx = blur(x * x) - mx * mx
        syy = blur(y * y) - my * my
        sxy = blur(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(float(m[7:-7, 7:-7].mean()))
    return float(np.mean(vals))


# ---------------------------------------------------------------------------------------------
# cases


def make_case(srgb: np.ndarray, iso: float, seed: int = 0) -> dict:
    """Noisy + clean raws of one scene, both through the oneinch chain up to denoise."""
    raw_n, truth = synthetic.unprocess(srgb, iso=iso, seed=seed)
    raw_c, _ = synthetic.unprocess(srgb)
    m = srgb_from_camera_wb(raw_c)
    return {
        "raw_noisy": raw_n, "raw_clean": raw_c, "m": m, "headroom": truth.headroom_ev,
        "cam_noisy": to_camera_wb(raw_n), "cam_clean": to_camera_wb(raw_c),
        "profile": profile_wb(raw_n), "iso": iso,
    }


def score_cam(case: dict, cam: np.ndarray) -> tuple[float, float]:
    ref = cam_to_display(case["cam_clean"], case["m"], case["headroom"])
    out = cam_to_display(cam, case["m"], case["headroom"])
    return psnr(ref, out), ssim(ref, out)


def oneinch_denoise(case: dict, settings: Denoise | None = None, **kw) -> np.ndarray:
    return denoise(case["cam_noisy"], settings or Denoise(), case["profile"], case["iso"], **kw)


def bm3d_denoise(case: dict) -> np.ndarray:
    """bm3d package on the same GAT + opponent representation oneinch uses (fair: same model)."""
    import bm3d

    from oneinch.isp import denoise as dn

    prof = case["profile"]
    alpha, sigma2 = float(prof[:, 0].mean()), float(prof[:, 1].mean())
    xm = 0.18
    rel = (prof[:, 0] * xm + prof[:, 1]) / (alpha * xm + sigma2)
    sig = np.sqrt((dn.OPPONENT**2) @ rel) * dn.LUMA_SIGMA_FACTOR
    y = dn.gat_forward(case["cam_noisy"], alpha, sigma2)
    o = y @ dn.OPPONENT.T.astype(np.float32)
    out = np.stack([bm3d.bm3d(o[..., c], float(sig[c])) for c in range(3)], axis=-1)
    return dn.gat_inverse((out @ dn.OPPONENT.astype(np.float32)).astype(np.float32), alpha, sigma2)


# ---------------------------------------------------------------------------------------------
# rawpy peers


def _rawpy_run(path: Path, raw, **kw) -> np.ndarray:
    import rawpy

    neutral = np.asarray(raw.color.as_shot_neutral, np.float64)
    g = (1.0 / neutral) / (1.0 / neutral).min()
    with rawpy.imread(str(path)) as r:
        out = r.postprocess(
            output_color=rawpy.ColorSpace.sRGB, gamma=(1, 1), no_auto_bright=True,
            user_wb=[float(g[0]), float(g[1]), float(g[2]), float(g[1])], output_bps=16,
            demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, **kw,
        )
    return out.astype(np.float32) / 65535.0


_CHILD = """
import sys, json, numpy as np, rawpy
path, out, g, kw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
with rawpy.imread(path) as r:
    img = r.postprocess(output_color=rawpy.ColorSpace.sRGB, gamma=(1, 1), no_auto_bright=True,
                        user_wb=[g[0], g[1], g[2], g[1]], output_bps=16,
                        demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, **kw)
np.save(out, img.astype(np.float32) / 65535.0)
"""


def _isolated_rawpy(path: Path, raw, out: Path, **kw) -> np.ndarray | None:
    """Run rawpy in a child process: LibRaw's wavelet denoise (noise_thr) corrupts the heap and
    aborts with rawpy 0.28 on every DNG we tried (also real camera DNGs); None when it dies."""
    import json
    import subprocess

    neutral = np.asarray(raw.color.as_shot_neutral, np.float64)
    g = (1.0 / neutral) / (1.0 / neutral).min()
    if out.exists():
        out.unlink()
    try:  # the wavelet path can also hang in LibRaw after corrupting its heap: bound it
        res = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(out),
                              json.dumps([float(v) for v in g]), json.dumps(kw)],
                             capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    if res.returncode != 0 or not out.exists():
        return None
    return np.load(out)


def rawpy_case(case: dict, tmp: Path, thresholds: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Display-space outputs of rawpy: clean reference, FBDD, wavelet per threshold."""
    import rawpy

    from oneinch.raw.dng import write_dng

    pc, pn = tmp / "clean.dng", tmp / "noisy.dng"
    write_dng(pc, case["raw_clean"])
    write_dng(pn, case["raw_noisy"])
    clean = _rawpy_run(pc, case["raw_clean"])
    # One exposure scale for all rawpy outputs: the clean rawpy image fitted to the oneinch
    # clean image (least squares) so both pipelines are scored at the same brightness.
    ref_lin = (case["cam_clean"].reshape(-1, 3) @ case["m"].T).reshape(case["cam_clean"].shape)
    k = float(np.sum(ref_lin * clean) / max(np.sum(clean * clean), 1e-12))
    outs = {"clean": clean * k}
    outs["fbdd"] = k * _rawpy_run(pn, case["raw_noisy"],
                                  fbdd_noise_reduction=rawpy.FBDDNoiseReductionMode.Full,
                                  median_filter_passes=3)
    outs["fbdd0"] = k * _rawpy_run(pn, case["raw_noisy"],
                                   fbdd_noise_reduction=rawpy.FBDDNoiseReductionMode.Full)
    for t in thresholds:
        w = _isolated_rawpy(pn, case["raw_noisy"], tmp / "wave.npy", noise_thr=float(t))
        if w is not None:
            outs[f"wavelet{t:g}"] = k * w
    return {name: display(v, case["headroom"]) for name, v in outs.items()}


WAVELET_THR = {100: (50, 150, 500), 800: (150, 500, 1500), 3200: (500, 1500, 4000),
               12800: (1500, 4000, 10000)}


# ---------------------------------------------------------------------------------------------


def denoise_table(quick: bool = False, use_rawpy: bool = True, bm3d_n: int = 3,
                  crop: int | None = None, file=None) -> dict:
    """Run the comparison, print the table, return {iso: {method: (psnr, ssim)}}."""
    out = file or sys.stdout
    images = load_set("kodak24", 2 if quick else None) + load_set("mcmaster18", 1 if quick else None)
    if crop:
        images = [(n, np.ascontiguousarray(im[:crop, :crop])) for n, im in images]
    have_bm3d = False
    if bm3d_n:
        try:
            import bm3d  # noqa: F401

            have_bm3d = True
        except ImportError:
            pass
    results: dict = {}
    times: dict[str, list[float]] = {"oneinch": [], "bm3d": []}
    tiers = ("light", "medium", "full")
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for iso in ISOS:
            acc: dict[str, list[tuple[float, float]]] = {}
            sub: dict[str, list[tuple[float, float]]] = {}
            for i, (_name, im) in enumerate(images):
                case = make_case(im, iso, seed=i)
                add = acc.setdefault
                add("noisy", []).append(score_cam(case, case["cam_noisy"]))
                t0 = time.perf_counter()
                den = oneinch_denoise(case)
                times["oneinch"].append((time.perf_counter() - t0) / (im.shape[0] * im.shape[1] / 1e6))
                add("oneinch", []).append(score_cam(case, den))
                for tier in tiers:  # every tier, whatever 'auto' picks at this ISO
                    add(f"oneinch tier={tier}", []).append(
                        score_cam(case, oneinch_denoise(case, tier=tier)))
                if have_bm3d and i < bm3d_n:
                    t0 = time.perf_counter()
                    b = bm3d_denoise(case)
                    times["bm3d"].append((time.perf_counter() - t0) / (im.shape[0] * im.shape[1] / 1e6))
                    sub.setdefault("bm3d", []).append(score_cam(case, b))
                    sub.setdefault("oneinch", []).append(acc["oneinch"][-1])
                if use_rawpy:
                    rp = rawpy_case(case, tmp, WAVELET_THR[iso])
                    ref = rp.pop("clean")
                    for k, v in rp.items():
                        add("rawpy " + k, []).append((psnr(ref, v), ssim(ref, v)))
            means = {k: tuple(np.mean(np.array(v), axis=0)) for k, v in acc.items()}
            wave = [k for k in means if k.startswith("rawpy wavelet")]
            if wave:
                best = max(wave, key=lambda k: means[k][0])
                means["rawpy wavelet (best thr)"] = means[best]
                means["rawpy wavelet (best thr)"] = (*means[best], best.split("wavelet")[1])
                for k in wave:
                    means.pop(k)
            for k, v in sub.items():
                means[f"[{len(v)} img] {k}"] = tuple(np.mean(np.array(v), axis=0))
            results[iso] = means
            from oneinch.isp.denoise import choose_tier

            means["auto picks"] = choose_tier(Denoise(), case["profile"]).name
    _print(results, images, times, out)
    return results


def _print(results: dict, images: list, times: dict, out) -> None:
    print(f"\nDenoise: {len(images)} images (Kodak-24 + McMaster-18), PSNR dB / SSIM vs the clean "
          "twin through the same pipeline, displayed sRGB", file=out)
    methods: list[str] = []
    for r in results.values():
        for k in r:
            if k not in methods:
                methods.append(k)
    print(f"{'method':32s}" + "".join(f"{'ISO ' + str(i):>18s}" for i in results), file=out)
    for m in methods:
        row = f"{m:32s}"
        for iso in results:
            v = results[iso].get(m)
            if isinstance(v, str):
                row += f"{v:>18s}"
            elif v is None:
                row += f"{'-':>18s}"
            else:
                extra = f" t{v[2]}" if len(v) > 2 else ""
                row += f"{v[0]:8.2f} / {v[1]:.4f}{extra}".rjust(18)
        print(row, file=out)
    for k, v in times.items():
        if v:
            print(f"time {k}: {np.median(v) * 1000:.0f} ms/MP (median over images)", file=out)


def speed_table(mp: float = 12.0, repeats: int = 3, file=None) -> dict[str, float]:
    """ms/MP of each tier on a synthetic ISO 800 image of ``mp`` megapixels (min of repeats)."""
    from oneinch.isp import denoise as dn

    out = file or sys.stdout
    h = round(math.sqrt(mp * 1e6 * 3 / 4))
    w = round(h * 4 / 3)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = (0.15 + 0.1 * np.sin(xx / 37) * np.cos(yy / 23))[..., None] * np.array(
        [1.0, 0.9, 0.8], np.float32)
    s, o = synthetic.noise_profile_for_iso(800)
    g = np.array([2.05, 1.0, 1.55])
    prof = np.stack([g * s, g * g * o], axis=1)
    x = (base + rng.standard_normal(base.shape, dtype=np.float32)
         * np.sqrt(prof[:, 0] * base + prof[:, 1]).astype(np.float32)).astype(np.float32)
    del yy, xx, base
    dn.denoise(x[:256, :256], Denoise(), prof, tier="full")  # JIT cache load
    res = {}
    for tier in dn.TIERS:
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            dn.denoise(x, Denoise(), prof, tier=tier)
            ts.append(time.perf_counter() - t0)
        res[tier] = min(ts) / (h * w / 1e6) * 1000
        print(f"speed tier={tier}: {res[tier]:.0f} ms/MP at {h * w / 1e6:.1f} MP "
              f"(min of {repeats})", file=out, flush=True)
    return res


def floor_table(isos=(10, 16, 25, 30, 35, 40, 50, 100), n: int = 12, file=None) -> dict:
    """'auto' against no filtering at low ISOs (``AUTO_MIN_NOISE``): n Kodak + n McMaster
    synthetic raws, the bench metric; per ISO the noise level, the gain of the tier 'auto'
    would pick above its floor (the light tier there) and of what auto does."""
    from oneinch.isp import denoise as dn

    out = file or sys.stdout
    images = load_set("kodak24", n) + load_set("mcmaster18", n)
    print(f"Denoise floor: {len(images)} images, PSNR gain over no filtering (dB), bench metric",
          file=out)
    print(f"{'ISO':>6} {'level':>7} {'light':>8} {'min':>7} {'wins':>6} {'auto':>8}  auto picks",
          file=out)
    res = {}
    for iso in isos:
        gains, auto = [], []
        lev, pick = 0.0, None
        for i, (_n, im) in enumerate(images):
            case = make_case(im, iso, seed=i)
            lev = dn.noise_level(case["profile"])
            pick = dn.choose_tier(Denoise(), case["profile"])
            base = score_cam(case, case["cam_noisy"])[0]
            gains.append(score_cam(case, oneinch_denoise(case, tier="light"))[0] - base)
            auto.append(score_cam(case, oneinch_denoise(case))[0] - base)
        g = np.array(gains)
        res[iso] = (lev, float(g.mean()), float(np.mean(auto)))
        print(f"{iso:6d} {lev:7.4f} {g.mean():+8.2f} {g.min():+7.2f} {int((g > 0).sum()):3d}/"
              f"{len(g):<2d} {np.mean(auto):+8.2f}  {pick.name if pick else 'none'}",
              file=out, flush=True)
    return res


def _mosaic_case(im: np.ndarray, iso: float, seed: int, develop, profile=None) -> dict:
    """``im``'s synthetic raw, noisy and clean, each white-balanced mosaic made RGB by
    ``develop(mosaic, cfa)``; the reference is the clean one displayed. ``profile`` maps the
    raw's white-balanced noise profile to the RGB's (default: as it is)."""
    from oneinch.isp.whitebalance import apply_gains

    c = make_case(im, iso, seed=seed)
    g = wb_gains(c["raw_noisy"])

    def rgb(r):
        return develop(apply_gains(levels.normalize(r.data, r.levels), g, r.cfa), r.cfa)

    return {"noisy": rgb(c["raw_noisy"]), "m": c["m"], "headroom": c["headroom"],
            "profile": c["profile"] if profile is None else profile(c["profile"]),
            "ref": cam_to_display(rgb(c["raw_clean"]), c["m"], c["headroom"]), "iso": iso}


def case_psnr(case: dict, rgb: np.ndarray) -> float:
    """PSNR of ``rgb`` displayed against a :func:`_mosaic_case`'s reference."""
    return psnr(case["ref"], cam_to_display(rgb, case["m"], case["headroom"]))


def binned_case(im: np.ndarray, iso: float, seed: int) -> dict:
    """A synthetic raw of ``im`` binned 2x2 as develop's previews bin it (each pixel the mean
    of its quad: white noise, chroma of full resolution), noisy and clean, with the binned
    noise profile."""
    from oneinch.develop import bin2x2, binned_noise

    return _mosaic_case(im, iso, seed, bin2x2, lambda p: binned_noise(p, 2))


def binned_table(isos=(25, 50, 100, 200, 400, 800, 1600, 3200, 12800), n: int = 12,
                 file=None) -> dict:
    """Binned previews (``denoise(..., binned=True)``): n Kodak + n McMaster synthetic raws
    binned 2x2, PSNR gain over no filtering of 'auto' (binned), of the half-resolution chroma
    path demosaiced images take ('half': binned=False, no floor), and of each tier with
    chroma at full resolution."""
    from oneinch.isp import denoise as dn

    out = file or sys.stdout
    images = load_set("kodak24", n) + load_set("mcmaster18", n)
    cols = ("auto", "half", "light", "medium", "full")
    print(f"Binned 2x2 previews: {len(images)} images, PSNR gain over no filtering (dB)",
          file=out)
    print(f"{'ISO':>6} {'level':>7} {'none':>7} " + " ".join(f"{c:>7}" for c in cols)
          + "  auto picks", file=out)
    res = {}
    for iso in isos:
        acc: dict[str, list[float]] = {c: [] for c in cols}
        base, lev, pick = [], 0.0, None
        for i, (_n, im) in enumerate(images):
            b = binned_case(im, iso, i)
            prof = b["profile"]
            lev = dn.noise_level(prof)
            pick = dn.choose_tier(Denoise(), prof, binned=True)
            b0 = case_psnr(b, b["noisy"])
            base.append(b0)
            runs = {"auto": {"binned": True},
                    "half": {"tier": dn._level_tier(lev).name},
                    **{t: {"tier": t, "binned": True} for t in cols[2:]}}
            for c, kw in runs.items():
                acc[c].append(case_psnr(b, denoise(b["noisy"], Denoise(), prof, iso,
                                                   demosaic_method=None, **kw)) - b0)
        res[iso] = {c: float(np.mean(v)) for c, v in acc.items()}
        print(f"{iso:6d} {lev:7.4f} {np.mean(base):7.2f} "
              + " ".join(f"{res[iso][c]:+7.2f}" for c in cols)
              + f"  {pick.name if pick else 'none'}", file=out, flush=True)
    return res


def linear_case(im: np.ndarray, iso: float, seed: int, phone: str) -> dict:
    """A LinearRaw-like image of ``im``: the synthetic raw demosaiced by ``phone`` (the
    camera's own, unknown method), noisy and clean."""
    from oneinch.isp.demosaic import demosaic

    return _mosaic_case(im, iso, seed, lambda m, cfa: demosaic(m, cfa, phone))


def linear_table(isos=(100, 800, 3200), n: int = 12, file=None) -> dict:
    """LinearRaw (develop's ``LINEAR_RAW_NOISE_MODEL``): n Kodak + n McMaster synthetic raws
    demosaiced by a 'camera' (malvar, rcd) before denoise, and raws binned 2x2 (truly white
    noise, as a sensor without a CFA would give), PSNR gain over no filtering of denoise
    with the white-noise model and with RCD's demosaiced spectrum; then with the profile
    estimated from the image (no NoiseProfile), the estimator calibrated for white noise or
    for RCD's."""
    from oneinch.isp import denoise as dn

    out = file or sys.stdout
    images = load_set("kodak24", n) + load_set("mcmaster18", n)
    print(f"LinearRaw noise model: {len(images)} images, PSNR gain over no filtering (dB)",
          file=out)
    res = {}
    for iso in isos:
        for kind in ("malvar", "rcd", "white"):
            acc: dict[str, list[float]] = {}
            for i, (_n, im) in enumerate(images):
                b = binned_case(im, iso, i) if kind == "white" else linear_case(im, iso, i, kind)
                b0 = case_psnr(b, b["noisy"])
                est = {m: dn.estimate_noise_profile(b["noisy"], demosaic_method=m)
                       for m in (None, "rcd")}  # (no NoiseProfile: estimated, white / rcd)
                runs = (("white model", b["profile"], None), ("rcd model", b["profile"], "rcd"),
                        ("est white, white model", est[None], None),
                        ("est white, rcd model", est[None], "rcd"),
                        ("est rcd, rcd model", est["rcd"], "rcd"))
                for label, prof, method in runs:
                    acc.setdefault(label, []).append(case_psnr(b, dn.denoise(
                        b["noisy"], Denoise(), prof, iso, demosaic_method=method)) - b0)
            res[(iso, kind)] = {k: float(np.mean(v)) for k, v in acc.items()}
            what = "binned (white noise)" if kind == "white" else f"demosaiced by {kind}"
            print(f"ISO {iso:5d} {what:22s} " + "  ".join(
                f"{k} {v:+.2f}" for k, v in res[(iso, kind)].items()), file=out, flush=True)
    return res


REAL_DNGS = ("gopro_hero7_GOPR9231_gpr2dng.dng", "gopro_fusion_front_GPFR7066_gpr2dng.dng",
             "gopro_hero6_GOPR0024_gpr2dng.dng")


def estimates(raw) -> dict[str, np.ndarray]:
    """The (3, 2) noise profile of a Bayer raw as develop estimates it without a NoiseProfile
    (``mosaic``: isp.denoise.estimate_mosaic_noise on the white-balanced mosaic's central
    band), and as it did before (``demosaiced``: the band demosaiced in the linear domain,
    then isp.denoise.estimate_noise_profile with that method's calibration); with the true
    one (``true``: the raw's NoiseProfile in the same units)."""
    import oneinch.develop as dv
    from oneinch.isp import denoise as dn
    from oneinch.isp import whitebalance
    from oneinch.recipe import Recipe

    r = Recipe()
    g = whitebalance.gains(whitebalance.neutral(raw.color, r.white_balance, None, raw.cfa))
    x = whitebalance.apply_gains(levels.normalize(raw.data, raw.levels), g, raw.cfa)
    step = math.lcm(8, raw.cfa.shape[0])
    mid = x.shape[0] // 2 // step * step
    band = x[max(0, mid - 512 // step * step) : mid + 512 // step * step]
    rgb = dv._demosaic(band, raw, r, demosaic, "linear")[0]
    return {"true": dv._noise_in_wb_units(raw, g),
            "mosaic": dv._estimate_noise(x, raw, r, g),
            "demosaiced": dn.estimate_noise_profile(rgb, demosaic_method=dv._made_by(raw, r))}


def estimate_table(isos=(25, 100, 800, 3200, 12800), n: int = 12, file=None) -> dict:
    """Raws without a NoiseProfile: the estimated noise level (isp.denoise.noise_level) over
    the true one, and the PSNR gain over no filtering of 'auto' denoise given the true
    profile or an estimate. Three kinds of raw: n Kodak + n McMaster synthetic raws (small,
    dense texture, film grain in the 'clean' scans), synthetic.demo_scene at 3 MP, and the
    real GoPro DNGs of ../shared/data (their own NoiseProfile as the truth; VC-5 compressed
    before, which may have taken noise out: level only). The same synthetic scenes as
    X-Trans and Quad Bayer raws: level only."""
    from oneinch.isp import denoise as dn
    from oneinch.raw.reader import open_raw

    out = file or sys.stdout
    est_cols = ("demosaiced", "mosaic")
    print("Noise estimated without a NoiseProfile: level estimated / true (median [min, max]); "
          "PSNR gain of 'auto' over no filtering (dB)", file=out)
    print(f"{'raws':>22} {'ISO':>6} " + " ".join(f"{'level ' + c:>24}" for c in est_cols)
          + f" {'true prof':>10} " + " ".join(f"{c:>10}" for c in est_cols), file=out)
    demo = np.clip(np.round(synthetic.demo_scene(1536, 2048) * 255), 0, 255).astype(np.uint8)
    sets = {f"Kodak+McMaster ({2 * n})": load_set("kodak24", n) + load_set("mcmaster18", n),
            "demo_scene 3 MP": [("demo", demo)]}
    res: dict = {}
    for name, images in sets.items():
        for iso in isos if "demo" not in name else (100, 800, 3200):
            ratio: dict[str, list[float]] = {c: [] for c in est_cols}
            gain: dict[str, list[float]] = {c: [] for c in ("true", *est_cols)}
            for i, (_n, im) in enumerate(images):
                c = make_case(im, iso, seed=i)
                e = estimates(c["raw_noisy"])
                p0 = score_cam(c, c["cam_noisy"])[0]
                for k in ("true", *est_cols):
                    prof = c["profile"] if k == "true" else e[k]
                    gain[k].append(score_cam(c, denoise(c["cam_noisy"], Denoise(), prof, iso))[0]
                                   - p0)
                    if k != "true":
                        ratio[k].append(dn.noise_level(prof) / dn.noise_level(c["profile"]))
            res[(name, iso)] = {"ratio": ratio, "gain": {k: float(np.mean(v))
                                                          for k, v in gain.items()}}
            cells = [f"{np.median(v):5.2f} [{min(v):4.2f}, {max(v):4.2f}]"
                     for v in ratio.values()]
            print(f"{name:>22} {iso:6d} " + " ".join(f"{c:>24}" for c in cells) + " "
                  + " ".join(f"{v:+10.2f}" for v in res[(name, iso)]["gain"].values()),
                  file=out, flush=True)
    from oneinch.raw.image import CFAPattern

    for kind, pattern in (("X-Trans", CFAPattern.xtrans()), ("Quad Bayer", CFAPattern.quad_bayer())):
        for name, images in sets.items():
            for iso in (100, 800, 3200):
                ratio = {c: [] for c in est_cols}
                for i, (_n, im) in enumerate(images):
                    e = estimates(synthetic.unprocess(im, iso=iso, seed=i, pattern=pattern)[0])
                    for c in est_cols:
                        ratio[c].append(dn.noise_level(e[c]) / dn.noise_level(e["true"]))
                res[(kind, name, iso)] = ratio
                cells = [f"{np.median(v):5.2f} [{min(v):4.2f}, {max(v):4.2f}]"
                         for v in ratio.values()]
                label = f"{kind}: {name.split(' (')[0]}"
                print(f"{label[:22]:>22} {iso:6d} " + " ".join(f"{c:>24}" for c in cells),
                      file=out, flush=True)
    real = DATA.parent / "dng" / "decodable"
    for f in REAL_DNGS:
        if not (real / f).is_file():
            continue
        e = estimates(open_raw(real / f))
        lv = {k: dn.noise_level(e[k]) / dn.noise_level(e["true"]) for k in est_cols}
        res[f] = lv
        print(f"{f[:22]:>22} {'-':>6} " + " ".join(f"{v:24.2f}" for v in lv.values()),
              file=out, flush=True)
    return res


Runner = Callable[..., dict]

if __name__ == "__main__":
    args = sys.argv[1:]
    bm3d_n = int(args[args.index("--bm3d") + 1]) if "--bm3d" in args else 3
    if "--speed" in args:
        speed_table()
    elif "--floor" in args:
        floor_table()
    elif "--binned" in args:
        binned_table()
    elif "--linear" in args:
        linear_table()
    elif "--estimate" in args:
        estimate_table(n=4 if "--quick" in args else 12)
    else:
        denoise_table(quick="--quick" in args, use_rawpy="--no-rawpy" not in args,
                      bm3d_n=bm3d_n)
