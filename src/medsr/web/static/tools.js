// medsr page, viewer tools: the value under the cursor (HU for CT), a rectangle ROI with
// mean and SD in every image, a scale bar from the pixel spacing ("spacing unknown" when
// the file has none), orientation letters from the DICOM direction, and the DICOM tag panel.
// Uses `state`, `$` (app.js) and `render` (viewer.js). No libraries.
"use strict";

// "W × H px" (", D slices") from a (D,) H, W shape: width first, everywhere on the page.
function sizeText(shape) {
  const [h, w] = shape.slice(-2);
  return `${w} × ${h} px` + (shape.length === 3 ? `, ${shape[0]} slices` : "");
}

function formatValue(v) {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : Number(v.toPrecision(4)).toString();
}

// The grid factor of image `name`: input-grid images are `scale` times coarser than the output.
function factorOf(name) {
  return state.images[name].w === state.images.output.w ? 1 : state.scale;
}

// The value of image `name` at output-pixel coordinates (x, y), with its own pixel indices.
function valueAt(name, x, y) {
  const image = state.images[name];
  if (!image) return null;
  const f = factorOf(name), i = Math.floor(x / f), j = Math.floor(y / f);
  if (i < 0 || j < 0 || i >= image.w || j >= image.h) return null;
  return { i, j, v: image.data[j * image.w + i] };
}

function labels() {
  const fusion = state.summary.kind === "fusion";
  return fusion
    ? [["ct", "CT", "HU"], ["input", "PET input (bicubic)", state.summary.input.unit], ["output", "enhanced PET", state.summary.input.unit]]
    : [["input", "input", state.summary.input.unit], ["output", "result", state.summary.input.unit]];
}

function showReadout(point) {
  const parts = [], readout = $("readout");
  for (const [name, label, unit] of labels()) {
    const at = valueAt(name, point.x, point.y);
    if (!at) continue;
    parts.push(`${label} (${at.i}, ${at.j}): ${formatValue(at.v)} ${unit}`);
    readout.dataset[name] = String(at.v);
    readout.dataset[`${name}X`] = String(at.i);
    readout.dataset[`${name}Y`] = String(at.j);
  }
  readout.textContent = parts.length ? parts.join(" · ") : "outside the image";
}

// Mean and sample SD of image `name` over the ROI (pixels whose index lies in it), or null.
function roiStats(name, roi) {
  const image = state.images[name];
  if (!image) return null;
  const f = factorOf(name);
  const i0 = Math.max(0, Math.floor(Math.min(roi.x0, roi.x1) / f)), i1 = Math.min(image.w, Math.ceil(Math.max(roi.x0, roi.x1) / f));
  const j0 = Math.max(0, Math.floor(Math.min(roi.y0, roi.y1) / f)), j1 = Math.min(image.h, Math.ceil(Math.max(roi.y0, roi.y1) / f));
  if (i1 <= i0 || j1 <= j0) return null;
  let sum = 0, squares = 0;
  for (let j = j0; j < j1; j++) for (let i = i0; i < i1; i++) { const v = image.data[j * image.w + i]; sum += v; squares += v * v; }
  const n = (i1 - i0) * (j1 - j0), mean = sum / n;
  const sd = n > 1 ? Math.sqrt(Math.max(0, (squares - n * mean * mean) / (n - 1))) : 0;
  return { i0, i1, j0, j1, n, mean, sd };
}

function showRoiStats() {
  const roi = state.roi, box = $("roi-stats");
  if (!roi) { box.textContent = ""; return; }
  const w = Math.abs(roi.x1 - roi.x0), h = Math.abs(roi.y1 - roi.y0);
  const out = state.summary.output;
  const size = out.spacing_known === false
    ? `${Math.round(w)} × ${Math.round(h)} output px (spacing unknown)`
    : `${(w * out.spacing_mm.at(-1)).toFixed(1)} × ${(h * out.spacing_mm.at(-2)).toFixed(1)} mm`;
  const parts = [];
  for (const [name, label, unit] of labels()) {
    const s = roiStats(name, roi);
    if (!s) continue;
    parts.push(`${label}: mean ${formatValue(s.mean)} SD ${formatValue(s.sd)} ${unit} (${s.n} px)`);
    Object.assign(box.dataset, { [`${name}Mean`]: s.mean, [`${name}Sd`]: s.sd, [`${name}Box`]: [s.i0, s.j0, s.i1, s.j1].join(",") });
  }
  box.textContent = parts.length ? `ROI ${size}: ${parts.join(" · ")}` : "ROI outside the image";
}

// A round length (1, 2 or 5 times a power of ten) of at most `limit`.
function niceLength(limit) {
  const power = 10 ** Math.floor(Math.log10(limit));
  return [5, 2, 1].map((m) => m * power).find((v) => v <= limit) || power;
}

function outlinedText(ctx, text, x, y) {
  ctx.strokeText(text, x, y);
  ctx.fillText(text, x, y);
}

// Overlays on a painted canvas: the ROI, the scale bar and the orientation letters.
function decorate(canvas) {
  const ctx = canvas.getContext("2d"), ratio = window.devicePixelRatio || 1;
  const { zoom, cx, cy } = state.view;
  const toCanvas = (x, y) => [canvas.width / 2 + (x - cx) * zoom, canvas.height / 2 + (y - cy) * zoom];
  ctx.save();
  ctx.font = `${Math.round(13 * ratio)}px system-ui, sans-serif`;
  ctx.lineWidth = 3 * ratio; ctx.strokeStyle = "#000"; ctx.fillStyle = "#fff";
  if (state.roi) {
    const [x0, y0] = toCanvas(state.roi.x0, state.roi.y0), [x1, y1] = toCanvas(state.roi.x1, state.roi.y1);
    ctx.save(); ctx.lineWidth = 1.5 * ratio; ctx.strokeStyle = "#ffd54f";
    ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    ctx.restore();
  }
  // Scale bar, bottom right: a round number of mm near a fifth of the canvas width.
  const out = state.summary.output, margin = 12 * ratio;
  ctx.textAlign = "right"; ctx.textBaseline = "bottom";
  if (out.spacing_known === false) {
    outlinedText(ctx, "spacing unknown", canvas.width - margin, canvas.height - margin);
    canvas.dataset.scaleBar = "spacing unknown";
  } else {
    const perMm = zoom / out.spacing_mm.at(-1);  // canvas pixels per mm along x
    const mm = niceLength(canvas.width / 5 / perMm), length = mm * perMm;
    const x1 = canvas.width - margin, y = canvas.height - margin;
    ctx.fillStyle = "#000"; ctx.fillRect(x1 - length - ratio, y - 5 * ratio, length + 2 * ratio, 6 * ratio);
    ctx.fillStyle = "#fff"; ctx.fillRect(x1 - length, y - 4 * ratio, length, 4 * ratio);
    const label = mm >= 10 ? `${mm / 10} cm` : `${mm} mm`;
    outlinedText(ctx, label, x1, y - 8 * ratio);
    canvas.dataset.scaleBar = label;
    canvas.dataset.scaleBarPx = String(length);
  }
  // Orientation letters at the middle of each edge (radiological display: no flip).
  const o = state.summary.orientation;
  canvas.dataset.orientation = o ? [o.left, o.right, o.top, o.bottom].join(",") : "";
  if (o) {
    ctx.font = `bold ${Math.round(15 * ratio)}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    ctx.textAlign = "left"; outlinedText(ctx, o.left, margin, canvas.height / 2);
    ctx.textAlign = "right"; outlinedText(ctx, o.right, canvas.width - margin, canvas.height / 2);
    ctx.textAlign = "center"; ctx.textBaseline = "top"; outlinedText(ctx, o.top, canvas.width / 2, margin);
    ctx.textBaseline = "bottom"; outlinedText(ctx, o.bottom, canvas.width / 2, canvas.height - margin);
  }
  ctx.restore();
}

function showTags(tags) {
  state.tags = tags;
  $("tags-panel").hidden = tags.length === 0;
  $("tags-summary").textContent = `DICOM tags of the first file (${tags.length})`;
  fillTags();
}

function fillTags() {
  const query = $("tags-filter").value.trim().toLowerCase();
  const table = $("tags-table");
  table.replaceChildren();
  const head = table.insertRow();
  for (const h of ["tag", "keyword", "VR", "value"]) { const th = document.createElement("th"); th.textContent = h; head.append(th); }
  for (const t of state.tags || []) {
    if (query && ![t.tag, t.keyword, t.value].some((s) => s.toLowerCase().includes(query))) continue;
    const row = table.insertRow();
    for (const v of [t.tag, t.keyword, t.vr, t.value]) row.insertCell().textContent = v;  // text, never HTML
  }
}
