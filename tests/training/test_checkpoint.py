from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from medsr.models import build_generator
from medsr.training import checkpoint as ckpt
from medsr.training.config import TrainConfig
from medsr.training.loop import train


class Unpicklable:
    def __reduce__(self) -> tuple[object, ...]:
        raise RuntimeError("cannot pickle this")


def test_save_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "run" / "step_00000001.pt"
    ckpt.save_atomic({"format": ckpt.FORMAT, "value": torch.arange(3)}, path)
    with pytest.raises(RuntimeError, match="cannot pickle"):
        ckpt.save_atomic({"format": ckpt.FORMAT, "value": Unpicklable()}, path)
    # the failed save left the earlier file intact and no temporary file behind
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert torch.equal(ckpt.load_checkpoint(path)["value"], torch.arange(3))
    with pytest.raises(RuntimeError):
        ckpt.save_atomic({"bad": Unpicklable()}, tmp_path / "run" / "other.pt")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_latest_and_prune(tmp_path: Path) -> None:
    assert ckpt.latest_checkpoint(tmp_path) is None
    for step in (3, 12, 6):
        ckpt.save_atomic({"format": ckpt.FORMAT}, ckpt.step_path(tmp_path, step))
    (tmp_path / ckpt.BEST_NAME).write_bytes(b"")
    assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "step_00000012.pt"
    removed = ckpt.prune_checkpoints(tmp_path, keep_last=2)
    assert [p.name for p in removed] == ["step_00000003.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.pt",
        "step_00000006.pt",
        "step_00000012.pt",
    ]


def test_not_a_checkpoint(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a medsr training checkpoint"):
        ckpt.load_checkpoint(tmp_path / "x.pt")


def test_rng_state_round_trip() -> None:
    state = ckpt.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_generator_rebuilds_from_the_file_alone(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    result = train(tiny_config("training.max_steps=3"), tmp_path)
    path = result["checkpoint"]
    payload = ckpt.load_checkpoint(path)
    assert payload["step"] == 3 and payload["medsr_version"]
    assert payload["normalization"] == {
        "kind": "window",
        "low": -1024.0,
        "high": 3071.0,
        "unit": "HU",
    }
    assert payload["config"]["model"]["num_blocks"] == 2
    assert set(payload["rng"]) >= {"torch", "numpy", "python"}
    assert "slab" in payload["split"] and "gap" in payload["split"]
    model = ckpt.load_generator(path)
    assert not model.training
    expected = build_generator(payload["generator"]["name"], **payload["generator"]["config"])
    expected.load_state_dict(payload["ema"])
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(model(x), expected.eval()(x))
    raw = ckpt.load_generator(path, use_ema=False)
    assert not torch.equal(raw.conv_first.weight, model.conv_first.weight)
    # the best checkpoint is kept next to the last K
    assert (tmp_path / "best.pt").is_file()
    assert {p.name for p in tmp_path.glob("step_*.pt")} == {"step_00000003.pt"}
