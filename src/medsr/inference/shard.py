"""Batch runs under torchrun: each process takes a deterministic share of the inputs.

`torchrun --nproc-per-node N -m medsr.cli enhance ...` (or `pacs`) starts N processes with
RANK, LOCAL_RANK and WORLD_SIZE in their environment. `join_shard()` reads them and, when
WORLD_SIZE > 1, joins a gloo process group: only small Python objects travel (the list of
series, the counts for the summary), so gloo serves CPU and GPU jobs alike and never holds
an accelerator. Input k goes to rank k mod WORLD_SIZE of the list every rank sees in the
same order, so a share never depends on timing. Multi-node jobs use torchrun's rendezvous
(`--nnodes`, `--rdzv-endpoint`); nothing here changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from medsr.torchrun import ProcessRank

T = TypeVar("T")


class Shard(ProcessRank):
    """This process's place in a batch run (rank 0 of 1 without torchrun)."""

    def take(self, items: Sequence[T]) -> list[T]:
        """This rank's items: every WORLD_SIZE-th one, starting at RANK."""
        return list(items[self.rank :: self.world_size])

    def device(self, name: str) -> str:
        """`cuda` / `auto` -> this process's own GPU (`cuda:LOCAL_RANK`) under torchrun."""
        if self.enabled and name in ("cuda", "auto") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return name

    def broadcast(self, value: T) -> T:
        """Rank 0's `value` on every rank (a no-op alone)."""
        if not self.enabled:
            return value
        box: list[Any] = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: T) -> list[T]:
        """Every rank's `value`, in rank order, on every rank (`[value]` alone)."""
        if not self.enabled:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def join_shard(timeout_s: float = 24 * 3600) -> Shard:
    """This process's shard from RANK / WORLD_SIZE / LOCAL_RANK; joins gloo when needed.

    The timeout is long because ranks meet only at the start and the end of a batch, and a
    share may take hours.
    """
    shard = Shard.from_environment()
    if shard.enabled and not dist.is_initialized():
        dist.init_process_group(
            backend="gloo",
            rank=shard.rank,
            world_size=shard.world_size,
            timeout=timedelta(seconds=timeout_s),
        )
    return shard


def leave_shard() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
