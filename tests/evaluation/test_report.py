from __future__ import annotations

import csv
import platform
import re
from pathlib import Path

import pytest

from medsr import __version__
from medsr.evaluation import split_statement, write_outputs
from medsr.evaluation.runner import EvaluationResult


@pytest.fixture(scope="module")
def report_dir(ct_small_result: EvaluationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    split = split_statement([i.pair for i in ct_small_result.images], None)
    write_outputs(ct_small_result, out, seed=0, crop=96, split=split)
    return out


def test_files_exist(report_dir: Path) -> None:
    for name in (
        "per_image.csv",
        "summary.csv",
        "paired.csv",
        "metrics.png",
        "nps.png",
        "grid_ct-small.png",
        "report.md",
        "report.html",
    ):
        assert (report_dir / name).stat().st_size > 100, name
    assert (report_dir / "grid_ct-small.png").stat().st_size > 50_000


def test_markdown_names_every_condition(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    for needle in (
        "| task | x2: x2 area downsample |",
        "| scale | x2 |",
        "input dose (no dose reduction simulated)",
        "| I0 (incident photons per ray",
        "ct-small: abdomen (auto: no body part",
        "abdomen C50/W400 -> 0..1 (data_range 1)",
        "8 px border excluded, then central 96 px square",
        "run seed 0",
        "fake-lanczos; trained for task x2 at x2; checkpoint sha256 " + "ab" * 32,
        "written by medsr 0.0-test",
        f"| medsr version (evaluator) | {__version__} |",
        "UTC |",
        platform.node(),
        "sample:ct-small",
        "| split | evaluation images",
        "n = 1: interval not meaningful",
        "How to read the consistency",
        "How to read contrast_kept",
        "(grid_ct-small.png)",
    ):
        assert needle in text, needle
    assert re.search(r"\| fake-lanczos \| 1 \| \d+\.\d\d \|", text)  # summary row, no interval


def test_html_is_self_contained(report_dir: Path) -> None:
    text = (report_dir / "report.html").read_text()
    assert text.count('src="data:image/png;base64,') == 3  # bars, NPS, one grid
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert "checkpoint sha256 " + "ab" * 32 in text


def test_summary_csv_matches_the_rows(report_dir: Path, ct_small_result: EvaluationResult) -> None:
    with (report_dir / "summary.csv").open() as stream:
        summary = {(r["method"], r["metric"]): r for r in csv.DictReader(stream)}
    row = next(r for r in ct_small_result.rows if r["method"] == "bicubic")
    entry = summary[("bicubic", "psnr")]
    assert entry["n"] == "1" and float(entry["mean"]) == pytest.approx(row["psnr"])
    assert entry["low"] == "nan" and entry["note"] == "n = 1: interval not meaningful"
    with (report_dir / "paired.csv").open() as stream:
        paired = {(r["method"], r["metric"]): r for r in csv.DictReader(stream)}
    assert float(paired[("fake-lanczos", "psnr")]["mean"]) == pytest.approx(0.0, abs=1e-6)


def test_refuses_to_overwrite_a_report(report_dir: Path, ct_small_result: EvaluationResult) -> None:
    with pytest.raises(FileExistsError, match="already holds a report"):
        write_outputs(ct_small_result, report_dir, seed=0)
