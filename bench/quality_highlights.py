"""Highlight reconstruction vs rawpy (LibRaw) highlight modes, on synthetic clipped highlights.

Scenes with known truth: Kodak images taken as *linear* sRGB and pushed up ``stops`` (so skies,
skin and bright colours clip in one, two or three sensor channels), and a dim Kodak background
with saturated coloured light sources (Gaussian blobs peaking 3-5 stops above sensor white).
Each scene is unprocessed into a 14-bit RGGB DNG (``oneinch.synthetic.make_dng``, headroom 1 EV,
daylight WB gains, no noise) and developed by

* oneinch: ``develop(raw, recipe, until='exposure')`` (denoise off) — scene-linear sRGB;
* rawpy 0.28 ``postprocess(gamma=(1, 1), no_auto_bright=True, use_camera_wb=True,
  output_bps=16, output_color=sRGB, bright=1, user_flip=0, highlight_mode=...)`` with Clip,
  Blend, ReconstructDefault (= Reconstruct(5)) and Reconstruct(3).

LibRaw's highlight modes change its output scaling (dcraw ``scale_colors`` divides by the largest
instead of the smallest WB multiplier), so every result — oneinch's too — is brought to the
truth's exposure by one scale factor fitted (median luminance ratio) on pixels whose truth is
well below sensor white. Errors are measured only in the clipped region: pixels where the
truth's *camera* value reaches sensor white in at least one channel (mask from the truth).

Columns
  ΔE00     mean CIEDE2000 after a common display transform: the scene scaled so that the
           truth's 99.9th-percentile max(R,G,B) is 1, then oneinch's filmic tone curve
           (``looks.tone.tone_map(x, Tone())``, hue-preserving, path to white), sRGB, D65 Lab.
  ΔE00 p95 95th percentile of the same.
  ΔH*      mean CIE hue difference ΔH*ab of the *scene-linear* chromaticity (each pixel scaled
           to Y = 0.2 before Lab, so tone mapping does not hide a cast).
  Δab      mean chromaticity error sqrt(Δa*² + Δb*²) in the same exposure-free Lab.
  logY     mean |log2(Y_out / Y_truth)|, scene-linear luminance error in stops.
  magenta% share of clipped pixels whose truth is near-neutral (C* < 8) that came out magenta
           (C* > 10, hue 290-360°).

Run: ``.venv/bin/python bench/quality_highlights.py`` (about a minute: 10 DNGs, 5 develops each).
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oneinch.develop import develop
from oneinch.isp import spaces
from oneinch.looks.tone import tone_map
from oneinch.raw.reader import open_raw
from oneinch.recipe import Recipe, Tone
from oneinch.synthetic import CAM_FROM_SRGB, DAYLIGHT_GAINS, color_matrix, make_dng, srgb_to_linear

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks" / "kodak24"
HEADROOM_EV = 1.0
KODAK_SCENES = (("kodim03", 2.0), ("kodim04", 2.0), ("kodim07", 2.5), ("kodim12", 2.0),
                ("kodim14", 2.0), ("kodim15", 2.5), ("kodim18", 2.0), ("kodim23", 3.0))
LIGHTS = (  # linear sRGB colour (max 1), peak scene value, centre (fy, fx), sigma (fraction)
    ((1.0, 0.45, 0.08), 24.0, (0.3, 0.25), 0.08),  # sodium-orange lamp
    ((0.15, 0.35, 1.0), 20.0, (0.3, 0.7), 0.07),  # blue LED
    ((1.0, 0.06, 0.05), 16.0, (0.7, 0.3), 0.06),  # red tail light
    ((0.25, 1.0, 0.3), 12.0, (0.72, 0.75), 0.07),  # green sign
    ((1.0, 0.8, 0.55), 30.0, (0.5, 0.5), 0.05),  # warm white bulb
)


def _kodak(name: str) -> np.ndarray:
    from PIL import Image

    with Image.open(KODAK / f"{name}.png") as im:
        return srgb_to_linear(np.asarray(im.convert("RGB")))


def light_scene(background: str = "kodim08", dim_ev: float = -2.0) -> np.ndarray:
    """A dim Kodak background with saturated coloured light sources (linear sRGB)."""
    lin = _kodak(background) * np.float32(2.0**dim_ev)
    h, w = lin.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for colour, peak, (fy, fx), sig in LIGHTS:
        s = sig * max(h, w)
        g = np.exp(-((yy - fy * h) ** 2 + (xx - fx * w) ** 2) / (2 * s * s))
        lin = lin + (peak * g)[..., None] * np.asarray(colour, np.float32)
    return lin.astype(np.float32)


def scenes() -> list[tuple[str, np.ndarray]]:
    out = [(f"{n} +{s:g}EV", _kodak(n) * np.float32(2.0**s)) for n, s in KODAK_SCENES]
    out.append(("lights/kodim08", light_scene("kodim08")))
    out.append(("lights/kodim19", light_scene("kodim19")))
    return out


def camera_truth(lin: np.ndarray, headroom_ev: float = HEADROOM_EV) -> np.ndarray:
    """The sensor's (unclipped) camera values for linear sRGB, as synthetic.unprocess makes."""
    cm, _ = color_matrix(CAM_FROM_SRGB, DAYLIGHT_GAINS)
    cam_from_lin = cm @ spaces.rgb_to_xyz_native(spaces.SPACES["srgb"])
    return (lin.reshape(-1, 3) @ (cam_from_lin.T * 2.0**-headroom_ev)).reshape(lin.shape)


# ----------------------------------------------------------------------------- metrics


def _colour():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    return colour


def display_scale(truth_lin: np.ndarray) -> float:
    """Exposure of the common display view: the truth's 99.9th percentile max(R,G,B) -> white."""
    return float(1.0 / max(np.percentile(truth_lin.max(axis=2), 99.9), 1e-6))


def _lab_display(lin: np.ndarray, scale: float) -> np.ndarray:
    c = _colour()
    disp = tone_map(np.ascontiguousarray(lin * np.float32(scale), dtype=np.float32), Tone(), "srgb")
    xyz = disp.reshape(-1, 3) @ spaces.rgb_to_xyz_native(spaces.SPACES["srgb"]).T
    return c.XYZ_to_Lab(xyz, spaces.D65_XY)


def _lab_chroma(lin: np.ndarray) -> np.ndarray:
    """CIELAB of each pixel's chromaticity at Y = 0.2 (hue and chroma, exposure-free)."""
    c = _colour()
    xyz = np.maximum(lin.reshape(-1, 3), 0) @ spaces.rgb_to_xyz_native(spaces.SPACES["srgb"]).T
    xyz = xyz / np.maximum(xyz[:, 1:2], 1e-9) * 0.2
    return c.XYZ_to_Lab(xyz, spaces.D65_XY)


def _hue(lab: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360.0


def align_exposure(out: np.ndarray, truth_lin: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Scale ``out`` to the truth's exposure (median luminance ratio on well-exposed pixels)."""
    wy = spaces.luminance_weights("srgb")
    ok = (cam.max(axis=2) < 0.7) & (truth_lin @ wy > 0.02)
    ratio = (truth_lin[ok] @ wy) / np.maximum(out[ok] @ wy, 1e-9)
    return (out * np.float32(np.median(ratio))).astype(np.float32)


@dataclass
class Score:
    de: float
    de95: float
    hue: float
    dab: float
    logy: float
    magenta: float
    n: int


def score(out: np.ndarray, truth_lin: np.ndarray, mask: np.ndarray) -> Score:
    """Errors of ``out`` against the truth on ``mask`` (see the module docstring)."""
    c = _colour()
    o, t = out[mask], truth_lin[mask]
    k = display_scale(truth_lin)
    de = c.delta_E(_lab_display(o[:, None, :], k), _lab_display(t[:, None, :], k), method="CIE 2000")
    lo, lt = _lab_chroma(o), _lab_chroma(t)
    ct, co = np.hypot(lt[:, 1], lt[:, 2]), np.hypot(lo[:, 1], lo[:, 2])
    dh = np.abs((_hue(lo) - _hue(lt) + 180.0) % 360.0 - 180.0)
    dhab = 2.0 * np.sqrt(co * ct) * np.sin(np.radians(dh) / 2.0)  # CIE ΔH*ab
    dab = np.hypot(lo[:, 1] - lt[:, 1], lo[:, 2] - lt[:, 2])
    wy = spaces.luminance_weights("srgb")
    logy = np.abs(np.log2(np.maximum(o @ wy, 1e-6) / np.maximum(t @ wy, 1e-6)))
    neutral = ct < 8
    hue_o = _hue(lo)
    mag = neutral & (co > 10) & (hue_o > 290) & (hue_o < 360)
    return Score(
        de=float(de.mean()),
        de95=float(np.percentile(de, 95)),
        hue=float(dhab.mean()),
        dab=float(dab.mean()),
        logy=float(logy.mean()),
        magenta=float(100.0 * mag.sum() / max(1, neutral.sum())),
        n=int(mask.sum()),
    )


# ----------------------------------------------------------------------------- developers


def oneinch_modes() -> dict[str, object]:
    def run(mode: str):
        def f(path: Path) -> np.ndarray:
            recipe = Recipe().with_(highlights={"mode": mode}, denoise={"mode": "off"})
            return np.asarray(develop(open_raw(path), recipe, until="exposure"))

        return f

    return {"oneinch reconstruct": run("reconstruct"), "oneinch clip": run("clip")}


def rawpy_modes() -> dict[str, object]:
    import rawpy

    modes = {
        "rawpy Clip": rawpy.HighlightMode.Clip,
        "rawpy Blend": rawpy.HighlightMode.Blend,
        "rawpy Reconstruct(5)": rawpy.HighlightMode.ReconstructDefault,
        "rawpy Reconstruct(3)": rawpy.HighlightMode.Reconstruct(3),
    }

    def run(mode):
        def f(path: Path) -> np.ndarray:
            with rawpy.imread(str(path)) as r:
                out = r.postprocess(
                    gamma=(1, 1), no_auto_bright=True, use_camera_wb=True, output_bps=16,
                    output_color=rawpy.ColorSpace.sRGB, bright=1.0, user_flip=0,
                    highlight_mode=mode,
                )
            return out.astype(np.float32) / 65535.0

        return f

    return {k: run(v) for k, v in modes.items()}


def highlight_table(scene_list: list[tuple[str, np.ndarray]] | None = None) -> str:
    """Run every method on every scene; return the table (pooled over all clipped pixels)."""
    scene_list = scene_list if scene_list is not None else scenes()
    methods = {**oneinch_modes(), **rawpy_modes()}
    pooled: dict[str, list[Score]] = {k: [] for k in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (_name, lin) in enumerate(scene_list):
            path = Path(tmp) / f"scene{i}.dng"
            make_dng(path, lin, linear_input=True, headroom_ev=HEADROOM_EV)
            cam = camera_truth(lin)
            mask = cam.max(axis=2) >= 1.0
            if not mask.any():
                continue
            for k, f in methods.items():
                out = f(path)
                h, w = min(out.shape[0], lin.shape[0]), min(out.shape[1], lin.shape[1])
                out = align_exposure(out[:h, :w], lin[:h, :w], cam[:h, :w])
                pooled[k].append(score(out, lin[:h, :w], mask[:h, :w]))
    lines = [
        f"Highlights: {len(scene_list)} synthetic scenes, errors on truth-clipped pixels "
        "(pixel-weighted mean over scenes)",
        f"{'method':<22}{'ΔE00':>7}{'ΔE00 p95':>10}{'ΔH*':>7}{'Δab':>7}{'logY':>7}{'magenta%':>10}",
    ]
    for k, sc in pooled.items():
        n = np.array([s.n for s in sc], float)

        def avg(attr: str, sc=sc, n=n) -> float:
            return float(np.sum([getattr(s, attr) for s in sc] * n) / n.sum())

        lines.append(
            f"{k:<22}{avg('de'):>7.2f}{avg('de95'):>10.2f}{avg('hue'):>7.2f}{avg('dab'):>7.2f}"
            f"{avg('logy'):>7.3f}{avg('magenta'):>10.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(highlight_table())
