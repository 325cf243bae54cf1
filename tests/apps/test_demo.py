"""`medsr demo`: one report per installed case, linked from index.md; refuses to overwrite."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from medsr.apps import demo
from medsr.apps.demo import DEMO_CASES, RESEARCH_USE, DemoCase, losses, run_demo
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
    # the index quotes the report's own numbers, and says where the model loses
    assert f"| ct-ldct-x4 | {float(psnr['ct-ldct-x4']):.4g} |" in text
    beaten = [m for m, v in psnr.items() if m != "target" and float(v) > float(psnr["ct-ldct-x4"])]
    if beaten:
        assert "**Where ct-ldct-x4 loses to a baseline here:**" in text
        assert all(f"{m} (" in text for m in beaten)
    else:
        assert "**Where ct-ldct-x4 loses" in text or "beats every baseline" in text
    with pytest.raises(FileExistsError, match="not empty"):
        run_demo(tmp_path / "out")  # never writes into a used folder


def test_demo_without_any_model_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "available_models", lambda: [])
    with pytest.raises(FileNotFoundError, match="none of the demo models"):
        run_demo(tmp_path / "empty")
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_losses_are_computed_from_the_numbers() -> None:
    rows = [
        {"image": "a", "method": "lanczos", "psnr": "30.0", "ssim": "0.90"},
        {"image": "a", "method": "bm3d-lanczos", "psnr": "33.0", "ssim": "0.80"},
        {"image": "a", "method": "m", "psnr": "32.0", "ssim": "0.85"},
        {"image": "b", "method": "lanczos", "psnr": "30.0", "ssim": "0.90"},
        {"image": "b", "method": "bm3d-lanczos", "psnr": "33.0", "ssim": "0.80"},
        {"image": "b", "method": "m", "psnr": "32.0", "ssim": "0.85"},
    ]
    assert losses(rows, "m") == (
        "**Where m loses to a baseline here:** its PSNR (32) is below bm3d-lanczos (33); "
        "its SSIM (0.85) is below lanczos (0.9)."
    )
    winning = [
        {**row, "psnr": "40", "ssim": "0.99"} if row["method"] == "m" else row for row in rows
    ]
    assert losses(winning, "m") == "**m beats every baseline here on PSNR and SSIM.**"


def test_each_case_names_its_sample_anatomy() -> None:
    from medsr.io.samples import SAMPLES

    for case in DEMO_CASES:
        anatomy = SAMPLES[case.source.removeprefix("sample:")].description.split()[0].lower()
        assert case.what.lower().startswith(anatomy), (case.what, anatomy)
