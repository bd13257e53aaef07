"""Seed corpus: small project-made samples plus (read in place) the files in ../shared/data.

Project-made seeds are written to a seed folder (``out/fuzz/seeds`` by default) by
:func:`build_seeds`; shared files are only referenced, never copied. Each seed has a *target*:

    raw       oneinch.raw.open_raw + describe       (DNG, TIFF-based and other camera raws)
    develop   open_raw + develop(size 256)           (small synthetic DNGs only)
    image     oneinch.frame.frame_file               (JPEG / PNG / TIFF with EXIF)
    cube      oneinch.looks.lut.load_lut (.cube)
    hald      oneinch.looks.lut.load_lut (HaldCLUT .png)
    template  oneinch.frame.templates.read_template + render on a tiny photo
    recipe    oneinch.recipe.Recipe.load
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

TARGETS = ("raw", "develop", "image", "cube", "hald", "template", "recipe")
# share of cases per target: most on the cheap parsers, few on the costly develop/frame paths
WEIGHTS = {
    "raw": 0.40, "develop": 0.05, "image": 0.08, "cube": 0.14, "hald": 0.06,
    "template": 0.12, "recipe": 0.15,
}  # fmt: skip
EXT = {
    "raw": ".dng", "develop": ".dng", "image": ".jpg", "cube": ".cube", "hald": ".png",
    "template": ".toml", "recipe": ".toml",
}  # fmt: skip

# shared files small enough to mutate thousands of times (read in place)
_SHARED_RAW = (
    "dng/decodable/lg_g4_h815_linearraw_lossy_1mp.dng",
    "dng/metadata_only/exiftool_canon_350d_DNG.dng",
    "dng/metadata_only/exiv2_iphone12pro_proraw_IMG_1361.dng",
    "dng/metadata_only/filetype_leica_m10_truncated.dng",
    "dng/gpr_vc5/GOPR9231.GPR",
    "dng/decodable/blackmagic_pocket4k_12bit_cfa.dng",
    "raw/metadata_only/exiftool_CanonRaw.cr2",
    "raw/metadata_only/exiftool_CanonRaw.cr3",
    "raw/metadata_only/exiftool_CanonRaw.crw",
    "raw/metadata_only/exiftool_FujiFilm.raf",
    "raw/metadata_only/exiftool_Minolta.mrw",
    "raw/metadata_only/exiftool_Nikon.nef",
    "raw/metadata_only/exiftool_Panasonic.rw2",
    "raw/metadata_only/exiftool_PhaseOne.iiq",
    "raw/metadata_only/exiftool_Sigma.x3f",
    "raw/metadata_only/exiftool_SigmaDP2.x3f",
    "raw/metadata_only/filetype_sony_zv-e10_truncated.arw",
)
_SHARED_IMAGE = ("benchmarks/mcmaster18/1.tif", "benchmarks/kodak24/kodim23.png")


@dataclass(frozen=True)
class Seed:
    target: str
    path: Path
    weight: float = 1.0  # relative pick weight inside its target


def _scene(h: int, w: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 0.5 + 0.4 * np.sin(x / 5) * np.cos(y / 7)], axis=-1)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def _dng_seeds(folder: Path) -> list[Seed]:
    from dataclasses import replace

    from oneinch.raw.dng import write_dng
    from oneinch.raw.opcodes import make_opcode
    from oneinch.synthetic import make_dng, unprocess

    out: list[Seed] = []
    p = folder / "plain_rggb.dng"
    make_dng(p, _scene(48, 64), pattern="RGGB", bits=12)
    out.append(Seed("raw", p, 2))
    out.append(Seed("develop", p))

    # opcode lists 1/2/3, default crop, orientation, noise profile, preview SubIFD
    raw, _ = unprocess(_scene(40, 56, 2), pattern="BGGR", bits=14, iso=400, orientation=6)
    gain = make_opcode(
        "GainMap", Top=0, Left=0, Bottom=40, Right=56, Plane=0, Planes=1, RowPitch=1,
        ColPitch=1, MapSpacingV=0.5, MapSpacingH=0.5, MapOriginV=0.0, MapOriginH=0.0,
        MapGain=np.linspace(1.0, 1.3, 9, dtype=np.float32).reshape(3, 3, 1),
    )  # fmt: skip
    poly = make_opcode(
        "MapPolynomial", Top=0, Left=0, Bottom=40, Right=56, Plane=0, Planes=1, RowPitch=1,
        ColPitch=1, Coefficient=np.array([0.0, 1.0, 0.0]),
    )  # fmt: skip
    bad = make_opcode(
        "FixBadPixelsList", BayerPhase=0, BadPoints=np.array([[3, 4], [10, 11]]),
        BadRects=np.array([[20, 20, 22, 24]]),
    )  # fmt: skip
    table = make_opcode(
        "MapTable", Top=0, Left=0, Bottom=40, Right=56, Plane=0, Planes=1, RowPitch=1,
        ColPitch=1, Table=np.arange(0, 65536, 4096, dtype=np.uint16),
    )  # fmt: skip
    delta = make_opcode(
        "ScalePerRow", Top=0, Left=0, Bottom=40, Right=56, Plane=0, Planes=1, RowPitch=1,
        ColPitch=1, Scale=np.ones(40, np.float32),
    )  # fmt: skip
    warp = make_opcode(
        "WarpRectilinear", kr=np.array([[1.0, 0.01, 0.0, 0.0]]), kt=np.array([[0.0, 0.0]]),
        cx=0.5, cy=0.5,
    )  # fmt: skip
    vig = make_opcode("FixVignetteRadial", k0=0.1, k1=0.0, k2=0.0, k3=0.0, k4=0.0, cx=0.5, cy=0.5)
    raw = replace(
        raw,
        opcodes={1: (bad,), 2: (gain, poly, table, delta), 3: (warp, vig)},
        default_crop=(2, 2, 36, 50),
    )
    p = folder / "opcodes_bggr.dng"
    write_dng(p, replace(raw, path=str(p)), preview=(_scene(20, 28, 3) * 255).astype(np.uint8))
    out.append(Seed("raw", p, 4))
    out.append(Seed("develop", p, 2))

    # LinearRaw (3 planes)
    lin, _ = unprocess(_scene(32, 48, 4), pattern="RGGB", bits=12)
    rgb = np.repeat(lin.data[:, :, None], 3, axis=2)
    p = folder / "linear_raw.dng"
    write_dng(p, replace(lin, data=rgb, cfa=None, path=str(p),
                         levels=replace(lin.levels, black=np.zeros((1, 1, 3)),
                                        white=np.full(3, 4095.0))))
    out.append(Seed("raw", p, 2))
    out.append(Seed("develop", p))
    return out


def _image_seeds(folder: Path) -> list[Seed]:
    from PIL import Image

    img = Image.fromarray((_scene(48, 72, 5) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "Xiaomi"
    exif[0x0110] = "2203121C"
    exif[0x0112] = 6
    exif[0x0132] = "2026:11:22 12:00:00"
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = 0.01
    sub[0x829D] = 1.9
    sub[0x8827] = 100
    sub[0x920A] = 8.7
    sub[0xA405] = 23
    sub[0xA434] = "Leica Summicron 1:1.9-4.1/13-120 ASPH."
    sub[0x9003] = "2026:11:22 12:00:00"
    out: list[Seed] = []
    for name, fmt, kw in (
        ("photo.jpg", "JPEG", {"quality": 80}),
        ("photo.png", "PNG", {}),
        ("photo.tif", "TIFF", {}),
    ):
        p = folder / name
        buf = io.BytesIO()
        img.save(buf, format=fmt, exif=exif.tobytes(), **kw)
        p.write_bytes(buf.getvalue())
        out.append(Seed("image", p, 3))
    return out


def _lut_seeds(folder: Path) -> list[Seed]:
    from oneinch.looks.looks import look_function
    from oneinch.looks.lut import bake, write_cube, write_hald

    out: list[Seed] = []
    fn = look_function("authentic", 1.0, "srgb")
    p = folder / "authentic_5.cube"
    write_cube(p, bake(fn, 5, "srgb", "srgb", "oneinch authentic"))
    out.append(Seed("cube", p, 4))
    p = folder / "shaper.cube"
    lines = ["TITLE \"shaper\"", "LUT_1D_SIZE 4", "LUT_1D_INPUT_RANGE 0.0 1.0",
             "LUT_3D_SIZE 2", "LUT_3D_INPUT_RANGE 0.0 1.0"]
    lines += [f"{v:.4f} {v:.4f} {v:.4f}" for v in (0.0, 0.3, 0.7, 1.0)]
    lines += [f"{r} {g} {b}" for b in (0, 1) for g in (0, 1) for r in (0, 1)]
    p.write_text("\n".join(lines) + "\n")
    out.append(Seed("cube", p, 2))
    p = folder / "oned.cube"
    p.write_text("# 1D\nLUT_1D_SIZE 3\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 1 1 1\n"
                 "0 0 0\n0.5 0.5 0.5\n1 1 1\n")
    out.append(Seed("cube", p, 1))
    for level in (3, 4):
        p = folder / f"hald_{level}.png"
        write_hald(p, bake(fn, level * level, "srgb", "srgb", "hald"), level, bits=8)
        out.append(Seed("hald", p, 2))
    return out


def _text_seeds(folder: Path) -> list[Seed]:
    from oneinch.recipe import Recipe

    out: list[Seed] = []
    frames = REPO / "src" / "oneinch" / "data" / "frames"
    for f in sorted(frames.glob("*.toml")):
        p = folder / f"template_{f.name}"
        p.write_bytes(f.read_bytes())
        out.append(Seed("template", p))
    p = folder / "recipe_default.toml"
    p.write_text(Recipe().to_toml())
    out.append(Seed("recipe", p))
    p = folder / "recipe_vibrant.toml"
    try:
        from oneinch.looks.looks import PRESETS

        r = Recipe().with_(**PRESETS["vibrant"]).with_(output={"size": 256, "quality": 90})
    except Exception:  # a preset that does not fit the recipe is not a fuzz seed problem
        r = Recipe().with_(output={"size": 256})
    p.write_text(r.to_toml())
    out.append(Seed("recipe", p))
    return out


def build_seeds(folder: str | Path) -> list[Seed]:
    """Write the project-made seeds into ``folder``; return them with the shared ones."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    seeds = _dng_seeds(d) + _image_seeds(d) + _lut_seeds(d) + _text_seeds(d)
    demo = REPO / "samples" / "oneinch_demo.dng"
    if demo.is_file():
        seeds.append(Seed("raw", demo, 0.3))
    for rel in _SHARED_RAW:
        f = SHARED / rel
        if f.is_file():
            big = f.stat().st_size > 1_000_000
            seeds.append(Seed("raw", f, 0.2 if big else 1.0))
    for rel in _SHARED_IMAGE:
        f = SHARED / rel
        if f.is_file():
            seeds.append(Seed("image", f, 0.5))
    return seeds
