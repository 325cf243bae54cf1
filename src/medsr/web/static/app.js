// medsr page, controls: the models, the mode (one image, or CT+PET when a fusion model is
// served), file choice and the request; viewer.js draws the result. No libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  task: "single", models: [], picked: { files: [], ct: [], pet: [] }, alpha: 0.5,
  summary: null, slice: 0, images: {}, scale: 1,
  window: { center: 0, width: 1 }, view: { zoom: 1, cx: 0, cy: 0 },
  mode: "side", consistency: false, split: 0.5, rendered: {},
};
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
  $("run").textContent = fusion ? "Fuse" : "Enhance";
  fillModels();
  updateRun();
}

function ready() {
  const p = state.picked;
  return state.task === "fusion" ? p.ct.length > 0 && p.pet.length > 0 : p.files.length > 0;
}

function updateRun() { $("run").disabled = !ready(); }

function chooseFiles(kind, list) {
  const files = state.picked[kind] = Array.from(list);
  const size = files.reduce((s, f) => s + f.size, 0);
  const [id, none] = CHOSEN[kind];
  $(id).textContent = files.length
    ? `${files.length} file(s), ${(size / 2 ** 20).toFixed(2)} MB: ${files.slice(0, 3).map((f) => f.name).join(", ")}${files.length > 3 ? ", ..." : ""}`
    : none;
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
  }
  if ($("model").value) form.append("model", $("model").value);
  $("run").disabled = true;
  setStatus(fusion ? "Fusing CT and PET..." : "Enhancing...");
  const t0 = performance.now();
  try {
    const response = await fetch(fusion ? "/api/fuse" : "/api/enhance", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) throw new Error(`${response.status}: ${body.detail}`);
    await showResult(body);
    setStatus(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s (server ${body.seconds} s).`);
  } catch (error) {
    setStatus(`Failed: ${error.message}`, true);
  } finally {
    updateRun();
  }
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
  window.addEventListener("resize", draw);
  loadModels().catch((error) => setStatus(`Cannot list models: ${error.message}`, true));
}

init();
