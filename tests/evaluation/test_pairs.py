from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medsr.cli import app
from medsr.evaluation.pairs import choose_window, describe_volume, make_pairs, read_pairs
from medsr.io.samples import load_sample
from medsr.physics.tasks import degrade_volume, slice_seed

pytest.importorskip("pydicom.data")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ct-head-693 5/5mm Plain", "neuro"),
        ("BRAIN routine", "neuro"),
        ("ct-abdomen PANCREAS", "abdomen"),
        ("CHEST", "chest"),
        ("Thorax HRCT", "chest"),
        ("LIVER", "abdomen"),
        ("CT_small.dcm", "abdomen"),
    ],
)
def test_auto_window_rule(text: str, expected: str) -> None:
    name, reason = choose_window(text, "auto")
    assert name == expected
    assert reason.startswith("auto")
    assert ("soft-tissue default" in reason) == (text == "CT_small.dcm")


def test_explicit_window_and_bad_window() -> None:
    assert choose_window("head", "chest") == ("chest", "chosen with --window")
    with pytest.raises(ValueError, match="window must be one of"):
        choose_window("head", "lung")


def test_describe_volume_reads_body_part_of_the_real_samples() -> None:
    assert choose_window(describe_volume(load_sample("ct-head-693")))[0] == "neuro"
    assert choose_window(describe_volume(load_sample("ct-abdomen")))[0] == "abdomen"


def test_make_pairs_is_seeded_and_remade_by_degrade_volume() -> None:
    (pair,) = make_pairs(["sample:ct-small"], "x2", seed=3)
    assert pair.name == "ct-small" and pair.scale == 2 and not pair.noisy
    assert pair.high.shape == (128, 128) and pair.low.shape == (64, 64)
    assert pair.seed == slice_seed(3, 0) == pair.params["degrade_seed"]
    again = degrade_volume(load_sample("ct-small"), "x2", seed=pair.seed)
    np.testing.assert_array_equal(again.low.array, pair.low)
    cropped = make_pairs(["sample:ct-small"], "x2", input_crop=64)[0]
    np.testing.assert_array_equal(cropped.high, load_sample("ct-small").array[32:96, 32:96])


def test_read_pairs_written_by_medsr_degrade(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "degrade",
            "sample:ct-small",
            "--task",
            "x2",
            "--seed",
            "5",
            "--format",
            "npy",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    (pair,) = read_pairs(tmp_path)
    assert (pair.name, pair.task, pair.scale, pair.seed) == ("ct-small", "x2", 2, 5)
    assert pair.source == "sample:ct-small" and pair.modality == "CT"
    made = degrade_volume(load_sample("ct-small"), "x2", seed=5)
    np.testing.assert_allclose(pair.low, made.low.array, atol=1e-3)
    np.testing.assert_allclose(pair.high, made.high.array, atol=1e-3)
    with pytest.raises(ValueError, match="no \\*_params.json"):
        read_pairs(tmp_path / "missing")
