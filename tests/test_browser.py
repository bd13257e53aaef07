"""The browser app tested as a person uses it: headless Debian chromium driven by Playwright
against `oneinch serve` on 127.0.0.1. Opens a folder, switches a look, sees the preview change,
compares before/after, exports and finds the file. Screenshots go to out/screens/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

from oneinch.web.server import ServerThread, create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENS = Path(__file__).resolve().parents[1] / "out" / "screens"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from oneinch.synthetic import demo_scene, make_dng

    d = tmp_path_factory.mktemp("browse")
    scene = demo_scene(240, 360, seed=3)
    make_dng(d / "demo.dng", (np.clip(scene, 0, 1) * 255).astype(np.uint8)
             if scene.dtype != np.uint8 else scene)
    make_dng(d / "flipped.dng", np.ascontiguousarray(
        ((np.clip(scene, 0, 1) * 255).astype(np.uint8) if scene.dtype != np.uint8 else scene)
        [:, ::-1]))
    return d


@pytest.fixture(scope="module")
def page(folder):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: apt-get install -y chromium (scripts/test-deps.sh)")
    SCREENS.mkdir(parents=True, exist_ok=True)
    with ServerThread(create_app(folder)) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 800})
            pg.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(url + "/")
            yield pg
            assert errors == [], f"JavaScript errors on the page: {errors}"
        finally:
            browser.close()


def _preview_stats(pg) -> dict:
    """Mean and mean chroma of the preview as the browser decoded it (canvas pixels)."""
    return pg.evaluate("""() => {
        const img = document.getElementById('preview');
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const cx = c.getContext('2d'); cx.drawImage(img, 0, 0);
        const d = cx.getImageData(0, 0, c.width, c.height).data;
        let sum = 0, chroma = 0;
        for (let i = 0; i < d.length; i += 4) {
            const m = (d[i] + d[i + 1] + d[i + 2]) / 3;
            sum += m;
            chroma += Math.abs(d[i] - m) + Math.abs(d[i + 1] - m) + Math.abs(d[i + 2] - m);
        }
        const n = d.length / 4;
        return {mean: sum / n, chroma: chroma / n, w: c.width, h: c.height};
    }""")


def _wait_ready(pg, old_hash: str | None = None) -> str:
    pg.wait_for_function(
        "h => { const i = document.getElementById('preview'); return i.dataset.state === 'ready'"
        " && i.dataset.recipeHash && i.dataset.recipeHash !== h; }",
        arg=old_hash or "",
    )
    return pg.get_attribute("#preview", "data-recipe-hash")


def test_open_switch_look_compare_export(page, folder):
    pg = page
    pg.wait_for_selector(".thumb img")
    pg.wait_for_function("() => [...document.querySelectorAll('.thumb img')]"
                         ".every(i => i.complete && i.naturalWidth > 0)")
    assert pg.locator(".thumb").count() == 2
    pg.screenshot(path=str(SCREENS / "1-grid.png"))

    pg.click(".thumb[data-name='demo.dng']")
    h_neutral = _wait_ready(pg)
    neutral = _preview_stats(pg)
    assert (neutral["w"], neutral["h"]) == (360, 240)
    pg.wait_for_selector("#exif td")
    assert "oneinch Synthetic Sensor" in pg.inner_text("#exif")
    assert int(pg.get_attribute("#histogram", "data-pixels")) == 360 * 240
    pg.screenshot(path=str(SCREENS / "2-neutral.png"))

    pg.select_option("#look", "vibrant")
    h_vibrant = _wait_ready(pg, h_neutral)
    vibrant = _preview_stats(pg)
    assert h_vibrant != h_neutral
    assert vibrant["chroma"] > neutral["chroma"] * 1.05  # the preview visibly changed
    pg.screenshot(path=str(SCREENS / "3-vibrant.png"))

    pg.select_option("#style", "bw-natural")
    h_bw = _wait_ready(pg, h_vibrant)
    bw = _preview_stats(pg)
    assert bw["chroma"] < 3.0 < neutral["chroma"]
    pg.select_option("#style", "")
    _wait_ready(pg, h_bw)

    pg.check("#compare")
    pg.wait_for_function("() => { const b = document.getElementById('before');"
                         " return !b.hidden && b.complete && b.naturalWidth > 0; }")
    pg.screenshot(path=str(SCREENS / "4-before-after.png"))

    pg.select_option("#frame", "classic")
    _wait_ready(pg, h_vibrant)
    pg.uncheck("#compare")
    pg.screenshot(path=str(SCREENS / "5-frame.png"))

    pg.click("#export-one")
    pg.wait_for_function("() => document.getElementById('status').textContent"
                         ".startsWith('exported')")
    status = pg.inner_text("#status")
    assert "failed" not in status, status
    out = folder / "export" / "demo.jpg"
    assert out.is_file()
    with Image.open(out) as im:
        im.load()
        w, h = im.size
    assert w >= 360 and h > 240  # the full-size photo plus the classic frame's EXIF bar
    assert int(pg.get_attribute("#progress", "value")) == 1
    pg.screenshot(path=str(SCREENS / "6-exported.png"))
