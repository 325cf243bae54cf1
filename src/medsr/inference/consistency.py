"""Data-consistency map: does the enhanced image, degraded again, give back the input?

A model was trained to invert a known degradation `low = A(high) + noise` (its checkpoint's
task). `consistency_map` applies the deterministic part `A` to the output and subtracts it
from the input:

    r = low - A(output)          (H, W), in the image unit (HU for CT)

`A` is the task's own `forward` (the degradation contract, `medsr.physics.degradation`) for
one `sample` of the registered task's defaults (a fixed seed), so the map uses the operator
training used; an unknown task name means area downsampling by the scale. For example:

| task | A (noise is left out) |
|---|---|
| x2, x4, x8, ldct-x2, ldct-x4, ldct-legacy-x4 | area (box) downsample by the scale |
| ldct | identity (same grid) |
| xray-x4 | Gaussian detector blur (the task's sigma, output pixels) of the transmission, area
  binning, back through the log (the noise-free read-out of `RadiographDegradation`) |

How to read it. `score = RMS(r) / sd_in`, where `sd_in` is the input's noise SD (measured by
Immerkaer's Laplacian estimator, robust median form, unless given):

* super-resolution of a clean input: ~0 means the output explains the input exactly;
  >= 1 means the output disagrees with the input by more than the input's own noise;
* denoising tasks (ldct*, xray): ~1 is expected, the residual being the removed noise (it
  should look like noise, with no anatomy in the map); << 1: noise was kept; >> 1: the
  output added or removed structure.

The map shows *where*: anatomy-shaped patterns in `r` (edges, blobs) mark structure the
model invented (output brighter: negative `r`) or lost (positive `r`). `local` is the local
RMS of `r` over a Gaussian window (sigma 2 input pixels) in units of `sd_in`, and `hotspot`
its 99.9th percentile. A consistent output is necessary, not sufficient: it can still hold
structure that `A` removes (detail above the input's Nyquist frequency).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from medsr.io.atomic import atomic_write, write_bytes_atomic
from medsr.metrics.ct import PADDING_HU
from medsr.physics.degradation import NoiseThenDownsample, SampledDegradation
from medsr.physics.tasks import TASKS, DownsampleTask, RadiographTask, make_task
from medsr.physics.unknown_resize import UnknownResizeTask

LOCAL_SIGMA = 2.0
"""Gaussian window (input pixels) of the local RMS map."""


@dataclass
class ConsistencyResult:
    """`map` `(H, W)` residual in image units; `score`, `hotspot` in units of `noise_sd`."""

    map: np.ndarray
    local: np.ndarray
    score: float
    hotspot: float
    noise_sd: float
    residual_sd: float
    denoising: bool
    description: str


def _task(task: str, scale: int) -> SampledDegradation:
    """The registered task `task` (its defaults), or area downsampling for an unknown name."""
    found = make_task(task) if task in TASKS else DownsampleTask(task="custom", scale=scale)
    if found.scale != scale:
        raise ValueError(f"task {task!r} has scale {found.scale}, got {scale}")
    return found


BAND_PIXELS = 2**21
"""Output pixels per band of `forward_model` on large images (8 MB of float32)."""
BAND_MARGIN = 64
"""Low-grid rows of context above and below a band: more than the support of any task's
blur and resize kernel, so bands give the whole image's result."""
LOCAL_FORWARD = (NoiseThenDownsample, UnknownResizeTask, RadiographTask)
"""Tasks whose `forward` is local (resampling, blurs; the radiograph's intensity range is
fitted on the whole image first), so it may run in bands; others run on the whole image."""


def forward_model(
    output: np.ndarray,
    task: str,
    scale: int,
    spacing_mm: float = 1.0,
    band_pixels: int = BAND_PIXELS,
) -> np.ndarray:
    """The deterministic degradation of `task` applied to `output` `(sH, sW)` -> `(H, W)`:
    the task's `forward` for one `sample` of its defaults (module doc). `spacing_mm`, the
    output's pixel spacing, matters only to tasks with blurs in mm (petct).

    Float32 throughout, and an output larger than `band_pixels` goes through in horizontal
    bands of whole low rows with `BAND_MARGIN` low rows of context on each side (cropped
    from the result): the forward operators are local (blurs, binning, resize kernels), so
    the map equals the whole image's, while the operators' temporaries (a blur's unfolded
    input is kernel-width times the image) stay the size of a band, not of an x4 output.
    """
    degradation = _task(task, scale)
    params = degradation.sample(torch.Generator().manual_seed(0))
    x = torch.from_numpy(np.ascontiguousarray(output, dtype=np.float32))
    height, width = x.shape[-2] // scale, x.shape[-1] // scale
    rows = max(1, band_pixels // max(x.shape[-1] * scale, 1))  # low rows per band
    if rows >= height or not isinstance(degradation, LOCAL_FORWARD):
        return degradation.forward(x[None], spacing_mm, params)[0].float().numpy()
    if isinstance(degradation, RadiographTask):  # its intensity range is the whole image's
        params = degradation.fit(x[None], spacing_mm, params)
    out = np.empty((height, width), np.float32)
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        start, stop = max(top - BAND_MARGIN, 0), min(bottom + BAND_MARGIN, height)
        band = x[start * scale : stop * scale]
        low = degradation.forward(band[None], spacing_mm, params)[0].float().numpy()
        out[top:bottom] = low[top - start : bottom - start]
    return out


def estimate_noise_sd(image: np.ndarray) -> float:
    """Noise SD of a 2-D image, Immerkaer (1996) with a median for robustness to edges.

    The kernel `[[1,-2,1],[-2,4,-2],[1,-2,1]]` cancels planes; on white noise of SD `s`
    its output has SD `6 s`, so `s = median(|L * x|) / (0.6745 * 6)`.
    """
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = ndimage.convolve(np.asarray(image, dtype=np.float64), kernel, mode="reflect")
    return float(np.median(np.abs(response[1:-1, 1:-1])) / (0.6745 * 6.0))


def consistency_map(
    low: np.ndarray, output: np.ndarray, task: str, scale: int, noise_sd: float | None = None
) -> ConsistencyResult:
    """Residual of the input against the degraded output, and its scores (module doc).

    Args:
        low: the model's input `(H, W)`, image units.
        output: the model's output `(s*H, s*W)`, same units.
        task: the checkpoint's task (e.g. "ldct-x4"); unknown names mean area downsampling.
        scale: the model's scale.
        noise_sd: the input's noise SD if known (e.g. from `medsr.metrics.noise` ROIs).
    """
    low = np.asarray(low, dtype=np.float32)
    output = np.asarray(output, dtype=np.float32)
    if low.ndim != 2 or output.shape != (low.shape[0] * scale, low.shape[1] * scale):
        raise ValueError(
            f"output {output.shape} must be the input {low.shape} times the scale {scale}"
        )
    residual = low - forward_model(output, task, scale)
    if task in TASKS and "CT" in (TASKS[task].modalities or ()):
        residual[low < PADDING_HU] = 0.0  # padding outside the field of view: no image
    spread = float(np.subtract(*np.percentile(low, [99.5, 0.5])))
    sd_in = estimate_noise_sd(low) if noise_sd is None else float(noise_sd)
    sd_in = max(sd_in, 1e-6 * max(spread, 1e-12))
    squared = np.square(residual, dtype=np.float64)  # input-sized, summed in float64
    local = np.sqrt(ndimage.gaussian_filter(squared, LOCAL_SIGMA))
    local /= sd_in
    score = float(np.sqrt(np.mean(squared)) / sd_in)
    del squared
    denoising = task in TASKS and make_task(task).adds_noise
    expected = "~1 (the removed noise)" if denoising else "~0"
    description = (
        f"RMS(input - A(output)) / input noise SD = {score:.3g} (consistent: {expected}; "
        f">> 1: structure added or removed); A = {task} forward model without noise; "
        f"input noise SD {sd_in:.4g}; worst 0.1 % local RMS {np.percentile(local, 99.9):.3g}"
    )
    return ConsistencyResult(
        map=residual,
        local=local.astype(np.float32),
        score=score,
        hotspot=float(np.percentile(local, 99.9)),
        noise_sd=sd_in,
        residual_sd=float(residual.std()),
        denoising=denoising,
        description=description,
    )


def save_consistency(
    results: list[ConsistencyResult], stem: str | Path, unit: str = "a.u."
) -> list[Path]:
    """Write `<stem>_consistency.png` (the worst slice's map with a colour bar),
    `<stem>_consistency.npy` (the raw residual, `(H, W)` or `(D, H, W)`, image units) and
    `<stem>_consistency.json` (scores per slice; `score` is the worst slice's)."""
    from medsr.viz.consistency import consistency_picture

    if not results:
        raise ValueError("no consistency results to save")
    stem = Path(stem)
    paths = [stem.with_name(f"{stem.name}_consistency{ext}") for ext in (".png", ".npy", ".json")]
    if existing := [str(p) for p in paths if p.exists()]:
        raise FileExistsError(f"will not overwrite {', '.join(existing)}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    worst = max(range(len(results)), key=lambda k: results[k].score)
    shown = results[worst]
    where = f"slice {worst}, " if len(results) > 1 else ""
    consistency_picture(shown.map, shown.noise_sd, shown.score, paths[0], unit, where)
    stack = np.stack([r.map for r in results]) if len(results) > 1 else results[0].map
    with atomic_write(paths[1]) as temp, open(temp, "wb") as stream:
        np.save(stream, stack.astype(np.float32))
    summary = {
        "score": shown.score,
        "worst_slice": worst,
        "unit": unit,
        "slices": [
            {
                "score": r.score,
                "hotspot": r.hotspot,
                "noise_sd": r.noise_sd,
                "residual_sd": r.residual_sd,
            }
            for r in results
        ],
        "denoising": shown.denoising,
        "description": shown.description,
        "how_to_read": "see medsr.inference.consistency (module doc)",
    }
    write_bytes_atomic(paths[2], json.dumps(summary, indent=1).encode("utf-8"))
    return paths
