"""`medsr demo`: real samples -> physics degradation -> shipped models -> one report.

Each case degrades a real sample the model never trained on, enhances it with the shipped
model, runs the classical baselines on the same pair and writes a full evaluation report
(grid, metrics with their conditions, consistency map); `index.md` links them with the
headline numbers and says, from those numbers, where the model loses to a baseline. Sized
to run in about two minutes on a 2-core CPU.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsr.inference.registry import MODELS, available_models
from medsr.physics.unknown_resize import resize_only

RESEARCH_USE = "Research use only: medsr's outputs are not for diagnosis."
HIGHER_IS_BETTER = {"psnr": "PSNR", "ssim": "SSIM"}
"""The metrics `losses` compares the model and the baselines on."""


@dataclass(frozen=True)
class DemoCase:
    model: str
    source: str
    what: str
    input_crop: int | None = None
    task_overrides: dict[str, Any] = field(default_factory=dict)


DEMO_CASES = (
    DemoCase(
        "ct-ldct-x4",
        "sample:ct-head-693",
        "head CT (pydicom-data 693), 25 % dose simulated in the projection domain, x4",
    ),
    DemoCase(
        "ct-ldct",
        "sample:ct-abdomen",
        "abdomen CT slice (pydicom-data), 25 % dose simulated in the projection domain, "
        "denoised at x1",
    ),
    DemoCase(
        "xray-x4",
        "sample:xray-extremity-rg3",
        "extremity radiograph (pydicom-data RG3), central 768^2, reduced x4 with Pillow's "
        "bicubic (how many low-resolution images are made), enhanced back x4",
        input_crop=768,
        task_overrides=resize_only("bicubic"),
    ),
)


def run_demo(output: str | Path, progress: Callable[[str], None] | None = None) -> Path:
    """Run every demo case whose model is installed into `output`; returns `index.md`."""
    from medsr.evaluation import run_evaluation

    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output} is not empty; choose another output folder")
    installed = set(available_models())
    cases = [case for case in DEMO_CASES if case.model in installed]
    if not cases:
        raise FileNotFoundError(
            f"none of the demo models ({', '.join(c.model for c in DEMO_CASES)}) is installed"
        )
    lines = ["# medsr demo", "", f"**{RESEARCH_USE}**", ""]
    for case in cases:
        if progress:
            progress(f"{case.model}: {case.what}")
        folder = output / case.model
        run_evaluation(
            folder,
            model=case.model,
            data=[case.source],
            seed=0,
            input_crop=case.input_crop,
            task_overrides=case.task_overrides,
        )
        rows = read_rows(folder / "per_image.csv")
        lines += [
            f"## {case.model}: {case.what}",
            "",
            f"Model: {MODELS[case.model].description}.",
            "",
            headline(rows),
            "",
            losses(rows, case.model),
            "",
            f"Report: [{case.model}/report.html]({case.model}/report.html) "
            f"(also `report.md`, grids, CSV).",
            "",
        ]
    index = output / "index.md"
    index.write_text("\n".join(lines), encoding="utf-8")
    return index


def read_rows(per_image: Path) -> list[dict[str, str]]:
    """The rows of a report's `per_image.csv`, less the target's."""
    with per_image.open(encoding="utf-8") as stream:
        return [row for row in csv.DictReader(stream) if row["method"] != "target"]


def losses(rows: Sequence[dict[str, str]], model: str) -> str:
    """One plain sentence: each metric (`HIGHER_IS_BETTER`, mean over the images) on which
    `model` scores below a baseline, with both numbers; or that it beats them all."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        for metric in HIGHER_IS_BETTER:
            try:
                values[row["method"]][metric].append(float(row[metric]))
            except (KeyError, ValueError):
                continue  # a metric not measured for this method
    if model not in values:
        return f"{model} was not measured here."
    mean = {
        method: {m: sum(v) / len(v) for m, v in metrics.items() if v}
        for method, metrics in values.items()
    }
    mine = mean.pop(model)
    found = []
    for metric, label in HIGHER_IS_BETTER.items():
        beaten_by = [
            f"{method} ({_number(str(scores[metric]))})"
            for method, scores in mean.items()
            if metric in scores and metric in mine and scores[metric] > mine[metric]
        ]
        if beaten_by:
            found.append(
                f"its {label} ({_number(str(mine[metric]))}) is below {', '.join(beaten_by)}"
            )
    labels = " and ".join(HIGHER_IS_BETTER.values())
    if not found:
        return f"**{model} beats every baseline here on {labels}.**"
    return f"**Where {model} loses to a baseline here:** {'; '.join(found)}."


def headline(rows: Sequence[dict[str, str]]) -> str:
    """A small Markdown table: PSNR / SSIM / consistency per method, as measured."""
    space = rows[0]["metric_space"] if rows else ""
    table = [
        f"PSNR / SSIM on {space}:",
        "",
        "| method | PSNR dB | SSIM | consistency |",
        "|---|---|---|---|",
    ]
    for row in rows:
        table.append(
            f"| {row['method']} | {_number(row['psnr'])} | {_number(row['ssim'])} | "
            f"{_number(row.get('consistency', ''))} |"
        )
    return "\n".join(table)


def _number(text: str) -> str:
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return ""
