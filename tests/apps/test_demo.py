"""`medsr demo`: one report per installed case, linked from index.md; refuses to overwrite."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from medsr.apps import demo
from medsr.apps.demo import RESEARCH_USE, DemoCase, run_demo
from medsr.inference.registry import available_models

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.skipif("ct-ldct-x4" not in available_models(), reason="needs the shipped model")
def test_demo_writes_a_report_per_case_and_an_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = DemoCase("ct-ldct-x4", "sample:ct-small", "CT_small, 25 % dose, x4")  # seconds
    monkeypatch.setattr(demo, "DEMO_CASES", (small,))
    index = run_demo(tmp_path / "out")
    text = index.read_text(encoding="utf-8")
    assert RESEARCH_USE in text and "## ct-ldct-x4: CT_small" in text
    report = tmp_path / "out" / "ct-ldct-x4"
    assert (report / "report.html").is_file() and (report / "grid_ct-small.png").stat().st_size
    with (report / "per_image.csv").open(encoding="utf-8") as stream:
        psnr = {row["method"]: row["psnr"] for row in csv.DictReader(stream)}
    # the index quotes the report's own numbers
    assert f"| ct-ldct-x4 | {float(psnr['ct-ldct-x4']):.4g} |" in text
    with pytest.raises(FileExistsError, match="not empty"):
        run_demo(tmp_path / "out")  # never writes into a used folder


def test_demo_without_any_model_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "available_models", lambda: [])
    with pytest.raises(FileNotFoundError, match="none of the demo models"):
        run_demo(tmp_path / "empty")
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())
