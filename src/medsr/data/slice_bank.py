"""What the whole-slice banks share: patches drawn by `OnTheFlyPairs`, a cache key, seeds.

Physics that depends on the whole slice (low-dose CT line integrals, PET counts) is simulated
once per training slice into a bank; items are aligned patches of a slice and one of its
realisations. `NoiseBankPairs` (CT) and `PetBankPairs` (PET) build on `SliceBank`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from medsr.data.datasets import Item, OnTheFlyPairs, PatchSource, _slice
from medsr.image import Volume
from medsr.physics.degradation import DegradedPair

Progress = Callable[[Iterable[tuple[int, int]]], Iterable[tuple[int, int]]]


def identity_degradation(
    high: torch.Tensor, spacing_mm: float, generator: torch.Generator
) -> DegradedPair:
    """`low = high`: lets `OnTheFlyPairs` pick and augment patches without degrading them."""
    return DegradedPair(low=high, high=high, params={})


def patch_picker(
    sources: Sequence[Volume | PatchSource],
    patch_size: int,
    num_samples: int,
    seed: int,
    min_foreground: float,
    augment: bool,
) -> OnTheFlyPairs:
    """`OnTheFlyPairs` that only picks (and augments) aligned patches of the bank's slices, on
    their own grid and unnormalised: the bank supplies the physics."""
    return OnTheFlyPairs(
        sources,
        identity_degradation,
        patch_size,
        scale=1,
        num_samples=num_samples,
        seed=seed,
        min_foreground=min_foreground,
        augment=augment,
        normalize=None,
    )


def check_bank_arguments(realisations: int, patch_size: int, scale: int) -> None:
    """ValueError for a bank without realisations or patches off the low-resolution grid."""
    if realisations < 1:
        raise ValueError(f"realisations must be >= 1, got {realisations}")
    if patch_size % scale:
        raise ValueError(f"patch_size {patch_size} must be a multiple of scale {scale}")


class SliceBank(Dataset[Item]):
    """Base of the banks: `patches` picks the patches; subclasses build and read the bank."""

    patches: OnTheFlyPairs
    realisations: int
    bank_seed: int

    @property
    def source_ids(self) -> list[str]:
        return self.patches.source_ids

    @property
    def slice_index(self) -> list[tuple[int, int]]:
        return self.patches.slice_index

    def set_epoch(self, epoch: int) -> None:
        self.patches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.patches)

    def _key(self) -> str:
        """A cache key over the task, seeds and the pixels of every slice in the bank."""
        task = getattr(self, "cache_task", None) or getattr(self, "task", None)
        key: tuple[object, ...] = (task, self.realisations, self.bank_seed)
        if options := getattr(self, "bank_options", None):  # only banks that have any
            key += (options,)
        digest = hashlib.sha1(repr(key).encode())
        for i, k in self.slice_index:
            volume = self.patches.sources[i].volume
            digest.update(f"{i},{k},{volume.spacing[-1]}".encode())
            digest.update(np.ascontiguousarray(_slice(volume, k)).tobytes())
        return digest.hexdigest()[:16]
