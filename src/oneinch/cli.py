"""The `oneinch` command: parses options, builds a Recipe, calls the library. No image logic here.

Exit codes: 0 done, 1 internal error (a bug: please report it), 2 bad input or usage.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Annotated


def command_environment() -> None:
    """The command's process settings, made before numpy loads (it reads them then; a user's
    own setting wins; child processes, such as batch workers, inherit them).

    ``OPENBLAS_NUM_THREADS=1``: the command runs its own threads (two strips at once). The few
    matrix products it hands to BLAS are tiny, and OpenBLAS's idle workers spin-wait after
    each for the core the other strip needs (perf at 50 MP: 5 % of all samples in
    ``blas_thread_server``, 0.1 % in sgemm). 50 MP develop, interleaved (n=6): wall median
    3.65 -> 3.47 s, CPU 6.4 -> 5.7 s.

    ``NUMPY_MADVISE_HUGEPAGE=0``: numpy asks for transparent huge pages for every array of
    4 MB and more. A fresh huge page is zeroed whole at its first touch, and in a virtual
    machine that is slow: reading a 50 MP raw (100 MB) into its new array spent 27 % of a
    preview's CPU in ``folio_zero_user`` (perf). With small pages: preview median 0.97 ->
    0.81 s (n=8 interleaved); the full develop is unchanged (its strips reuse their memory)."""
    from .zygote import COMMAND_ENV

    if "numpy" not in sys.modules:
        for k, v in COMMAND_ENV.items():
            os.environ.setdefault(k, v)


command_environment()

import typer  # noqa: E402
from typer.exceptions import Abort, Exit, TyperException  # noqa: E402

from .errors import OneinchError, OptionError  # noqa: E402
from .output.formats import FORMAT_SUFFIX, SUFFIXES  # noqa: E402

app = typer.Typer(
    name="oneinch",
    help="oneinch: an open computational camera. Develop RAW/DNG files into finished photos.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"oneinch {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", help="print the version and exit", is_eager=True,
        callback=_print_version)] = False,
) -> None:
    """oneinch: an open computational camera. Develop RAW/DNG files into finished photos."""


def _err(msg: str) -> None:
    print(f"oneinch: error: {msg}", file=sys.stderr)


def parse_wb(value: str) -> dict[str, object]:
    """'as-shot' | 'auto' | 'daylight' | 'KELVIN[,TINT]' -> WhiteBalance fields."""
    v = value.strip().lower()
    if v in ("as-shot", "asshot", "camera"):
        return {"mode": "as-shot"}
    if v in ("auto", "daylight"):
        return {"mode": v}
    parts = v.split(",")
    try:
        if len(parts) > 2:
            raise ValueError
        kelvin = float(parts[0].strip().rstrip("k"))
        tint = float(parts[1]) if len(parts) > 1 else 0.0
    except ValueError:
        raise OptionError(f"--wb {value!r}: use as-shot, auto, daylight or KELVIN[,TINT]") from None
    return {"mode": "kelvin", "kelvin": kelvin, "tint": tint}


def build_recipe(base, **opts):
    """Apply command-line options (None = not given) on top of a base Recipe."""
    from .recipe import Recipe

    r = base or Recipe()
    sections: dict[str, dict[str, object]] = {}

    def put(section: str, key: str, value: object) -> None:
        if value is not None:
            sections.setdefault(section, {})[key] = value

    if opts.get("look"):
        from .looks.looks import PRESETS

        name = opts["look"].strip().lower()
        if name not in PRESETS:
            raise OptionError(f"unknown look {opts['look']!r} (one of {', '.join(PRESETS)})")
        for sec, vals in PRESETS[name].items():
            sections.setdefault(sec, {}).update(vals)
    if opts.get("wb") is not None:  # ('' too: an error, not as-shot)
        sections["white_balance"] = parse_wb(opts["wb"])
    put("demosaic", "method", _word(opts.get("demosaic")))
    put("exposure", "ev", opts.get("exposure"))
    put("output", "format", _word(opts.get("format")))
    put("output", "quality", opts.get("quality"))
    put("output", "space", _word(opts.get("space")))
    put("output", "size", opts.get("size"))
    put("output", "bits", opts.get("bits"))
    profile = opts.get("profile")
    if profile is not None:
        word = _word(profile)
        if word in ("embedded", "matrix"):
            profile = word
        elif not Path(profile).is_file():
            raise OptionError(f"--profile {profile!r}: use embedded, matrix or a .dcp file "
                              "(no such file)")
        put("profile", "dcp", profile)
    if opts.get("lens") is not None:
        lens = _word(opts["lens"])
        if lens not in ("auto", "off"):
            raise OptionError(f"--lens {opts['lens']!r}: use auto or off")
        put("lens", "mode", lens)
    put("output", "hdr_headroom", opts.get("hdr_headroom"))
    put("output", "transfer", _word(opts.get("transfer")))
    style = _word(opts.get("style"))
    if style is not None:
        from .looks.styles import STYLES

        if style not in STYLES:
            raise OptionError(f"unknown style {opts['style']!r} (one of {', '.join(STYLES)}; "
                              "oneinch looks list)")
    put("look", "style", style)
    lut = opts.get("lut")
    if lut is not None and not Path(lut).is_file():
        raise OptionError(f"--lut {lut!r}: no such file")
    put("look", "lut", lut)
    layout = _word(opts.get("lut_layout"))
    if layout is not None and layout not in ("auto", "hald", "tiles"):
        raise OptionError(f"--lut-layout {opts['lut_layout']!r}: use auto, hald or tiles")
    put("look", "lut_layout", layout)
    strength = opts.get("strength")
    if strength is not None:
        if not 0.0 <= strength <= 1.0:  # (NaN fails too)
            raise OptionError(f"--strength {strength}: use 0..1")
        has_lut, has_style = bool(lut or r.look.lut), bool(style or r.look.style)
        if not (has_lut or has_style):
            raise OptionError("--strength needs a style or a LUT (--style, --lut or the "
                              "recipe's) to set the strength of")
        on_lut = bool(lut) or (has_lut and not has_style)
        put("look", "lut_strength" if on_lut else "style_strength", strength)
    frame = opts.get("frame")
    if frame is not None:
        from .frame import list_templates

        layouts = list_templates()
        if frame not in layouts:
            raise OptionError(f"unknown frame layout {frame!r} (one of {', '.join(layouts)}; "
                              "oneinch frame --list)")
    put("frame", "layout", frame)
    dn = opts.get("denoise")
    if dn is not None:
        d = dn.strip().lower()
        if d in ("auto", "off"):
            put("denoise", "mode", d)
        else:
            try:
                s = float(d)
            except ValueError:
                raise OptionError(f"--denoise {dn!r}: use auto, off or a strength 0..1") from None
            if not 0.0 <= s <= 1.0:
                raise OptionError(f"--denoise {dn!r}: strength must be within 0..1")
            put("denoise", "mode", "manual")
            put("denoise", "strength", s)
    return r.with_(**sections) if sections else r


def _word(value: str | None) -> str | None:
    """An option's keyword as the recipe spells it (lower case; None stays None)."""
    return None if value is None else value.strip().lower()


def output_path(src: Path, out: Path | None, fmt: str, folder: bool) -> Path:
    """Where the developed file goes: DIR/stem.ext (``folder``: ``out`` names one, as with
    several inputs or a trailing separator; or ``out`` is an existing folder), an explicit
    FILE, or beside the input."""
    suffix = FORMAT_SUFFIX[fmt]
    if out is None:
        dst = src.with_suffix(suffix)
    elif folder or out.is_dir():
        dst = out / (src.stem + suffix)
    else:
        dst = out
    if dst.resolve() == src.resolve():
        raise OptionError(f"output {dst} would overwrite the input")
    return dst


@app.command()
def develop(
    inputs: Annotated[list[Path], typer.Argument(help="RAW or DNG files")],
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="output FILE or DIR (DIR/: a folder)")
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="jpeg | tiff | png | uhdr (Ultra HDR gain-map JPEG) | heif | avif | jxl",
        ),
    ] = None,
    quality: Annotated[
        int | None, typer.Option("--quality", "-q", help="JPEG quality 1..100 (92)")
    ] = None,
    space: Annotated[
        str | None, typer.Option("--space", help="srgb | p3 | rec2020 | prophoto")
    ] = None,
    wb: Annotated[
        str | None, typer.Option("--wb", help="as-shot | auto | daylight | KELVIN[,TINT]")
    ] = None,
    demosaic: Annotated[
        str | None, typer.Option("--demosaic", help=(
            "auto (by size: iri up to 4 MP, ri to 16 MP, rcd above) | bilinear | malvar | rcd"
            " | ri | iri | iri-lr | iri-cnn (best, slowest: ~3.5 s/MP)"))
    ] = None,
    exposure: Annotated[float | None, typer.Option("--exposure", help="exposure in EV")] = None,
    size: Annotated[int | None, typer.Option("--size", help="long edge in pixels")] = None,
    denoise: Annotated[str | None, typer.Option(
        "--denoise", help="auto (by the noise level; none on nearly clean images) | off | 0..1",
    )] = None,
    look: Annotated[
        str | None, typer.Option("--look", help="neutral | authentic | vibrant")
    ] = None,
    style: Annotated[
        str | None, typer.Option("--style", help="film style (oneinch looks list)")
    ] = None,
    lut: Annotated[str | None, typer.Option("--lut", help=".cube or HaldCLUT file")] = None,
    lut_layout: Annotated[str | None, typer.Option(
        "--lut-layout", help="an image LUT's layout: auto | hald | tiles (8x8 lookup.png)",
    )] = None,
    strength: Annotated[
        float | None, typer.Option("--strength", help="style/LUT strength 0..1")
    ] = None,
    frame: Annotated[str | None, typer.Option("--frame", help="EXIF frame layout")] = None,
    recipe: Annotated[Path | None, typer.Option("--recipe", help="recipe TOML")] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="embedded | matrix | FILE.dcp")
    ] = None,
    lens: Annotated[str | None, typer.Option("--lens", help="auto | off (lensfun)")] = None,
    bits: Annotated[int | None, typer.Option("--bits", help="bit depth 8|10|12|16")] = None,
    hdr_headroom: Annotated[
        float | None, typer.Option("--hdr-headroom", help="HDR headroom in stops (3)")
    ] = None,
    transfer: Annotated[
        str | None, typer.Option("--transfer", help="sdr | pq | hlg (heif/avif)")
    ] = None,
) -> None:
    """Develop RAW/DNG files into finished photos."""
    from .recipe import Recipe, sidecar_path

    base = Recipe.load(recipe) if recipe else None
    # (a str: a Path would drop the trailing separator that says "a folder")
    named_folder = output is not None and output.endswith(("/", os.sep))
    to_folder = output is not None and (len(inputs) > 1 or named_folder)
    output = Path(output) if output is not None else None
    if output is not None and not named_folder and not output.is_dir():
        if len(inputs) > 1 and output.suffix.lower() in SUFFIXES:
            raise OptionError(f"-o {output} names one file but {len(inputs)} inputs were "
                              f"given: give a folder ({output.with_suffix('')}/)")
        if len(inputs) == 1 and not output.suffix:
            raise OptionError(f"-o {output}: name the file with its format's suffix "
                              f"({output}.jpg) or a folder with a trailing / ({output}/)")
    opts = dict(
        format=format,
        quality=quality,
        space=space,
        wb=wb,
        demosaic=demosaic,
        exposure=exposure,
        size=size,
        denoise=denoise,
        look=look,
        style=style,
        lut=lut,
        lut_layout=lut_layout,
        strength=strength,
        frame=frame,
        bits=bits,
        profile=profile,
        lens=lens,
        hdr_headroom=hdr_headroom,
        transfer=transfer,
    )
    # validate options once before touching any file
    build_recipe(base, **opts)
    # (a zygote's worker has nothing left to import for the faults to overlap)
    faulting = None if _PRELOADED else prefault_heap(_prefault_bytes(inputs, size))
    if format is None and output is not None and not to_folder and output.suffix:
        guessed = SUFFIXES.get(output.suffix.lower())
        if guessed:
            opts["format"] = guessed

    def plan(src: Path) -> tuple:
        """(recipe, target) of one input: the options over its sidecar (or --recipe)."""
        side = sidecar_path(src)
        file_base = base if base is not None else (Recipe.load(side) if side.is_file() else None)
        r = build_recipe(file_base, **opts)
        return r, output_path(src, output, r.output.format, to_folder)

    planned: dict[Path, tuple] = {}
    if len(inputs) > 1:  # two inputs of one name must not overwrite each other's photo
        by_target: dict[Path, Path] = {}
        for src in inputs:
            try:
                planned[src] = plan(src)
            except OneinchError:  # (reported when its turn comes)
                continue
            dst = planned[src][1].resolve()
            if dst in by_target:
                raise OptionError(f"{by_target[dst]} and {src} would both be written to "
                                  f"{planned[src][1]}")
            by_target[dst] = src
    failures: list[str] = []
    many = len(inputs) > 1
    if to_folder:
        _make_folder(output)  # as frame and batch do
    from .isp import tiles

    tiles.reuse_buffers()  # working images from the heap that reuse_freed_memory() keeps
    if faulting is not None:
        from . import develop as _pipeline  # noqa: F401  (its imports: while the heap faults in)
        from .output import encode as _encode  # noqa: F401

        faulting.join()  # the freed block is then whole when the first develop allocates
    progress = _progress(len(inputs))
    with progress:
        task = progress.add_task("developing", total=len(inputs))
        for src in inputs:
            t0 = time.perf_counter()
            try:
                r, dst = planned[src] if src in planned else plan(src)
                photo_path = _develop_one(src, dst, r)
                progress.console.print(
                    f"{src} -> {photo_path}  ({time.perf_counter() - t0:.2f} s)", highlight=False
                )
            except OneinchError as e:
                failures.append(str(e))
                _err(str(e))
            progress.advance(task)
    if failures:
        if many:
            print(f"oneinch: {len(failures)} of {len(inputs)} files failed:", file=sys.stderr)
            for f in failures:
                print(f"  {f}", file=sys.stderr)
        raise typer.Exit(2)


def _make_folder(folder: Path) -> None:
    from .errors import OutputError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot make the output folder ({e.strerror})", folder) from None


def _develop_one(src: Path, dst: Path, recipe) -> Path:
    from . import api

    return api.develop_file(src, dst, recipe)


class _OneFile:
    """The progress of a single file: no bar to draw, so rich is not imported (~0.04 s); the
    file's line goes to stderr as the bar's console would print it."""

    class console:
        @staticmethod
        def print(text: str, highlight: bool = False) -> None:
            print(text, file=sys.stderr)

    def __enter__(self) -> _OneFile:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: int) -> int:
        return 0

    def advance(self, task: int) -> None:
        return None


def _progress(n: int):
    if n < 2:
        return _OneFile()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=n < 2 or not console.is_terminal,
        transient=True,
    )


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="RAW or DNG file")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print what the reader found: camera, CFA, levels, matrices, white balance, opcodes, EXIF."""
    from .raw import describe, open_raw

    info = describe(open_raw(file))
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(file), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in _flatten(info):
        table.add_row(k, v)
    Console().print(table)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if (
            isinstance(v, dict)
            and v
            and all(not isinstance(x, dict) for x in v.values())
            and len(v) <= 12
        ):
            rows.extend(_flatten(v, key + "."))
        elif isinstance(v, dict):
            rows.extend(_flatten(v, key + "."))
        else:
            rows.append((key, json.dumps(v, default=str) if not isinstance(v, str) else v))
    return rows


SUBCOMMANDS = ("looks", "frame", "burst", "profile", "batch", "serve", "daemon")


def _mount_subcommands(argv: list[str] | None = None) -> None:
    """Sub-apps from commands/ (one per room), mounted when present. When ``argv`` names a
    command of this module (develop, inspect), the others are not imported (~0.15 s)."""
    import importlib

    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    if first in ("develop", "inspect"):
        return
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith(f"{__package__}.commands"):
                continue
            raise
        sub = getattr(mod, "app", None)
        func = getattr(mod, f"{name}_command", None) or getattr(mod, "command", None)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name)
        elif callable(func):
            app.command(name=name)(func)


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep and reuse the large blocks a develop frees (a strip's
    temporaries, tens of MB each, allocated again for the next strip) instead of handing them
    back to the system and faulting fresh zeroed pages in for every strip:

    - no mmap of its own for any block below 1 GiB (M_MMAP_THRESHOLD);
    - one arena for every thread (M_ARENA_MAX): a strip thread's blocks otherwise lived in
      per-thread heaps of at most 64 MB, unmapped and mapped again as strips came and went;
    - freed memory kept up to 1 GiB (M_TRIM_THRESHOLD; fixing the mmap threshold had left it
      at its 128 KB default, so every free at the heap's top was returned) and 32 MB of
      padding on each heap growth (M_TOP_PAD).

    Two strip threads allocating and freeing 12 and 36 MB blocks: ~59000 page faults per five
    rounds before the arena and trim settings, ~10 after. 50 MP develop (interleaved, n=6):
    median 3.42 -> 3.25 s, system time ~1.25 -> ~0.8 s, page faults ~400k -> ~250k, peak
    RSS unchanged (~1.0 GB). The command's own setting (a library import leaves malloc
    alone; a long-running command such as `oneinch web` keeps up to 1 GiB for its next
    develop); False where the C library is not glibc."""
    global _MALLOC_KEEPS
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = _glibc()
        _MALLOC_KEEPS = all(libc.mallopt(param, value) for param, value in (
            (-3, 1 << 30),  # M_MMAP_THRESHOLD
            (-8, 1),  # M_ARENA_MAX
            (-1, 1 << 30),  # M_TRIM_THRESHOLD
            (-2, 32 << 20),  # M_TOP_PAD
        ))
    except (OSError, AttributeError):
        return False
    return _MALLOC_KEEPS


_MALLOC_KEEPS = False  # reuse_freed_memory() took effect


@functools.lru_cache(maxsize=1)
def _glibc():
    """The C library (glibc on Linux), with malloc and free typed for pointers; OSError
    where there is none."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


PREFAULT_MAX = 256 << 20  # bytes
PREFAULT_PER_FILE_BYTE = 2.5


PREVIEW_PREFAULT_PER_PIXEL = 30  # bytes: 2.5 binned float32 RGB images


def _prefault_bytes(inputs: list[Path], size: int | None = None) -> int:
    """How much heap to fault in ahead for the develop of ``inputs``, scaled by the largest
    file, at most ``PREFAULT_MAX``:

    - full size: what the first develop of a 100 MB (50 MP, 16-bit) DNG takes fresh (~64k
      page faults above a warm process's, strips and denoise scratch), 2.5 bytes a byte;
    - a preview (``size``, the long edge): its working set is ~2.5 float32 RGB images of
      the binned size (:func:`oneinch.develop._bin_factor`, from the pixels a 16-bit file
      of that size holds at 4:3). 50 MP to 2048 px: 96 MB, which measured ~23k fresh faults
      (92 MB) in the develop; more only raised the peak RSS.

    Compressed raws hold more pixels per byte: they get less, never more than they use."""
    largest = 0
    for src in inputs:
        try:
            largest = max(largest, Path(src).stat().st_size)
        except OSError:
            continue  # the develop names the file and its problem
    if size is None or size <= 0:
        return int(min(PREFAULT_MAX, PREFAULT_PER_FILE_BYTE * largest))
    from .recipe import Output

    pixels = largest / 2
    factor = Output(size=size).bin_factor((pixels * 4 / 3) ** 0.5)
    if factor == 1:  # developed at full size, then resized
        return int(min(PREFAULT_MAX, PREFAULT_PER_FILE_BYTE * largest))
    return int(min(PREFAULT_MAX, PREVIEW_PREFAULT_PER_PIXEL * pixels / factor**2))


def prefault_heap(nbytes: int) -> threading.Thread | None:
    """Fault ``nbytes`` of heap in on another thread, then free it to malloc, which keeps it
    (:func:`reuse_freed_memory`): the develop's first strips then take pages already mapped
    instead of faulting fresh zeroed ones in on the strip threads. The faults cost the same
    CPU, but on the core the single-threaded imports leave idle (numpy, OpenCV, the
    pipeline: ~0.2 s). The develop joins the thread before it starts: a block still held
    while the strips allocate would be passed over (the pages faulted twice, the RSS
    higher). Whole processes against the same command with PREFAULT_MAX = 0, interleaved:
    50 MP default develop (n=10) median 2.13 -> 1.99 s, min 1.95 -> 1.84; at ISO 3200 (n=5)
    4.56 -> 4.41 s; 12.5 MP (n=8) median 1.45 -> 1.29 s, min 1.20 -> 1.22; peak RSS and page
    faults the same (50 MP: 582-587 MB, ~114k faults, both ways). Needs glibc and
    :func:`reuse_freed_memory` (else malloc could return the block to the system); returns
    the thread, or None when it does nothing. Previews (``--size``) fault in their
    smaller working set (:func:`_prefault_bytes`): 50 MP to 2048 px, the develop's own time
    (the command's per-file figure, n=10, interleaved) median 0.25 -> 0.20 s."""
    import ctypes

    if nbytes <= 0 or not _MALLOC_KEEPS:
        return None

    def fault() -> None:
        libc = _glibc()
        block = libc.malloc(nbytes)
        if block:
            ctypes.memset(block, 0, nbytes)  # (ctypes calls release the GIL)
            libc.free(block)

    t = threading.Thread(target=fault, name="oneinch-prefault", daemon=True)
    t.start()
    return t


def command(argv: list[str] | None = None):
    """The click command ``app`` builds (with the sub-apps ``argv`` needs): what ``main``
    runs; the zygote builds it once before it forks its workers."""
    _mount_subcommands(argv)
    return typer.main.get_command(app)


_PRELOADED = False  # this process was forked from a zygote that had imported the pipeline


def main(argv: list[str] | None = None, command=None) -> int:
    """Entry point: run the app, turn user errors into one line and exit code 2.
    ``command``: a click command made by :func:`command` (a zygote's worker)."""
    global _PRELOADED
    reuse_freed_memory()
    if command is None:
        _mount_subcommands(argv)
    else:
        _PRELOADED = True
    try:
        if command is None:
            rv = app(args=argv, standalone_mode=False, prog_name="oneinch")
        else:
            rv = command.main(args=argv, standalone_mode=False, prog_name="oneinch")
    except OneinchError as e:
        _err(str(e))
        return e.exit_code
    except Exit as e:
        return int(getattr(e, "exit_code", 0) or 0)
    except Abort:
        _err("aborted")
        return 130
    except TyperException as e:  # usage errors: wrong or missing options
        fmt = getattr(e, "format_message", None)
        if type(e).__name__ == "NoArgsIsHelpError" and callable(fmt):  # a bare command: help
            print(fmt(), file=sys.stderr)
            return 2
        _err((fmt() if callable(fmt) else str(e)).replace("\n", " "))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except MemoryError:
        _err("out of memory")
        return 2
    except Exception as e:
        import traceback

        if os.environ.get("ONEINCH_DEBUG"):
            traceback.print_exc()
        if _interrupted(e):  # Ctrl-C inside a compiled call (SystemError from KeyboardInterrupt)
            _err("interrupted")
            return 130
        if isinstance(e, FileNotFoundError) and not _cwd_exists():
            _err("the working directory no longer exists (relative paths have nothing to "
                 "start from): cd to another, or give absolute paths")
            return 2
        _err(
            f"internal error ({type(e).__name__}: {e}); please report it"
            " (ONEINCH_DEBUG=1 for details)"
        )
        return 1
    if isinstance(rv, int) and not isinstance(rv, bool):  # typer.Exit(n) in non-standalone mode
        return rv
    return 0


def _interrupted(e: BaseException) -> bool:
    """A KeyboardInterrupt somewhere in ``e``'s chain: a signal that arrived while numba ran
    surfaces as SystemError('... returned a result with an exception set') caused by it."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _cwd_exists() -> bool:
    try:
        os.getcwd()
    except OSError:
        return False
    return True


def entry() -> None:
    code = main()
    finish(code)


def finish(code: int) -> None:
    """End the command's process. Everything of ours is written, closed and renamed by now:
    the exit handlers run (thread and process pools joined, temporary directories removed,
    logging flushed: ``atexit``), then the process ends without the interpreter's teardown,
    which frees every module and object one by one and walks them in its last garbage
    collections (numba, typer and numpy made most). Measured (bench/speed.py's raw, whole
    processes): the teardown took 0.03-0.04 s of a preview's ~0.6 s and of the 50 MP
    develop; what is left of the exit is the kernel's (unmapping the memory)."""
    import atexit

    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()  # (if an exit handler collects: the objects made so far are not walked)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
