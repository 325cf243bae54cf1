"""Low-dose CT training pairs from a bank of whole-slice noise realisations.

Projection-domain low-dose noise must be inserted on the whole slice: every ray crosses the
whole body, so the noise of a pixel depends on everything on its lines (streaks along long
paths), and a patch projected alone would get the noise of a small object in air. Whole-slice
insertion costs ~0.8 s for the projection and ~0.3 s per draw at 256^2 on two CPU cores,
far too slow per training item. So `NoiseBankPairs` projects each training slice once and
draws `realisations` noise images of the full slice up front (the bank); an item is then an
aligned patch of (normal-dose slice, normal-dose slice + one realisation), augmented alike,
and only the patch-level rest of the task is applied: the area downsample by `scale`. With
the task's `signal_kernel`, an item whose realisation has another kernel than the input's
takes its normal-dose patch from the whole slice as that kernel reconstructs it (computed
once per slice and kernel).

The bank does not re-implement the task: each source is calibrated by the task's own
`for_scan` on its whole volume (the I0 policy of `medsr.physics.low_dose_task`, the one of
`medsr degrade` and `medsr evaluate`), each realisation is the task's `unit_noise` for its
own `sample` (realisation r of slice k of source i: a generator seeded from
`(bank_seed, i, k, r)`, so a task that draws a reconstruction kernel and a dose per pair
gives each realisation its own, remade on a cache load), and each item draws its own
`sample` (gain and zoom), takes the kernel and dose of the realisation it uses, composes the
patch with the task's `insert` and downsamples it with the task's `forward`.

Two optional training augmentations of the task (its `noise_gain` and `zoom` ranges) widen
what one volume teaches, both applied to the (normal-dose patch, noise patch) pair before
they are added:
- `noise_gain`: the noise image times a log-uniform gain. Quantum noise of a reconstruction
  scales as sqrt(1/d - 1) with the dose fraction d at a fixed texture, so a gain g stands for
  another dose (or another patient size) at the same scanner; the electronic-noise share,
  which changes the texture a little on long paths, is not re-simulated.
- `zoom`: the central `p / z` of both patches resampled (bicubic) to `p`, i.e. the same scan
  reconstructed on a grid `z` times finer: the noise keeps its physical frequencies, so its
  texture grows coarser in pixels (as in a 0.48 mm head scan vs the 0.96 mm training volume).

With `noise_level_unit` the items are for a non-blind denoiser (FFDNet, Zhang et al. 2018):
`low` gets a second, constant channel, the noise SD of the whole low-dose slice in HU
divided by `noise_level_unit`, measured as inference measures it
(`medsr.metrics.noise.estimate_noise`) on the whole slice as the input of a pair shows it
(with `signal_kernel`, as the realisation's kernel reconstructs it; for scale > 1 on the low
grid, downsampled as the task does, as inference measures its low input): on the normal-dose
slice (s0) and on it plus each realisation (s1); for a gain g the input's noise is
sqrt(s0^2 + g^2 (s1^2 - s0^2)) and the added noise g sqrt(s1^2 - s0^2). `noise_level_of`
picks which one the channel carries: "input", or "added", the noise the model should take
away (the normal-dose target keeps its own noise), which inference gets from the input's
as sqrt(1 - d) times it for a dose fraction d.

With `noise_frequency_unit` too, `low` gets a third channel: the input's NPS mean frequency
(cycles/pixel) over `noise_frequency_unit`, measured as inference measures it, in the same
pass as the SD on the same images. It tells the model the kernel: how much of the input's
fine grain is noise and how sharp the target is. Per item it follows the gain (NPS is
additive: the mean frequency of the sum is the power-weighted mean of the parts') and the
zoom (a grid z times finer moves the noise to 1/z of its frequencies in cycles/pixel).

With `dose_input` too (and `noise_level_of="added"`), `low` gets a last channel: the item's
dose fraction d, the one a user states with `--dose` (at a gain g the noise of dose
1 / (1 + g^2 (1/d - 1))). With the added noise it fixes how much noise the target keeps: its
own noise is sqrt(d / (1 - d)) times the added noise's. Without it the model must guess d
from the noise level (the training scans' mix). Tried on `ct-ldct` (configs/srgan-ct-ldct.yaml,
session 23): no gain on L143, and the quiet head of `benchmarks/ct_quiet_head.py` kept its
grain; not shipped.

Patch positions, foreground checks and augmentation come from `OnTheFlyPairs` (with an
identity degradation), so items are reproducible from `(seed, epoch, index)` as there.
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
from medsr.physics.ct import LowDoseCT
from medsr.physics.degradation import params_record
from medsr.physics.low_dose_task import LowDoseCTTask, LowDoseParams


class NoiseBankPairs(SliceBank):
    """`ldct*` task pairs with noise drawn from a per-slice bank (see the module doc).

    Items as `OnTheFlyPairs`: `low` `(1, p/s, p/s)`, `high` `(1, p, p)` (after `normalize`)
    and `params` (the task's parameters and `sample`, which adds the `realisation` used).

    Args:
        sources: volumes (HU) with the slices allowed, as for `OnTheFlyPairs`.
        task: the `LowDoseCTTask` (`make_task("ldct-x4", ...)`): its dose, I0, views,
            filter, `scale` and downsampling `method`, and its `noise_gain` and `zoom`
            ranges, drawn per item (validation sets leave them off).
        patch_size: high-resolution patch size, a multiple of `task.scale`.
        realisations: K noise draws per slice in the bank.
        bank_seed: seed of the bank; realisation r of slice k of source i is drawn from a
            generator seeded from `(bank_seed, i, k)`.
        progress: wraps the iteration over slices while the bank is built (e.g. tqdm).
        cache_dir: where to keep the bank (`noise_bank-<hash>.pt`, keyed by the slices'
            pixels, the task and the seeds) so a restart does not redo it; None: no cache.
        Other arguments: see `OnTheFlyPairs`.
    """

    def __init__(
        self,
        sources: Sequence[Volume | PatchSource],
        task: LowDoseCTTask,
        patch_size: int = 64,
        num_samples: int = 1000,
        seed: int = 0,
        min_foreground: float = 0.5,
        augment: bool = True,
        normalize: Normalize | None = None,
        realisations: int = 4,
        bank_seed: int = 0,
        progress: Progress | None = None,
        cache_dir: str | Path | None = None,
        noise_level_unit: float | None = None,
        noise_level_of: str = "input",
        noise_frequency_unit: float | None = None,
        dose_input: bool = False,
    ) -> None:
        if getattr(task, "bank", None) != "noise":
            raise ValueError(f"task must be a LowDoseCTTask (an ldct* task), got {task!r}")
        check_bank_arguments(realisations, patch_size, task.scale)
        if noise_level_of not in ("input", "added"):
            raise ValueError(f"noise_level_of must be 'input' or 'added', got {noise_level_of!r}")
        if noise_level_unit is not None and not noise_level_unit > 0:
            raise ValueError(f"noise_level_unit must be > 0, got {noise_level_unit}")
        if noise_frequency_unit is not None and (
            noise_level_unit is None or not noise_frequency_unit > 0
        ):
            raise ValueError(
                f"noise_frequency_unit needs noise_level_unit and a value > 0, got "
                f"{noise_frequency_unit}"
            )
        if dose_input and (noise_level_unit is None or noise_level_of != "added"):
            raise ValueError("dose_input needs noise_level_unit and noise_level_of='added'")
        self.patches = patch_picker(sources, patch_size, num_samples, seed, min_foreground, augment)
        self.task, self.scale, self.normalize = task, task.scale, normalize
        self.realisations, self.bank_seed = realisations, bank_seed
        self.scan_tasks: dict[int, LowDoseCTTask] = {}  # the task calibrated per source
        self.kernel_signals: dict[tuple[int, int, str], torch.Tensor] = {}
        self.bank_options = task.kernel_shapes() or None  # a refitted kernel: a new bank
        self.bank = self._load_or_build(progress, cache_dir)
        self.noise_level_unit, self.noise_level_of = noise_level_unit, noise_level_of
        self.noise_frequency_unit, self.dose_input = noise_frequency_unit, dose_input
        self.noise_measures = self._measure_noise() if noise_level_unit else {}

    @property
    def cache_task(self) -> LowDoseCTTask:
        """The task as the bank sees it: `noise_gain` and `zoom` are drawn per item from a
        bank built without them, so they do not change its cache key (a recipe that only
        changes them reuses the bank)."""
        return replace(self.task, noise_gain=(1.0, 1.0), zoom=(1.0, 1.0))

    def scan_task(self, source_index: int) -> LowDoseCTTask:
        """The task calibrated on one source's whole volume (`for_scan`: I0 once per scan, on
        its reference slice, the policy of `medsr.physics.low_dose_task`); cached."""
        if source_index not in self.scan_tasks:
            volume = self.patches.sources[source_index].volume
            scan = torch.from_numpy(np.ascontiguousarray(volume.array))
            self.scan_tasks[source_index] = self.task.for_scan(scan, float(volume.spacing[-1]))
        return self.scan_tasks[source_index]

    @property
    def incident_photons(self) -> dict[int, float | None]:
        """The I0 of each source (given, or calibrated on its scan)."""
        return {i: t.sample(torch.Generator()).incident_photons for i, t in self.scan_tasks.items()}

    def operator(self, source_index: int) -> LowDoseCT:
        """The low-dose operator of one source (its I0 calibrated on its scan)."""
        task = self.scan_task(source_index)
        return task.operator(task.sample(torch.Generator()))

    def _load_or_build(
        self, progress: Progress | None, cache_dir: str | Path | None
    ) -> dict[tuple[int, int], torch.Tensor]:
        path = None if cache_dir is None else Path(cache_dir) / f"noise_bank-{self._key()}.pt"
        if path is not None and path.is_file():
            stored = torch.load(path, weights_only=True)
            for key, value in stored.items():
                if key.startswith("I0,"):
                    i, slice_key = int(key[3:]), f"I0 slice,{key[3:]}"
                    k = int(stored[slice_key]) if slice_key in stored else None
                    self.scan_tasks[i] = replace(
                        self.task, scan_incident_photons=float(value), calibration_slice=k
                    )
            return {(i, k): stored[f"{i},{k}"] for i, k in self.slice_index}
        for i in sorted({i for i, _ in self.slice_index}):
            self.scan_task(i)
        bank: dict[tuple[int, int], torch.Tensor] = {}
        entries = progress(self.slice_index) if progress else self.slice_index
        for i, k in entries:
            # the task's noise of the whole slice (no crop: scale 1) at unit gain and no zoom,
            # which the items draw; each realisation with its own kernel and dose
            task = replace(self.scan_task(i), scale=1, noise_gain=(1.0, 1.0), zoom=(1.0, 1.0))
            volume = self.patches.sources[i].volume
            image = torch.from_numpy(np.ascontiguousarray(_slice(volume, k)))[None]
            g = seeded_generator(self.bank_seed, i, k)
            spacing = float(volume.spacing[-1])
            draws = [
                task.unit_noise(image, spacing, self.realisation_params(i, k, r), g)[0]
                for r in range(self.realisations)
            ]
            bank[(i, k)] = torch.stack(draws).float()
        if path is not None:
            from medsr.checkpoint import save_atomic

            stored = {f"{i},{k}": v for (i, k), v in bank.items()}
            for i, task in self.scan_tasks.items():
                if task.scan_incident_photons is not None:
                    stored[f"I0,{i}"] = torch.tensor(task.scan_incident_photons)
                    stored[f"I0 slice,{i}"] = torch.tensor(task.calibration_slice)
            save_atomic(stored, path)
        return bank

    def realisation_params(self, i: int, k: int, r: int) -> LowDoseParams:
        """The parameters realisation `r` of slice `k` of source `i` was drawn with: its
        kernel and dose (the task's `sample` from a generator seeded `(bank_seed, i, k, r)`;
        a task without kernel or dose ranges draws nothing, so all share the task's)."""
        task = replace(self.scan_task(i), noise_gain=(1.0, 1.0), zoom=(1.0, 1.0))
        return task.sample(seeded_generator(self.bank_seed, i, k, r))

    def _kernel_signal(self, i: int, k: int, params: LowDoseParams) -> torch.Tensor:
        """Slice `k` of source `i` as the kernel of `params` reconstructs it (the task's
        `signal`, on the whole slice: a patch's FFT would wrap its edges); cached."""
        key = (i, k, params.filter_window)
        if key not in self.kernel_signals:
            volume = self.patches.sources[i].volume
            image = torch.from_numpy(np.ascontiguousarray(_slice(volume, k), dtype=np.float32))
            self.kernel_signals[key] = self.task.signal(image, params)
        return self.kernel_signals[key]

    def _measure_noise(self) -> dict[tuple[int, int], torch.Tensor]:
        """Per slice, per realisation r: `(s0, f0, s1, f1)`, the noise SD (HU) and NPS mean
        frequency (cycles/pixel of the input's grid) of the normal-dose slice as the input
        of r's pairs shows it (`_signal`: as r's kernel reconstructs it with
        `signal_kernel`; downsampled as the task does for scale > 1), then of it plus
        realisation r; one pass of the uniform-ROI search per image (the normal slice once
        per kernel)."""
        from medsr.metrics.noise import estimate_noise

        def as_input(image: torch.Tensor) -> np.ndarray:
            """A whole normal-dose or noisy slice on the grid of the model's input."""
            return self.task.resample(image[None])[0].numpy()

        measures = {}
        for (i, k), noise in self.bank.items():
            normals: dict[str | None, tuple[torch.Tensor, float, float]] = {}
            rows = []
            for r, n in enumerate(noise):
                params = self.realisation_params(i, k, r)
                kernel = params.filter_window if self._has_kernel_signal(params) else None
                if kernel not in normals:
                    signal = self._signal(i, k, params)
                    normal = estimate_noise(as_input(signal), "CT")
                    normals[kernel] = (signal, normal.sd, normal.mean_frequency)
                signal, s0, f0 = normals[kernel]
                low = estimate_noise(as_input(signal + n), "CT")
                rows.append([s0, f0, low.sd, low.mean_frequency])
            measures[(i, k)] = torch.tensor(rows, dtype=torch.float64)
        return measures

    def _has_kernel_signal(self, params: LowDoseParams) -> bool:
        """Whether a pair drawn with `params` gets the slice as its kernel reconstructs it
        (`signal_kernel`, and a kernel other than the input's)."""
        return bool(self.task.signal_kernel) and params.filter_window != self.task.filter_window

    def _signal(self, i: int, k: int, params: LowDoseParams) -> torch.Tensor:
        """Slice `k` of source `i` as the input of a pair drawn with `params` shows it: as
        their kernel reconstructs it with `signal_kernel`, else as it is."""
        if self._has_kernel_signal(params):
            return self._kernel_signal(i, k, params)
        volume = self.patches.sources[i].volume
        return torch.from_numpy(np.ascontiguousarray(_slice(volume, k), dtype=np.float32))

    def noise_frequency(self, i: int, k: int, r: int, gain: float, zoom: float) -> float:
        """The NPS mean frequency of an item's input (cycles/pixel): realisation `r` of slice
        `k` of source `i` at noise `gain`, on a grid `zoom` times finer."""
        s0, f0, s1, f1 = self.noise_measures[(i, k)][r].tolist()
        added_power = s1**2 - s0**2
        if added_power <= 0:
            return f1 / zoom
        power = s0**2 + gain**2 * added_power
        return (s0**2 * f0 + gain**2 * (s1**2 * f1 - s0**2 * f0)) / power / zoom

    def __getitem__(self, index: int) -> Item:
        item = self.patches[index]
        sample = dict(item["params"]["sample"])
        i, k, row, col, p = (sample[n] for n in ("source_index", "slice", "row", "col", "size"))
        g = seeded_generator(self.patches.seed, self.patches.epoch, index, 1)
        r = int(torch.randint(0, self.realisations, (1,), generator=g))
        noise = dihedral(
            self.bank[(i, k)][r, row : row + p, col : col + p][None], sample["augment"]
        )
        task = self.scan_task(i)
        drawn = task.sample(g)  # this item's gain and zoom; kernel and dose as its realisation
        realisation = self.realisation_params(i, k, r)
        spacing = float(self.patches.sources[i].volume.spacing[-1])
        drawn = replace(
            drawn,
            filter_window=realisation.filter_window,
            dose_fraction=realisation.dose_fraction,
            pixel_size_mm=spacing / drawn.zoom,
        )
        gain, zoom = drawn.noise_gain, drawn.zoom
        signal = item["high"]
        if self._has_kernel_signal(drawn):  # else the patch as it is, augmented already
            whole = self._kernel_signal(i, k, drawn)
            signal = dihedral(whole[row : row + p, col : col + p][None], sample["augment"])
        high, noisy = task.insert(signal, noise, drawn)
        low = task.forward(noisy, spacing, drawn)
        if self.normalize is not None:
            low, high = self.normalize(low), self.normalize(high)
        if self.noise_level_unit:
            s0, _, s1, _ = self.noise_measures[(i, k)][r].tolist()
            added = gain * float(np.sqrt(max(s1**2 - s0**2, 0.0)))
            level = added if self.noise_level_of == "added" else float(np.hypot(s0, added))
            sample["noise_level_hu"] = level
            low = torch.cat([low, torch.full_like(low, level / self.noise_level_unit)])
        if self.noise_frequency_unit:
            frequency = self.noise_frequency(i, k, r, gain, zoom)
            sample["noise_frequency"] = frequency
            low = torch.cat([low, torch.full_like(low[:1], frequency / self.noise_frequency_unit)])
        if self.dose_input:
            dose = item_dose_fraction(drawn.dose_fraction, gain)
            sample["dose_input"] = dose
            low = torch.cat([low, torch.full_like(low[:1], dose)])
        params = {
            **params_record(drawn),
            "task": self.task.task,
            "scale": self.scale,
            "noise_model": "ct-projection-domain, whole-slice bank",
            "sample": {**sample, "realisation": r, "noise_gain": gain, "zoom": zoom},
        }
        return {"low": low.contiguous(), "high": high.contiguous(), "params": params}


def item_dose_fraction(dose_fraction: float, gain: float) -> float:
    """The dose fraction whose added noise is `gain` times that of `dose_fraction`'s (the
    added noise variance goes as 1 / d - 1 at a fixed normal dose)."""
    return 1.0 / (1.0 + gain**2 * (1.0 / dose_fraction - 1.0))
