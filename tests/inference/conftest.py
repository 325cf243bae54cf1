"""Checkpoints for the inference tests: tiny generators saved in the training format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from medsr._version import __version__
from medsr.checkpoint import FORMAT, save_atomic
from medsr.models import build_generator

CT_WINDOW = {"kind": "window", "low": -1024.0, "high": 3071.0, "unit": "HU"}
PERCENTILE = {"kind": "percentile", "percentiles": [0.5, 99.5], "unit": "[0, 1]"}
TINY = {"num_features": 8, "num_blocks": 1, "batch_norm": False, "global_residual": True}


def save_checkpoint(
    path: Path,
    task: str = "x4",
    scale: int = 4,
    name: str = "srresnet",
    normalization: dict[str, Any] | None = None,
    seed: int = 0,
    bicubic: bool = False,
    **kwargs: Any,
) -> Path:
    """A random-weight generator saved exactly as `medsr.training` saves checkpoints
    (the fields inference reads: generator spec, EMA, config, normalisation, version).

    `bicubic=True` zeroes the output conv: with the global residual the model is then exactly
    bicubic upsampling, a known function to test normalisation and geometry against."""
    torch.manual_seed(seed)
    model = build_generator(name, scale=scale, **(kwargs or TINY))
    with torch.no_grad():  # a non-trivial output: the output conv is zero-initialised by some
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
        if bicubic:
            model.get_submodule("conv_last").weight.zero_()
            model.get_submodule("conv_last").bias.zero_()
    normalization = normalization or CT_WINDOW
    config = {
        "name": f"tiny-{name}-{task}",
        "data": {"task": task, "scale": scale},
        "normalization": normalization,
        "model": {"name": name, **model.config()},
    }
    payload = {
        "format": FORMAT,
        "medsr_version": __version__,
        "step": 1,
        "generator": {"name": name, "config": model.config(), "state_dict": model.state_dict()},
        "discriminator": None,
        "ema": model.state_dict(),
        "config": config,
        "normalization": normalization,
    }
    return save_atomic(payload, path)


@pytest.fixture
def make_checkpoint(tmp_path: Path) -> Callable[..., Path]:
    """`make_checkpoint(task="x4", scale=4, name="srresnet", normalization=..., **model)`."""
    counter = iter(range(1000))

    def make(**options: Any) -> Path:
        return save_checkpoint(tmp_path / f"model_{next(counter)}.pt", **options)

    return make
