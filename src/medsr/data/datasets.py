"""Training datasets: pairs made on the fly from real images.

`OnTheFlyPairs` draws high-quality patches from 2-D images or slices of 3-D volumes, skips
air and background, augments (flips / quarter turns) and degrades them with a `Degradation`.
(Pairs that `medsr degrade` wrote are read by `medsr.evaluation.pairs.read_pairs`; real
low/full-dose pairs by `medsr.data.public.TciaLdctPairs`.) Item `i` of an epoch is reproducible:
all its randomness comes from a generator seeded from `(seed, epoch, i)`, so results do not
depend on DataLoader workers or on the order items are asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from medsr.image import NUM_DIHEDRAL, Volume, dihedral, seeded_generator
from medsr.physics.degradation import Degradation

Normalize = Callable[[torch.Tensor], torch.Tensor]
Item = dict[str, Any]
CT_AIR_THRESHOLD_HU = -500.0


class PatchSamplingError(RuntimeError):
    """No patch with enough foreground was found within the retry budget."""


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded from `(seed, epoch, index)` (independent streams per item)."""
    if min(seed, epoch, index) < 0:
        raise ValueError(f"seed, epoch and index must be >= 0, got {(seed, epoch, index)}")
    return seeded_generator(seed, epoch, index)


def foreground_threshold(volume: Volume, fraction: float = 0.1) -> float:
    """-500 HU for CT in HU; else `fraction` of the way from the 1st to the 99th percentile."""
    if volume.modality == "CT" and volume.unit == "HU":
        return CT_AIR_THRESHOLD_HU
    values = volume.array.ravel()[:: max(1, volume.array.size // 1_000_000)]
    low, high = np.percentile(values, [1, 99])
    return float(low + fraction * (high - low))


@dataclass
class PatchSource:
    """A volume to draw patches from, the source (patient / volume) it belongs to, and
    optionally the slices allowed (e.g. one slab of `split_by_slab`), a foreground
    threshold in the volume's unit (default: `foreground_threshold`) and a sampling weight
    (its slices are drawn `weight` times as often as their foreground alone would give)."""

    volume: Volume
    source_id: str | None = None
    slices: Sequence[int] | None = None
    threshold: float | None = None
    weight: float = 1.0


def _as_source(entry: Volume | PatchSource, position: int) -> PatchSource:
    source = entry if isinstance(entry, PatchSource) else PatchSource(entry)
    if source.source_id is None:
        meta = source.volume.metadata
        keys = ("patient_id", "PatientID", "sample", "path")
        name = next((meta[k] for k in keys if meta.get(k)), None)
        source.source_id = str(name) if name else f"source-{position}"
    return source


def _slice(volume: Volume, k: int) -> np.ndarray:
    return volume.array[k] if volume.is_volume else volume.array


class OnTheFlyPairs(Dataset[Item]):
    """Degraded patch pairs drawn from real images, `num_samples` per epoch.

    Items are dicts: `low` `(C, h, w)`, `high` `(C, s*h, s*w)` (after `normalize`, if given;
    the degradation always sees the original unit, e.g. HU) and `params`: the degradation's
    parameters plus `sample` (source, slice, row, col, size, augment op, epoch, index).
    A patch is accepted when more than `min_foreground` of its pixels exceed the source's
    threshold; at most `max_retries` draws, then `PatchSamplingError`. Slices are drawn with
    probability proportional to their foreground pixel count. `slice_index` lists the
    `(source position, slice)` pairs in use and `source_ids` the sources, for split checks.
    With persistent DataLoader workers, `set_epoch` does not reach the workers' copies.
    """

    def __init__(
        self,
        sources: Sequence[Volume | PatchSource],
        degradation: Degradation,
        patch_size: int = 64,
        scale: int = 1,
        num_samples: int = 1000,
        seed: int = 0,
        min_foreground: float = 0.5,
        augment: bool = True,
        normalize: Normalize | None = None,
        max_retries: int = 100,
    ) -> None:
        if scale < 1 or patch_size < 1 or patch_size % scale:
            raise ValueError(
                f"patch_size {patch_size} must be a positive multiple of scale {scale}"
            )
        if num_samples < 1 or max_retries < 1:
            raise ValueError(
                f"num_samples and max_retries must be >= 1: {num_samples}, {max_retries}"
            )
        if not 0 <= min_foreground < 1:
            raise ValueError(f"min_foreground must be in [0, 1), got {min_foreground}")
        self.sources = [_as_source(entry, i) for i, entry in enumerate(sources)]
        if not self.sources:
            raise ValueError("sources is empty")
        if bad := [s.weight for s in self.sources if not s.weight > 0]:
            raise ValueError(f"source weights must be > 0, got {bad}")
        self.degradation, self.patch_size, self.scale = degradation, patch_size, scale
        self.num_samples, self.seed, self.epoch = num_samples, seed, 0
        self.min_foreground, self.augment, self.normalize = min_foreground, augment, normalize
        self.max_retries = max_retries
        self.thresholds = [
            s.threshold if s.threshold is not None else foreground_threshold(s.volume)
            for s in self.sources
        ]
        self.slice_index: list[tuple[int, int]] = []
        weights: list[float] = []
        needed = min_foreground * patch_size**2
        for i, source in enumerate(self.sources):
            volume = source.volume
            if min(volume.shape[-2:]) < patch_size:
                raise ValueError(f"source {source.source_id} {volume.shape} < patch {patch_size}")
            slices = range(volume.num_slices) if source.slices is None else source.slices
            for k in slices:
                count = int(np.count_nonzero(_slice(volume, k) > self.thresholds[i]))
                if count > needed:  # a slice with less foreground can never yield a patch
                    self.slice_index.append((i, int(k)))
                    weights.append(count * source.weight)
        if not self.slice_index:
            raise ValueError(
                f"no slice has more than {min_foreground:.0%} of a {patch_size}^2 patch of "
                f"foreground (thresholds {self.thresholds}); lower min_foreground or threshold"
            )
        self._weights = torch.tensor(weights, dtype=torch.float64)

    @property
    def source_ids(self) -> list[str]:
        return [str(s.source_id) for s in self.sources]

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of patches: items depend on `(seed, epoch, index)`."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def _draw(self, g: torch.Generator) -> tuple[int, int, int, int]:
        p = self.patch_size
        for _ in range(self.max_retries):
            entry = int(torch.multinomial(self._weights, 1, generator=g))
            i, k = self.slice_index[entry]
            image = _slice(self.sources[i].volume, k)
            row = int(torch.randint(0, image.shape[0] - p + 1, (1,), generator=g))
            col = int(torch.randint(0, image.shape[1] - p + 1, (1,), generator=g))
            patch = image[row : row + p, col : col + p]
            if np.count_nonzero(patch > self.thresholds[i]) > self.min_foreground * p * p:
                return i, k, row, col
        raise PatchSamplingError(
            f"no {p}x{p} patch with more than {self.min_foreground:.0%} foreground in "
            f"{self.max_retries} draws (thresholds {self.thresholds}); lower min_foreground"
        )

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        g = item_generator(self.seed, self.epoch, index)
        i, k, row, col = self._draw(g)
        volume, p = self.sources[i].volume, self.patch_size
        patch = torch.from_numpy(_slice(volume, k)[row : row + p, col : col + p].copy())[None]
        op = int(torch.randint(0, NUM_DIHEDRAL, (1,), generator=g)) if self.augment else 0
        pair = self.degradation(dihedral(patch, op), volume.spacing[-1], g)
        low, high = pair.low, pair.high
        if tuple(high.shape[-2:]) != tuple(self.scale * n for n in low.shape[-2:]):
            raise ValueError(
                f"degradation gave low {tuple(low.shape)} and high {tuple(high.shape)}, "
                f"not a x{self.scale} pair; check `scale`"
            )
        if self.normalize is not None:
            low, high = self.normalize(low), self.normalize(high)
        sample = {
            "source": self.sources[i].source_id,
            "source_index": i,
            "slice": k,
            "row": row,
            "col": col,
            "size": p,
            "augment": op,
            "epoch": self.epoch,
            "index": index,
        }
        return {"low": low, "high": high, "params": {**pair.params, "sample": sample}}


def collate_pairs(batch: Sequence[Item]) -> Item:
    """Stack `low` and `high` into `(B, C, h, w)` tensors; keep `params` as a list of dicts."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    for name in ("low", "high"):
        shapes = {tuple(item[name].shape) for item in batch}
        if len(shapes) > 1:
            raise ValueError(f"{name} tensors differ in shape {sorted(shapes)}; crop to one size")
    return {
        "low": torch.stack([item["low"] for item in batch]),
        "high": torch.stack([item["high"] for item in batch]),
        "params": [item["params"] for item in batch],
    }
