"""`medsr demo`: real samples -> physics degradation -> shipped models -> one report.

Each case degrades a real sample the model never trained on, enhances it with the shipped
model, runs the classical baselines on the same pair and writes a full evaluation report
(grid, metrics with their conditions, consistency map); `index.md` links them with the
headline numbers. Sized to run in about two minutes on a 2-core CPU.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsr.inference.registry import MODELS, available_models
from medsr.physics.unknown_resize import resize_only

RESEARCH_USE = "Research use only: medsr's outputs are not for diagnosis."


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
        "abdomen CT (pydicom-data), 25 % dose simulated in the projection domain, denoised at x1",
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
        lines += [
            f"## {case.model}: {case.what}",
            "",
            MODELS[case.model].description,
            "",
            headline(folder / "per_image.csv"),
            "",
            f"Report: [{case.model}/report.html]({case.model}/report.html) "
            f"(also `report.md`, grids, CSV).",
            "",
        ]
    index = output / "index.md"
    index.write_text("\n".join(lines), encoding="utf-8")
    return index


def headline(per_image: Path) -> str:
    """A small Markdown table: PSNR / SSIM / consistency per method, as measured."""
    with per_image.open(encoding="utf-8") as stream:
        rows = [row for row in csv.DictReader(stream) if row["method"] != "target"]
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
