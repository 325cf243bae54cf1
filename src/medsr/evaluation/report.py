"""The evaluation report: report.md and a self-contained report.html (PNG files embedded as
base64, no external resources), built from one list of blocks so both say the same."""

from __future__ import annotations

import base64
import html
import math
import os
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from medsr._version import __version__
from medsr.evaluation.baselines import DESCRIPTIONS
from medsr.evaluation.pairs import EvalPair
from medsr.evaluation.runner import TARGET, EvaluationResult
from medsr.physics.tasks import TASKS

# ("h1"/"h2"/"h3", text) | ("p", text) | ("table", (header, rows)) | ("img", (path, alt))
Block = tuple[str, Any]
SUMMARY_METRICS = (
    "psnr",
    "ssim",
    "hu_rmse",
    "noise_sd",
    "nps_mean_frequency",
    "contrast_kept",
    "consistency",
    "seconds",
)
CONSISTENCY_HELP = (
    "How to read the consistency column and map (medsr.inference.consistency_map): each "
    "output is degraded again with the task's deterministic forward model A (area downsampling "
    "by the scale; for radiographs detector blur then binning; noise left out) and compared "
    "with the input the method was given: map = input - A(output), in the image unit, and "
    "score = RMS(map) / the input's noise SD. For super-resolution of a clean input a "
    "consistent output scores ~0; for denoising tasks (ldct*, xray) ~1 is expected, the "
    "residual being the removed noise, and the map should look like noise with no anatomy in "
    "it. A score well above 1, or anatomy-shaped patterns (edges, blobs) in the map, marks "
    "structure the method added or removed. It is computed for the baselines too, as a "
    "reference. Consistent is necessary, not sufficient: detail above the input's Nyquist "
    "frequency is invisible to A, so judge fidelity with the metrics against the target."
)
CONTRAST_HELP = (
    "How to read contrast_kept (medsr.metrics.contrast.contrast_retention, CT): the target's "
    "fine low-contrast structure (a difference-of-Gaussians band, SD 1 to 3 px: vessels, "
    "organ texture, a kidney's cortex against its medulla) in its soft tissue (smoothed "
    "target within -100..200 HU, 8 px from its edges), and the share of it the output keeps: "
    "the output's band regressed on the target's. 1 = kept, < 1 = flattened, > 1 = "
    "exaggerated. Noise uncorrelated with the target does not move it, so a noisy input keeps "
    "~1 and a denoiser is judged on what it smooths away with the noise. The target's own "
    "noise in that band counts as content: a target with little of it (a normal-dose scan) "
    "reads best."
)


def machine() -> str:
    """Host, OS, CPU count and torch version of the machine that ran the evaluation."""
    return (
        f"{platform.node()}: {platform.platform()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads), python {platform.python_version()}"
    )


def _fmt(value: Any, metric: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        digits = {"psnr": 2, "psnr_full_range": 2, "seconds": 3}.get(metric)
        return f"{value:.{digits}f}" if digits is not None else f"{value:.4g}"
    return str(value)


def _interval(stat: Mapping[str, Any]) -> str:
    metric = stat["metric"]
    text = _fmt(stat["mean"], metric)
    if math.isfinite(stat["low"]):
        text += f" [{_fmt(stat['low'], metric)}, {_fmt(stat['high'], metric)}]"
    return text


def _unique(values: Sequence[Any]) -> str:
    return ", ".join(dict.fromkeys(_fmt(v) for v in values))


NOISE_KEYS = (
    "dose_fraction",
    "num_views",
    "filter_window",
    "noise_model",
    "method",
    "blur_sigma_px",
    "electronic_noise_sd",
    "input_crop",
)


def _dose_text(pairs: Sequence[EvalPair]) -> str:
    if "dose_fraction" not in pairs[0].params:
        return "input dose (no dose reduction simulated)"
    return f"{_unique([q.params.get('dose_fraction') for q in pairs])} of the input's dose"


def _i0_text(pairs: Sequence[EvalPair]) -> str:
    if "incident_photons" not in pairs[0].params:
        return "not applicable"
    calibrated = " (calibrated once on its scan's own noise)"
    return "; ".join(
        f"{q.name}: {_fmt(q.params.get('incident_photons'))}"
        + (calibrated if q.params.get("incident_photons_calibrated") else "")
        for q in pairs
    )


def _data_text(pairs: Sequence[EvalPair]) -> str:
    return "; ".join(
        f"{q.name} ({q.source}, {q.modality}, HR {q.high.shape[0]}x"
        f"{q.high.shape[1]} at {q.spacing_mm:g} mm, LR {q.low.shape[0]}x"
        f"{q.low.shape[1]})"
        for q in pairs
    )


def _model_text(result: EvaluationResult, task: str) -> str:
    model = result.model
    if model is None:
        return "none: baselines only (--no-model)"
    text = (
        f"{result.model_label}; trained for task {model.task} at x{model.scale}; "
        f"checkpoint sha256 {model.checkpoint_sha256}; written by medsr "
        f"{model.medsr_version}"
    )
    if model.task != task:
        text += f" (NOTE: evaluated on task {task}, not its own)"
    return text


def _timing_text(model: Any) -> str:
    text = "wall time per image on the machine above"
    if model is not None:
        # a Predictor's own line: backend, device, precision, memory format, threads, tiling
        engine = getattr(model, "engine", None)
        how = (
            engine
            if isinstance(engine, str)
            else (f"{getattr(model, 'backend', '?')} on {getattr(model, 'device', '?')}")
        )
        text += f"; model: {how}; first image includes warm-up"
    return text


def conditions(
    result: EvaluationResult,
    seed: int | None,
    interval: str,
    border: int | None,
    crop: int | None,
    split: str,
) -> list[tuple[str, str]]:
    """`(name, value)` of every condition the numbers depend on."""
    pairs = [i.pair for i in result.images]
    first = pairs[0]
    p = first.params
    task = TASKS.get(first.task)
    region = f"{border if border is not None else 4 * first.scale} px border excluded" + (
        f", then central {crop} px square" if crop else ""
    )
    baselines = "; ".join(
        f"{m}: {DESCRIPTIONS.get(m, '')}" for m in result.methods if m != result.model_label
    )
    seeds = ", ".join(f"{q.name} {q.seed}" for q in pairs)
    windows = "; ".join(
        f"{i.pair.name}: {i.window or 'none'} ({i.window_reason})" for i in result.images
    )
    method = "Student-t" if interval == "t" else "percentile bootstrap"
    few = " (n < 4: not meaningful, shown for completeness)" if len(pairs) < 4 else ""
    return [
        ("date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("machine", machine()),
        ("medsr version (evaluator)", __version__),
        ("data", _data_text(pairs)),
        ("split", split),
        ("task", f"{first.task}: {task.description if task else '?'}"),
        ("scale", f"x{first.scale}"),
        ("dose", _dose_text(pairs)),
        ("I0 (incident photons per ray / detector pixel)", _i0_text(pairs)),
        (
            "task parameters",
            ", ".join(f"{k} {p[k]}" for k in NOISE_KEYS if p.get(k) is not None) or "-",
        ),
        ("seed", f"run seed {seed}; per image (medsr degrade --seed): {seeds}"),
        ("window", windows),
        ("metric space", "; ".join(dict.fromkeys(i.metric_space for i in result.images))),
        ("region measured", region),
        ("model", _model_text(result, first.task)),
        ("baselines", baselines),
        ("timing", _timing_text(result.model)),
        ("interval", f"95 % {method} interval of the mean over {len(pairs)} images{few}"),
    ]


def _summary_blocks(
    result: EvaluationResult,
    summary: Sequence[Mapping[str, Any]],
    paired: Sequence[Mapping[str, Any]],
) -> list[Block]:
    """The summary table per method, its notes, and the paired differences."""
    blocks: list[Block] = []
    metrics = [m for m in SUMMARY_METRICS if any(s["metric"] == m for s in summary)]
    rows = []
    for method in [*result.methods, TARGET]:
        stats = {s["metric"]: s for s in summary if s["method"] == method}
        if stats:
            n = max(s["n"] for s in stats.values())
            rows.append(
                [method, str(n), *(_interval(stats[m]) if m in stats else "-" for m in metrics)]
            )
    blocks.append(("table", (["method", "n", *metrics], rows)))
    notes = {s["note"] for s in summary if s["note"]}
    if notes:
        blocks.append(("p", "Note: " + "; ".join(sorted(notes)) + "."))
    if paired:
        blocks.append(("h3", f"Paired difference against {result.reference} (same images)"))
        blocks.append(
            (
                "table",
                (
                    ["method", "metric", "n", "mean difference [95 % interval]"],
                    [[d["method"], d["metric"], str(d["n"]), _interval(d)] for d in paired],
                ),
            )
        )
    return blocks


def build_blocks(
    result: EvaluationResult,
    summary: Sequence[Mapping[str, Any]],
    paired: Sequence[Mapping[str, Any]],
    conds: Sequence[tuple[str, str]],
    pictures: Mapping[str, Path],
) -> list[Block]:
    """The report's content, independent of the output format."""
    first = result.images[0].pair
    who = result.model_label or "baselines only"
    blocks: list[Block] = [
        (
            "h1",
            f"medsr evaluation: {who} on {first.task} (x{first.scale}), "
            f"{len(result.images)} image(s)",
        ),
        ("h2", "Conditions"),
        ("table", (["condition", "value"], [list(c) for c in conds])),
        ("h2", "Summary (mean [95 % interval] over images)"),
    ]
    blocks += _summary_blocks(result, summary, paired)
    if any(r.get("contrast_kept") is not None for r in result.rows):
        blocks.append(("p", CONTRAST_HELP))
    blocks.append(("h2", "Plots"))
    for key in ("bars", "nps"):
        if key in pictures:
            blocks.append(("img", (pictures[key], key)))
    if any(i.consistency for i in result.images):
        blocks += [("h2", "Consistency with the input"), ("p", CONSISTENCY_HELP)]
        image = result.images[0]
        if image.consistency:  # the model's (last method) description, as an example
            name, found = list(image.consistency.items())[-1]
            if getattr(found, "description", ""):
                blocks.append(("p", f"Example, {name} on {image.pair.name}: {found.description}"))
    blocks.append(("h2", "Per image"))
    header = ["image", "method", "psnr", "ssim", "hu_rmse", "noise_sd", "contrast_kept"]
    header += ["consistency", "seconds"]
    blocks.append(("table", (header, [[_fmt(r.get(h), h) for h in header] for r in result.rows])))
    for image in result.images:
        key = f"grid:{image.pair.name}"
        if key in pictures:
            blocks.append(("h3", image.pair.name))
            blocks.append(("img", (pictures[key], f"comparison grid {image.pair.name}")))
    return blocks


def to_markdown(blocks: Sequence[Block], folder: Path) -> str:
    """Markdown; images as paths relative to `folder`."""
    lines: list[str] = []
    for kind, value in blocks:
        if kind.startswith("h"):
            lines += ["#" * int(kind[1]) + " " + value, ""]
        elif kind == "p":
            lines += [value, ""]
        elif kind == "table":
            header, rows = value
            cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
            lines.append("| " + " | ".join(cell(h) for h in header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "img":
            path, alt = value
            lines += [f"![{alt}]({Path(path).relative_to(folder).as_posix()})", ""]
    return "\n".join(lines)


STYLE = (
    "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
    "padding:3px 8px;font-size:13px;text-align:left}th{background:#f0f0f0}"
    "img{max-width:100%}"
)


def to_html(blocks: Sequence[Block]) -> str:
    """One HTML file with every picture inline (base64 PNG)."""
    body: list[str] = []
    for kind, value in blocks:
        if kind.startswith("h"):
            body.append(f"<{kind}>{html.escape(value)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(value)}</p>")
        elif kind == "table":
            header, rows = value
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
            cells = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in rows
            )
            body.append(f"<table><tr>{head}</tr>{cells}</table>")
        elif kind == "img":
            path, alt = value
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            body.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
    title = html.escape(next((v for k, v in blocks if k == "h1"), "medsr evaluation"))
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
