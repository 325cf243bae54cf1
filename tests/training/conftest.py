from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from medsr.io.samples import is_available
from medsr.training.config import TrainConfig, config_from_dict


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    """Training configs set torch's thread count; give it back after each test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "num_threads": 1,  # 2 threads on 2 shared, busy cores can be ~20x slower
    "data": {
        "samples": ["invesalius-head-ct"],
        "split": "slab",
        "task": "x2",
        "scale": 2,
        "patch_size": 32,
        "num_validation": 32,
    },
    "model": {
        "name": "srresnet",
        "num_features": 16,
        "num_blocks": 2,
        "batch_norm": False,
        "global_residual": True,
    },
    "discriminator": {"name": "vgg", "num_features": 4},
    "training": {
        "lr": 2e-3,
        "batch_size": 8,
        "max_steps": 6,
        "schedule": "cosine",
        "warmup_steps": 2,
    },
    "intervals": {
        "log_every": 2,
        "validate_every": 3,
        "sample_every": 3,
        "checkpoint_every": 3,
        "keep_last": 5,
    },
    "evaluation": {"window": "neuro"},
}


@pytest.fixture
def tiny_config() -> Callable[..., TrainConfig]:
    """`tiny_config("training.max_steps=10", ...)`: a seconds-long run on InVesalius x2."""
    if not is_available("invesalius-head-ct"):
        pytest.skip("needs the InVesalius sample (apt-get install -y invesalius-examples)")

    def make(*overrides: str) -> TrainConfig:
        return config_from_dict(TINY, list(overrides))

    return make
