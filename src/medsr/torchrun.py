"""The torchrun environment, read in one place for training and batch inference (peers).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for every process it starts; without torchrun a
process is rank 0 of 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar


def env_int(name: str, default: int) -> int:
    """Integer environment variable `name`, `default` when unset; ValueError naming it when
    it is not an integer."""
    value = os.environ.get(name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


Place = TypeVar("Place", bound="ProcessRank")


@dataclass(frozen=True)
class ProcessRank:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls: type[Place]) -> Place:
        """RANK, WORLD_SIZE and LOCAL_RANK; ValueError when RANK is not in [0, WORLD_SIZE)."""
        place = cls(env_int("RANK", 0), env_int("WORLD_SIZE", 1), env_int("LOCAL_RANK", 0))
        if not 0 <= place.rank < place.world_size:
            raise ValueError(f"RANK {place.rank} not in [0, WORLD_SIZE {place.world_size})")
        return place

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1
