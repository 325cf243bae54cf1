"""torchrun on the CPU: 2 processes (gloo), a few steps of a tiny model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from medsr.training import checkpoint as ckpt
from medsr.training.config import TrainConfig
from medsr.training.loop import DEBUG_STATE_ENV, train


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_ranks_keep_identical_weights_and_match_one_process(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    config = tiny_config("training.max_steps=4", "intervals.checkpoint_every=4")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    env = {**os.environ, DEBUG_STATE_ENV: str(tmp_path / "ranks"), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "medsr.cli",
        "train",
        "--config",
        str(path),
        "--output",
        str(tmp_path / "ddp"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = torch.load(tmp_path / "ranks" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "ranks" / "rank1.pt", weights_only=True)
    assert max_diff(rank0["generator"], rank1["generator"]) == 0.0
    assert max_diff(rank0["ema"], rank1["ema"]) == 0.0
    # rank 0 alone wrote the checkpoint and the logs
    assert sorted(p.name for p in (tmp_path / "ddp").glob("*.pt")) == [
        "best.pt",
        "step_00000004.pt",
    ]
    assert done.stdout.count("medsr train:") == 1
    # ranks see different items and average gradients: 2 x 8 items per step equal one
    # process with batches of 16 (the same items), up to float summation order
    single = train(tiny_config("training.max_steps=4", "training.batch_size=16"), tmp_path / "one")
    one = ckpt.load_checkpoint(single["checkpoint"])["generator"]["state_dict"]
    assert max_diff(rank0["generator"], one) < 1e-4
    # the torchrun checkpoint resumes in a single process
    resumed = train(
        tiny_config("training.max_steps=6"),
        tmp_path / "ddp",
        resume=tmp_path / "ddp" / "step_00000004.pt",
    )
    assert resumed["checkpoint"] == tmp_path / "ddp" / "step_00000006.pt"
