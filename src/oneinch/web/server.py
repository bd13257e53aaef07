"""The browser app: FastAPI routes over the library, a static page with no build step.

Everything is confined to one folder (the workspace): names in URLs are resolved inside it and
anything that escapes is refused (403). Previews are developed at ``PREVIEW_SIZE`` (develop's
2x2-binning fast path for large sensors), cached by (file, mtime, recipe hash). The last
``SCENES`` previews' scenes (everything up to the display stages: develop.Scene) are kept, so a
change of look, style, LUT, tone or frame re-renders only tone, look and sharpening. Developing is
serialised by one lock: the pipeline's numba kernels already use every core, and cached
previews are served concurrently. Exports run in a background thread and report progress as
server-sent events (WHATWG HTML, section 9.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request

from ..batch import RAW_SUFFIXES
from ..errors import InputError, OneinchError, OptionError
from ..recipe import Recipe, sidecar_path

STATIC = Path(__file__).parent / "static"
JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})
LUT_SUFFIXES = frozenset({".cube"})
PREVIEW_SIZE = 1200
THUMB_SIZE = 256
EXPORT_DIR = "export"
DEFAULT_MAX_UPLOAD = 200 * 1024 * 1024
CACHE_BYTES = 256 * 1024 * 1024
SCENES = 4  # previews' scenes kept (develop.Scene, ~13 MB each at 1200 px)
WB_MODES = ("as-shot", "auto", "daylight", "kelvin")

# magic numbers of what may be uploaded: TIFF-based raws/DNG, JPEG, and common raw containers
_MAGIC = (
    b"II*\x00", b"MM\x00*", b"\xff\xd8\xff", b"IIRO", b"IIRS", b"IIU\x00", b"FUJIFILM", b"FOVb",
)  # fmt: skip


def _is_allowed_content(head: bytes, suffix: str) -> bool:
    if suffix == ".cr3":  # ISO base media file: 'ftyp' at offset 4
        return head[4:8] == b"ftyp"
    if suffix in JPEG_SUFFIXES:
        return head.startswith(b"\xff\xd8\xff")
    return any(head.startswith(m) for m in _MAGIC)


@dataclass
class _ExportJob:
    total: int
    events: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


class Workspace:
    """The opened folder and everything the app keeps about it (caches, export jobs)."""

    def __init__(self, root: Path, max_upload: int = DEFAULT_MAX_UPLOAD,
                 preview_size: int = PREVIEW_SIZE) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InputError("not a folder", root)
        self.max_upload = int(max_upload)
        self.preview_size = int(preview_size)
        self.develop_lock = threading.Lock()
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()
        self._raws: OrderedDict[tuple, Any] = OrderedDict()
        self._scenes: OrderedDict[tuple, Any] = OrderedDict()
        self.jobs: dict[str, _ExportJob] = {}

    # -- files ---------------------------------------------------------------------------------
    def resolve(self, name: str) -> Path:
        """A name inside the folder -> its path; OneinchError 'outside' for anything else."""
        if not name or "\x00" in name:
            raise _Refused(400, "empty or invalid file name")
        p = (self.root / name).resolve()
        if p != self.root and not p.is_relative_to(self.root):
            raise _Refused(403, f"{name}: path outside the opened folder")
        if not p.is_file():
            raise _Refused(404, f"{name}: no such file in the opened folder")
        return p

    def files(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted(self.root.iterdir(), key=lambda q: q.name.lower()):
            suffix = p.suffix.lower()
            if not p.is_file() or p.name.startswith("."):
                continue
            if suffix in RAW_SUFFIXES or suffix in JPEG_SUFFIXES:
                out.append({
                    "name": p.name,
                    "kind": "jpeg" if suffix in JPEG_SUFFIXES else "raw",
                    "bytes": p.stat().st_size,
                    "sidecar": sidecar_path(p).is_file(),
                })  # fmt: skip
        return out

    def luts(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_file() and p.suffix.lower() in LUT_SUFFIXES)

    def base_recipe(self, path: Path) -> Recipe:
        side = sidecar_path(path)
        return Recipe.load(side) if side.is_file() else Recipe()

    # -- developing ----------------------------------------------------------------------------
    def _raw(self, path: Path):
        from ..raw import open_raw

        key = (str(path), *_stamp(path))
        if key in self._raws:
            self._raws.move_to_end(key)
            return self._raws[key]
        raw = open_raw(path)
        self._raws[key] = raw
        while len(self._raws) > 3:
            self._raws.popitem(last=False)
        return raw

    def _scene(self, path: Path, recipe: Recipe):
        """The develop.Scene of ``path`` under ``recipe`` (kept: a change of look, style, LUT,
        tone or frame re-renders it instead of developing the raw again)."""
        from ..develop import develop_scene, scene_key

        key = (str(path), *_stamp(path), scene_key(recipe))
        scene = self._scenes.get(key)
        if scene is not None and scene.renders_exactly(recipe):
            self._scenes.move_to_end(key)
            return scene
        # (none yet, or one made without the binned prepass that this recipe's local tone
        # operator reads on a large raw: made again, with it, and kept for every look)
        scene = develop_scene(self._raw(path), recipe)
        self._scenes[key] = scene
        while len(self._scenes) > SCENES:
            self._scenes.popitem(last=False)
        return scene

    def develop_photo(self, path: Path, recipe: Recipe, preview: bool = False):
        """The finished (framed) Photo of ``path`` under ``recipe``; call with develop_lock.
        ``preview``: through the raw's kept scene (:meth:`_scene`; develop.render, the same
        image within float rounding); else a plain develop (exports: full size, nothing
        kept)."""
        from ..api import _framed
        from ..develop import develop, render

        if path.suffix.lower() in JPEG_SUFFIXES:
            photo = _develop_jpeg(path, recipe)
        elif preview:
            photo = render(self._scene(path, recipe), recipe)
        else:
            photo = develop(self._raw(path), recipe)
        if recipe.frame.layout:
            photo = _framed(photo, recipe)
        return photo

    def image_bytes(self, path: Path, recipe: Recipe, size: int, kind: str) -> bytes:
        """JPEG bytes of ``path`` developed with ``recipe`` at long edge ``size``, cached."""
        from ..output.encode import encode_bytes

        r = recipe.with_(output={"size": size, "format": "jpeg", "quality": 85,
                                 "subsampling": "4:2:0", "space": "srgb", "bits": 0})
        if r.demosaic.method == "auto":
            # an interactive preview: 'auto' runs iri on a raw too small to be binned
            # (0.38 s/MP, Kodak-24 40.75 dB); ri is 0.03 s/MP at 39.90 dB (bench/
            # quality_demosaic.py), and a bundled 1.5 MP raw's 1200-px preview takes 0.25
            # s instead of 0.64. Larger raws are binned and never demosaiced; exports
            # develop as the recipe says.
            r = r.with_(demosaic={"method": "ri"})
        # (the LUT's own stamp: a .cube edited on disk makes a new preview, as the export's)
        lut: tuple = ()
        if r.look.lut:
            with contextlib.suppress(OSError):  # (gone: the develop says so)
                lut = _stamp(Path(r.look.lut))
        key = (str(path), *_stamp(path), r.hash(), kind, lut)
        hit = self._cache_get(key)
        if hit is not None:
            return hit
        with self.develop_lock:
            hit = self._cache_get(key)  # another request may have made it meanwhile
            if hit is not None:
                return hit
            # (only the editing view keeps a scene: thumbnails and the 'before' view, made
            # once per file, would push the scene being edited out of the few kept)
            data = encode_bytes(self.develop_photo(path, r, preview=kind == "after"), r.output)
        self._cache_put(key, data)
        return data

    def _cache_get(self, key: tuple) -> bytes | None:
        with self._cache_lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
            return data

    def _cache_put(self, key: tuple, data: bytes) -> None:
        with self._cache_lock:
            if key in self._cache:
                return
            self._cache[key] = data
            self._cache_bytes += len(data)
            while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= len(old)

    # -- export --------------------------------------------------------------------------------
    def export_path(self, path: Path, recipe: Recipe, named: str | None = None) -> Path:
        """export/STEM.EXT; ``named``: the STEM instead (two files of one stem in a job)."""
        from ..output.formats import FORMAT_SUFFIX

        stem = named or path.stem
        return self.root / EXPORT_DIR / (stem + FORMAT_SUFFIX[recipe.output.format])

    def export_one(self, path: Path, recipe: Recipe, named: str | None = None) -> Path:
        from ..output.encode import write

        dst = self.export_path(path, recipe, named)
        dst.parent.mkdir(exist_ok=True)
        with self.develop_lock:
            photo = self.develop_photo(path, recipe)
        return write(photo, dst, recipe.output)

    def start_export(self, items: list[tuple[Path, Recipe]]) -> str:
        job_id = uuid.uuid4().hex[:12]
        job = _ExportJob(total=len(items))
        self.jobs[job_id] = job

        # files of one stem (up.dng and up.jpg) would write one export: each is named by its
        # whole name then (up.dng.jpg, up.jpg.jpg)
        stems: dict[str, int] = {}
        for path, recipe in items:
            k = str(self.export_path(path, recipe))
            stems[k] = stems.get(k, 0) + 1

        def run() -> None:
            for i, (path, recipe) in enumerate(items, 1):
                event: dict[str, Any] = {"done": i, "total": job.total, "file": path.name}
                shared = stems[str(self.export_path(path, recipe))] > 1
                try:
                    dst = self.export_one(path, recipe, path.name if shared else None)
                    event["output"] = str(dst.relative_to(self.root))
                except OneinchError as e:
                    event["error"] = str(e)
                except Exception as e:  # reported to the page, never a dead progress bar
                    event["error"] = f"{path.name}: internal error ({type(e).__name__}: {e})"
                job.events.append(event)
            job.finished = True

        threading.Thread(target=run, name=f"export-{job_id}", daemon=True).start()
        return job_id


def _stamp(path: Path) -> tuple[int, int, int]:
    """A file as the caches know it: modification time, size and inode (a file replaced
    with its old time kept is still another file)."""
    st = path.stat()
    return st.st_mtime_ns, st.st_size, st.st_ino


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _develop_jpeg(path: Path, recipe: Recipe):
    """A finished JPEG: decode sRGB, exposure and the look (no tone curve: it is display-
    referred already), keeping its EXIF for the frame."""
    import numpy as np
    from PIL import Image, ImageOps

    from ..isp import spaces
    from ..looks.looks import apply_look
    from ..photo import Photo
    from ..raw.exif import exif_from_pil, shot_info_from_exif

    try:
        with Image.open(path) as im:
            im.load()
            shot = shot_info_from_exif(exif_from_pil(im))
            upright = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, SyntaxError) as e:
        raise InputError(f"cannot read image ({e})", path) from None
    size = recipe.output.size
    if size and max(upright.size) > size:
        upright.thumbnail((size, size), Image.Resampling.LANCZOS)
    x = np.asarray(upright, dtype=np.float32) / np.float32(255.0)
    transfer = spaces.SPACES["srgb"].transfer
    lin = spaces.decode(x, transfer)
    if recipe.exposure.ev:
        lin = lin * np.float32(2.0**recipe.exposure.ev)
    lin = apply_look(np.clip(lin, 0.0, 1.0), recipe.look, "srgb")
    rgb = np.ascontiguousarray(spaces.encode(lin, transfer), dtype=np.float32)
    from dataclasses import replace

    return Photo(rgb=rgb, space="srgb", shot=replace(shot, orientation=1), source=str(path))


# -- recipe <-> view parameters ------------------------------------------------------------------

def view_of(recipe: Recipe, root: Path | None = None) -> dict[str, Any]:
    """The page's controls for a Recipe."""
    wb = recipe.white_balance
    lut = recipe.look.lut
    if lut and root is not None:
        with contextlib.suppress(ValueError):
            lut = str(Path(lut).resolve().relative_to(root))
    return {
        "look": recipe.look.name,
        "style": recipe.look.style or "",
        "style_strength": recipe.look.style_strength,
        "lut": lut or "",
        "lut_strength": recipe.look.lut_strength,
        "ev": recipe.exposure.ev,
        "wb": wb.mode,
        "kelvin": wb.kelvin or 5500.0,
        "tint": wb.tint,
        "frame": recipe.frame.layout or "",
    }


def apply_view(base: Recipe, view: dict[str, Any], ws: Workspace | None = None) -> Recipe:
    """Base recipe + the page's controls -> Recipe. Bad values raise OptionError."""
    from ..looks.looks import PRESETS
    from ..looks.styles import STYLES

    v = {**view_of(base), **{k: val for k, val in view.items() if val is not None}}
    r = base
    look = str(v["look"])
    if look not in PRESETS:
        raise OptionError(f"unknown look {look!r} (one of {', '.join(PRESETS)})")
    if look != base.look.name:
        r = r.with_(**PRESETS[look])
    style = str(v["style"]) or None
    if style is not None and style not in STYLES:
        raise OptionError(f"unknown style {style!r}")
    lut = str(v["lut"]) or None
    if lut is not None and ws is not None:
        lut_path = ws.resolve(lut)
        if lut_path.suffix.lower() not in LUT_SUFFIXES:
            raise OptionError(f"{lut}: not a .cube LUT")
        lut = str(lut_path)
    wb_mode = str(v["wb"])
    if wb_mode not in WB_MODES:
        raise OptionError(f"unknown white balance {wb_mode!r} (one of {', '.join(WB_MODES)})")
    wb: dict[str, Any] = {"mode": wb_mode, "kelvin": None, "tint": 0.0}
    if wb_mode == "kelvin":
        wb.update(kelvin=_num(v["kelvin"], "kelvin"), tint=_num(v["tint"], "tint"))
    frame = str(v["frame"]) or None
    if frame is not None:
        from ..frame import list_templates

        if frame not in list_templates():
            raise OptionError(f"unknown frame layout {frame!r}")
    return r.with_(
        look={"style": style, "style_strength": _unit(v["style_strength"], "style_strength"),
              "lut": lut, "lut_strength": _unit(v["lut_strength"], "lut_strength")},
        exposure={"ev": _num(v["ev"], "ev")},  # (the recipe checks its range)
        white_balance=wb,
        frame={"layout": frame},
    )  # fmt: skip


def _num(value: Any, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be a number, not {value!r}") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise OptionError(f"{name} must be finite")
    return x


def _unit(value: Any, name: str) -> float:
    x = _num(value, name)
    if not 0.0 <= x <= 1.0:
        raise OptionError(f"{name} {x} is outside 0..1")
    return x


# -- the app --------------------------------------------------------------------------------------

def create_app(root: str | Path, *, max_upload: int = DEFAULT_MAX_UPLOAD,
               preview_size: int = PREVIEW_SIZE, allowed_hosts: list[str] | None = None):
    """The FastAPI app for the folder ``root``. ``allowed_hosts`` guards against DNS rebinding
    (default: localhost names only)."""
    from fastapi import FastAPI
    from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    ws = Workspace(Path(root), max_upload=max_upload, preview_size=preview_size)
    app = FastAPI(title="oneinch", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.workspace = ws
    app.add_middleware(
        TrustedHostMiddleware,
        allowed_hosts=allowed_hosts or ["127.0.0.1", "localhost", "[::1]", "::1"],
    )

    @app.middleware("http")
    async def same_origin_writes(request: Request, call_next):
        # a page on another origin must not make this server write files (CSRF)
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin:
            if urlsplit(origin).netloc != request.headers.get("host", ""):
                return JSONResponse({"detail": "cross-origin request refused"}, status_code=403)
        return await call_next(request)

    @app.exception_handler(_Refused)
    async def refused(_request: Request, exc: _Refused):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(OneinchError)
    async def user_error(_request: Request, exc: OneinchError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    def file_and_recipe(name: str, params: dict[str, Any]) -> tuple[Path, Recipe]:
        path = ws.resolve(name)
        return path, apply_view(ws.base_recipe(path), params, ws)

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/files")
    def files():
        from ..frame import list_templates
        from ..looks.looks import DESCRIPTIONS
        from ..looks.styles import STYLES

        return {
            "folder": ws.root.name or str(ws.root),
            "files": ws.files(),
            "looks": list(DESCRIPTIONS),
            "styles": sorted(STYLES),
            "frames": sorted(list_templates()),
            "luts": ws.luts(),
            "max_upload": ws.max_upload,
        }

    @app.get("/api/thumb/{name:path}")
    def thumb(name: str):
        path = ws.resolve(name)
        data = ws.image_bytes(path, ws.base_recipe(path), THUMB_SIZE, "thumb")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})

    @app.get("/api/preview/{name:path}")
    def preview(name: str, request: Request):
        params = dict(request.query_params)
        before = params.pop("before", "0") in ("1", "true")
        path, recipe = file_and_recipe(name, params)
        if before:  # the untouched default develop, same size
            recipe, kind = Recipe(), "before"
        else:
            kind = "after"
        data = ws.image_bytes(path, recipe, ws.preview_size, kind)
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "no-cache", "X-Recipe-Hash": recipe.hash()})

    @app.get("/api/exif/{name:path}")
    def exif(name: str):
        path = ws.resolve(name)
        return _exif_panel(ws, path)

    @app.get("/api/recipe/{name:path}")
    def get_recipe(name: str):
        path = ws.resolve(name)
        r = ws.base_recipe(path)
        return {"view": view_of(r, ws.root), "recipe": r.to_dict(), "hash": r.hash(),
                "sidecar": sidecar_path(path).is_file()}

    @app.put("/api/recipe/{name:path}")
    async def put_recipe(name: str, request: Request):
        params = await _json_body(request)
        path, recipe = file_and_recipe(name, params)
        side = sidecar_path(path)
        kept = recipe
        if recipe.look.lut and os.path.isabs(recipe.look.lut):  # the folder's LUT: written
            # relative to the sidecar (Recipe.save takes relative paths as the current
            # folder's), so the folder can move
            with contextlib.suppress(ValueError):  # (Windows: another drive)
                kept = recipe.with_(look={"lut": os.path.relpath(recipe.look.lut)})
        await run_in_threadpool(kept.save, side)
        return {"saved": side.name, "hash": recipe.hash(), "view": view_of(recipe, ws.root)}

    @app.post("/api/export")
    async def export(request: Request):
        body = await _json_body(request)
        names = body.get("names")
        if names is None:
            names = [f["name"] for f in ws.files()]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _Refused(400, "names must be a list of file names")
        view = body.get("view")
        if view is not None and not isinstance(view, dict):
            raise _Refused(400, "view must be an object of settings")
        items = []
        for n in names:
            path = ws.resolve(n)
            base = ws.base_recipe(path)
            items.append((path, apply_view(base, view, ws) if view else base))
        job = ws.start_export(items)
        return {"job": job, "total": len(items)}

    @app.get("/api/export/{job}/events")
    async def export_events(job: str):
        j = ws.jobs.get(job)
        if j is None:
            raise _Refused(404, f"no export job {job!r}")

        async def stream():
            sent = 0
            yield "retry: 1000\n\n"
            while True:
                while sent < len(j.events):
                    yield f"data: {json.dumps(j.events[sent])}\n\n"
                    sent += 1
                if j.finished and sent >= len(j.events):
                    end = {"total": j.total, "errors": sum(1 for e in j.events if "error" in e)}
                    yield f"event: end\ndata: {json.dumps(end)}\n\n"
                    return
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.post("/api/upload")
    async def upload(request: Request):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > ws.max_upload + 64 * 1024:
            raise _Refused(413, f"upload of {int(length)} bytes is over the "
                                f"{ws.max_upload} byte limit")
        form = await request.form(max_files=64, max_fields=16)
        saved: list[str] = []
        used = [0]  # bytes of this request's files so far: the limit is per request
        try:
            for _key, item in form.multi_items():
                if isinstance(item, str):
                    continue
                saved.append(await _save_upload(ws, item, used))
        finally:
            await form.close()
        if not saved:
            raise _Refused(400, "no file in the upload")
        return {"saved": saved}

    return app


async def _json_body(request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # (JSONDecodeError, UnicodeDecodeError: ValueErrors;
        # a body nested thousands deep: RecursionError)
        raise _Refused(400, "the request body must be JSON") from None
    if not isinstance(body, dict):
        raise _Refused(400, "the request body must be a JSON object")
    return body


MAX_NAME_BYTES = 200  # an upload's name (the atomic write's temp name adds ~16 to it; 255 max)


def _reserve(folder: Path, name: str) -> Path:
    """A new file ``name`` (or ``stem-N.ext``) in ``folder``, created empty and exclusively
    (O_EXCL): two uploads of one name at once never get the same file."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(10_000):
        dst = folder / (name if n == 0 else f"{stem}-{n}{suffix}")
        try:
            os.close(os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        return dst
    raise _Refused(409, f"{name}: too many files of this name")


async def _save_upload(ws: Workspace, item, used: list[int]) -> str:
    """Check name, type and size of one uploaded file and store it in the folder atomically.
    ``used``: bytes the request's earlier files took (the limit is the request's)."""
    from ..output.atomic import atomic_path

    name = Path((item.filename or "").replace("\\", "/")).name
    suffix = Path(name).suffix.lower()
    if (not name or name.startswith(".") or any(ord(c) < 32 or ord(c) == 127 for c in name)
            or len(name.encode("utf-8", "replace")) > MAX_NAME_BYTES):
        raise _Refused(400, f"bad upload file name {item.filename[:80]!r} (control "
                            f"characters, or over {MAX_NAME_BYTES} bytes)")
    if suffix not in RAW_SUFFIXES and suffix not in JPEG_SUFFIXES:
        raise _Refused(415, f"{name}: only camera raws, DNG and JPEG files can be uploaded")
    head = await item.read(16)
    if not _is_allowed_content(head, suffix):
        raise _Refused(415, f"{name}: the content is not a {suffix[1:].upper()} file")
    await item.seek(0)
    dst = _reserve(ws.root, name)
    try:
        with atomic_path(dst) as tmp, open(tmp, "wb") as f:
            while chunk := await item.read(1 << 20):
                used[0] += len(chunk)
                if used[0] > ws.max_upload:
                    raise _Refused(413, f"{name}: the upload is over the {ws.max_upload} "
                                        "byte limit")
                f.write(chunk)
    except BaseException:
        with contextlib.suppress(OSError):  # (the reserved name, still empty)
            if dst.stat().st_size == 0:
                dst.unlink()
        raise
    return dst.name


def _exif_panel(ws: Workspace, path: Path) -> dict[str, Any]:
    if path.suffix.lower() in JPEG_SUFFIXES:
        from PIL import Image

        from ..raw.exif import exif_from_pil, shot_info_from_exif

        with Image.open(path) as im:
            shot = shot_info_from_exif(exif_from_pil(im))
            size = {"width": im.width, "height": im.height}
        info: dict[str, Any] = {"camera": " ".join(x for x in (shot.make, shot.model) if x),
                                "size": size}
        for k in ("lens", "focal_length", "f_number", "exposure_time", "iso", "datetime"):
            info[k] = getattr(shot, k, None)
    else:
        from ..raw import describe

        with ws.develop_lock:
            d = describe(ws._raw(path))
        info = {"camera": d.get("camera"), "size": d.get("size"), "cfa": (d.get("cfa") or {})
                .get("name"), "dng_version": d.get("dng_version")}
        shot = d.get("exif") or {}  # (describe's shot data)
        info.update({k: shot.get(k) for k in ("lens", "focal_length", "f_number",
                                                "exposure_time", "iso", "datetime")})
    info["file"] = path.name
    info["bytes"] = path.stat().st_size
    return json.loads(json.dumps(info, default=str))


def serve(folder: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000,
          max_upload: int = DEFAULT_MAX_UPLOAD, open_browser: bool = False) -> None:
    """Run the app with uvicorn until interrupted. No folder: a fresh temporary workspace."""
    import tempfile

    import uvicorn

    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="oneinch-"))
    hosts = None
    if host not in ("127.0.0.1", "localhost", "::1"):
        hosts = ["*"]  # the user chose to listen beyond loopback
    app = create_app(root, max_upload=max_upload, allowed_hosts=hosts)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    print(f"oneinch serve: {root.resolve()} at {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")


class ServerThread:
    """Run an app with uvicorn in a background thread on 127.0.0.1 and a free port (tests,
    notebooks). ``with ServerThread(app) as url: ...``"""

    def __init__(self, app, host: str = "127.0.0.1") -> None:
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2,
                                limit_concurrency=256, backlog=256)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> str:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


__all__ = ["ServerThread", "Workspace", "apply_view", "create_app", "serve", "view_of"]

