// medsr page, controls: the models, the mode (one image, or CT+PET when a fusion model is
// served), file choice, and the job: started with POST /api/jobs/..., followed by polling
// GET /api/jobs/{id} (fraction, elapsed, time left), cancelled with POST .../cancel.
// viewer.js draws the result, tools.js adds the readout, ROI, scale bar, letters and tags.
// No libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  task: "single", models: [], picked: { files: [], ct: [], pet: [] }, alpha: 0.5,
  summary: null, slice: 0, images: {}, scale: 1,
  window: { center: 0, width: 1 }, view: { zoom: 1, cx: 0, cy: 0 },
  mode: "side", consistency: false, split: 0.5, rendered: {}, job: null,
  tool: "pan", roi: null,
};
const POLL_MS = 250;
const CHOSEN = { files: ["chosen", "No file chosen."], ct: ["chosen-ct", "No CT chosen."],
  pet: ["chosen-pet", "No PET chosen."] };

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function loadModels() {
  const response = await fetch("/api/models");
  const info = await response.json();
  $("version").textContent = `v${info.version}`;
  state.models = info.models;
  const fusion = info.models.some((m) => m.kind === "fusion");
  $("task-switch").hidden = !fusion;  // CT+PET is offered only when a fusion model is served
  if (!info.models.length) setStatus("No models loaded: start `medsr serve --models CHECKPOINT.pt`.", true);
  $("model").onchange = showModelInfo;
  setTask(fusion && info.models.every((m) => m.kind === "fusion") ? "fusion" : "single");
  $("drop").dataset.limitMb = (info.limits.max_upload_bytes / 2 ** 20).toFixed(0);
}

// The model list shows the models of the current mode only.
function fillModels() {
  const select = $("model");
  select.innerHTML = "";
  if (state.task === "single") {  // the server picks from the image, and says which and why
    const auto = document.createElement("option");
    auto.value = "auto";
    auto.textContent = "auto: picked from the image";
    auto.dataset.info = "The server picks the model from the image's modality, size and noise, and says which and why.";
    select.append(auto);
  }
  for (const m of state.models.filter((m) => (m.kind || "single") === state.task)) {
    const option = document.createElement("option");
    option.value = m.id;
    option.textContent = `${m.id} (${m.task}, x${m.scale})`;
    option.dataset.info = `${m.architecture}, task ${m.task}, scale x${m.scale}` +
      (m.modalities.length ? `, for ${m.modalities.join("/")}` : "") + (m.unit ? `, input unit ${m.unit}` : "");
    select.append(option);
  }
  showModelInfo();
}

function showModelInfo() {
  const o = $("model").selectedOptions[0];
  $("model-info").textContent = o ? o.dataset.info : "";
}

function setTask(task) {
  state.task = task;
  const fusion = task === "fusion";
  $(`task-${task}`).checked = true;
  $("single-controls").hidden = fusion;
  $("fusion-controls").hidden = !fusion;
  $("ensemble-option").hidden = fusion;
  $("run").textContent = fusion ? "Fuse" : "Enhance";
  if (!state.job) setStatus("");  // an error of the other mode does not stay on screen
  $("model-choice").textContent = "";
  fillModels();
  updateRun();
}

function ready() {
  const p = state.picked;
  return state.task === "fusion" ? p.ct.length > 0 && p.pet.length > 0 : p.files.length > 0;
}

function updateRun() { $("run").disabled = !ready() || state.job !== null; }

function chooseFiles(kind, list) {
  const files = state.picked[kind] = Array.from(list);
  const size = files.reduce((s, f) => s + f.size, 0);
  const [id, none] = CHOSEN[kind];
  $(id).textContent = files.length
    ? `${files.length} file(s), ${(size / 2 ** 20).toFixed(2)} MB: ${files.slice(0, 3).map((f) => f.name).join(", ")}${files.length > 3 ? ", ..." : ""}`
    : none;
  if (!state.job) setStatus("");
  updateRun();
}

async function enhance() {
  const form = new FormData();
  const fusion = state.task === "fusion";
  if (fusion) {
    for (const f of state.picked.ct) form.append("ct", f, f.name);
    for (const f of state.picked.pet) form.append("pet", f, f.name);
    form.append("alpha", String(state.alpha));
  } else {
    for (const f of state.picked.files) form.append("files", f, f.name);
    for (const f of $("reference").files) form.append("reference", f, f.name);
    if ($("ensemble").checked) form.append("ensemble", "true");
  }
  if ($("model").value) form.append("model", $("model").value);
  const t0 = performance.now();
  state.job = "starting";
  updateRun();
  $("model-choice").textContent = "";
  showWarnings([]);
  setStatus(fusion ? "Uploading CT and PET..." : "Uploading...");
  showProgress({ state: "queued", phase_text: "uploading", fraction: 0, tiles_total: 0, elapsed_s: 0 });
  try {
    const response = await fetch(fusion ? "/api/jobs/fuse" : "/api/jobs/enhance", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) throw new Error(`${response.status}: ${body.detail}`);
    state.job = body.id;
    setStatus(fusion ? "Fusing CT and PET..." : "Enhancing...");
    const final = await follow(body.id);
    if (final.state === "cancelled") {
      setStatus(`Cancelled after ${final.elapsed_s.toFixed(1)} s; nothing was kept.`);
    } else if (final.state === "failed") {
      throw new Error(`${final.error.status}: ${final.error.detail}`);
    } else {
      const summary = await (await fetch(final.result)).json();
      await showResult(summary);
      setStatus(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s (server ${summary.seconds} s).`);
    }
  } catch (error) {
    setStatus(`Failed: ${error.message}`, true);
  } finally {
    state.job = null;
    $("progress-box").hidden = true;
    updateRun();
  }
}

// Polls the job until it ends; returns its last status.
async function follow(id) {
  for (;;) {
    const response = await fetch(`/api/jobs/${id}`);
    const status = await response.json();
    if (!response.ok) throw new Error(`${response.status}: ${status.detail}`);
    showProgress(status);
    if (!["queued", "running"].includes(status.state)) return status;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function seconds(s) {
  return s >= 90 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(s < 10 ? 1 : 0)} s`;
}

// The bar: the share of tiles done while the model runs (indeterminate before and after).
function showProgress(status) {
  $("progress-box").hidden = false;
  $("cancel").disabled = !["queued", "running"].includes(status.state) || state.job === "starting";
  const bar = $("progress");
  const tiles = status.tiles_total > 0 && status.phase === "enhancing";
  if (tiles) bar.value = status.fraction; else bar.removeAttribute("value");
  bar.dataset.fraction = String(status.fraction);
  let text = status.phase_text;
  if (tiles) text += `: ${Math.round(100 * status.fraction)} % (${status.tiles_done} / ${status.tiles_total} tiles)`;
  text += `, ${seconds(status.elapsed_s)} elapsed`;
  if (status.remaining_s !== null && status.remaining_s !== undefined) text += `, about ${seconds(status.remaining_s)} left`;
  $("progress-text").textContent = text;
  if (status.warnings) showWarnings(status.warnings);
  if (status.model) {
    const m = status.model;
    $("model-choice").textContent = `Model: ${m.id} (${m.auto ? `picked from the image: ${m.reason}` : m.reason}).`;
  }
}

// What medsr warned while the job ran (a colour image made grey, a missing spacing, ...).
function showWarnings(lines) {
  const list = $("warnings");
  list.replaceChildren(...lines.map((line) => {
    const item = document.createElement("li");
    item.textContent = line;
    return item;
  }));
  list.hidden = lines.length === 0;
}

async function cancelJob() {
  const id = state.job;
  if (!id || id === "starting") return;
  $("cancel").disabled = true;
  setStatus("Cancelling...");
  const response = await fetch(`/api/jobs/${id}/cancel`, { method: "POST" });
  if (!response.ok) setStatus(`Cancel failed: ${response.status}`, true);
}

function attachDrop(dropId, inputId, kind) {
  const drop = $(dropId);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); chooseFiles(kind, e.dataTransfer.files); });
  $(inputId).addEventListener("change", (e) => chooseFiles(kind, e.target.files));
}

function init() {
  attachDrop("drop", "files", "files");
  attachDrop("drop-ct", "ct-files", "ct");
  attachDrop("drop-pet", "pet-files", "pet");
  document.querySelectorAll("input[name=task]").forEach((r) => r.addEventListener("change", () => setTask(r.value)));
  $("alpha").addEventListener("input", (e) => setAlpha(Number(e.target.value)));
  $("run").addEventListener("click", enhance);
  $("cancel").addEventListener("click", cancelJob);
  document.querySelectorAll("input[name=mode]").forEach((r) => r.addEventListener("change", () => setMode(r.value)));
  $("preset").addEventListener("change", applyPreset);
  for (const id of ["center", "width"]) {
    $(id).addEventListener("change", () => {
      const width = Number($("width").value);
      if (!(width > 0)) return;
      state.window = { center: Number($("center").value), width };
      state.rendered = {};
      draw();
    });
  }
  $("show-consistency").addEventListener("change", (e) => { state.consistency = e.target.checked; draw(); });
  $("slice").addEventListener("change", (e) => loadSlice(Number(e.target.value)));
  $("swipe-position").addEventListener("input", (e) => { state.split = Number(e.target.value) / 1000; draw(); });
  $("reset").addEventListener("click", fit);
  for (const id of ["left", "right", "swipe", "fused"]) attachNavigation($(id));
  document.querySelectorAll("input[name=tool]").forEach((r) => r.addEventListener("change", () => { state.tool = r.value; }));
  $("tags-filter").addEventListener("input", fillTags);
  window.addEventListener("resize", draw);
  loadModels().catch((error) => setStatus(`Cannot list models: ${error.message}`, true));
}

init();
