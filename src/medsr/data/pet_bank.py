"""CT-guided PET training pairs from a bank of whole-slice PET simulations.

A PET slice must be simulated whole: every line of response crosses the whole body
(attenuation, randoms and scatter, OSEM over the full field), so a patch simulated alone
would be a small hot object in air. At ~0.15 s per 256^2 slice that is too slow per training
item, so `PetBankPairs` simulates `realisations` PET/CT pairs of every training slice up
front (the bank: target activity on the CT grid, low-count PET on the `scale`-times coarser
grid, each realisation with its own lesions, texture and counts noise) and an item is an
aligned crop of one realisation: the CT patch `(p, p)`, the PET patch `(p/s, p/s)` whose
pixels cover exactly those CT pixels, and the target patch `(p, p)`, augmented alike.

Each realisation is the task's own pair (`PetCtTask.__call__`: its `sample`, the activity and
the acquisition) for a generator seeded from `(bank_seed, i, k, r)`. One volume teaches more
when its realisations differ in what a scan varies most: the counts (the task's
`counts_range`: each realisation's counts per slice drawn log-uniform by its `sample`, so the
noise level varies as between a small head slice and a large body slice) and the activity pattern
(`anatomies`: realisation r uses `anatomies[r % n]`, e.g. "head" and "body", which gives a
head slice the body's uptake with no brain).

Items are packed for `medsr.models.fusion`: `low` = PET (normalised) then the CT mapped
through each of `guide_windows`, folded by `pixel_unshuffle`: `(1 + G s^2, p/s, p/s)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from medsr.data.datasets import Item, Normalize, PatchSource, _slice
from medsr.data.slice_bank import Progress, SliceBank, check_bank_arguments, patch_picker
from medsr.image import Volume, dihedral, seeded_generator
from medsr.models.fusion import pack_inputs
from medsr.physics.pet_task import PetCtTask

DEFAULT_GUIDE_WINDOWS = ((-1000.0, 1000.0), (0.0, 80.0))
"""CT guide channels, HU `(low, high)` mapped to [0, 1] and clipped: a wide window (air, fat,
soft tissue, bone) and the brain window (grey / white matter, a few HU apart)."""


def guide_channels(ct_hu: torch.Tensor, windows: Sequence[Sequence[float]]) -> torch.Tensor:
    """CT `(..., H, W)` in HU -> `(..., G, H, W)` in [0, 1], one channel per `(low, high)`."""
    if not windows:
        raise ValueError("guide windows must not be empty")
    channels = []
    for window in windows:
        if len(window) != 2 or not float(window[1]) > float(window[0]):
            raise ValueError(f"a guide window is (low, high) with high > low, got {window}")
        low, high = float(window[0]), float(window[1])
        channels.append(((ct_hu.float() - low) / (high - low)).clamp(0.0, 1.0))
    return torch.stack(channels, dim=-3)


class PetBankPairs(SliceBank):
    """`petct` pairs cropped from a bank of whole-slice simulations (module doc).

    Items: `low` packed `(1 + G s^2, p/s, p/s)`, `high` target `(1, p, p)` (PET and target
    through `normalize`, e.g. SUV / 10), `params` (the task settings, the realisation's
    drawn values and `sample`: source, slice, row, col, size, augment, realisation).

    Args:
        sources, patch_size, num_samples, seed, min_foreground, augment: as `OnTheFlyPairs`
            (patch corners are moved down to multiples of `task.scale`).
        task: the `PetCtTask` (`make_task("petct", ...)`), with its ranges (`counts_range`,
            ...) drawn per realisation.
        normalize: SUV -> model units, for the PET and the target.
        guide_windows: HU windows of the CT guide channels (`guide_channels`).
        realisations: simulations per slice in the bank.
        bank_seed: realisation r of slice k of source i uses a generator seeded from
            `(bank_seed, i, k, r)`.
        progress: wraps the iteration over slices while the bank is built (e.g. tqdm).
        cache_dir: where to keep the bank (`pet_bank-<hash>.pt`); None: no cache.
        anatomies: activity models cycled over the realisations; None: the task's `anatomy`.
    """

    def __init__(
        self,
        sources: Sequence[Volume | PatchSource],
        task: PetCtTask,
        patch_size: int = 64,
        num_samples: int = 1000,
        seed: int = 0,
        min_foreground: float = 0.5,
        augment: bool = True,
        normalize: Normalize | None = None,
        guide_windows: Sequence[Sequence[float]] = DEFAULT_GUIDE_WINDOWS,
        realisations: int = 4,
        bank_seed: int = 0,
        progress: Progress | None = None,
        cache_dir: str | Path | None = None,
        anatomies: Sequence[str] | None = None,
    ) -> None:
        if getattr(task, "bank", None) != "pet":
            raise ValueError(f"task must be a PetCtTask (make_task('petct')), got {task!r}")
        check_bank_arguments(realisations, patch_size, task.scale)
        for anatomy in anatomies or ():
            replace(task, anatomy=anatomy)  # validates the name
        self.anatomies = list(anatomies or [])
        self.bank_options = tuple(self.anatomies) or None
        guide_channels(torch.zeros(1, 1), guide_windows)  # validates the windows
        self.patches = patch_picker(sources, patch_size, num_samples, seed, min_foreground, augment)
        self.task, self.scale, self.normalize = task, task.scale, normalize
        self.guide_windows = [tuple(float(v) for v in w) for w in guide_windows]
        self.realisations, self.bank_seed = realisations, bank_seed
        self.params: dict[tuple[int, int, int], dict[str, object]] = {}
        self.bank = self._load_or_build(progress, cache_dir)

    def _load_or_build(
        self, progress: Progress | None, cache_dir: str | Path | None
    ) -> dict[tuple[int, int], dict[str, torch.Tensor]]:
        path = None if cache_dir is None else Path(cache_dir) / f"pet_bank-{self._key()}.pt"
        if path is not None and path.is_file():
            stored = torch.load(path, weights_only=True)
            return {
                (i, k): {n: stored[f"{i},{k},{n}"] for n in ("ct", "target", "low")}
                for i, k in self.slice_index
            }
        bank: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        for i, k in progress(self.slice_index) if progress else self.slice_index:
            volume = self.patches.sources[i].volume
            image = torch.from_numpy(np.ascontiguousarray(_slice(volume, k)))[None]
            targets, lows, ct = [], [], torch.empty(0)
            for r in range(self.realisations):
                g = seeded_generator(self.bank_seed, i, k, r)
                pair = self._task_of(r)(image, float(volume.spacing[-1]), g)
                targets.append(pair.high[0])
                lows.append(pair.low[0])
                ct = pair.guide[0] if pair.guide is not None else image[0]
                kept = ("counts", "lesions", "prompts_low", "noise_seed")
                self.params[(i, k, r)] = {n: pair.params[n] for n in kept if n in pair.params}
            bank[(i, k)] = {"ct": ct, "target": torch.stack(targets), "low": torch.stack(lows)}
        if path is not None:
            from medsr.checkpoint import save_atomic

            save_atomic(
                {f"{i},{k},{n}": v for (i, k), entry in bank.items() for n, v in entry.items()},
                path,
            )
        return bank

    def _task_of(self, realisation: int) -> PetCtTask:
        """The task of one realisation: its own anatomy when `anatomies` are set."""
        if not self.anatomies:
            return self.task
        return replace(self.task, anatomy=self.anatomies[realisation % len(self.anatomies)])

    def __getitem__(self, index: int) -> Item:
        item = self.patches[index]
        sample = dict(item["params"]["sample"])
        i, k, p, op = (sample[n] for n in ("source_index", "slice", "size", "augment"))
        s = self.scale
        row, col = sample["row"] // s * s, sample["col"] // s * s
        g = seeded_generator(self.patches.seed, self.patches.epoch, index, 1)
        r = int(torch.randint(0, self.realisations, (1,), generator=g))
        entry = self.bank[(i, k)]
        ct = entry["ct"][row : row + p, col : col + p][None]
        high = entry["target"][r, row : row + p, col : col + p][None]
        low = entry["low"][r, row // s : (row + p) // s, col // s : (col + p) // s][None]
        ct, high, low = dihedral(ct, op), dihedral(high, op), dihedral(low, op)
        if self.normalize is not None:
            low, high = self.normalize(low), self.normalize(high)
        guide = guide_channels(ct[0], self.guide_windows)
        packed = pack_inputs(low[None], guide[None], s)[0]
        counts = list(self.task.counts_range) if self.task.counts_range else self.task.counts
        params = {
            "task": self.task.task,
            "scale": s,
            "counts": counts,
            "anatomy": self.anatomies or self.task.anatomy,
            "count_fraction": self.task.count_fraction,
            "guide_windows": [list(w) for w in self.guide_windows],
            "sample": {**sample, "row": row, "col": col, "realisation": r},
        }
        return {"low": packed.contiguous(), "high": high.contiguous(), "params": params}
