"""The torchrun environment, read in one place for training and batch inference (peers).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for every process it starts; without torchrun a
process is rank 0 of 1.
"""

from __future__ import annotations

import os


def env_int(name: str, default: int) -> int:
    """Integer environment variable `name`, `default` when unset; ValueError naming it when
    it is not an integer."""
    value = os.environ.get(name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None
