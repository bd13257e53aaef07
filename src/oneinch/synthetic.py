"""Synthetic raws with known ground truth: "unprocessing" sRGB images into sensor data.

Brooks, Mildenhall, Xue, Chen, Sharlet, Barron, "Unprocessing Images for Learned Raw Denoising",
CVPR 2019, §3: invert the tone curve (optional here), the sRGB gamma, the colour correction
matrix and the white-balance gains, then mosaic, and add heteroscedastic shot + read noise
(variance = S*x + O, the DNG NoiseProfile model). The result is a RawImage whose DNG colour tags
describe exactly the transform used, so developing it with a plain linear tone must give the
source back: that is the ground truth the tests and benchmarks measure against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from .isp import spaces
from .raw.image import CameraColor, CFAPattern, Levels, RawImage, ShotInfo, as_pattern

# A plausible sensor's spectral cross-talk, expressed as camera RGB from linear sRGB (rows sum
# to ~1): broad, overlapping filters like a real Bayer sensor, so the colour matrix matters.
CAM_FROM_SRGB = np.array([[0.72, 0.23, 0.05], [0.11, 0.78, 0.11], [0.04, 0.24, 0.72]])
# Inverse white-balance gains of a daylight shot (camera R and B are weaker than G).
DAYLIGHT_GAINS = (2.05, 1.0, 1.55)

FULL_WELL_E = 15000.0  # electrons at base ISO (1-inch-class pixel, order of magnitude)
READ_NOISE_E = 2.5  # electrons
BASE_ISO = 100.0


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """8-bit (uint8) or float [0,1] sRGB -> linear float32 (IEC 61966-2-1)."""
    a = np.asarray(srgb)
    x = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    return spaces.decode(x, "srgb")


def inverse_smoothstep(y: np.ndarray) -> np.ndarray:
    """Brooks et al. 2019 eq. 1: the inverse of the smoothstep tone curve 3x^2 - 2x^3."""
    y = np.clip(y, 0.0, 1.0)
    return (0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)).astype(np.float32)


def noise_profile_for_iso(iso: float) -> tuple[float, float]:
    """(S, O) of variance = S*x + O, x in [0, 1], for a sensor with FULL_WELL_E / READ_NOISE_E."""
    gain = iso / BASE_ISO
    s = gain / FULL_WELL_E
    o = (READ_NOISE_E * gain / FULL_WELL_E) ** 2
    return float(s), float(o)


def color_matrix(
    cam_from_srgb: np.ndarray = CAM_FROM_SRGB, gains: tuple[float, float, float] = DAYLIGHT_GAINS
) -> tuple[np.ndarray, np.ndarray]:
    """(ColorMatrix XYZ(D65) -> camera, normalised per DNG; camera neutral of D65 white)."""
    a = np.diag(1.0 / np.asarray(gains, dtype=np.float64)) @ cam_from_srgb
    xyz_from_srgb = spaces.rgb_to_xyz_native(spaces.SPACES["srgb"])  # D65-relative
    cm = a @ np.linalg.inv(xyz_from_srgb)
    neutral = cm @ spaces.xy_to_xyz(spaces.D65_XY)
    scale = 1.0 / neutral.max()  # DNG: the illuminant's white maps to a neutral of max 1
    return cm * scale, neutral * scale


@dataclass(frozen=True)
class Truth:
    """What a synthetic raw was made from: linear sRGB (H, W, 3) at the sensor's exposure."""

    linear_srgb: np.ndarray
    headroom_ev: float


def unprocess(
    srgb: np.ndarray,
    *,
    pattern: CFAPattern | str = "RGGB",
    bits: int = 14,
    black: int | None = None,
    iso: float | None = None,
    seed: int = 0,
    inverse_tone: bool = False,
    headroom_ev: float = 1.0,
    gains: tuple[float, float, float] = DAYLIGHT_GAINS,
    orientation: int = 1,
    make: str = "oneinch",
    model: str = "Synthetic Sensor",
    path: str = "<synthetic>",
    linear_input: bool = False,
) -> tuple[RawImage, Truth]:
    """sRGB image -> (RawImage, Truth). No noise unless ``iso`` is given.

    ``headroom_ev`` darkens the exposure and sets BaselineExposure to undo it, so white in the
    source stays below sensor saturation (as real cameras leave highlight headroom).
    With ``linear_input`` the image is taken as linear sRGB already (may exceed 1: clips).
    """
    pat = as_pattern(pattern)
    lin = np.asarray(srgb, dtype=np.float32) if linear_input else srgb_to_linear(srgb)
    if inverse_tone and not linear_input:
        lin = spaces.decode(inverse_smoothstep(spaces.encode(lin, "srgb")), "srgb")
    cm, neutral = color_matrix(CAM_FROM_SRGB, gains)
    scale = 2.0 ** (-headroom_ev)
    # camera RGB = CM @ XYZ; XYZ = xyz_from_srgb @ lin   (all D65-relative)
    cam_from_lin = cm @ spaces.rgb_to_xyz_native(spaces.SPACES["srgb"])
    cam = (lin.reshape(-1, 3) @ (cam_from_lin.T * scale)).reshape(lin.shape).astype(np.float32)
    h, w = cam.shape[:2]
    masks = pat.masks(h, w)
    mosaic = np.zeros((h, w), np.float32)
    for c in range(3):
        mosaic[masks[c]] = cam[..., c][masks[c]]
    white = (1 << bits) - 1
    if black is None:
        black = 1 << max(0, bits - 6)  # e.g. 256 for 14-bit
    noise = None
    if iso:
        s, o = noise_profile_for_iso(iso)
        rng = np.random.default_rng(seed)
        var = np.maximum(s * np.clip(mosaic, 0, None) + o, 0)
        mosaic = mosaic + rng.standard_normal(mosaic.shape).astype(np.float32) * np.sqrt(
            var
        ).astype(np.float32)
        noise = np.array([[s, o]])
    stored = np.clip(np.rint(black + mosaic * (white - black)), 0, white).astype(np.uint16)
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    shot = ShotInfo(
        make=make,
        model=model,
        lens="oneinch Synthetic 23mm f/1.9",
        focal_length=8.8,
        focal_length_35mm=23.0,
        f_number=1.9,
        exposure_time=1 / 100,
        iso=float(iso or BASE_ISO),
        datetime=now,
        orientation=orientation,
        software="oneinch synthetic",
    )
    color = CameraColor(
        color_matrix1=cm,
        illuminant1=21,
        as_shot_neutral=neutral,
        baseline_exposure=float(headroom_ev),
        source="dng",
    )
    raw = RawImage(
        path=path,
        data=stored,
        cfa=pat,
        levels=Levels(black=np.full((1, 1, 1), float(black)), white=np.array([float(white)])),
        color=color,
        shot=shot,
        noise_profile=noise,
        is_dng=True,
        dng_version=(1, 4, 0, 0),
        unique_camera_model=f"{make} {model}",
        bits_per_sample=16,
    )
    return raw, Truth(linear_srgb=lin, headroom_ev=headroom_ev)


def make_dng(path: str | Path, srgb: np.ndarray, **kwargs: object) -> Truth:
    """Unprocess ``srgb`` and write it as a DNG at ``path``; returns the ground truth."""
    from .raw.dng import write_dng

    raw, truth = unprocess(srgb, path=str(path), **kwargs)  # type: ignore[arg-type]
    write_dng(path, raw)
    return truth


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0, border: int = 0) -> float:
    """PSNR in dB over all channels (CPSNR for RGB), optionally ignoring a border."""
    if border:
        a = a[border:-border, border:-border]
        b = b[border:-border, border:-border]
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


# ColorChecker Classic 24 patches, sRGB 8-bit (BabelColor average, D65; X-Rite/BabelColor
# published reference values), row by row from dark skin to black.
COLORCHECKER_SRGB8 = np.array(
    [
        [115, 82, 68],
        [194, 150, 130],
        [98, 122, 157],
        [87, 108, 67],
        [133, 128, 177],
        [103, 189, 170],
        [214, 126, 44],
        [80, 91, 166],
        [193, 90, 99],
        [94, 60, 108],
        [157, 188, 64],
        [224, 163, 46],
        [56, 61, 150],
        [70, 148, 73],
        [175, 54, 60],
        [231, 199, 31],
        [187, 86, 149],
        [8, 133, 161],
        [243, 243, 242],
        [200, 200, 200],
        [160, 160, 160],
        [122, 122, 121],
        [85, 85, 85],
        [52, 52, 52],
    ],
    dtype=np.uint8,
)


def demo_scene(height: int = 1000, width: int = 1500, seed: int = 7) -> np.ndarray:
    """A procedural scene in linear sRGB (may exceed 1): sky with a sun, a ColorChecker, a zone
    plate (demosaicing stress), fine text-like stripes and textured ground. Made by our own code,
    so the bundled demo raw carries no third-party image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    v = yy / height
    sky = np.stack([0.18 + 0.25 * v, 0.30 + 0.22 * v, 0.65 - 0.1 * v], axis=-1) * 0.9
    img = sky.astype(np.float32)
    # sun: a disc 4 stops over white with a soft glow (exercises highlight reconstruction)
    cy, cx, r = 0.18 * height, 0.82 * width, 0.05 * height
    d = np.hypot(yy - cy, xx - cx)
    glow = np.exp(-((d / (3.5 * r)) ** 2))[..., None] * np.array([1.6, 1.3, 0.8], np.float32)
    img = img + glow
    img[d < r] = np.array([16.0, 15.0, 12.0], np.float32)
    # ground: textured brown/green band
    ground = v > 0.62
    tex = rng.random((height // 8 + 1, width // 8 + 1)).astype(np.float32)
    import cv2

    tex = cv2.resize(tex, (width, height), interpolation=cv2.INTER_CUBIC)
    base = np.array([0.10, 0.13, 0.05], np.float32)
    img[ground] = base * (0.6 + 0.8 * tex[ground, None])
    # ColorChecker, 6 x 4 patches
    lin_cc = srgb_to_linear(COLORCHECKER_SRGB8)
    ph = int(height * 0.07)
    top, left = int(height * 0.30), int(width * 0.05)
    gap = ph // 6
    for i, c in enumerate(lin_cc):
        rr, cc = divmod(i, 6)
        y0, x0 = top + rr * (ph + gap), left + cc * (ph + gap)
        img[y0 : y0 + ph, x0 : x0 + ph] = c
    # zone plate (sharp chirp up to near Nyquist)
    zs = int(height * 0.28)
    zy, zx = int(height * 0.30), int(width * 0.55)
    Y, X = np.mgrid[-zs // 2 : zs // 2, -zs // 2 : zs // 2].astype(np.float32)
    zone = 0.5 + 0.5 * np.cos(np.pi * (X * X + Y * Y) / zs * 0.9)
    img[zy : zy + zs, zx : zx + zs] = (0.04 + 0.6 * zone)[..., None]
    # fine stripes at several frequencies, like lettering
    sy, sx = int(height * 0.66), int(width * 0.55)
    for k, period in enumerate((4, 6, 8, 12)):
        y0 = sy + k * int(height * 0.06)
        band = (np.arange(int(width * 0.35)) // (period // 2 or 1)) % 2
        img[y0 : y0 + int(height * 0.04), sx : sx + band.size] = (0.05 + 0.7 * band)[None, :, None]
    return np.ascontiguousarray(img, dtype=np.float32)


def write_demo_sample(path: str | Path, height: int = 1000, width: int = 1500) -> Path:
    """The bundled demo raw: demo_scene unprocessed at ISO 400 (noise included) as a DNG."""
    from .raw.dng import write_dng

    scene = demo_scene(height, width)
    raw, _ = unprocess(
        scene,
        linear_input=True,
        iso=400,
        seed=1,
        headroom_ev=1.0,
        path=str(path),
        model="Synthetic Sensor (demo scene)",
    )
    write_dng(path, raw)
    return Path(path)


if __name__ == "__main__":  # python -m oneinch.synthetic OUT.dng
    import sys

    out = write_demo_sample(sys.argv[1] if len(sys.argv) > 1 else "sample.dng")
    print(out)


# --- bursts (burst/ room): appended, nothing above changed ------------------------------------


@dataclass(frozen=True)
class BurstTruth:
    """Ground truth of a synthetic burst.

    ``clean`` is the noise-free raw of the reference frame (frame 0: no shift, no rotation);
    ``moving`` (H, W) bool marks every pixel the moving object covers in any frame, in the
    reference frame's coordinates; ``shifts`` (N, 3) holds (dy, dx, degrees) per frame.
    """

    clean: RawImage
    linear_srgb: np.ndarray
    moving: np.ndarray
    shifts: np.ndarray


def make_burst(
    scene: np.ndarray,
    n: int = 8,
    *,
    iso: float = 3200,
    max_shift: float = 6.0,
    max_rotation_deg: float = 0.15,
    moving_object: bool = False,
    object_frames: tuple[int, ...] | None = None,
    exposure_times: tuple[float, ...] | None = None,
    seed: int = 0,
    path_prefix: str = "<burst>",
    **unprocess_kwargs: object,
) -> tuple[list[RawImage], BurstTruth]:
    """A handheld burst from one clean linear-sRGB scene (H, W, 3): N raws plus ground truth.

    Frame k > 0 is the scene moved by a random global shift (≤ ``max_shift`` px) and rotation
    (≤ ``max_rotation_deg`` about the centre), warped with Lanczos-4; frame 0 is the reference.
    With ``moving_object`` a bright disc crosses the scene (frames in ``object_frames``, default
    all; it moves 6 % of the width per frame, independent of the camera shake). Each frame gets
    independent shot + read noise at ``iso`` (Brooks et al. 2019 model). ``exposure_times``
    (one per frame) makes a bracket: the scene is scaled by t / t[0] before the sensor clips.
    """
    import cv2

    rng = np.random.default_rng(seed)
    lin = np.ascontiguousarray(scene, dtype=np.float32)
    h, w = lin.shape[:2]
    times = tuple(exposure_times) if exposure_times else (1 / 100,) * n
    if len(times) != n:
        raise ValueError("exposure_times needs one value per frame")
    obj_frames = set(range(n)) if object_frames is None else set(object_frames)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = 0.09 * min(h, w)
    colour = np.array([0.85, 0.25, 0.08], np.float32)
    moving = np.zeros((h, w), bool)
    raws: list[RawImage] = []
    shifts = np.zeros((n, 3))
    for k in range(n):
        if k == 0:
            frame = lin.copy()
        else:
            dy, dx = rng.uniform(-max_shift, max_shift, 2)
            deg = rng.uniform(-max_rotation_deg, max_rotation_deg)
            shifts[k] = (dy, dx, deg)
            m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), deg, 1.0)
            m[:, 2] += (dx, dy)
            frame = cv2.warpAffine(
                lin, m, (w, h), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT
            )
        if moving_object and k in obj_frames:
            cy, cx = 0.5 * h, 0.2 * w + 0.06 * w * k
            disc = np.hypot(yy - cy, xx - cx) < radius
            frame[disc] = colour
            moving |= disc
        frame = frame * np.float32(times[k] / times[0])
        raw, _ = unprocess(
            frame,
            linear_input=True,
            iso=iso,
            seed=seed * 1000 + k + 1,
            path=f"{path_prefix}{k}.dng",
            **unprocess_kwargs,
        )  # type: ignore[arg-type]
        if exposure_times:
            raw = _with_exposure_time(raw, times[k])
        raws.append(raw)
        if k == 0:
            clean0, _ = unprocess(
                frame,
                linear_input=True,
                iso=None,
                path=f"{path_prefix}clean.dng",
                **unprocess_kwargs,
            )  # type: ignore[arg-type]
            if exposure_times:
                clean0 = _with_exposure_time(clean0, times[0])
            ref_lin = frame
    return raws, BurstTruth(clean=clean0, linear_srgb=ref_lin, moving=moving, shifts=shifts)


def _with_exposure_time(raw: RawImage, t: float) -> RawImage:
    from dataclasses import replace

    return replace(raw, shot=replace(raw.shot, exposure_time=float(t)))
