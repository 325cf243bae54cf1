"""Evaluation: a model against classical baselines on the same (low, high) pairs.

`run_evaluation(...)` is what `medsr evaluate` calls: it makes the pairs (`pairs.py`), runs
the model and the baselines (`baselines.py`, `runner.py`), and writes into the output folder

| file | content |
|---|---|
| `per_image.csv` | one row per (image, method): every metric and the seconds it took |
| `summary.csv` | per method and metric: n, mean, 95 % interval (`stats.py`) |
| `paired.csv` | per method: mean difference from the reference baseline on the same images |
| `grid_<image>.png` | input, baselines, model, target; zoomed crop; error maps (`viz/figures.py`) |
| `metrics.png`, `nps.png` | PSNR/SSIM bars with intervals; radial NPS per method vs target |
| `report.md`, `report.html` | every condition, the tables and the pictures (`report.py`) |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medsr.evaluation.baselines import DEFAULT_BASELINES
from medsr.evaluation.pairs import EvalPair, make_pairs, read_pairs
from medsr.evaluation.runner import COLUMNS, Enhancer, EvaluationResult, evaluate, write_csv
from medsr.evaluation.stats import paired_differences, summarize
from medsr.io.read import image_stem

__all__ = [
    "EvalPair",
    "EvaluationResult",
    "evaluate",
    "make_pairs",
    "parse_task_args",
    "read_pairs",
    "run_evaluation",
    "split_statement",
    "training_record",
    "write_outputs",
]

SUMMARY_COLUMNS = ("method", "metric", "n", "mean", "low", "high", "interval", "note")
PAIRED_COLUMNS = ("method", "reference", "metric", "n", "mean", "low", "high", "interval", "note")


def parse_task_args(pairs: Sequence[str]) -> dict[str, Any]:
    """`["num_views=180", "dose_fraction=0.1"]` -> `{"num_views": 180, ...}` (YAML values)."""
    import yaml

    out: dict[str, Any] = {}
    for text in pairs:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"task argument {text!r} is not key=value (e.g. num_views=180)")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def training_record(model: Any | None) -> tuple[Mapping[str, Any] | None, str | None]:
    """`(config, split statement)` stored in the model's training checkpoint, when the model
    is a `Predictor` loaded from a medsr `.pt` checkpoint; else `(None, None)`."""
    source = str(getattr(model, "source", "") or "")
    if not source.endswith(".pt"):
        return None, None
    from medsr.checkpoint import load_checkpoint

    try:
        payload = load_checkpoint(source)
    except (ValueError, FileNotFoundError):
        return None, None
    split = payload.get("split")
    return payload.get("config"), None if split is None else str(split)


def split_statement(pairs: Sequence[EvalPair], model: Any | None) -> str:
    """Which sources the model was trained on (per its checkpoint) and whether any
    evaluation image comes from one of them."""
    evaluated = ", ".join(dict.fromkeys(p.source for p in pairs))
    config, split = training_record(model)
    data = config.get("data") if isinstance(config, Mapping) else None
    if not isinstance(data, Mapping):
        known = "no model" if model is None else "the model's training data are not recorded"
        return (
            f"evaluation images: {evaluated}; {known}. DATA.md: evaluate CT models on the "
            "pydicom-data slices (other patients/scanners than the InVesalius training "
            "volume) and radiographs on held-out images or regions"
        )
    trained = [f"sample:{s}" for s in data.get("samples", [])] + list(data.get("folders", []))
    held = [f"sample:{s}" for s in data.get("validation_samples", [])]
    shared = [p.source for p in pairs if p.source in trained]
    if shared:
        verdict = f"WARNING: {', '.join(shared)} also trained the model: not held out"
        if data.get("split") == "slab":
            verdict += " unless the slice is in the validation slab"
    else:
        verdict = "no evaluation image comes from a training source"
    text = f"evaluation images: {evaluated}; model trained on {', '.join(trained) or '?'}"
    text += f" (validated on {', '.join(held)})" if held else ""
    return f"{text}; {verdict}" + (f". Training split: {split}" if split else "")


def write_outputs(
    result: EvaluationResult,
    output: str | Path,
    *,
    seed: int | None,
    interval: str = "t",
    border: int | None = None,
    crop: int | None = None,
    split: str = "",
) -> list[Path]:
    """Write the CSVs, pictures and the two reports of `result` into `output`."""
    from medsr.evaluation import report
    from medsr.viz import figures

    out = Path(output)
    if (out / "report.md").exists():
        raise FileExistsError(f"{out} already holds a report; choose another --output")
    out.mkdir(parents=True, exist_ok=True)
    numeric = [c for c in COLUMNS if c not in ("image", "method", "metric_space", "unit")]
    summary = summarize(result.rows, numeric, interval)
    fidelity = [r for r in result.rows if r["method"] != "target"]
    paired = [
        d
        for m in ("psnr", "ssim")
        for d in paired_differences(fidelity, m, result.reference, interval)
    ]
    written = [
        write_csv(result.rows, out / "per_image.csv", COLUMNS),
        write_csv(summary, out / "summary.csv", SUMMARY_COLUMNS),
        write_csv(paired, out / "paired.csv", PAIRED_COLUMNS),
    ]
    pictures: dict[str, Path] = {"bars": figures.metric_bars(result, summary, out / "metrics.png")}
    if (nps := figures.nps_plot(result, out / "nps.png")) is not None:
        pictures["nps"] = nps
    stems = [image_stem(image.pair.name) for image in result.images]
    unique = len(set(stems)) == len(stems)  # else a.png and a.dcm keep their suffixes
    for image, stem in zip(result.images, stems, strict=True):
        path = out / f"grid_{stem if unique else image.pair.name}.png"
        pictures[f"grid:{image.pair.name}"] = figures.comparison_grid(image, result.rows, path)
    written += list(pictures.values())
    conds = report.conditions(result, seed, interval, border, crop, split)
    blocks = report.build_blocks(result, summary, paired, conds, pictures)
    (out / "report.md").write_text(report.to_markdown(blocks, out), encoding="utf-8")
    (out / "report.html").write_text(report.to_html(blocks), encoding="utf-8")
    return [*written, out / "report.md", out / "report.html"]


def _load_pairs(
    predictor: Enhancer | None,
    data: Sequence[str],
    pairs_dir: str | Path | None,
    low_dir: str | Path | None,
    high_dir: str | Path | None,
    task: str | None,
    seed: int,
    slice_index: int | None,
    task_overrides: Mapping[str, Any] | None,
    input_crop: int | None,
) -> list[EvalPair]:
    """The evaluation pairs of `run_evaluation`: real pairs, `medsr degrade` pairs, or pairs
    made from `data` with `task` (default: the model's)."""
    if (low_dir is None) != (high_dir is None):
        raise ValueError("give both --low and --high")
    if low_dir is not None and high_dir is not None:
        if data or pairs_dir is not None:
            raise ValueError("give --low/--high, --data or --pairs, one of them")
        from medsr.evaluation.real_pairs import read_real_pairs

        pairs = read_real_pairs(low_dir, high_dir, task or getattr(predictor, "task", None))
        if predictor is not None and pairs[0].scale != predictor.scale:
            raise ValueError(
                f"the high images are {pairs[0].scale} x the low ones but the model is "
                f"x{predictor.scale}"
            )
    elif pairs_dir is not None:
        if data:
            raise ValueError("give either --data or --pairs, not both")
        pairs = read_pairs(pairs_dir, slice_index)
        if task is not None and task != pairs[0].task:
            raise ValueError(f"--task {task} but the pairs in {pairs_dir} are {pairs[0].task}")
    else:
        task = task or (predictor.task if predictor is not None else None)
        if task is None:
            raise ValueError("--task is needed when no model gives one (e.g. --task x4)")
        pairs = make_pairs(data, task, seed, slice_index, task_overrides, input_crop)
    return pairs


def run_evaluation(
    output: str | Path,
    *,
    model: str | Enhancer | None = None,
    data: Sequence[str] = (),
    pairs_dir: str | Path | None = None,
    low_dir: str | Path | None = None,
    high_dir: str | Path | None = None,
    task: str | None = None,
    seed: int = 0,
    window: str = "auto",
    baselines: Sequence[str] = DEFAULT_BASELINES,
    border: int | None = None,
    crop: int | None = None,
    interval: str = "t",
    slice_index: int | None = None,
    input_crop: int | None = None,
    task_overrides: Mapping[str, Any] | None = None,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
    precision: str = "auto",
) -> list[Path]:
    """Evaluate `model` (a `Predictor` name/path, an `Enhancer`, or None for baselines only)
    on pairs made from `data` with `task` (default: the model's), read from `pairs_dir`
    (`medsr degrade` output), or the user's own real pairs `low_dir` / `high_dir`
    (`real_pairs.read_real_pairs`: matched by name or DICOM position). `precision` ("auto",
    "fp32", "bf16") is a named model's (`Predictor.load`)."""
    from medsr.inference import Predictor, consistency_map

    if (Path(output) / "report.md").exists():  # fail before minutes of work, not after
        raise FileExistsError(f"{output} already holds a report; choose another --output")
    predictor: Enhancer | None = None
    if isinstance(model, str | Path):
        predictor = Predictor.load(str(model), device=device, precision=precision)
    elif model is not None:
        predictor = model
    pairs = _load_pairs(
        predictor,
        data,
        pairs_dir,
        low_dir,
        high_dir,
        task,
        seed,
        slice_index,
        task_overrides,
        input_crop,
    )
    result = evaluate(pairs, predictor, baselines, window, border, crop, consistency_map, progress)
    split = split_statement(pairs, predictor)
    return write_outputs(
        result,
        output,
        seed=seed if pairs_dir is None and low_dir is None else None,
        interval=interval,
        border=border,
        crop=crop,
        split=split,
    )
