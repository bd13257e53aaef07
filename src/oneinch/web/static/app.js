// oneinch browser app: plain JS, no build step. Talks to /api/* of oneinch.web.server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { current: null, files: [], seq: 0, timer: null, previewUrl: null, beforeUrl: null };
const CONTROLS = ["look", "style", "style_strength", "lut", "lut_strength", "ev", "wb", "kelvin",
                  "tint", "frame"];

function setStatus(text) { $("status").textContent = text; }

async function api(path, options) {
  const res = await fetch(path, options);
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return res;
}

function fillSelect(el, values, keepFirst) {
  const first = keepFirst ? el.querySelector("option") : null;
  el.innerHTML = "";
  if (first) el.appendChild(first);
  for (const v of values) {
    const o = document.createElement("option");
    o.value = v; o.textContent = v;
    el.appendChild(o);
  }
}

function enc(name) { return name.split("/").map(encodeURIComponent).join("/"); }

async function loadFiles() {
  const data = await (await api("/api/files")).json();
  state.files = data.files;
  $("folder").textContent = data.folder;
  fillSelect($("look"), data.looks, false);
  fillSelect($("style"), data.styles, true);
  fillSelect($("lut"), data.luts, true);
  fillSelect($("frame"), data.frames, true);
  const grid = $("grid");
  grid.innerHTML = "";
  for (const f of data.files) {
    const b = document.createElement("button");
    b.className = "thumb"; b.type = "button"; b.dataset.name = f.name; b.title = f.name;
    const img = document.createElement("img");
    img.loading = "lazy"; img.alt = f.name;
    img.src = "/api/thumb/" + enc(f.name);
    const label = document.createElement("span");
    label.className = "name"; label.textContent = f.name;
    b.append(img, label);
    b.addEventListener("click", () => openFile(f.name));
    grid.appendChild(b);
  }
  setStatus(`${data.files.length} photos`);
}

function view() {
  const v = {};
  for (const k of CONTROLS) v[k] = $(k).value;
  return v;
}

function setView(v) {
  for (const k of CONTROLS) if (v[k] !== undefined && v[k] !== null) $(k).value = v[k];
  syncLabels();
}

function syncLabels() {
  $("ev-out").textContent = Number($("ev").value).toFixed(1);
  $("kelvin-out").textContent = $("kelvin").value;
  $("kelvin-row").hidden = $("wb").value !== "kelvin";
}

async function openFile(name) {
  state.current = name;
  for (const t of document.querySelectorAll(".thumb")) {
    t.classList.toggle("selected", t.dataset.name === name);
  }
  $("controls").disabled = false;
  $("stage").classList.remove("empty");
  const r = await (await api("/api/recipe/" + enc(name))).json();
  setView(r.view);
  loadExif(name);
  await refresh(0);
}

async function loadExif(name) {
  try {
    const info = await (await api("/api/exif/" + enc(name))).json();
    const rows = [];
    const fmt = (v) => (v && typeof v === "object") ? JSON.stringify(v) : String(v);
    for (const [k, v] of Object.entries(info)) {
      if (v === null || v === undefined || v === "") continue;
      rows.push(`<tr><td>${k}</td><td>${escapeHtml(fmt(v))}</td></tr>`);
    }
    $("exif").innerHTML = rows.join("");
  } catch (e) { $("exif").innerHTML = `<tr><td>error</td><td>${escapeHtml(e.message)}</td></tr>`; }
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

function refresh(delay) {
  syncLabels();
  clearTimeout(state.timer);
  return new Promise((resolve) => {
    state.timer = setTimeout(() => loadPreview().then(resolve, resolve), delay);
  });
}

async function fetchImage(url) {
  const res = await api(url);
  return { blob: await res.blob(), hash: res.headers.get("X-Recipe-Hash") || "" };
}

async function loadPreview() {
  const name = state.current;
  if (!name) return;
  const seq = ++state.seq;
  const img = $("preview");
  img.dataset.state = "loading";
  const q = new URLSearchParams(view());
  try {
    const { blob, hash } = await fetchImage("/api/preview/" + enc(name) + "?" + q);
    if (seq !== state.seq) return;  // a newer request superseded this one
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = URL.createObjectURL(blob);
    await new Promise((ok) => { img.onload = ok; img.onerror = ok; img.src = state.previewUrl; });
    img.dataset.recipeHash = hash;
    img.dataset.state = "ready";
    drawHistogram(img);
    if ($("compare").checked) await loadBefore();
    setStatus(`${name} · recipe ${hash}`);
  } catch (e) {
    if (seq === state.seq) { img.dataset.state = "error"; setStatus("error: " + e.message); }
  }
}

async function loadBefore() {
  const q = new URLSearchParams(view()); q.set("before", "1");
  const { blob } = await fetchImage("/api/preview/" + enc(state.current) + "?" + q);
  if (state.beforeUrl) URL.revokeObjectURL(state.beforeUrl);
  state.beforeUrl = URL.createObjectURL(blob);
  $("before").src = state.beforeUrl;
}

function drawHistogram(img) {
  const w = 256, h = 100;
  const c = document.createElement("canvas");
  const scale = Math.min(1, 400 / Math.max(img.naturalWidth, img.naturalHeight));
  c.width = Math.max(1, Math.round(img.naturalWidth * scale));
  c.height = Math.max(1, Math.round(img.naturalHeight * scale));
  const cx = c.getContext("2d");
  cx.drawImage(img, 0, 0, c.width, c.height);
  const px = cx.getImageData(0, 0, c.width, c.height).data;
  const bins = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  for (let i = 0; i < px.length; i += 4) { bins[0][px[i]]++; bins[1][px[i + 1]]++; bins[2][px[i + 2]]++; }
  let peak = 1;
  for (const b of bins) for (let i = 1; i < 255; i++) peak = Math.max(peak, b[i]);
  const out = $("histogram").getContext("2d");
  out.clearRect(0, 0, w, h);
  out.globalCompositeOperation = "lighter";
  const colours = ["rgba(255,60,60,0.8)", "rgba(60,255,60,0.8)", "rgba(80,120,255,0.8)"];
  bins.forEach((b, ch) => {
    out.fillStyle = colours[ch];
    for (let i = 0; i < 256; i++) {
      const v = Math.min(h, Math.round((b[i] / peak) * h));
      out.fillRect(i, h - v, 1, v);
    }
  });
  out.globalCompositeOperation = "source-over";
  $("histogram").dataset.pixels = String(px.length / 4);
}

async function saveRecipe() {
  const r = await (await api("/api/recipe/" + enc(state.current), {
    method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(view()),
  })).json();
  setStatus(`saved ${r.saved}`);
  const thumb = document.querySelector(`.thumb[data-name="${CSS.escape(state.current)}"] img`);
  if (thumb) thumb.src = "/api/thumb/" + enc(state.current) + "?v=" + r.hash;
}

async function exportFiles(names, withView) {
  const body = { names, view: withView ? view() : null };
  const { job, total } = await (await api("/api/export", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  })).json();
  const bar = $("progress");
  bar.hidden = false; bar.max = total; bar.value = 0;
  setStatus(`exporting 0/${total}`);
  const outputs = [], errors = [];
  await new Promise((resolve) => {
    const es = new EventSource(`/api/export/${job}/events`);
    es.onmessage = (ev) => {
      const d = JSON.parse(ev.data);
      bar.value = d.done;
      if (d.error) errors.push(d.error); else outputs.push(d.output);
      setStatus(`exporting ${d.done}/${d.total}`);
    };
    es.addEventListener("end", () => { es.close(); resolve(); });
    es.onerror = () => { es.close(); resolve(); };
  });
  setStatus(errors.length ? `exported ${outputs.length}, ${errors.length} failed: ${errors[0]}`
                          : `exported ${outputs.join(", ")}`);
  $("status").dataset.exported = outputs.join("\n");
}

async function upload(files) {
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  setStatus("uploading…");
  try {
    const r = await (await api("/api/upload", { method: "POST", body: form })).json();
    await loadFiles();
    setStatus(`uploaded ${r.saved.join(", ")}`);
  } catch (e) { setStatus("upload refused: " + e.message); }
}

function init() {
  for (const k of CONTROLS) {
    const el = $(k);
    el.addEventListener(el.type === "range" ? "input" : "change", () => refresh(el.type === "range" ? 150 : 0));
  }
  $("compare").addEventListener("change", async () => {
    const on = $("compare").checked;
    $("stage").classList.toggle("compare", on);
    $("before").hidden = !on; $("split").hidden = !on;
    if (on && state.current) await loadBefore();
  });
  $("split").addEventListener("input", () => {
    $("stage").style.setProperty("--split", $("split").value + "%");
  });
  $("save").addEventListener("click", () => saveRecipe().catch((e) => setStatus("error: " + e.message)));
  $("export-one").addEventListener("click", () =>
    exportFiles([state.current], true).catch((e) => setStatus("error: " + e.message)));
  $("export-all").addEventListener("click", () =>
    exportFiles(null, false).catch((e) => setStatus("error: " + e.message)));
  $("upload").addEventListener("change", (ev) => upload(ev.target.files));
  loadFiles().catch((e) => setStatus("error: " + e.message));
}

init();
