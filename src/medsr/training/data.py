"""Training and validation data from a `DataConfig`: sources, split, normalisation, pairs.

Sampling is a deterministic function of `(seed, step, rank)`: batch `step` of rank `r` is
items `r * B ... r * B + B - 1` of "epoch" `step` of the dataset (`StepBatches`), so a run
resumed at step N sees exactly the batches an uninterrupted run would, on any number of
DataLoader workers. Validation pairs are drawn once, from the held-out slab or sources only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from medsr.checkpoint import Normalization
from medsr.data.datasets import Item, OnTheFlyPairs, PatchSource, collate_pairs
from medsr.data.noise_bank import NoiseBankPairs
from medsr.data.pet_bank import PetBankPairs
from medsr.data.public.tcia_ldct import TciaLdctPairs
from medsr.data.sources import TciaLdctSource, source_from_dict
from medsr.data.splits import assert_disjoint_sources, split_by_slab
from medsr.image import Volume, thick_slabs
from medsr.io.samples import load_sample
from medsr.physics.tasks import make_task
from medsr.training.config import DataConfig, LowDoseConfig, NormalizationConfig


@dataclass
class TrainingData:
    """The training dataset, fixed validation pairs `(N, 1, h, w)` / `(N, 1, H, W)` in [0, 1]
    units, the split statement, and the normalisation as stored in checkpoints."""

    train: Dataset[Item]
    validation_low: torch.Tensor
    validation_high: torch.Tensor
    split: str
    normalization: dict[str, Any]
    unit: str


def _read_sources(samples: list[str], folders: list[str]) -> list[Volume]:
    from medsr.io import read

    volumes = [load_sample(name) for name in samples]
    for path in folders:
        volume = read(path)
        volume.metadata.setdefault("path", str(path))
        volumes.append(volume)
    return volumes


def _named_as(volume: Volume) -> str:
    """How `data.samples` / `data.folders` name a volume read from them."""
    return str(volume.metadata.get("sample") or volume.metadata.get("path"))


def _percentile_normalize(volume: Volume, percentiles: list[float]) -> Volume:
    """`volume` in [0, 1] units by its own percentiles (`Normalization.forward`, as inference)."""
    normalization = Normalization("percentile", percentiles=(percentiles[0], percentiles[1]))
    bounds = normalization.bounds(volume.array)
    out = volume.with_array(normalization.forward(volume.array, bounds))
    out.metadata = {**volume.metadata, "normalization": list(bounds)}
    return out


def _source_images(config: DataConfig) -> tuple[list[Volume], list[Volume], list[str]]:
    """The images of `data.sources`, split into training and held-out (`data/sources.py`)."""
    train: list[Volume] = []
    validation: list[Volume] = []
    statements = []
    for entry in config.sources:
        images = source_from_dict(entry).read()
        train += images.train
        validation += images.validation
        statements.append(images.statement)
    return train, validation, statements


def _slab_split(
    volumes: list[Volume], config: DataConfig
) -> tuple[list[PatchSource], list[PatchSource], str]:
    if len(volumes) != 1 or not volumes[0].is_volume:
        raise ValueError("data.split slab needs exactly one 3-D volume in samples/folders")
    volume = volumes[0]
    name = str(volume.metadata.get("sample") or volume.metadata.get("path") or "volume")
    slab = split_by_slab(volume.num_slices, config.train_fraction, config.gap_slices, name=name)
    train = [PatchSource(volume, name, slices=slab.train)]
    return train, [PatchSource(volume, name, slices=slab.validation)], slab.describe()


def _source_ids(group: list[PatchSource]) -> list[str]:
    """Each source's id (patient, sample or path), also set as its `source_id`."""
    ids = []
    for source in group:
        meta = source.volume.metadata
        source.source_id = str(meta.get("source_id") or meta.get("sample") or meta.get("path"))
        ids.append(source.source_id)
    return ids


def _sources(
    config: DataConfig, normalization: NormalizationConfig
) -> tuple[list[PatchSource], list[PatchSource], str]:
    folder_train, folder_validation, folder_statements = _source_images(config)

    def mapped(volumes: list[Volume]) -> list[Volume]:
        """`volumes` as training sees them: a percentile map is applied before the
        degradation (stated in the config)."""
        if normalization.kind != "percentile":
            return volumes
        return [_percentile_normalize(v, normalization.percentiles) for v in volumes]

    listed = mapped(_read_sources(config.samples, config.folders))  # 3-D ones may thicken
    train_volumes = listed + mapped(folder_train)
    if not train_volumes:
        raise ValueError("data.samples and data.folders are both empty: nothing to train on")
    if config.split == "slab":
        return _slab_split(train_volumes, config)
    val_volumes = mapped(_read_sources(config.validation_samples, []) + folder_validation)
    if not val_volumes:
        raise ValueError("data.split source needs validation_samples or data.sources")
    weights = config.source_weights
    train_volumes += [
        slabs
        for v in listed
        if v.is_volume
        for k in config.thick_slabs
        if (slabs := thick_slabs(v, k)).num_slices
    ]
    train = [PatchSource(v, None, weight=weights.get(_named_as(v), 1.0)) for v in train_volumes]
    validation = [PatchSource(v, None) for v in val_volumes]
    ids = {"train": _source_ids(train), "validation": _source_ids(validation)}
    assert_disjoint_sources(**ids)
    if folder_statements:
        # the named samples and files besides the sources' patients (public sets tag theirs)
        public = {v.metadata["source_id"] for v in folder_train if "data_source" in v.metadata}
        named = [i for i in ids["train"] if not i.isdigit() and i not in public]
        statement = "split by source: " + "; ".join(folder_statements)
        statement += f"; also train {sorted(set(named))}" if named else ""
    else:
        statement = (
            f"split by source: train {ids['train']}, validation {ids['validation']}; "
            "no source is in both"
        )
    return train, validation, statement


def _real_pairs(config: DataConfig, normalization: NormalizationConfig) -> TciaLdctSource | None:
    """The `tcia-ldct` source whose real low/full-dose pairs are all the data, or None."""
    sources = [source_from_dict(entry) for entry in config.sources]
    real = [s for s in sources if isinstance(s, TciaLdctSource) and s.use == "real-pairs"]
    if not real:
        return None
    needs = {
        "task ldct (the pairs share one grid)": config.task == "ldct",
        "split source": config.split == "source",
        "normalization.kind window": normalization.kind == "window",
        "no other data (data.samples: [], no folders, validation_samples or other sources)": (
            not (config.samples or config.folders or config.validation_samples)
            and len(sources) == 1
        ),
        "no data.ldct options (they shape simulated noise)": config.ldct == LowDoseConfig(),
    }
    if missing := [need for need, met in needs.items() if not met]:
        raise ValueError("data.sources tcia-ldct use: real-pairs needs " + "; ".join(missing))
    return real[0]


def _task_ranges(config: DataConfig, bank: str | None, augment: bool) -> dict[str, Any]:
    """The task's training-only ranges (`sample` draws them) from the data config, by the
    bank the task uses; validation (`augment` False) draws none."""
    if bank == "noise":
        off = (1.0, 1.0)
        gain, zoom = config.ldct.noise_gain, config.ldct.zoom
        return {
            "noise_gain": (gain[0], gain[1]) if augment else off,
            "zoom": (zoom[0], zoom[1]) if augment else off,
        }
    if bank == "pet" and augment and config.pet.counts_range:
        counts = config.pet.counts_range  # [low, high] (checked by the config)
        return {"counts_range": (float(counts[0]), float(counts[1]))}
    return {}


def _bank_progress(progress: bool, bank: str | None) -> Callable[[Any], Any] | None:
    """A tqdm wrapper for building a whole-slice bank (it takes a while), or None."""
    if not (progress and bank):
        return None
    from tqdm import tqdm

    def bar(it: Any) -> Any:
        return tqdm(list(it), desc=f"{bank} bank", unit="slice")

    return bar


def _dataset(
    sources: list[PatchSource],
    config: DataConfig,
    num_samples: int,
    seed: int,
    augment: bool,
    normalize: Any,
    progress: bool,
    guide_windows: list[list[float]] | None = None,
) -> Dataset[Item]:
    task = make_task(config.task, **config.task_overrides)
    if task.scale != config.scale:
        raise ValueError(f"data.scale {config.scale} differs from task {config.task!r} scale")
    if ranges := _task_ranges(config, task.bank, augment):
        task = make_task(config.task, **{**config.task_overrides, **ranges})
    common = (sources, task, config.patch_size, num_samples, seed, config.min_foreground)
    bar = _bank_progress(progress, task.bank)
    if task.bank == "pet":  # whole-slice PET simulations, drawn once (pet_bank.py)
        return PetBankPairs(
            *common,  # type: ignore[arg-type]
            augment,
            normalize,
            guide_windows or [],
            realisations=config.noise_bank_size,
            bank_seed=seed,
            progress=bar,
            cache_dir=config.cache_dir,
            anatomies=(config.pet.anatomies or None) if augment else None,
        )
    if task.bank == "noise":  # whole-slice low-dose noise, drawn once (noise_bank.py)
        return NoiseBankPairs(
            *common,  # type: ignore[arg-type]
            augment,
            normalize,
            realisations=config.noise_bank_size,
            bank_seed=seed,
            progress=bar,
            cache_dir=config.cache_dir,
            noise_level_unit=config.ldct.noise_level_unit,
            noise_level_of=config.ldct.noise_level_of,
            noise_frequency_unit=config.ldct.noise_frequency_unit,
            dose_input=config.ldct.dose_input,
        )
    return OnTheFlyPairs(
        sources,
        task,
        config.patch_size,
        config.scale,
        num_samples,
        seed,
        config.min_foreground,
        augment,
        normalize,
    )


def _model_normalization(
    config: DataConfig, normalization: NormalizationConfig, unit: str
) -> Normalization:
    """The intensity map the checkpoint stores and inference applies (`medsr.checkpoint`)."""
    options: dict[str, Any] = {}
    if config.task == "petct":  # the target and the PET are in SUV; the CT is a guide
        unit = "SUV"
        options |= {"guide_windows": [list(w) for w in normalization.guide_windows]}
        options["guide_unit"] = "HU"
    ldct = config.ldct
    if ldct.noise_level_unit is not None:  # the predictor adds the same channel
        options["noise_level_unit"] = float(ldct.noise_level_unit)
        if ldct.noise_level_of == "added":  # from the input's noise and the task's dose
            task = make_task(config.task, **config.task_overrides)
            options["noise_level_dose_fraction"] = float(task.dose_fraction)  # type: ignore[attr-defined]
    if ldct.noise_frequency_unit is not None:
        options["noise_frequency_unit"] = float(ldct.noise_frequency_unit)
    if ldct.dose_input:
        options["dose_input"] = True
    window = normalization.kind == "window"
    return Normalization(
        normalization.kind,
        normalization.low if window else None,
        normalization.high if window else None,
        (normalization.percentiles[0], normalization.percentiles[1]),
        unit,
        options,
    )


def build_data(
    config: DataConfig,
    normalization: NormalizationConfig,
    seed: int,
    items_per_step: int,
    progress: bool = False,
) -> TrainingData:
    """Sources, split, training dataset (`items_per_step` = batch x world size items per
    epoch, one epoch per step) and the validation pairs, drawn once with `seed + 1`."""
    window = normalization.kind == "window"
    train: Dataset[Item]
    validation: Dataset[Item]
    if real := _real_pairs(config, normalization):
        pairs, statement = real.split()
        model_normalization = _model_normalization(config, normalization, "HU")
        real_pairs = partial(
            TciaLdctPairs,
            patch_size=config.patch_size,
            min_foreground=config.min_foreground,
            normalize=model_normalization.forward,
        )
        train = real_pairs(pairs.train, num_samples=items_per_step, seed=seed)
        validation = real_pairs(
            pairs.validation, num_samples=config.num_validation, seed=seed + 1, augment=False
        )
    else:
        train_sources, val_sources, statement = _sources(config, normalization)
        unit = train_sources[0].volume.unit if window else "[0, 1]"
        model_normalization = _model_normalization(config, normalization, unit)
        # percentile: each volume was mapped by its own percentiles before the degradation
        normalize = model_normalization.forward if window else None
        guide = model_normalization.options.get("guide_windows")
        train = _dataset(
            train_sources, config, items_per_step, seed, config.augment, normalize, progress, guide
        )
        validation = _dataset(
            val_sources, config, config.num_validation, seed + 1, False, normalize, progress, guide
        )
    batch = collate_pairs([validation[i] for i in range(len(validation))])  # type: ignore[arg-type]
    stored = model_normalization.to_dict()  # what the checkpoint stores, inference reads
    unit = str(model_normalization.unit)
    return TrainingData(train, batch["low"], batch["high"], statement, stored, unit)


def check_metric_unit(window: str | None, unit: str) -> None:
    """A CT metric window (`evaluation.window`) needs images in HU."""
    if window and unit != "HU":
        raise ValueError(
            f"evaluation.window {window!r} needs HU images, got {unit!r}; "
            "set evaluation.window=null"
        )


class _StepItems(Dataset[Item]):
    """Item `(step, index)` = item `index` of the dataset at epoch `step`."""

    def __init__(self, dataset: Dataset[Item]) -> None:
        self.dataset = dataset

    def __getitem__(self, key: tuple[int, int]) -> Item:
        step, index = key
        self.dataset.set_epoch(step)  # type: ignore[attr-defined]
        return self.dataset[index]


class StepBatches(Sampler[list[tuple[int, int]]]):
    """Batches `[(step, rank * B + j) for j < B]` for `step` in `[start, stop)`."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int) -> None:
        self.start, self.stop, self.batch_size, self.rank = start, stop, batch_size, rank

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        first = self.rank * self.batch_size
        for step in range(self.start, self.stop):
            yield [(step, first + j) for j in range(self.batch_size)]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def step_loader(
    dataset: Dataset[Item], start: int, stop: int, batch_size: int, rank: int, workers: int
) -> DataLoader[Item]:
    """Batches for steps `start .. stop - 1` of this rank (see the module doc)."""
    return DataLoader(
        _StepItems(dataset),
        batch_sampler=StepBatches(start, stop, batch_size, rank),
        collate_fn=collate_pairs,
        num_workers=workers,
    )
