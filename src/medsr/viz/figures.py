"""Pictures of an evaluation: one comparison grid per image, metric bars, radial NPS curves.

Every grid shows all methods on the same grey window (the CT metric window, or the HR
percentile range of a radiograph), the same zoomed crop and error maps on one shared scale.
The results drawn are `medsr.evaluation.runner`'s (imported for type checking only: viz
sits below evaluation, which calls it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from scipy import ndimage  # noqa: E402

from medsr.image import body_mask  # noqa: E402
from medsr.metrics.ct import get_window  # noqa: E402
from medsr.viz.strips import to_size  # noqa: E402

if TYPE_CHECKING:
    from medsr.evaluation.runner import EvaluationResult, ImageResult

TARGET = "target"  # the reference row of an evaluation (`evaluation.runner.TARGET`)
LABELS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "hu_rmse": "HU RMSE (HU)",
    "noise_sd": "noise SD in uniform ROIs (HU)",
}


def display_range(result: ImageResult) -> tuple[float, float]:
    """Grey range of every panel: the CT metric window, else the HR percentile range."""
    if result.window is not None:
        window = get_window(result.window)
        return window.low, window.high
    assert result.value_range is not None
    return result.value_range


EDGE_CAP_PERCENTILE = 95.0


def zoom_box(
    target: np.ndarray, region: tuple[slice, slice], size: int, within: np.ndarray | None = None
) -> tuple[int, int]:
    """Top-left `(row, column)` of the `size^2` square inside `region` with the most edges
    (summed gradient magnitude of `target`): where the methods differ most visibly. With
    `within` (bool, `target`'s shape, e.g. the patient of a CT slice) only its edges count,
    so the table's or a head holder's do not draw the zoom (ignored when it holds no pixel
    of `region`)."""
    rows, cols = region
    area = target[rows, cols].astype(np.float64)
    size = min(size, *area.shape)
    edges = np.hypot(*np.gradient(area))
    if within is not None and within[rows, cols].any():
        edges *= within[rows, cols]
    # capped at the 95th percentile: a lead marker's, a label's or a bone's few strongest edges
    # do not outweigh a region full of ordinary ones (vessels, ribs, organ borders)
    edges = np.minimum(edges, np.percentile(edges, EDGE_CAP_PERCENTILE))
    energy = ndimage.uniform_filter(edges, size, mode="constant")
    half = size // 2
    valid = energy[half : area.shape[0] - size + half + 1, half : area.shape[1] - size + half + 1]
    r, c = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return rows.start + int(r), cols.start + int(c)


def _errors(result: ImageResult, low: float, high: float) -> tuple[dict[str, np.ndarray], float]:
    """Each method's error `output - target` and the colour limit (99th percentile of
    |error| in the region measured). Errors of the images as displayed (clipped to the grey
    range), like the metrics: bone or air edges outside a narrow window would otherwise set
    the colour scale."""
    target = np.clip(result.pair.high, low, high)
    errors = {m: np.clip(output, low, high) - target for m, output in result.outputs.items()}
    region_errors = np.concatenate([e[result.region].ravel() for e in errors.values()])
    return errors, float(np.percentile(np.abs(region_errors), 99)) or 1.0


def _panel_title(name: str, result: ImageResult, row: Mapping[str, Any] | None) -> str:
    pair = result.pair
    if name == "input":
        nearest = f" (x{pair.scale} nearest)" if pair.scale > 1 else ""
        name = f"input {pair.low.shape[0]}x{pair.low.shape[1]}{nearest}"
    if row is not None and row.get("psnr") is not None:
        return f"{name}\n{row['psnr']:.2f} dB / SSIM {row['ssim']:.3f}"
    return name


def _region_box(axis: Any, region: tuple[slice, slice]) -> None:
    """The region measured, dashed."""
    rows, cols = region
    axis.add_patch(
        Rectangle(
            (cols.start - 0.5, rows.start - 0.5),
            cols.stop - cols.start,
            rows.stop - rows.start,
            fill=False,
            edgecolor="cyan",
            linestyle="--",
            linewidth=0.8,
        )
    )


def grid_panels(result: ImageResult) -> list[tuple[str, np.ndarray]]:
    """The columns of `comparison_grid`: input, each method, target. At scale 1 the `input`
    baseline is the input itself: one column, not two identical ones."""
    pair = result.pair
    shown = {
        m: to_size(pair.low, pair.high.shape) if m == "input" and pair.scale > 1 else output
        for m, output in result.outputs.items()
    }
    first = shown.pop("input", to_size(pair.low, pair.high.shape))
    return [("input", first), *shown.items(), (TARGET, pair.high)]


def comparison_grid(result: ImageResult, rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write the grid PNG of one image: input | methods | target over three rows (full
    image with the zoom box, zoomed crop, error `method - target` on a shared scale; the
    consistency map under the input, or under the target when the input has its error)."""
    pair = result.pair
    low_value, high_value = display_range(result)
    panels = grid_panels(result)
    size = max(24, min(pair.high.shape) // 4)
    windowed = np.clip((pair.high - low_value) / (high_value - low_value), 0, 1)
    patient = None
    if result.window is not None:  # CT in HU: the zoom inside the patient
        patient = body_mask(ndimage.gaussian_filter(pair.high.astype(np.float64), 2.0))
    top, left = zoom_box(windowed, result.region, size, within=patient)
    errors, limit = _errors(result, low_value, high_value)
    by_method = {r["method"]: r for r in rows if r["image"] == pair.name}
    n = len(panels)
    aspect = pair.high.shape[1] / pair.high.shape[0]
    figure, axes = plt.subplots(
        3, n, figsize=(2.5 * n * aspect, 8.2), squeeze=False, constrained_layout=True
    )
    error_image = None
    for column, (name, image) in enumerate(panels):
        axes[0, column].imshow(image, cmap="gray", vmin=low_value, vmax=high_value)
        axes[0, column].add_patch(
            Rectangle(
                (left - 0.5, top - 0.5), size, size, fill=False, edgecolor="yellow", linewidth=0.8
            )
        )
        axes[0, column].set_title(_panel_title(name, result, by_method.get(name)), fontsize=8)
        if name == TARGET:
            _region_box(axes[0, column], result.region)
        crop = image[top : top + size, left : left + size]
        axes[1, column].imshow(
            crop, cmap="gray", vmin=low_value, vmax=high_value, interpolation="nearest"
        )
        if name in errors:
            error_image = axes[2, column].imshow(
                errors[name], cmap="RdBu_r", vmin=-limit, vmax=limit
            )
            axes[2, column].set_title(f"{name} - target", fontsize=8)
        elif result.consistency and (name == "input" or (name == TARGET and "input" in errors)):
            _consistency_panel(axes[2, column], result)
        for row in range(3):
            axes[row, column].set_axis_off()
    if error_image is not None:
        unit = pair.unit
        figure.colorbar(
            error_image,
            ax=axes[2, :].tolist(),
            shrink=0.8,
            label=f"error within the grey range ({unit})",
        )
    grey = f"{result.window} window" if result.window else "HR p0.5/p99.5"
    task = pair.task if pair.task == f"x{pair.scale}" else f"{pair.task} (x{pair.scale})"
    figure.suptitle(
        f"{pair.name}: {task}; grey {low_value:g}..{high_value:g} {pair.unit} "
        f"({grey}); dashed: region measured; row 2: zoom {size} px; "
        f"row 3: error (clipped to the grey range)",
        fontsize=9,
    )
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _consistency_panel(axis: Any, result: ImageResult) -> None:
    """The model's consistency map `input - A(output)` (else the last method's)."""
    name = list(result.consistency)[-1]
    found = result.consistency[name]
    limit = 4.0 * float(getattr(found, "noise_sd", 0.0)) or None
    data = np.asarray(found.map, dtype=np.float32)
    axis.imshow(data, cmap="RdBu_r", vmin=-limit if limit else None, vmax=limit)
    axis.set_title(f"consistency of {name}\nscore {float(found.score):.3g} (+-4 SD)", fontsize=8)


def metric_bars(
    result: EvaluationResult,
    summary: Sequence[Mapping[str, Any]],
    path: Path,
    metrics: Sequence[str] = ("psnr", "ssim"),
) -> Path:
    """Bar per method (mean) with its 95 % interval and one dot per image, per metric."""
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 3.8), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        _metric_panel(axis, metric, result, summary)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _metric_panel(
    axis: Any, metric: str, result: EvaluationResult, summary: Sequence[Mapping[str, Any]]
) -> None:
    """One metric's means with intervals, and one dot per image, for every method."""
    stats = {s["method"]: s for s in summary if s["metric"] == metric}
    present = [m for m in result.methods if m in stats]
    means = [stats[m]["mean"] for m in present]
    lower = [stats[m]["mean"] - stats[m]["low"] for m in present]
    upper = [stats[m]["high"] - stats[m]["mean"] for m in present]
    errors = np.nan_to_num(np.array([lower, upper], dtype=np.float64), nan=0.0)
    positions = np.arange(len(present))
    for position, method in zip(positions, present, strict=True):
        values = [
            r[metric] for r in result.rows if r["method"] == method and r.get(metric) is not None
        ]
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
        axis.plot(
            position + 0.25 + np.asarray(jitter),
            values,
            "o",
            color="0.6",
            markersize=3,
            label="one image" if position == 0 else None,
        )
    axis.errorbar(
        positions,
        means,
        yerr=errors,
        fmt="s",
        color="#08519c",
        capsize=5,
        markersize=6,
        label="mean, 95 % interval",
    )
    for position, mean in zip(positions, means, strict=True):
        axis.annotate(
            f"{mean:.4g}",
            (position, mean),
            textcoords="offset points",
            xytext=(-8, 0),
            ha="right",
            va="center",
            fontsize=7,
        )
    _metric_axes(axis, metric, result, [stats[m]["n"] for m in present], present)


def _metric_axes(
    axis: Any, metric: str, result: EvaluationResult, counts: list[int], present: list[str]
) -> None:
    """Limits around every image's value, the title (metric space, n) and the ticks."""
    finite = [v for r in result.rows for v in [r.get(metric)] if v is not None]
    if finite:
        span = max(finite) - min(finite) or abs(max(finite)) * 0.1 or 1.0
        axis.set_ylim(min(finite) - 0.6 * span, max(finite) + 0.4 * span)
    n = max(counts, default=0)
    note = "95 % interval" if n >= 4 else "interval not meaningful"
    space = "CT window per image" if result.images[0].window else "HR p0.5/p99.5 -> [0, 1]"
    axis.set_title(
        f"{LABELS.get(metric, metric)}, {space}, data range 1\n{note} (n = {n} images)",
        fontsize=9,
    )
    axis.set_xticks(np.arange(len(present)), present, rotation=30, ha="right", fontsize=8)
    axis.set_xlim(-0.6, len(present) - 0.4)
    axis.legend(fontsize=7, loc="lower right")
    axis.grid(axis="y", alpha=0.3)


def nps_plot(result: EvaluationResult, path: Path, max_images: int = 4) -> Path | None:
    """Radial NPS of each method against the target's, one panel per CT image with ROIs."""
    images = [i for i in result.images if i.nps][:max_images]
    if not images:
        return None
    figure, axes = plt.subplots(1, len(images), figsize=(4.6 * len(images), 3.6), squeeze=False)
    for axis, image in zip(axes[0], images, strict=True):
        for method, (frequency, values) in image.nps.items():
            target = {"color": "black", "linestyle": "--", "linewidth": 2}
            style = target if method == TARGET else {}
            # The lowest bin holds little more than the removed plane (~0): leave it out.
            keep = values > 1e-6 * values.max()
            axis.semilogy(frequency[keep], values[keep], label=method, **style)
        axis.set_xlabel("radial frequency (cycles/pixel)")
        axis.set_ylabel("NPS (HU^2 px^2)")
        axis.set_title(
            f"{image.pair.name}: {len(image.rois)} ROIs of {image.rois[0].size} px", fontsize=9
        )
        axis.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
