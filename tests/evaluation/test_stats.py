from __future__ import annotations

import math

import pytest

from medsr.evaluation.stats import (
    bootstrap_interval,
    mean_interval,
    paired_differences,
    summarize,
    t_interval,
)


def test_t_interval_hand_checked() -> None:
    # mean 3, sample SD sqrt(2.5) = 1.5811, SE 0.70711, t(0.975, 4) = 2.776445
    result = t_interval([1, 2, 3, 4, 5])
    assert result.mean == 3.0 and result.n == 5
    assert result.low == pytest.approx(3 - 2.776445 * 0.707107, abs=1e-5)  # 1.03676
    assert result.high == pytest.approx(4.96324, abs=1e-5)
    assert result.meaningful and result.note == ""


def test_small_n_is_flagged_and_nan_values_are_skipped() -> None:
    single = t_interval([2.0, math.nan, math.inf])
    assert single.n == 1 and single.mean == 2.0 and math.isnan(single.low)
    assert "n = 1" in single.note and not single.meaningful
    three = t_interval([1.0, 2.0, 3.0])  # t(0.975, 2) = 4.302653, SE 1/sqrt(3)
    assert three.high - three.mean == pytest.approx(4.302653 / math.sqrt(3), abs=1e-5)
    assert "not meaningful" in three.note
    assert t_interval([]).note == "no value"


def test_bootstrap_interval() -> None:
    flat = bootstrap_interval([4.0] * 6)
    assert (flat.low, flat.mean, flat.high) == (4.0, 4.0, 4.0)
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    result = mean_interval(values, "bootstrap")
    assert result.low < 4.5 < result.high
    assert result.high - result.low < t_interval(values).high - t_interval(values).low + 0.5
    assert bootstrap_interval(values) == result  # seeded
    with pytest.raises(ValueError, match="interval must be one of"):
        mean_interval(values, "wald")


ROWS = [
    {"image": "a", "method": "lanczos", "psnr": 30.0},
    {"image": "a", "method": "model", "psnr": 31.5},
    {"image": "b", "method": "lanczos", "psnr": 20.0},
    {"image": "b", "method": "model", "psnr": 20.5},
    {"image": "b", "method": "target", "psnr": None},
]


def test_summary_rows() -> None:
    summary = summarize(ROWS, ["psnr"])
    assert [(s["method"], s["n"], s["mean"]) for s in summary] == [
        ("lanczos", 2, 25.0),
        ("model", 2, 26.0),
    ]
    # t(0.975, 1) = 12.7062, SD of (30, 20) = 7.0711, SE 5
    assert summary[0]["high"] == pytest.approx(25 + 12.7062 * 5, abs=1e-3)
    assert summary[0]["note"] == "n = 2: interval not meaningful"


def test_paired_differences_remove_between_image_spread() -> None:
    (diff,) = paired_differences(ROWS, "psnr", "lanczos")
    assert diff["method"] == "model" and diff["n"] == 2
    assert diff["mean"] == pytest.approx(1.0)  # (1.5 + 0.5) / 2
    assert diff["high"] - diff["mean"] == pytest.approx(12.7062 * 0.5, abs=1e-3)
