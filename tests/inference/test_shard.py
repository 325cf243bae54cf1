"""Batch runs under torchrun: deterministic shares; 2 CPU processes (gloo) on `enhance`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medsr.image import Volume
from medsr.inference.shard import Shard, join_shard
from medsr.io import write
from tests.inference.conftest import PERCENTILE, save_checkpoint


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_shares_cover_every_item_once(world_size: int) -> None:
    items = [f"series-{k}" for k in range(7)]
    shares = [Shard(rank, world_size).take(items) for rank in range(world_size)]
    assert sorted(sum(shares, [])) == sorted(items)
    assert shares == [Shard(rank, world_size).take(items) for rank in range(world_size)]
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_alone_without_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    shard = join_shard()
    assert (shard.rank, shard.world_size, shard.enabled) == (0, 1, False)
    assert shard.gather(3) == [3] and shard.broadcast("x") == "x"
    assert Shard(1, 2, local_rank=1).device("cpu") == "cpu"
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="RANK 2"):
        join_shard()


def test_torchrun_enhance_two_processes(tmp_path: Path) -> None:
    """Every input enhanced exactly once over 2 processes, one summary from rank 0."""
    model = save_checkpoint(tmp_path / "xray.pt", task="xray-x4", normalization=PERCENTILE)
    rng = np.random.default_rng(0)
    image = Volume(rng.random((12, 10)) * 4000, spacing=(0.5, 0.5), modality="CR")
    inputs = [write(image, tmp_path / "in" / f"im{k}.png") for k in range(5)]
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        "--standalone",
        "-m",
        "medsr.cli",
        "enhance",
        str(tmp_path / "in"),
        "-o",
        str(out),
        "--model",
        str(model),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # two processes share the pipe: a line of one can land inside a line of the other, so
    # the "wrote PATH" records are found anywhere, not only at line starts
    wrote = sorted(re.findall(r"wrote (\S+_x4\.png)", done.stdout))
    expected = sorted(str(out / f"{p.stem}_x4.png") for p in inputs)
    assert wrote == expected  # each output written once, by one process
    assert sorted(str(p) for p in out.iterdir()) == expected
    assert done.stdout.count("medsr enhance:") == 1
    assert "5 files written by 2 processes (rank 0: 3, rank 1: 2)" in done.stdout
