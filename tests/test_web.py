"""oneinch serve over real HTTP on 127.0.0.1: previews (concurrent, cached, equal to develop),
confinement to the opened folder, upload limits, sidecars and export progress (SSE)."""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from oneinch.recipe import Recipe, sidecar_path
from oneinch.web.server import ServerThread, apply_view, create_app, view_of

MAX_UPLOAD = 100_000


def _scene(seed: int) -> np.ndarray:
    h, w = 64, 96
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, 0.3 + 0.4 * y / h, 0.5 + 0.3 * np.cos((x - y + seed) / 11.0)], -1)
    img[20:40, 30:60] = np.random.default_rng(seed).random(3) * 0.8 + 0.1
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from oneinch.synthetic import make_dng

    d = tmp_path_factory.mktemp("photos")
    for i in range(3):
        make_dng(d / f"img{i}.dng", _scene(i))
    (d / "notes.txt").write_text("not a photo")
    (tmp_path_factory.getbasetemp() / "secret.txt").write_text("outside")
    return d


@pytest.fixture(scope="module")
def url(folder):
    app = create_app(folder, max_upload=MAX_UPLOAD)
    with ServerThread(app) as u:
        yield u


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def _send(url: str, method: str, body: bytes, ctype: str, headers: dict | None = None):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": ctype, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET with the path sent exactly as written (no client-side dot-segment removal)."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, data in files:
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                  f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        return np.asarray(im.convert("RGB"), dtype=np.float32)


VIEWS = [
    {"look": "neutral"},
    {"look": "authentic"},
    {"look": "vibrant"},
    {"look": "neutral", "ev": "1"},
    {"look": "neutral", "style": "bw-natural"},
]


def test_50_concurrent_previews(url, folder):
    from oneinch.develop import develop
    from oneinch.output.encode import encode_bytes
    from oneinch.raw import open_raw

    requests = [VIEWS[i % len(VIEWS)] for i in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(
            lambda v: _get(f"{url}/api/preview/img0.dng?{urlencode(v)}"), requests))
    assert [s for s, _, _ in results] == [200] * 50, [b[:200] for s, b, _ in results if s != 200]
    by_view: dict[int, set[bytes]] = {}
    for i, (_, body, _) in enumerate(results):
        by_view.setdefault(i % len(VIEWS), set()).add(body)
    assert all(len(v) == 1 for v in by_view.values()), "the same view gave different previews"
    images = [_decode(next(iter(by_view[k]))) for k in range(len(VIEWS))]
    assert len({img.tobytes() for img in images}) == len(VIEWS), "views did not change the image"
    neutral, _, vibrant, brighter, bw = images
    assert neutral.shape == (64, 96, 3)
    assert brighter.mean() > neutral.mean() + 10  # +1 EV is brighter
    chroma = lambda im: float(np.abs(im - im.mean(-1, keepdims=True)).mean())  # noqa: E731
    assert chroma(vibrant) > chroma(neutral)  # vibrant: more saturation and vibrance
    assert chroma(bw) < 2.0 < chroma(neutral)  # the b/w style removed the colour
    # the preview is exactly the library's develop at preview settings (demosaic 'auto' as
    # ri: test_previews_demosaic_fast_exports_as_the_recipe_says)
    recipe = apply_view(Recipe(), {"look": "neutral"}).with_(
        output={"size": 1200, "format": "jpeg", "quality": 85, "subsampling": "4:2:0"},
        demosaic={"method": "ri"})
    direct = encode_bytes(develop(open_raw(folder / "img0.dng"), recipe), recipe.output)
    assert next(iter(by_view[0])) == direct


@pytest.mark.parametrize("path", [
    "/api/preview/..%2F..%2Fsecret.txt",
    "/api/preview/../../secret.txt",
    "/api/exif/%2Fetc%2Fpasswd",
    "/api/thumb/..%2Fsecret.txt",
    "/api/recipe/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/preview/img0.dng?lut=..%2F..%2Fsecret.txt",
])
def test_path_traversal_refused(url, path):
    status, body = _raw_get(url, path)
    assert status == 403, (status, body)
    assert b"outside the opened folder" in body


def test_symlink_out_of_folder_refused(url, folder, tmp_path):
    target = tmp_path / "elsewhere.dng"
    target.write_bytes((folder / "img1.dng").read_bytes())
    link = folder / "link.dng"
    link.symlink_to(target)
    try:
        status, body = _raw_get(url, "/api/preview/link.dng")
        assert status == 403 and b"outside the opened folder" in body
    finally:
        link.unlink()
    status, body = _raw_get(url, "/api/preview/missing.dng")
    assert status == 404 and b"no such file" in body


def test_uploads_limited_in_size_and_type(url, folder):
    big = b"II*\x00" + bytes(MAX_UPLOAD + 200_000)
    body, ctype = _multipart([("big.dng", big)])
    status, msg = _send(f"{url}/api/upload", "POST", body, ctype)
    assert status == 413 and b"limit" in msg
    assert not (folder / "big.dng").exists()
    body, ctype = _multipart([("doc.txt", b"hello")])
    status, msg = _send(f"{url}/api/upload", "POST", body, ctype)
    assert status == 415 and b"only camera raws" in msg
    body, ctype = _multipart([("fake.dng", b"<html>not a raw</html>")])
    status, msg = _send(f"{url}/api/upload", "POST", body, ctype)
    assert status == 415 and b"not a DNG" in msg
    assert not (folder / "fake.dng").exists()
    good = (folder / "img2.dng").read_bytes()
    body, ctype = _multipart([("../../escape.dng", good)])
    status, msg = _send(f"{url}/api/upload", "POST", body, ctype)
    assert status == 200, msg
    assert json.loads(msg)["saved"] == ["escape.dng"]
    assert (folder / "escape.dng").read_bytes() == good
    assert not (folder.parent.parent / "escape.dng").exists()
    _, listing, _ = _get(f"{url}/api/files")
    names = [f["name"] for f in json.loads(listing)["files"]]
    assert "escape.dng" in names and "notes.txt" not in names
    (folder / "escape.dng").unlink()


def test_sidecar_and_export_with_progress(url, folder, tmp_path):
    from oneinch.api import develop_file

    view = {"look": "authentic", "style": "natural", "style_strength": 0.5, "ev": 0.3,
            "wb": "kelvin", "kelvin": 6000, "tint": 5, "frame": ""}
    status, body = _send(f"{url}/api/recipe/img1.dng", "PUT", json.dumps(view).encode(),
                         "application/json")
    assert status == 200, body
    side = sidecar_path(folder / "img1.dng")
    saved = Recipe.load(side)
    assert saved.hash() == json.loads(body)["hash"]
    assert saved.look.name == "authentic" and saved.look.style == "natural"
    assert saved.white_balance.kelvin == 6000 and saved.exposure.ev == pytest.approx(0.3)
    _, got, _ = _get(f"{url}/api/recipe/img1.dng")
    assert json.loads(got)["view"]["look"] == "authentic"

    status, body = _send(f"{url}/api/export", "POST",
                         json.dumps({"names": ["img0.dng", "img1.dng"]}).encode(),
                         "application/json")
    assert status == 200, body
    job = json.loads(body)["job"]
    _, stream, headers = _get(f"{url}/api/export/{job}/events")
    assert headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in stream.decode().splitlines()
              if line.startswith("data: ")]
    progress, end = events[:-1], events[-1]
    assert [e["done"] for e in progress] == [1, 2] and end == {"total": 2, "errors": 0}
    for e in progress:
        out = folder / e["output"]
        assert out.parent == folder / "export"
        # the export of img1 used its sidecar: the same bytes as the library develop
        expect = develop_file(folder / e["file"], tmp_path / out.name,
                              Recipe.load(sidecar_path(folder / e["file"]))
                              if sidecar_path(folder / e["file"]).exists() else Recipe())
        assert out.read_bytes() == expect.read_bytes()
    side.unlink()


def test_foreign_host_and_cross_origin_writes_refused(url):
    status, _, _ = _get(f"{url}/api/files", headers={"Host": "evil.example"})
    assert status == 400
    status, body = _send(f"{url}/api/recipe/img0.dng", "PUT", b"{}", "application/json",
                         headers={"Origin": "http://evil.example"})
    assert status == 403 and b"cross-origin" in body


def test_bad_view_values_are_400(url):
    for q in ("look=bogus", "ev=abc", "style_strength=2", "wb=tungsten", "frame=nope",
              "wb=kelvin&kelvin=100"):
        status, body, _ = _get(f"{url}/api/preview/img0.dng?{q}")
        assert status == 400, (q, status)
        assert json.loads(body)["detail"]


def test_view_round_trip():
    v = {"look": "vibrant", "style": "sepia", "style_strength": 0.4, "lut": "",
         "lut_strength": 1.0, "ev": -0.7, "wb": "kelvin", "kelvin": 4300.0, "tint": -3.0,
         "frame": "classic"}
    r = apply_view(Recipe(), v)
    assert view_of(r) == v
    assert r.tone.grey == pytest.approx(0.215)  # the vibrant preset's tone came along


def test_jpeg_source_preview_and_exif(url, folder):
    rgb = _scene(9)
    Image.fromarray(rgb).save(folder / "phone.jpg", quality=95)
    try:
        status, plain, _ = _get(f"{url}/api/preview/phone.jpg?look=neutral")
        assert status == 200
        status, bw, _ = _get(f"{url}/api/preview/phone.jpg?look=neutral&style=bw-natural")
        assert status == 200
        a, b = _decode(plain), _decode(bw)
        assert a.shape == (64, 96, 3)
        # neutral on a finished JPEG changes nothing but re-encoding
        assert np.abs(a - rgb.astype(np.float32)).mean() < 3.0
        assert np.abs(b - b.mean(-1, keepdims=True)).mean() < 2.0
        status, info, _ = _get(f"{url}/api/exif/phone.jpg")
        assert status == 200 and json.loads(info)["size"] == {"width": 96, "height": 64}
    finally:
        (folder / "phone.jpg").unlink()


def test_previews_demosaic_fast_exports_as_the_recipe_says(folder, monkeypatch):
    """An interactive preview of a small raw (not binned: 'auto' would run iri, ~0.4 s/MP)
    demosaics with ri (~0.03 s/MP, Kodak-24 39.9 dB against iri's 40.75); a method the
    recipe names, and every export, stay as they are."""
    import oneinch.develop as dev
    from oneinch.web.server import Workspace

    seen: list[str] = []
    real = dev.develop

    def spy(raw, recipe=None, **kw):
        seen.append(recipe.demosaic.method)
        return real(raw, recipe, **kw)

    monkeypatch.setattr(dev, "develop", spy)
    ws = Workspace(folder)
    path = folder / "img0.dng"
    ws.image_bytes(path, Recipe(), 1200, "after")
    ws.image_bytes(path, Recipe().with_(demosaic={"method": "iri"}), 1200, "after")
    assert seen == ["ri", "iri"]
    seen.clear()
    ws.export_one(path, Recipe())
    assert seen == ["auto"]


def test_display_changes_render_the_kept_scene(folder, monkeypatch):
    """A preview's look, style, tone or frame change re-renders the raw's kept scene
    (develop.render) instead of developing it again; a change before the display stages (EV,
    white balance) develops it again. Each preview is the library's develop of its recipe."""
    import oneinch.develop as dev
    from oneinch.output.encode import encode_bytes
    from oneinch.raw import open_raw
    from oneinch.web.server import Workspace

    calls: list = []
    real = dev.develop

    def spy(raw, recipe=None, **kw):
        calls.append(kw.get("until"))
        return real(raw, recipe, **kw)

    monkeypatch.setattr(dev, "develop", spy)
    ws = Workspace(folder)
    path = folder / "img0.dng"
    views = [{"look": "neutral"}, {"look": "vibrant"}, {"look": "authentic", "style": "sepia"},
             {"look": "neutral", "frame": "classic"}]
    previews = [ws.image_bytes(path, apply_view(Recipe(), v), 1200, "after") for v in views]
    assert calls == ["scene"]
    ws.image_bytes(path, apply_view(Recipe(), {"look": "vibrant", "ev": 1}), 1200, "after")
    ws.image_bytes(path, apply_view(Recipe(), {"wb": "daylight"}), 1200, "after")
    assert calls == ["scene"] * 3
    monkeypatch.setattr(dev, "develop", real)
    raw = open_raw(path)
    for view, preview in zip(views[:3], previews, strict=False):
        r = apply_view(Recipe(), view).with_(
            output={"size": 1200, "format": "jpeg", "quality": 85, "subsampling": "4:2:0"},
            demosaic={"method": "ri"})
        assert preview == encode_bytes(real(raw, r), r.output)


def test_malformed_bodies_are_400(url):
    """An export whose view is not an object, and a JSON body nested 100,000 deep, were 500s
    with a traceback."""
    for path, method, body in (
        ("/api/export", "POST", json.dumps({"names": ["img0.dng"], "view": "x"}).encode()),
        ("/api/export", "POST", json.dumps({"names": ["img0.dng"], "view": [1]}).encode()),
        ("/api/recipe/img0.dng", "PUT", b"[" * 100_000),
        ("/api/export", "POST", b'{"a":' * 5000),
    ):
        status, msg = _send(f"{url}{path}", method, body, "application/json")
        assert status == 400, (path, status, msg[:200])
        assert "detail" in json.loads(msg)
    status, msg, _ = _get(f"{url}/api/preview/img0.dng?ev=1e308")  # (was clamped to 5)
    assert status == 400 and b"exposure.ev" in msg


def test_upload_names_and_concurrent_uploads(url, folder):
    """Names the filesystem refuses (300 bytes) or that no route can serve back (control
    characters) were a 500 or a file that then 404s; four uploads of one name at once lost
    files to a check-then-rename race. Now: 400s, and four files."""
    good = (folder / "img2.dng").read_bytes()
    for name in ("a" * 300 + ".dng", "bad\x01name.dng"):
        body, ctype = _multipart([(name, good)])
        status, msg = _send(f"{url}/api/upload", "POST", body, ctype)
        assert status == 400 and b"bad upload file name" in msg, (status, msg)
    before = set(p.name for p in folder.iterdir())

    def send(i: int) -> list[str]:
        body, ctype = _multipart([("race.dng", good[:-1] + bytes([i]))])
        status, msg = _send(f"{url}/api/upload", "POST", body, ctype)
        assert status == 200, msg
        return json.loads(msg)["saved"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        saved = [n for names in pool.map(send, range(4)) for n in names]
    new = set(p.name for p in folder.iterdir()) - before
    try:
        assert sorted(saved) == sorted(new) and len(new) == 4
        assert {(folder / n).read_bytes()[-1] for n in new} == {0, 1, 2, 3}
    finally:
        for n in new:
            (folder / n).unlink()


def test_upload_limit_is_the_requests_however_it_is_sent(url, folder):
    """With a Content-Length the limit was the whole request's; chunked, each file's. Two
    files together over the limit are refused either way, and neither is kept."""
    half = b"II*\x00" + bytes(MAX_UPLOAD // 2 + 1000)
    body, ctype = _multipart([("h1.dng", half), ("h2.dng", half)])
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.request("POST", "/api/upload", body=iter([body[:1000], body[1000:]]),
                     headers={"Content-Type": ctype, "Transfer-Encoding": "chunked"},
                     encode_chunked=True)
        r = conn.getresponse()
        status, msg = r.status, r.read()
    finally:
        conn.close()
    assert status == 413, (status, msg)
    leftovers = [p for p in folder.iterdir() if p.name.startswith(("h1", "h2"))]
    for p in leftovers:
        p.unlink()
    assert not [p for p in leftovers if p.name == "h2.dng"]


def test_exif_panel_of_a_raw_has_its_shot(url):
    """A raw's ISO, shutter, aperture and date never reached the panel (read from a key the
    description does not have)."""
    status, body, _ = _get(f"{url}/api/exif/img0.dng")
    info = json.loads(body)
    assert status == 200 and info["iso"] == 100 and info["exposure_time"] == pytest.approx(0.01)
    assert info["datetime"]


def test_a_lut_or_raw_changed_on_disk_makes_a_new_preview(url, folder):
    """The preview cache knew a LUT by its path only (an edited .cube kept the old preview
    while exports used the new one), and a raw by its mtime only (a file replaced with its
    time kept showed the old image)."""
    import os
    import shutil

    from oneinch.looks.lut import Lut, identity_grid, write_cube

    lut = folder / "flip.cube"
    write_cube(lut, Lut(1.0 - identity_grid(9)))
    try:
        q = f"{url}/api/preview/img0.dng?lut=flip.cube"
        _, first, _ = _get(q)
        write_cube(lut, Lut(identity_grid(9)))
        _, second, _ = _get(q)
        assert np.abs(_decode(first) - _decode(second)).mean() > 30  # (inverted, then not)
    finally:
        lut.unlink()
    copy = folder / "twin.dng"
    shutil.copy(folder / "img0.dng", copy)
    try:
        _, a, _ = _get(f"{url}/api/preview/twin.dng")
        st = copy.stat()  # another file renamed over it (as uploads and editors save), its
        shutil.copy(folder / "img1.dng", folder / "twin.tmp")  # time set to the old one's
        os.utime(folder / "twin.tmp", ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(folder / "twin.tmp", copy)
        _, b, _ = _get(f"{url}/api/preview/twin.dng")
        assert a != b
    finally:
        copy.unlink()


def test_exports_of_one_stem_do_not_overwrite_each_other(url, folder):
    """img0.dng and img0.jpg both exported to export/img0.jpg (the second silently won)."""
    _, jpeg, _ = _get(f"{url}/api/preview/img0.dng")
    (folder / "img0.jpg").write_bytes(jpeg)
    try:
        status, body = _send(f"{url}/api/export", "POST",
                             json.dumps({"names": ["img0.dng", "img0.jpg"]}).encode(),
                             "application/json")
        assert status == 200, body
        _, stream, _ = _get(f"{url}/api/export/{json.loads(body)['job']}/events")
        events = [json.loads(line[6:]) for line in stream.decode().splitlines()
                  if line.startswith("data: ")]
        outs = [e.get("output") for e in events[:-1]]
        assert len(set(outs)) == 2 and all((folder / o).is_file() for o in outs), events
    finally:
        (folder / "img0.jpg").unlink()
        for o in outs:
            (folder / o).unlink(missing_ok=True)


def test_a_saved_sidecar_names_its_lut_relative_to_itself(url, folder, tmp_path):
    """The sidecar held the LUT's absolute path: a folder moved elsewhere lost its LUT."""
    import shutil

    from oneinch.looks.lut import Lut, identity_grid, write_cube

    write_cube(folder / "warm.cube", Lut(identity_grid(5) ** 0.8))
    side = sidecar_path(folder / "img2.dng")
    try:
        status, body = _send(f"{url}/api/recipe/img2.dng", "PUT",
                             json.dumps({"lut": "warm.cube"}).encode(), "application/json")
        assert status == 200, body
        assert 'lut = "warm.cube"' in side.read_text()
        moved = tmp_path / "moved"
        moved.mkdir()
        for name in ("img2.dng", side.name, "warm.cube"):
            shutil.copy(folder / name, moved / name)
        r = Recipe.load(moved / side.name)
        assert Path(r.look.lut) == moved / "warm.cube"
    finally:
        side.unlink(missing_ok=True)
        (folder / "warm.cube").unlink()


def test_thumbnails_do_not_push_the_edited_scene_out(folder, monkeypatch):
    """Every thumbnail (and the 'before' view) kept a scene of its own: a folder's thumbnails
    pushed the scene being edited out of the four kept, and the next look change developed
    the raw again."""
    import oneinch.develop as dev
    from oneinch.web.server import SCENES, Workspace

    calls: list = []
    real = dev.develop

    def spy(raw, recipe=None, **kw):
        calls.append(kw.get("until"))
        return real(raw, recipe, **kw)

    monkeypatch.setattr(dev, "develop", spy)
    ws = Workspace(folder)
    ws.image_bytes(folder / "img0.dng", apply_view(Recipe(), {"look": "neutral"}), 1200, "after")
    for _ in range(SCENES + 1):
        for name in ("img0.dng", "img1.dng", "img2.dng"):
            ws.image_bytes(folder / name, Recipe(), 256 + _, "thumb")
        ws.image_bytes(folder / "img0.dng", Recipe(), 1200 + _, "before")
    calls.clear()
    ws.image_bytes(folder / "img0.dng", apply_view(Recipe(), {"look": "vibrant"}), 1200, "after")
    assert calls == []  # (rendered from the kept scene)
