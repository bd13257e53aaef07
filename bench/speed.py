"""Speed and memory of whole processes: oneinch develop vs rawpy (LibRaw) and peers.

Makes 12.5, 24 and 50.3 MP 14-bit synthetic DNGs (noise at ISO 100, and ISO 3200 for 50 MP;
the 50 MP ISO 100 one also without its NoiseProfile, as camera raws come),
then times, one process per run: `oneinch develop` (JPEG defaults, --size 2048 preview, 16-bit
TIFF), rawpy postprocess (AHD and LINEAR, 8-bit sRGB, JPEG written by Pillow), and darktable-cli
/ rawtherapee-cli when installed. Reports wall, CPU (user+sys) and peak RSS of each process and
the ratio of wall to rawpy AHD's measured in the same run. 'oneinch jpeg, JIT' is the default
develop with the ahead-of-time kernels off (ONEINCH_AOT=0: numba imported and its JIT started).
'zygote' rows: the same commands while `oneinch daemon` runs (oneinch.zygote: the command
hands its develop to a worker forked from a process that has imported the pipeline); wall is
the command's, CPU the command's plus its worker's, RSS the worker's peak. Every other row
runs in-process (ONEINCH_ZYGOTE=0), whatever the user has running.

    .venv/bin/python bench/speed.py [--sizes 12.5,24,50] [--repeat 1]      (make bench-speed)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {"12.5": (3072, 4096), "24": (4000, 6000), "50": (6144, 8192)}
PY = sys.executable

RAWPY_SCRIPT = """
import sys, rawpy
from PIL import Image
alg = getattr(rawpy.DemosaicAlgorithm, sys.argv[3])
with rawpy.imread(sys.argv[1]) as r:
    rgb = r.postprocess(demosaic_algorithm=alg, use_camera_wb=True, output_bps=8)
Image.fromarray(rgb).save(sys.argv[2], quality=92, subsampling=0)
"""


DEVELOP = [PY, "-m", "oneinch", "develop"]

WORK_SCRIPT = """
import sys, time
from oneinch.cli import reuse_freed_memory  # first: the command's settings, before numpy
from oneinch.api import develop_file
from oneinch.isp import tiles
from oneinch.recipe import Recipe
reuse_freed_memory()  # as the command does
tiles.reuse_buffers()  # as a batch worker (or `develop A B ...`) does
size = int(sys.argv[4]) if len(sys.argv) > 4 else 0  # --size (a preview), 0: full size
recipe = Recipe().with_(output={"size": size}) if size else Recipe()
best = 1e9
for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 4):
    t = time.perf_counter()
    develop_file(sys.argv[1], sys.argv[2], recipe)
    best = min(best, time.perf_counter() - t)
print(best)
"""

WARM_SCRIPT = """
import sys
from oneinch import open_raw
from oneinch.develop import develop
from oneinch.looks.looks import preset
from oneinch.recipe import Recipe
raw = open_raw(sys.argv[1])
for method in ("ri", "rcd"):
    for tiled in (False, True):
        develop(raw, Recipe().with_(demosaic={"method": method}), tiled=tiled)
develop(raw, preset("vibrant"), tiled=True)
"""


def make_dng(path: Path, hw: tuple[int, int], iso: float,
             without_profile: Path | None = None) -> None:
    """A textured scene (Kodak-like statistics from a procedural image) unprocessed to a DNG
    (and the same raw without its NoiseProfile, as camera raws come, to ``without_profile``)."""
    from dataclasses import replace

    from oneinch.raw.dng import write_dng
    from oneinch.synthetic import demo_scene, unprocess

    h, w = hw
    scene = demo_scene(h, w)
    raw, _ = unprocess(scene, linear_input=True, iso=iso, seed=3, path=str(path))
    del scene
    write_dng(path, raw)
    if without_profile is not None:
        write_dng(without_profile, replace(raw, noise_profile=None))


def run(cmd: list[str]) -> tuple[float, float, float, int]:
    """(wall s, cpu s, peak RSS MB, return code) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        print(f"  ! {' '.join(cmd[:4])}...: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
    return wall, cpu, float("nan"), proc.returncode


def timed(cmd: list[str]) -> tuple[float, float, float, int]:
    """Run under /usr/bin/time -v when available to get the child's own peak RSS."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if gnu_time is None:
        return run(cmd)
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as f:
        wall, cpu, _, rc = run([gnu_time, "-v", "-o", f.name, *cmd])
        rss = float("nan")
        for line in Path(f.name).read_text().splitlines():
            if "Maximum resident set size" in line:
                rss = int(line.split(":")[1]) / 1024.0
    return wall, cpu, rss, rc


ZYGOTE: dict[str, str] = {}  # the bench's own zygote: its runtime dir and the stats file


def zygote_cmd(cmd: list[str]) -> list[str]:
    """``cmd`` through the bench's zygote (its worker reports its resource use to a file)."""
    return ["env", "ONEINCH_ZYGOTE=1", f"ONEINCH_RUNTIME_DIR={ZYGOTE['dir']}",
            f"ONEINCH_ZYGOTE_STATS={ZYGOTE['stats']}", *cmd]


def worker_stats() -> tuple[float, float]:
    """(CPU s, peak RSS MB) of the last zygote worker, NaN when none reported."""
    import json

    try:
        done = json.loads(Path(ZYGOTE["stats"]).read_text())
        Path(ZYGOTE["stats"]).unlink()
    except (OSError, ValueError, KeyError):
        return float("nan"), float("nan")
    return float(done["cpu_s"]), done["maxrss_kb"] / 1024.0


def cases(dng: Path, out: Path) -> list[tuple[str, list[str]]]:
    cli = [*DEVELOP, str(dng)]
    c = [
        ("rawpy AHD", [PY, "-c", RAWPY_SCRIPT, str(dng), str(out / "rawpy_ahd.jpg"), "AHD"]),
        ("rawpy LINEAR", [PY, "-c", RAWPY_SCRIPT, str(dng), str(out / "rawpy_lin.jpg"), "LINEAR"]),
        ("oneinch jpeg", [*cli, "-o", str(out / "oi.jpg")]),
        # the same with the ahead-of-time kernels off: numba imported, JIT started (oneinch._aot)
        ("oneinch jpeg, JIT", ["env", "ONEINCH_AOT=0", *cli, "-o", str(out / "oi_jit.jpg")]),
        ("oneinch --size 2048", [*cli, "-o", str(out / "oi_prev.jpg"), "--size", "2048"]),
        ("oneinch tiff16", [*cli, "-o", str(out / "oi.tif"), "--format", "tiff"]),
    ]
    if ZYGOTE:
        c += [("zygote jpeg", zygote_cmd([*cli, "-o", str(out / "zy.jpg")])),
              ("zygote --size 2048",
               zygote_cmd([*cli, "-o", str(out / "zy_prev.jpg"), "--size", "2048"]))]
    if shutil.which("darktable-cli"):
        c.append(
            (
                "darktable-cli",
                [
                    "darktable-cli",
                    str(dng),
                    str(out / "dt.jpg"),
                    "--core",
                    "--configdir",
                    str(out / "dtconf"),
                ],
            )
        )
    if shutil.which("rawtherapee-cli"):
        c.append(
            (
                "rawtherapee-cli",
                ["rawtherapee-cli", "-o", str(out / "rt.jpg"), "-d", "-Y", "-c", str(dng)],
            )
        )
    return c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="12.5,24,50")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--iso3200", action="store_true", default=True)
    ap.add_argument("--no-zygote", action="store_true", help="leave out the zygote rows")
    args = ap.parse_args()
    os.environ["ONEINCH_ZYGOTE"] = "0"  # in-process unless a row asks for the zygote
    rt = tempfile.TemporaryDirectory()
    if not args.no_zygote:
        ZYGOTE.update(dir=str(Path(rt.name) / "rt"), stats=str(Path(rt.name) / "stats.json"))
        subprocess.run(zygote_cmd([PY, "-m", "oneinch", "daemon", "start", "--idle", "60"]),
                       check=True, capture_output=True)
    try:
        run_all(args)
    finally:
        if ZYGOTE:
            subprocess.run(zygote_cmd([PY, "-m", "oneinch", "daemon", "stop"]),
                           capture_output=True)
        rt.cleanup()


def run_all(args: argparse.Namespace) -> None:
    # warm the JIT caches once (every demosaic method, strips and whole image), outside timings
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.dng"
        make_dng(warm, (512, 768), 100)
        subprocess.run([PY, "-c", WARM_SCRIPT, str(warm)], check=True)
        batch = [Path(tmp) / f"b{i:02d}.dng" for i in range(20)]
        for b in batch:
            shutil.copyfile(warm, b)
        one = min(run([*DEVELOP, str(batch[0]), "-o", tmp])[0] for _ in range(2))
        twenty = run([*DEVELOP, *map(str, batch), "-o", tmp])[0]
        work = float(subprocess.run(  # the file's own develop + write, in a warm process
            [PY, "-c", WORK_SCRIPT, str(batch[0]), str(Path(tmp) / "w.jpg")],
            check=True, capture_output=True, text=True).stdout.split()[-1])
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "import oneinch"], check=True)
        imp = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "pass"], check=True)
        imp -= time.perf_counter() - t0
    print(f"import oneinch: {imp * 1000:.0f} ms (over a bare interpreter start)")
    print(
        f"batch of 20 x 0.4 MP: {(twenty - one) / 19 * 1000:.0f} ms per extra file "
        f"(one file alone: {one:.2f} s, process start and imports included); its develop + "
        f"write alone {work * 1000:.0f} ms in a warm process -> per-file overhead "
        f"{((twenty - one) / 19 - work) * 1000:.0f} ms"
    )
    print(f"cold start of that 0.4 MP file: {one - work:.2f} s (its develop in a new process "
          f"less the same develop in a warm one): interpreter, imports, first touches of "
          f"memory, and numba's start where the ahead-of-time kernels do not serve (auto picks "
          f"iri at this size, whose kernels then run on one thread; the 'warm' lines below give "
          f"the cold start of the large files)")
    from oneinch import _aot

    print(f"ahead-of-time kernels: {'available' if _aot.available() else 'MISSING or stale'}"
          " (python -m oneinch.warm builds them; 'JIT' rows run with ONEINCH_AOT=0)")
    print(f"cores: {os.cpu_count()}; times are the min of {args.repeat} run(s), the repeats "
          "interleaved across the cases")
    header = (
        f"{'size':>6} {'ISO':>5} {'case':<22} {'wall s':>7} {'cpu s':>7} {'RSS MB':>7}"
        f" {'wall/AHD':>8} {'cpu/AHD':>8} {'RSS/AHD':>8}"
    )
    print(header)
    print("-" * len(header))
    for key in args.sizes.split(","):
        isos = [100] + ([3200] if key == "50" and args.iso3200 else [])
        for iso in isos:
            with tempfile.TemporaryDirectory() as tmp:
                tmpd = Path(tmp)
                dng = tmpd / f"synthetic_{key}MP_iso{iso}.dng"
                bare = tmpd / f"synthetic_{key}MP_iso{iso}_no_profile.dng" if key == "50" \
                    and iso == 100 else None
                make_dng(dng, SIZES[key], iso, without_profile=bare)
                ahd = None
                todo = [(name, cmd) for name, cmd in cases(dng, tmpd)
                        if iso == 100 or name in ("rawpy AHD", "oneinch jpeg",
                                                  "oneinch jpeg, JIT")]  # ISO 3200: vs AHD
                if bare is not None:  # the noise estimated from the image (most camera raws)
                    cli = [*DEVELOP, str(bare)]
                    todo += [("jpeg, no NoiseProfile", [*cli, "-o", str(tmpd / "np.jpg")]),
                             ("2048, no NoiseProfile",
                              [*cli, "-o", str(tmpd / "np_prev.jpg"), "--size", "2048"])]
                # repeats interleaved (every case once, then again): a slow spell of a shared
                # machine then falls on every case alike, not on one case's repeats
                all_runs: dict[str, list] = {name: [] for name, _ in todo}
                for _ in range(args.repeat):
                    for name, cmd in todo:
                        wall, cpu, rss, rc = timed(cmd)
                        if name.startswith("zygote"):  # the worker did the work
                            wcpu, wrss = worker_stats()
                            cpu, rss = cpu + wcpu, wrss
                            rc = rc if wrss == wrss else 1  # (NaN: it ran in-process)
                        all_runs[name].append((wall, cpu, rss, rc))
                for name, _ in todo:
                    runs = all_runs[name]
                    wall = min(r[0] for r in runs)  # shared machine: the least disturbed run
                    cpu = min(r[1] for r in runs)
                    rss = max(r[2] for r in runs)
                    rc = max(r[3] for r in runs)
                    if name == "rawpy AHD":
                        ahd = (wall, cpu, rss)
                    ratios = [v / a if ahd else float("nan") for v, a in zip(
                        (wall, cpu, rss), ahd or (1, 1, 1), strict=True)]
                    flag = "" if rc == 0 else "  (failed)"
                    print(
                        f"{key:>6} {iso:>5} {name:<22} {wall:7.2f} {cpu:7.2f} {rss:7.0f}"
                        f" {ratios[0]:8.2f} {ratios[1]:8.2f} {ratios[2]:8.2f}{flag}",
                        flush=True,
                    )
                    if name == "zygote jpeg":
                        zfull = wall
                    elif name == "zygote --size 2048":
                        print(f"{'':>6} {'':>5} {'':<22} (preview / full through the zygote: "
                              f"{wall / zfull:.2f})", flush=True)
                    if name in ("oneinch jpeg", "oneinch --size 2048"):
                        # the same develop + write in a warm process, set up as a batch
                        # worker's (malloc settings, working image reused) or the web app's
                        size = "2048" if "size" in name else "0"
                        warm = float(subprocess.run(
                            [PY, "-c", WORK_SCRIPT, str(dng), str(tmpd / "w.jpg"), "3", size],
                            check=True, capture_output=True, text=True).stdout.split()[-1])
                        if size == "0":
                            full = (wall, warm)
                            extra = f"   (a new process's extra: {wall - warm:.2f} s)"
                        else:  # the preview against the full develop, both ways
                            extra = (f"   (preview / full: {wall / full[0]:.2f} new processes,"
                                     f" {warm / full[1]:.2f} warm)")
                        print(f"{'':>6} {'':>5} {'  in a warm process':<22} {warm:7.2f}"
                              f"{'':>16} {warm / ahd[0] if ahd else float('nan'):8.2f}"
                              f"{extra}", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
