// medsr page, viewer: float slices drawn with window/level on canvases, side by side or
// swipe, the consistency map, and the CT+PET overlay. Uses `state` and `$` of app.js
// (loaded after this file). No libraries.
"use strict";

async function fetchArray(name, k) {
  const response = await fetch(`${state.summary.data[name]}?slice=${k}`);
  if (!response.ok) throw new Error(`${name}: ${response.status}`);
  const [h, w] = response.headers.get("X-Shape").split(",").map(Number);
  return { w, h, data: new Float32Array(await response.arrayBuffer()) };
}

async function loadSlice(k) {
  state.slice = k;
  const names = Object.keys(state.summary.data);
  const arrays = await Promise.all(names.map((n) => fetchArray(n, k)));
  state.images = Object.fromEntries(names.map((n, i) => [n, arrays[i]]));
  state.rendered = {};
  const out = state.images.output;
  $("result-size").textContent = `${out.w} × ${out.h} px`;
  $("result-size").dataset.width = out.w;
  $("result-size").dataset.height = out.h;
  $("slice-label").textContent = `${k + 1} / ${state.summary.input.slices}`;
  draw();
}

function percentile(data, q) {
  const step = Math.max(1, Math.floor(data.length / 200000));
  const sample = [];
  for (let i = 0; i < data.length; i += step) sample.push(data[i]);
  sample.sort((a, b) => a - b);
  return sample[Math.min(sample.length - 1, Math.floor(q * sample.length))];
}

function applyPreset() {
  const value = $("preset").value;
  const input = state.images.input;
  if (value === "auto") {
    const w = state.summary.input.window;
    if (w) state.window = { center: w.center, width: w.width };
    else {
      const lo = percentile(input.data, 0.005), hi = percentile(input.data, 0.995);
      state.window = { center: (lo + hi) / 2, width: Math.max(hi - lo, 1e-6) };
    }
  } else if (value === "full") {
    const [lo, hi] = state.summary.input.range;
    state.window = { center: (lo + hi) / 2, width: Math.max(hi - lo, 1e-6) };
  } else {
    const [c, w] = value.split(",").map(Number);
    state.window = { center: c, width: w };
  }
  $("center").value = +state.window.center.toPrecision(6);
  $("width").value = +state.window.width.toPrecision(6);
  state.rendered = {};
  draw();
}

// Grey levels from the window for images; a blue-white-red map (+-4 noise SD) for the residual.
function render(name) {
  if (state.rendered[name]) return state.rendered[name];
  if (name === "fused") return renderFused();
  const image = state.images[name];
  const canvas = document.createElement("canvas");
  canvas.width = image.w; canvas.height = image.h;
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(image.w, image.h);
  const out = pixels.data, data = image.data;
  if (name === "consistency") {
    // +-4 noise SD shows a consistent result as noise; widened when the residual is larger
    // so that its pattern (anatomy = invented or lost structure) stays visible.
    const sd = state.summary.consistency.noise_sd[state.slice] || 1;
    const limit = Math.max(4 * sd, percentile(data.map(Math.abs), 0.99));
    state.consistencyLimit = limit;
    for (let i = 0; i < data.length; i++) {
      const t = Math.max(-1, Math.min(1, data[i] / limit));
      const j = 4 * i;
      out[j] = t > 0 ? 255 : Math.round(255 * (1 + t));
      out[j + 1] = Math.round(255 * (1 - Math.abs(t)));
      out[j + 2] = t < 0 ? 255 : Math.round(255 * (1 - t));
      out[j + 3] = 255;
    }
  } else {
    const low = state.window.center - state.window.width / 2, gain = 255 / state.window.width;
    for (let i = 0; i < data.length; i++) {
      const v = Math.max(0, Math.min(255, (data[i] - low) * gain));
      const j = 4 * i;
      out[j] = out[j + 1] = out[j + 2] = v;
      out[j + 3] = 255;
    }
  }
  ctx.putImageData(pixels, 0, 0);
  state.rendered[name] = canvas;
  return canvas;
}

// matplotlib's "hot" colour map (black, red, yellow, white), as in the server's fused PNG.
function hot(t) {
  return [Math.min(1, 0.0416 + (t * (1 - 0.0416)) / 0.365079),
    Math.min(1, Math.max(0, (t - 0.365079) / (0.746032 - 0.365079))),
    Math.max(0, (t - 0.746032) / (1 - 0.746032))];
}

// (1 - alpha) * grey(CT in its window) + alpha * hot(PET / suv_max): `fused_overlay` of medsr fuse.
function renderFused() {
  const ct = state.images.ct, pet = state.images.output.data, f = state.summary.fusion;
  const canvas = document.createElement("canvas");
  canvas.width = ct.w; canvas.height = ct.h;
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(ct.w, ct.h);
  const out = pixels.data, a = state.alpha;
  const low = f.ct_window.center - f.ct_window.width / 2;
  for (let i = 0; i < ct.data.length; i++) {
    const grey = Math.max(0, Math.min(1, (ct.data[i] - low) / f.ct_window.width));
    const colour = hot(Math.max(0, Math.min(1, pet[i] / f.suv_max)));
    for (let c = 0; c < 3; c++) out[4 * i + c] = Math.round(255 * Math.min(1, (1 - a) * grey + a * colour[c]));
    out[4 * i + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
  state.rendered.fused = canvas;
  return canvas;
}

function sizeCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * ratio), h = Math.round(canvas.clientHeight * ratio);
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
}

// Draws `name` on `canvas` in output-pixel coordinates: input-grid images are `scale` times larger.
function paint(canvas, name, clipRight = null) {
  const ctx = canvas.getContext("2d");
  const { zoom, cx, cy } = state.view;
  const source = render(name);
  const factor = source.width === state.images.output.w ? 1 : state.scale;
  ctx.save();
  if (clipRight !== null) { ctx.beginPath(); ctx.rect(0, 0, clipRight, canvas.height); ctx.clip(); }
  ctx.imageSmoothingEnabled = zoom * factor < 1;  // show real pixels when magnified
  ctx.drawImage(source, canvas.width / 2 - cx * zoom, canvas.height / 2 - cy * zoom,
    source.width * factor * zoom, source.height * factor * zoom);
  ctx.restore();
}

function draw() {
  if (!state.images.output) return;
  const fusion = state.summary.kind === "fusion";
  const leftName = state.consistency ? "consistency" : "input";
  if (state.consistency) render("consistency");
  const unit = state.summary.input.unit;
  const input = fusion ? "PET input on the CT grid (bicubic)" : "input";
  $("left-caption").textContent = state.consistency
    ? `consistency map (input - degraded result), blue..red = -/+${(state.consistencyLimit || 0).toPrecision(3)} ${unit}`
    : input;
  $("swipe-caption").textContent = `${state.consistency ? "consistency" : input} | ${fusion ? "enhanced PET" : "result"}`;
  const canvases = state.mode === "side" ? [$("left"), $("right")] : [$("swipe")];
  if (fusion) canvases.push($("fused"));
  for (const c of canvases) {
    sizeCanvas(c);
    const ctx = c.getContext("2d");
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, c.width, c.height);
  }
  if (state.mode === "side") {
    paint($("left"), leftName);
    paint($("right"), "output");
  } else {
    const c = $("swipe");
    paint(c, "output");
    const x = Math.round(state.split * c.width);
    paint(c, leftName, x);
    const ctx = c.getContext("2d");
    ctx.fillStyle = "#ffd54f"; ctx.fillRect(x - 1, 0, 2, c.height);
  }
  if (fusion) paint($("fused"), "fused");
  for (const c of canvases) decorate(c);  // tools.js: ROI, scale bar, orientation letters
}

function fit() {
  const out = state.images.output;
  const c = state.mode === "side" ? $("right") : $("swipe");
  sizeCanvas(c);
  state.view = { zoom: Math.min(c.width / out.w, c.height / out.h), cx: out.w / 2, cy: out.h / 2 };
  draw();
}

// Output-pixel coordinates (fractional) of a pointer event on `canvas`.
function toImage(canvas, event) {
  const r = canvas.getBoundingClientRect(), ratio = window.devicePixelRatio || 1;
  const px = (event.clientX - r.left) * ratio, py = (event.clientY - r.top) * ratio;
  const v = state.view;
  return { x: v.cx + (px - canvas.width / 2) / v.zoom, y: v.cy + (py - canvas.height / 2) / v.zoom };
}

function attachNavigation(canvas) {
  let drag = null;
  const ratio = () => window.devicePixelRatio || 1;
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const r = canvas.getBoundingClientRect();
    const mx = (event.clientX - r.left) * ratio() - canvas.width / 2;
    const my = (event.clientY - r.top) * ratio() - canvas.height / 2;
    const v = state.view, factor = Math.exp(-event.deltaY * 0.0015);
    const px = v.cx + mx / v.zoom, py = v.cy + my / v.zoom;  // keep the point under the mouse
    v.zoom = Math.min(64, Math.max(0.01, v.zoom * factor));
    v.cx = px - mx / v.zoom; v.cy = py - my / v.zoom;
    draw();
  }, { passive: false });
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    if (state.tool === "roi" && state.images.output) {
      const p = toImage(canvas, e);
      drag = { roi: true };
      state.roi = { x0: p.x, y0: p.y, x1: p.x, y1: p.y };
    } else {
      drag = { x: e.clientX, y: e.clientY };
    }
  });
  canvas.addEventListener("pointermove", (e) => {
    if (state.images.output) showReadout(toImage(canvas, e));
    if (!drag) return;
    if (drag.roi) {
      const p = toImage(canvas, e);
      state.roi.x1 = p.x; state.roi.y1 = p.y;
      draw();
      return;
    }
    state.view.cx -= ((e.clientX - drag.x) * ratio()) / state.view.zoom;
    state.view.cy -= ((e.clientY - drag.y) * ratio()) / state.view.zoom;
    drag = { x: e.clientX, y: e.clientY };
    draw();
  });
  canvas.addEventListener("pointerup", () => {
    if (drag && drag.roi) showRoiStats();
    drag = null;
  });
  canvas.addEventListener("dblclick", fit);
}

async function showResult(summary) {
  state.summary = summary;
  state.scale = summary.model.scale;
  const fusion = summary.kind === "fusion";
  $("viewer").hidden = false;
  $("fused-pane").hidden = !fusion;
  $("right-caption").textContent = fusion ? "enhanced PET" : "result";
  for (const o of $("preset").options) o.hidden = fusion && o.classList.contains("hu");  // HU windows
  const slices = summary.input.slices;
  $("slice-group").hidden = slices < 2;
  $("slice").max = slices - 1;
  $("slice").value = Math.floor(slices / 2);
  await loadSlice(Math.floor(slices / 2));
  // An image without recorded pixel spacing (e.g. a CR without PixelSpacing, a PNG) says so.
  // Sizes are width × height everywhere (the summary's `size`); spacing is x × y.
  const [dy, dx] = summary.output.spacing_mm.slice(-2);
  const spacing = summary.output.spacing_known === false
    ? "spacing unknown"
    : `pixels ${dx.toFixed(3)} × ${dy.toFixed(3)} mm`;
  const size = (shape) => sizeText(shape);
  $("result-info").textContent = fusion
    ? `(CT ${size(summary.ct.shape)}, PET ${size(summary.pet.shape)} ${summary.pet.unit},` +
      ` model ${summary.model.id}, ${spacing}, PET covers ${(100 * summary.fusion.coverage).toFixed(0)} % of the CT)`
    : `(input ${size(summary.input.shape)} ${summary.input.modality}` +
      ` ${summary.input.unit}, model ${summary.model.id}, ${spacing})`;
  state.roi = null;
  $("roi-stats").textContent = "";
  $("readout").textContent = "Move the mouse over an image for its values.";
  showTags(summary.dicom_tags || []);
  $("fusion-notes").textContent = fusion && summary.fusion.notes.length ? `Note: ${summary.fusion.notes.join("; ")}.` : "";
  const c = summary.consistency;
  $("consistency-info").textContent = `Consistency score ${c.score.toFixed(3)} (worst slice ${c.worst_slice + 1}). ${c.description}`;
  $("metrics").innerHTML = "";
  if (summary.metrics) {
    const rows = summary.metrics.rows.map((r) =>
      `<tr><td>${r.method}</td><td>${r.range}</td><td>${r.psnr_db.toFixed(2)}</td><td>${r.ssim.toFixed(4)}</td></tr>`);
    $("metrics").innerHTML = `<table id="metrics-table"><tr><th>method</th><th>range</th><th>PSNR (dB)</th>` +
      `<th>SSIM</th></tr>${rows.join("")}</table><p class="hint">${summary.metrics.note}</p>`;
  }
  $("downloads").innerHTML = "";
  const what = fusion ? "enhanced PET, " : "";
  const labels = { png: `Download ${what}16-bit PNG`, dicom: `Download ${what}derived DICOM`, fused: "Download fused PNG" };
  for (const [fmt, url] of Object.entries(summary.downloads)) {
    const a = document.createElement("a");
    a.href = url; a.id = `download-${fmt}`; a.setAttribute("download", "");
    a.textContent = labels[fmt] || `Download ${fmt}`;
    $("downloads").append(a);
  }
  if (fusion) setAlpha(state.alpha);
  $("preset").value = "auto";
  applyPreset();
  fit();
}

function setMode(mode) {
  state.mode = mode;
  const side = mode === "side";
  $("left").parentElement.hidden = !side;
  $("right").parentElement.hidden = !side;
  $("swipe-pane").hidden = side;
  $("swipe").dataset.active = String(!side);
  draw();
}

// The slider redraws the fused view and points the fused download at the same alpha.
function setAlpha(alpha) {
  state.alpha = alpha;
  $("alpha-value").textContent = alpha.toFixed(2);
  const link = $("download-fused");
  if (link) link.href = `${state.summary.downloads.fused}?alpha=${alpha}`;
  delete state.rendered.fused;
  draw();
}
