"""Killed and resumed runs: temporary files of a killed save are removed, no step is logged
twice, and `--resume auto` passes over a truncated latest checkpoint (with a warning)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from medsr.training import checkpoint as ckpt
from medsr.training.config import TrainConfig
from medsr.training.logging import MetricsLog
from medsr.training.loop import train


def steps(path: Path) -> list[str]:
    with path.open(newline="") as stream:
        return [row["step"] for row in csv.DictReader(stream)]


def test_clean_partial_removes_only_temporary_saves(tmp_path: Path) -> None:
    names = [".step_00000003.pt.k2j4.tmp", ".best.pt.x9.tmp", "step_00000003.pt", ".other.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = ckpt.clean_partial(tmp_path)
    assert sorted(p.name for p in removed) == [".best.pt.x9.tmp", ".step_00000003.pt.k2j4.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp", "step_00000003.pt"]


def test_metrics_log_drops_rows_after_the_resumed_step(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path, use_tensorboard=False)
    for step in (2, 4, 6, 8):
        log.write("train", step, {"loss": 1.0 / step})
    with (tmp_path / "train.csv").open("a") as stream:
        stream.write("1")  # the half-written row of a killed run
    log = MetricsLog(tmp_path, use_tensorboard=False, resume_step=4)
    log.write("train", 6, {"loss": 0.5})
    assert steps(tmp_path / "train.csv") == ["2", "4", "6"]


def test_resume_auto_falls_back_past_a_truncated_checkpoint(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    train(tiny_config(), tmp_path)  # checkpoints at 3 and 6, rows at 2, 3 (validation), ...
    latest = tmp_path / "step_00000006.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # a full disk cut it short
    (tmp_path / ".step_00000009.pt.abcd.tmp").write_bytes(b"partial")  # a killed save
    with pytest.warns(UserWarning, match="step_00000006.pt cannot be read"):
        result = train(tiny_config(), tmp_path, resume="auto")
    assert result["checkpoint"] == latest
    assert int(ckpt.load_checkpoint(latest)["step"]) == 6
    assert steps(tmp_path / "train.csv") == ["2", "4", "6"]
    assert steps(tmp_path / "validation.csv") == ["3", "6"]
    assert not list(tmp_path.glob(".*.tmp"))
    for path in (tmp_path / "step_00000003.pt", latest):
        path.write_bytes(b"")
    with pytest.raises(ValueError, match="no readable checkpoint"), pytest.warns(UserWarning):
        train(tiny_config(), tmp_path, resume="auto")
    assert torch.get_num_threads() >= 1
