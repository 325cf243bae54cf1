from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from medsr.evaluation import evaluate, make_pairs
from medsr.evaluation.runner import (
    COLUMNS,
    EvaluationResult,
    compute_metrics,
    metric_region,
    write_csv,
)
from medsr.metrics.contrast import contrast_retention, soft_tissue_mask
from medsr.metrics.ct import hu_rmse, windowed_psnr, windowed_ssim
from medsr.metrics.image import l1, mse, psnr, ssim
from medsr.metrics.noise import noise_sd

from .conftest import LanczosModel


def test_metric_region_border_and_crop() -> None:
    assert metric_region((64, 48), 4) == (slice(16, 48), slice(16, 32))
    assert metric_region((64, 48), 2, border=0, crop=20) == (slice(22, 42), slice(14, 34))
    with pytest.raises(ValueError, match="border 30 leaves less than 11"):
        metric_region((64, 64), 2, border=30)
    with pytest.raises(ValueError, match="crop must be at least 11"):
        metric_region((64, 64), 2, crop=8)


def test_compute_metrics_equal_direct_metric_calls() -> None:
    rng = np.random.default_rng(0)
    target = (40 + 10 * rng.standard_normal((48, 48))).astype(np.float32)
    output = (target + 5 * rng.standard_normal((48, 48))).astype(np.float32)
    got = compute_metrics(output, target, "CT", "neuro")
    p, t = torch.from_numpy(output), torch.from_numpy(target)
    assert got["psnr"] == pytest.approx(float(windowed_psnr(p, t, "neuro")), abs=1e-9)
    assert got["ssim"] == pytest.approx(float(windowed_ssim(p, t, "neuro")), abs=1e-9)
    assert got["mse"] == pytest.approx(float(mse(p, t)), rel=1e-6)  # summed in float64 here
    assert got["hu_rmse"] == pytest.approx(float(hu_rmse(p, t)), rel=1e-6)
    assert got["psnr_full_range"] == pytest.approx(float(psnr(p, t, data_range=4095.0)))
    assert got["psnr_full_range"] > got["psnr"] + 15  # why full range is never shown alone
    assert math.isnan(got["noise_sd"])  # no ROIs given
    assert got["contrast_kept"] == pytest.approx(
        contrast_retention(output, target, soft_tissue_mask(target))
    )
    assert math.isnan(compute_metrics(output, target - 1000, "CT", "neuro")["contrast_kept"])  # air
    xray = compute_metrics(output, target, "CR", value_range=(0.0, 80.0))
    pn, tn = (p / 80).clamp(0, 1), (t / 80).clamp(0, 1)
    assert xray["psnr"] == pytest.approx(float(psnr(pn, tn, data_range=1.0)), abs=1e-9)
    assert xray["ssim"] == pytest.approx(float(ssim(pn, tn, data_range=1.0)), abs=1e-9)
    assert xray["l1"] == pytest.approx(float(l1(pn, tn)), abs=1e-9)
    assert math.isnan(xray["hu_rmse"])
    with pytest.raises(ValueError, match="CT metrics need a window"):
        compute_metrics(output, target, "CT")


def test_hu_errors_are_measured_inside_the_field_of_view() -> None:
    rng = np.random.default_rng(1)
    target = (40 + 10 * rng.standard_normal((48, 48))).astype(np.float32)
    output = target + 3.0
    target[:, :8] = -3024.0  # padding outside the field of view ...
    output[:, :8] = -1000.0  # ... where a method wrote air: no image, no error
    got = compute_metrics(output, target, "CT", "neuro")
    assert got["hu_rmse"] == pytest.approx(3.0, abs=1e-4)
    assert got["l1"] == pytest.approx(3.0, abs=1e-4) and got["mse"] == pytest.approx(9.0, 1e-4)


def test_rows_equal_metrics_on_the_outputs(ct_small_result: EvaluationResult) -> None:
    result = ct_small_result
    assert result.methods == ["nearest", "bicubic", "lanczos", "fake-lanczos"]
    image = result.images[0]
    assert image.window == "abdomen" and "soft-tissue default" in image.window_reason
    assert image.region == (slice(8, 120), slice(8, 120))
    rows = {r["method"]: r for r in result.rows}
    assert set(rows) == {*result.methods, "target"}
    target = torch.from_numpy(image.pair.high[image.region])
    for method in result.methods:
        output = torch.from_numpy(image.outputs[method][image.region])
        assert rows[method]["psnr"] == pytest.approx(
            float(windowed_psnr(output, target, "abdomen"))
        )
        assert rows[method]["seconds"] >= 0
        assert rows[method]["noise_sd"] == pytest.approx(
            noise_sd(output.numpy(), image.rois), rel=1e-9
        )
        assert rows[method]["contrast_kept"] == pytest.approx(
            contrast_retention(output.numpy(), target.numpy(), soft_tissue_mask(target.numpy())),
            rel=1e-9,
        )
    assert 0 < rows["lanczos"]["contrast_kept"] < 1  # interpolation flattens fine structure
    assert rows["fake-lanczos"]["psnr"] == pytest.approx(rows["lanczos"]["psnr"], abs=1e-6)
    assert rows["lanczos"]["psnr"] > rows["nearest"]["psnr"] + 1.0
    assert rows["nearest"]["consistency"] == pytest.approx(0.0, abs=1e-6)  # area(nearest) = low
    assert rows["target"]["psnr"] is None and rows["target"]["noise_sd"] > 0


def test_csv_holds_the_rows(ct_small_result: EvaluationResult, tmp_path: Path) -> None:
    path = write_csv(ct_small_result.rows, tmp_path / "rows.csv", COLUMNS)
    with path.open() as stream:
        read = list(csv.DictReader(stream))
    assert list(read[0]) == list(COLUMNS)
    assert len(read) == len(ct_small_result.rows)
    for row, original in zip(read, ct_small_result.rows, strict=True):
        assert row["method"] == original["method"]
        for key in ("psnr", "ssim", "hu_rmse", "seconds"):
            expected = original[key]
            assert (row[key] == "") if expected is None else float(row[key]) == expected


def test_model_scale_must_match_the_task() -> None:
    pairs = make_pairs(["sample:ct-small"], "x2")
    with pytest.raises(ValueError, match="model scale 4 differs from the task's scale 2"):
        evaluate(pairs, LanczosModel(scale=4))


@pytest.mark.filterwarnings("ignore:.*PixelSpacing")
def test_radiograph_pairs_use_the_hr_percentile_range() -> None:
    pairs = make_pairs(["sample:xray-extremity-rg3"], "xray-x4", input_crop=96)
    result = evaluate(pairs, baselines=["nearest", "lanczos", "nlm-lanczos"])
    image = result.images[0]
    assert image.window is None and image.rois == []
    low, high = np.percentile(image.pair.high[image.region], [0.5, 99.5])
    assert image.value_range == pytest.approx((low, high))
    rows = {r["method"]: r for r in result.rows}
    assert set(rows) == {"nearest", "lanczos", "nlm-lanczos"}  # no CT noise ROIs: no target row
    assert rows["lanczos"]["hu_rmse"] is None and 0 < rows["lanczos"]["ssim"] < 1
    assert "p0.5/p99.5" in rows["lanczos"]["metric_space"]
