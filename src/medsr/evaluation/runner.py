"""Run a model and the baselines on the same pairs and measure them against the target.

Metrics per (image, method), on the region `metric_region` keeps (a border of `4 * scale`
pixels excluded by default, so interpolation edge effects do not dominate):

| column | CT | radiograph |
|---|---|---|
| `psnr`, `ssim` | window mapped to [0, 1], data range 1 | [0, 1] by the HR p0.5/p99.5 (*) |
| `mse`, `l1` | HU^2, HU, inside the field of view (***) | on that [0, 1] scale |
| `psnr_full_range`, `ssim_full_range` | [-1024, 3071] HU clipped, data range 4095 | - |
| `hu_rmse` | HU, inside the field of view (***) | - |
| `noise_sd`, `nps_mean_frequency` | HU, cycles/pixel, in uniform ROIs of the HIGH image | - |
| `contrast_kept` | the HIGH image's 1-3 px structure kept in its soft tissue (**) | - |
| `consistency` | `medsr.inference.consistency_map(...).score` when given | same |
| `seconds` | wall time of the method on this image | same |

(*) the HR image's 0.5 and 99.5 percentiles map to 0 and 1 for every method, then both
images are clipped to [0, 1]; data range 1. Full-range CT PSNR is never reported alone.
(**) `medsr.metrics.contrast.contrast_retention` with the default difference-of-Gaussians
band (1-3 px) in `soft_tissue_mask(high)`: 1 kept, < 1 flattened (a denoiser smoothing
low-contrast structure away), NaN where the image has no soft tissue away from edges.
(***) the pixels where the target is at least `medsr.metrics.ct.PADDING_HU` (-1500 HU): the
padding a scanner writes outside its field of view is no image (the window metrics clip it).

A `target` row holds the target's own noise SD and NPS (the level a method should keep).
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from medsr.evaluation.baselines import DEFAULT_BASELINES, resolve_baselines, run_baseline
from medsr.evaluation.pairs import EvalPair, choose_window
from medsr.inference.predictor import TileSize
from medsr.metrics.contrast import NothingToMeasure, contrast_retention, soft_tissue_mask
from medsr.metrics.ct import PADDING_HU, describe_window, windowed_psnr, windowed_ssim
from medsr.metrics.image import l1, mse, psnr, ssim
from medsr.metrics.noise import Roi, find_uniform_rois, mean_nps_frequency, noise_sd, radial_nps

FULL_RANGE_HU = (-1024.0, 3071.0)
PERCENTILES = (0.5, 99.5)
METRICS = (
    "psnr",
    "ssim",
    "mse",
    "l1",
    "psnr_full_range",
    "ssim_full_range",
    "hu_rmse",
    "noise_sd",
    "nps_mean_frequency",
    "contrast_kept",
    "consistency",
    "seconds",
)
COLUMNS = ("image", "method", *METRICS, "metric_space", "unit")
TARGET = "target"


class Enhancer(Protocol):
    """What `evaluate` needs of a model: `medsr.inference.Predictor` satisfies it."""

    @property
    def scale(self) -> int: ...
    @property
    def task(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def checkpoint_sha256(self) -> str: ...
    @property
    def medsr_version(self) -> str: ...

    def enhance_array(
        self, image: np.ndarray, tile_size: TileSize = "auto", overlap: int = 32
    ) -> np.ndarray: ...


ConsistencyFn = Callable[[np.ndarray, np.ndarray, str, int], Any]


def metric_region(
    shape: tuple[int, int], scale: int, border: int | None = None, crop: int | None = None
) -> tuple[slice, slice]:
    """Rows and columns measured: `border` pixels (default `4 * scale`) dropped on every
    side, then, if `crop` is given, the central `crop x crop` square of what is left."""
    border = 4 * scale if border is None else border
    height, width = shape
    if border < 0 or 2 * border + 11 > min(height, width):
        raise ValueError(f"border {border} leaves less than 11 pixels of a {shape} image")
    rows, cols = [border, height - border], [border, width - border]
    if crop is not None:
        if crop < 11:
            raise ValueError(f"crop must be at least 11 pixels (SSIM window), got {crop}")
        for span in (rows, cols):
            size = min(crop, span[1] - span[0])
            span[0] += (span[1] - span[0] - size) // 2
            span[1] = span[0] + size
    return slice(*rows), slice(*cols)


def radiograph_range(high: np.ndarray) -> tuple[float, float]:
    """The 0.5 and 99.5 percentiles of the HR image: the [0, 1] mapping of every method."""
    low, high_value = (float(v) for v in np.percentile(high, PERCENTILES))
    return low, max(high_value, low + 1e-6)


def find_rois(high_hu: np.ndarray) -> list[Roi]:
    """Uniform soft-tissue ROIs of the target (24 px, else 16 px); empty when none."""
    for size in (24, 16):
        try:
            return find_uniform_rois(high_hu, size=size)
        except ValueError:
            continue
    return []


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def compute_metrics(
    output: np.ndarray,
    target: np.ndarray,
    modality: str,
    window: str | None = None,
    value_range: tuple[float, float] | None = None,
    rois: Sequence[Roi] = (),
) -> dict[str, float]:
    """The metrics of one output against its target (both the measured region, image unit).

    CT needs `window` (a name of `CT_WINDOWS`); other modalities `value_range`, the
    `[low, high]` mapped to [0, 1]. Missing metrics are NaN.
    """
    p, t = _t(output), _t(target)
    out = dict.fromkeys(METRICS, math.nan)
    if modality == "CT":
        if window is None:
            raise ValueError("CT metrics need a window (neuro, abdomen or chest)")
        low, high = FULL_RANGE_HU
        pf, tf = p.clamp(low, high), t.clamp(low, high)
        error = (p - t)[t >= PADDING_HU].double()  # inside the field of view
        out.update(
            psnr=float(windowed_psnr(p, t, window)),
            ssim=float(windowed_ssim(p, t, window)),
            mse=float(error.square().mean()),
            l1=float(error.abs().mean()),
            psnr_full_range=float(psnr(pf, tf, data_range=high - low)),
            ssim_full_range=float(ssim(pf, tf, data_range=high - low)),
            hu_rmse=float(error.square().mean().sqrt()),
        )
        # NaN where there is no soft tissue away from edges, or no structure in it
        with contextlib.suppress(NothingToMeasure):
            out["contrast_kept"] = contrast_retention(output, target, soft_tissue_mask(target))
        if rois:
            out.update(
                noise_sd=noise_sd(output, list(rois)),
                nps_mean_frequency=mean_nps_frequency(output, list(rois)),
            )
        return out
    if value_range is None:
        raise ValueError(f"{modality} metrics need a value_range mapped to [0, 1]")
    low, span = value_range[0], value_range[1] - value_range[0]
    pn, tn = ((p - low) / span).clamp(0, 1), ((t - low) / span).clamp(0, 1)
    out.update(
        psnr=float(psnr(pn, tn, data_range=1.0)),
        ssim=float(ssim(pn, tn, data_range=1.0)),
        mse=float(mse(pn, tn)),
        l1=float(l1(pn, tn)),
    )
    return out


@dataclass
class ImageResult:
    """Everything measured on one pair: outputs `(sH, sW)` per method, the window, region,
    ROIs (relative to the region), radial NPS per method and consistency maps."""

    pair: EvalPair
    window: str | None
    window_reason: str
    region: tuple[slice, slice]
    value_range: tuple[float, float] | None
    rois: list[Roi]
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    infos: dict[str, dict[str, Any]] = field(default_factory=dict)
    nps: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    consistency: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_space(self) -> str:
        if self.window is not None:
            return f"{describe_window(self.window)} (data_range 1)"
        low, high = self.value_range or (math.nan, math.nan)
        return f"[{low:.6g} .. {high:.6g}] (HR p0.5/p99.5) -> 0..1 clipped (data_range 1)"


@dataclass
class EvaluationResult:
    """Per-image results, the CSV rows (in `COLUMNS` order), the methods in display order,
    and the model (None with `--no-model`)."""

    images: list[ImageResult]
    rows: list[dict[str, Any]]
    methods: list[str]
    model: Enhancer | None
    model_label: str | None
    reference: str


def _label(model: Enhancer, baselines: Sequence[str]) -> str:
    name = str(getattr(model, "model_name", "") or "model")
    return f"model:{name}" if name in (*baselines, TARGET) else name


def _image_result(pair: EvalPair, window: str, border: int | None, crop: int | None) -> ImageResult:
    """The pair's window (CT), region measured, value range (radiographs) and noise ROIs."""
    chosen, reason = (
        choose_window(pair.description, window)
        if pair.modality == "CT"
        else (None, "not CT: percentile normalisation")
    )
    region = metric_region(pair.high.shape, pair.scale, border, crop)
    target = pair.high[region]
    value_range = None if pair.modality == "CT" else radiograph_range(target)
    rois = find_rois(target) if pair.modality == "CT" else []
    return ImageResult(pair, chosen, reason, region, value_range, rois)


def _run_method(
    method: str, pair: EvalPair, model: Enhancer | None
) -> tuple[np.ndarray, dict[str, Any], float]:
    """`(output, info, seconds)` of `model` (when given) or of baseline `method`."""
    start = time.perf_counter()
    if model is not None:
        image = np.asarray(model.enhance_array(pair.low), dtype=np.float32)
        info: dict[str, Any] = {}
    else:
        baseline = run_baseline(method, pair.low, pair.scale, pair.modality)
        image, info = baseline.image, dict(baseline.info)
    seconds = time.perf_counter() - start
    if image.shape != pair.high.shape:
        raise ValueError(f"{method} gave {image.shape}, target is {pair.high.shape}")
    return image, info, seconds


def _measure(
    result: ImageResult,
    method: str,
    image: np.ndarray,
    info: dict[str, Any],
    seconds: float,
    consistency: ConsistencyFn | None,
) -> dict[str, float]:
    """The metrics of one output in the region measured (and its run time); its consistency
    with the input and its noise power spectrum go into `result`."""
    pair, region = result.pair, result.region
    target = pair.high[region]
    metrics = compute_metrics(
        image[region], target, pair.modality, result.window, result.value_range, result.rois
    )
    metrics["seconds"] = seconds
    if consistency is not None:
        try:
            found = consistency(pair.low, image, pair.task, pair.scale)
            result.consistency[method] = found
            metrics["consistency"] = float(found.score)
        except (ValueError, NotImplementedError) as error:
            info["consistency_error"] = str(error)
    if result.rois:
        result.nps[method] = radial_nps(image[region], result.rois)
    return metrics


def evaluate(
    pairs: Sequence[EvalPair],
    model: Enhancer | None = None,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    window: str = "auto",
    border: int | None = None,
    crop: int | None = None,
    consistency: ConsistencyFn | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Run `model` (if any) and every baseline on each pair and measure them (module doc)."""
    if not pairs:
        raise ValueError("no pairs to evaluate")
    first = pairs[0]
    names = resolve_baselines(baselines, first.scale, first.noisy)
    if model is not None and int(model.scale) != first.scale:
        raise ValueError(f"model scale {model.scale} differs from the task's scale {first.scale}")
    label = _label(model, names) if model is not None else None
    methods = [*names, *([label] if label else [])]
    images, rows = [], []
    for pair in pairs:
        if progress:
            progress(pair.name)
        result = _image_result(pair, window, border, crop)
        for method in methods:
            image, info, seconds = _run_method(method, pair, model if method == label else None)
            result.outputs[method], result.infos[method] = image, info
            metrics = _measure(result, method, image, info, seconds, consistency)
            rows.append(_row(pair, method, metrics, result.metric_space))
        if result.rois:
            target = pair.high[result.region]
            result.nps[TARGET] = radial_nps(target, result.rois)
            own = {
                "noise_sd": noise_sd(target, result.rois),
                "nps_mean_frequency": mean_nps_frequency(target, result.rois),
            }
            rows.append(_row(pair, TARGET, own, result.metric_space))
        images.append(result)
    reference = "lanczos" if "lanczos" in names else names[0] if names else methods[0]
    return EvaluationResult(images, rows, methods, model, label, reference)


def _row(pair: EvalPair, method: str, metrics: dict[str, float], space: str) -> dict[str, Any]:
    row: dict[str, Any] = {"image": pair.name, "method": method}
    for key in METRICS:
        value = metrics.get(key, math.nan)
        row[key] = None if value is None or not math.isfinite(value) else float(value)
    row["metric_space"] = space if method != TARGET else "own noise in the ROIs"
    row["unit"] = pair.unit if pair.modality == "CT" else "[0, 1]"
    return row


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path, columns: Sequence[str]) -> Path:
    """Write rows as CSV with `columns` (missing or None values as empty cells)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    return path
