"""The training configuration: one typed schema of dataclasses, loaded from YAML, overridden
from the command line with dotted `key=value` pairs, validated. Never `exec`.

```yaml
name: srgan-ct-ldct-x4
phase: pretrain            # pretrain (pixel loss only) | gan (from `pretrained`)
data: {samples: [invesalius-head-ct], task: ldct-x4, scale: 4, patch_size: 96, split: slab}
model: {name: srresnet, num_blocks: 16, scale: 4}       # keys besides `name` are constructor
discriminator: {name: vgg, num_features: 64}            # arguments of the model
training: {lr: 1.0e-4, batch_size: 16, max_steps: 100000}
phase_overrides: {gan: {training.lr: 1.0e-4}}           # applied when phase is gan
```

`load_config(path, ["training.max_steps=10", "model.num_blocks=2"])` applies the file, then
`phase_overrides[phase]`, then the command-line pairs (values parsed as YAML), then checks
every value against the field's type (or the model constructor's signature). Unknown keys
raise `ValueError` listing the valid ones. Dicts with the keys of older versions (stored in
checkpoints) load through `upgrade_config`.
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from medsr.data.sources import source_from_dict
from medsr.models import DISCRIMINATORS, FUSION_GENERATORS, GENERATORS
from medsr.physics.tasks import TASKS


@dataclass
class LowDoseConfig:
    """`data.ldct`: training-only options of the `ldct*` tasks' noise bank.

    The noise is inserted on whole slices once, in a bank of `data.noise_bank_size`
    realisations per slice (`medsr.data.noise_bank`); training items may take a log-uniform
    `noise_gain` (another dose) and `zoom` (a finer grid), both `[low, high]`, `[1, 1]` = off,
    never applied to validation. `noise_level_unit` (HU, any `ldct*` task): a non-blind
    model, whose input gets the slice's noise SD / `noise_level_unit` as a second channel
    (model `in_channels: 2`): the input's (`noise_level_of: input`) or the added noise's
    (`added`, see noise_bank). `noise_frequency_unit` (cycles/pixel, with
    `noise_level_unit`): a third channel, the input's NPS mean frequency / it, which tells the
    model the reconstruction kernel (model `in_channels: 3`). `dose_input` (with
    `noise_level_of: added`): one more channel, the item's dose fraction, which inference
    takes from `--dose` (default the task's): how much of the noise the target keeps.
    """

    noise_gain: list[float] = field(default_factory=lambda: [1.0, 1.0])
    zoom: list[float] = field(default_factory=lambda: [1.0, 1.0])
    noise_level_unit: float | None = None
    noise_level_of: Literal["input", "added"] = "input"
    noise_frequency_unit: float | None = None
    dose_input: bool = False


@dataclass
class PetConfig:
    """`data.pet`: training-only options of the `petct` bank (`medsr.data.pet_bank`): each
    realisation's counts per slice drawn log-uniform in `counts_range` and its activity model
    cycled over `anatomies`; empty = the task's own values."""

    counts_range: list[float] = field(default_factory=list)
    anatomies: list[str] = field(default_factory=list)


@dataclass
class DataConfig:
    """Where patches come from, how pairs are made and how training and evaluation split.

    `split: slab` takes the one 3-D volume of `samples` and splits its slices into a training
    slab, `gap_slices` unused slices, then a validation slab (`split_by_slab`).
    `split: source` trains on `samples` + `folders` and validates on `validation_samples`,
    which must not share a source. `sources` adds image folders and public datasets on disk
    (`medsr.data.sources`: `{kind: image-folder | chestxray14 | lidc-idri | tcia-ldct, path,
    ...}`), split by patient: their held-out images join the validation set. Evaluation never
    sees a training source or slab. `noise_bank_size`: whole-slice realisations per slice of
    the `ldct*` and `petct` banks; their other options are the task sections `ldct` and
    `pet`. `num_workers`: DataLoader worker processes (batches do not depend on it).
    `source_weights`: a sample name or folder of `samples` / `folders` -> how many times as
    often its slices are drawn as their foreground alone gives (default 1; training only).
    `thick_slabs`: each 3-D training volume of `samples` / `folders` also as the thicker
    reconstruction of the same scan, the mean of k adjacent slices (non-overlapping), for
    each k listed (training only, `split: source`; `medsr.image.thick_slabs`).
    """

    samples: list[str] = field(default_factory=lambda: ["invesalius-head-ct"])
    folders: list[str] = field(default_factory=list)
    source_weights: dict[str, float] = field(default_factory=dict)
    thick_slabs: list[int] = field(default_factory=list)
    validation_samples: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    task: str = "x4"
    task_overrides: dict[str, Any] = field(default_factory=dict)
    patch_size: int = 96
    scale: int = 4
    split: Literal["slab", "source"] = "slab"
    train_fraction: float = 0.8
    gap_slices: int = 8
    num_validation: int = 64
    min_foreground: float = 0.5
    augment: bool = True
    noise_bank_size: int = 4
    ldct: LowDoseConfig = field(default_factory=LowDoseConfig)
    pet: PetConfig = field(default_factory=PetConfig)
    cache_dir: str | None = None
    num_workers: int = 0


@dataclass
class NormalizationConfig:
    """Intensity -> [0, 1] mapping applied to both images of a pair after the degradation.

    `window`: `(x - low) / (high - low)` with fixed `low`, `high` in the image unit (HU for
    CT, e.g. [-1024, 3071]; SUV for `petct`, e.g. [0, 10]); `percentile`: each image mapped
    by its own `percentiles` (radiographs), applied to the image before the degradation.
    `guide_windows`: the CT guide of two-input (`petct`) models, one channel per HU
    `[low, high]` mapped to [0, 1] and clipped. Stored in the checkpoint so inference can
    apply and invert it.
    """

    kind: Literal["window", "percentile"] = "window"
    low: float = -1024.0
    high: float = 3071.0
    percentiles: list[float] = field(default_factory=lambda: [0.5, 99.5])
    guide_windows: list[list[float]] = field(
        default_factory=lambda: [[-1000.0, 1000.0], [0.0, 80.0]]
    )


@dataclass
class ModelConfig:
    """A model name and its constructor arguments (every other key of the YAML section)."""

    name: str = "srresnet"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class PixelLossConfig:
    """`outside_window`: how much a pixel whose target lies outside the normalisation's
    [0, 1] counts against one inside (`losses.window_weights`): below 1 the loss follows what
    the window shows (a CT soft-tissue window's air and bone count less); 1 is off.
    `lowpass_sigma` > 0: the loss of the images' Gaussian low band (SD in output pixels) plus
    `highpass_weight` times that of the rest (`losses.band_pixel_loss`, for GAN texture)."""

    kind: Literal["l1", "mse", "charbonnier"] = "l1"
    weight: float = 1.0
    outside_window: float = 1.0
    lowpass_sigma: float = 0.0
    highpass_weight: float = 1.0


@dataclass
class AdversarialLossConfig:
    kind: Literal["bce", "relativistic", "hinge"] = "relativistic"
    weight: float = 5e-3


@dataclass
class PerceptualLossConfig:
    """VGG19 feature loss; needs a local torchvision VGG19 state dict at `weights_path`."""

    weights_path: str | None = None
    layers: dict[str, float] = field(default_factory=lambda: {"conv5_4": 1.0})
    weight: float = 0.0


@dataclass
class FeatureMatchingLossConfig:
    """L1 between discriminator activations of real and generated images (no weights needed)."""

    weight: float = 0.0


@dataclass
class GridLossConfig:
    """Extra weight on the error's period-`scale` pattern (`losses.grid_loss`, the MSE's part
    at k / scale cycles/pixel), for x2 / x4 models whose upsampler prints a grid; 0 is off."""

    weight: float = 0.0


@dataclass
class DistillationConfig:
    """Self-ensemble distillation (`medsr.training.distill`): the generator's pixel target is
    `(1 - weight) * image + weight * teacher`, the teacher's output averaged over `transforms`
    flips / quarter turns drawn per step (8: all of them). `teacher`: a checkpoint or released
    model with the generator's architecture; null is off."""

    teacher: str | None = None
    weight: float = 0.5
    transforms: int = 2


@dataclass
class LossesConfig:
    pixel: PixelLossConfig = field(default_factory=PixelLossConfig)
    adversarial: AdversarialLossConfig = field(default_factory=AdversarialLossConfig)
    perceptual: PerceptualLossConfig = field(default_factory=PerceptualLossConfig)
    feature_matching: FeatureMatchingLossConfig = field(default_factory=FeatureMatchingLossConfig)
    grid: GridLossConfig = field(default_factory=GridLossConfig)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)


@dataclass
class TrainingConfig:
    """Optimisation. `batch_size` is per process (the global batch is times WORLD_SIZE);
    `lr` schedules: linear warmup over `warmup_steps`, then `cosine` to `min_lr`, `step`
    (times `step_gamma` every `step_every` steps) or `constant`. `ema_decay` 0 disables EMA.
    `discriminator_lr_ratio`: the discriminator's lr over the generator's, on the same
    schedule (> 1: TTUR, Heusel et al. 2017, a discriminator that keeps up with a generator
    that starts well trained)."""

    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-4
    discriminator_lr_ratio: float = 1.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr: float = 0.0
    step_every: int = 50_000
    step_gamma: float = 0.5
    grad_clip: float | None = None
    batch_size: int = 16
    max_steps: int = 100_000
    ema_decay: float = 0.999
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "fp32"


@dataclass
class IntervalsConfig:
    log_every: int = 10
    validate_every: int = 1000
    sample_every: int = 1000
    checkpoint_every: int = 1000
    keep_last: int = 3


@dataclass
class EvaluationConfig:
    """Validation metrics: on a CT `window` (neuro/abdomen/chest, HU mapped to [0, 1]) or,
    with `window: null`, on the normalised [0, 1] images; `data_range` is 1 either way."""

    window: str | None = "neuro"
    batch_size: int = 16


@dataclass
class TrainConfig:
    name: str = "run"
    seed: int = 0
    phase: Literal["pretrain", "gan"] = "pretrain"
    pretrained: str | None = None
    # phase pretrain only: start the generator from this checkpoint's (or released model
    # file's) EMA weights instead of at random; same architecture; a fresh optimiser and
    # schedule (a fine-tune, e.g. on a wider dose range), unlike `medsr train --resume`
    initial_weights: str | None = None
    device: str = "auto"
    num_threads: int | None = None
    data: DataConfig = field(default_factory=DataConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    discriminator: ModelConfig = field(default_factory=lambda: ModelConfig(name="vgg"))
    losses: LossesConfig = field(default_factory=LossesConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    intervals: IntervalsConfig = field(default_factory=IntervalsConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    phase_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict; model sections flattened back to `{name, **kwargs}`."""
        out = asdict(self)
        out["phase_overrides"] = {}  # already applied; applying them again would undo the CLI's
        for key in ("model", "discriminator"):
            section = out[key]
            out[key] = {"name": section["name"], **section["kwargs"]}
        return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_value(value: Any, tp: Any, key: str) -> Any:
    """`value` checked (and int -> float, numeric str -> float coerced) against type `tp`."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return _check_value(value, option, key)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError(f"{key}: {value!r} is not {_type_name(tp)}")
    if tp is type(None):
        if value is None:
            return None
    elif origin is Literal:
        if value in args:
            return value
        raise ValueError(f"{key}: {value!r} is not one of {list(args)}")
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads `1e-4` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str and isinstance(value, str):
        return value
    elif origin is list and isinstance(value, list | tuple):
        return [_check_value(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict and isinstance(value, dict):
        return {str(k): _check_value(v, args[1], f"{key}.{k}") for k, v in value.items()}
    raise ValueError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _constructor_types(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls.__init__)  # type: ignore[misc]
    names = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return {name: hints.get(name, Any) for name in names}


def _build_model(
    value: dict[str, Any], key: str, table: dict[str, Any], default: str
) -> ModelConfig:
    value = dict(value)
    name = value.pop("name", default)
    if name not in table:
        raise ValueError(f"{key}.name: unknown model {name!r}; valid names: {sorted(table)}")
    types_ = _constructor_types(table[name])
    unknown = sorted(set(value) - set(types_))
    if unknown:
        raise ValueError(
            f"unknown key(s) {[f'{key}.{k}' for k in unknown]} for {name}; "
            f"valid keys: {['name', *types_]}"
        )
    kwargs = {k: _check_value(v, types_[k], f"{key}.{k}") for k, v in value.items()}
    return ModelConfig(name=name, kwargs=kwargs)


def _build(cls: Any, data: dict[str, Any], prefix: str = "") -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        full = [f"{prefix}{k}" for k in unknown]
        raise ValueError(f"unknown key(s) {full}; valid keys: {[prefix + n for n in names]}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        if f.name not in data:
            continue
        if hints[f.name] is ModelConfig:
            if not isinstance(data[f.name], dict):
                raise ValueError(f"{key}: expected a mapping, got {data[f.name]!r}")
            table = (
                DISCRIMINATORS if f.name == "discriminator" else {**GENERATORS, **FUSION_GENERATORS}
            )
            default = "vgg" if f.name == "discriminator" else "srresnet"
            values[f.name] = _build_model(data[f.name], key, table, default)
        elif is_dataclass(hints[f.name]):
            if not isinstance(data[f.name], dict):
                raise ValueError(f"{key}: expected a mapping, got {data[f.name]!r}")
            values[f.name] = _build(hints[f.name], data[f.name], f"{key}.")
        else:
            values[f.name] = _check_value(data[f.name], hints[f.name], key)
    missing = [
        f.name
        for f in fields(cls)
        if f.name not in values and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise ValueError(f"missing key(s) {[prefix + m for m in missing]}")
    return cls(**values)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if not all(parts):
        raise ValueError(f"bad key {key!r}")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"cannot set {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


# Keys of configs written before `data` had per-task sections. Checkpoints store the config
# of their run (`medsr train --resume`, `training/release.py` and benchmarks/quality.py read
# it back), so the old spelling stays loadable: old dotted key -> new dotted key.
MOVED_KEYS = {
    "data.noise_gain": "data.ldct.noise_gain",
    "data.zoom": "data.ldct.zoom",
    "data.noise_level_unit": "data.ldct.noise_level_unit",
    "data.noise_level_of": "data.ldct.noise_level_of",
    "data.pet_counts_range": "data.pet.counts_range",
    "data.pet_anatomies": "data.pet.anatomies",
}
# Keys no config, test or document used: dropped, loadable only at the value they always had.
DROPPED_KEYS: dict[str, Any] = {"data.validation_folders": [], "training.discriminator_lr": None}


def upgrade_config(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of config dict `data` (a YAML file's, a checkpoint's) with the keys of
    `MOVED_KEYS` moved into their sections and those of `DROPPED_KEYS` removed; ValueError
    for a dropped key set to another value, or a key given in both spellings."""
    data = copy.deepcopy(data)
    for key, value in [*DROPPED_KEYS.items(), *MOVED_KEYS.items()]:
        section_name, name = key.split(".")
        section = data.get(section_name)
        if not isinstance(section, dict) or name not in section:
            continue
        old = section.pop(name)
        if key in DROPPED_KEYS:
            if old != value:
                raise ValueError(f"{key} is no longer supported (got {old!r})")
            continue
        new_section, new_name = value.split(".")[1:]
        if new_name in (section.get(new_section) or {}):
            raise ValueError(f"{key} and {value} both given; keep {value}")
        _set_dotted(data, value, old)
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """`"training.lr=2e-4"` -> `("training.lr", "2e-4")`; the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {text!r} is not key=value (e.g. training.max_steps=10)")
    return key.strip(), yaml.safe_load(raw) if raw.strip() else None


def _validate(config: TrainConfig) -> None:
    d, t, n = config.data, config.training, config.normalization
    positive = {
        "data.patch_size": d.patch_size,
        "data.num_validation": d.num_validation,
        "data.noise_bank_size": d.noise_bank_size,
        "training.batch_size": t.batch_size,
        "training.max_steps": t.max_steps,
        "evaluation.batch_size": config.evaluation.batch_size,
        **{f"intervals.{k}": v for k, v in asdict(config.intervals).items()},
    }
    for key, value in positive.items():
        if value < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")
    if d.task not in TASKS:
        raise ValueError(f"data.task: unknown task {d.task!r}; known: {list(TASKS)}")
    if unnamed := sorted(set(d.source_weights) - set(d.samples) - set(d.folders)):
        raise ValueError(f"data.source_weights: {unnamed} are not in data.samples / folders")
    if any(not w > 0 for w in d.source_weights.values()):
        raise ValueError(f"data.source_weights must be > 0, got {d.source_weights}")
    if d.source_weights and d.split != "source":
        raise ValueError("data.source_weights needs data.split source")
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 2 for k in d.thick_slabs):
        raise ValueError(f"data.thick_slabs must be integers >= 2, got {d.thick_slabs}")
    if d.thick_slabs and d.split != "source":
        raise ValueError("data.thick_slabs needs data.split source")
    if not config.losses.pixel.outside_window > 0:
        raise ValueError(
            f"losses.pixel.outside_window must be > 0, got {config.losses.pixel.outside_window}"
        )
    pixel = config.losses.pixel
    if not (pixel.lowpass_sigma >= 0 and pixel.highpass_weight >= 0):
        raise ValueError(
            "losses.pixel.lowpass_sigma and highpass_weight must be >= 0, got "
            f"{pixel.lowpass_sigma} and {pixel.highpass_weight}"
        )
    if d.patch_size % d.scale:
        raise ValueError(f"data.patch_size {d.patch_size} must be a multiple of {d.scale}")
    if config.model.kwargs.get("scale", d.scale) != d.scale:
        raise ValueError(f"model.scale {config.model.kwargs['scale']} != data.scale {d.scale}")
    if n.kind == "window" and not n.high > n.low:
        raise ValueError(f"normalization: high {n.high} must be > low {n.low}")
    pairs = (t.betas, n.percentiles, d.ldct.noise_gain, d.ldct.zoom)
    if any(len(values) != 2 for values in pairs):
        raise ValueError(
            f"training.betas, normalization.percentiles, data.ldct.noise_gain and "
            f"data.ldct.zoom need 2 values: {t.betas}, {n.percentiles}, "
            f"{d.ldct.noise_gain}, {d.ldct.zoom}"
        )
    if d.pet.counts_range and len(d.pet.counts_range) != 2:
        raise ValueError(
            f"data.pet.counts_range must be [] or [low, high], got {d.pet.counts_range}"
        )
    if not (0 <= t.ema_decay < 1 and t.lr > 0 and 0 < d.train_fraction < 1):
        raise ValueError(
            f"need 0 <= ema_decay < 1, lr > 0, 0 < train_fraction < 1: "
            f"{t.ema_decay}, {t.lr}, {d.train_fraction}"
        )
    if not t.discriminator_lr_ratio > 0:
        raise ValueError(
            f"training.discriminator_lr_ratio must be > 0, got {t.discriminator_lr_ratio}"
        )
    if config.evaluation.window is not None:
        from medsr.metrics.ct import get_window

        get_window(config.evaluation.window)
    _validate_fusion(config)
    for entry in d.sources:  # kind and keys known, values in range (`medsr.data.sources`)
        source_from_dict(entry)
    channels = config.model.kwargs.get("in_channels", 1)
    if d.ldct.noise_frequency_unit is not None and d.ldct.noise_level_unit is None:
        raise ValueError("data.ldct.noise_frequency_unit needs data.ldct.noise_level_unit")
    if d.ldct.dose_input and (d.ldct.noise_level_unit is None or d.ldct.noise_level_of != "added"):
        raise ValueError("data.ldct.dose_input needs noise_level_unit and noise_level_of: added")
    # the image, the level (, the frequency) (, the dose)
    expected = 2 + (d.ldct.noise_frequency_unit is not None) + d.ldct.dose_input
    if d.ldct.noise_level_unit is not None and (
        channels != expected or not d.task.startswith("ldct")
    ):
        raise ValueError(
            f"data.ldct.noise_level_unit needs an ldct task and model.in_channels {expected}, "
            f"got {d.task!r} and {channels}"
        )
    if unknown := set(config.phase_overrides) - {"pretrain", "gan"}:
        raise ValueError(f"phase_overrides: unknown phase(s) {sorted(unknown)}")


def _validate_fusion(config: TrainConfig) -> None:
    """`petct` (CT guide + PET) goes with a `FUSION_GENERATORS` model, and only with one."""
    fusion, n = config.model.name in FUSION_GENERATORS, config.normalization
    if (config.data.task == "petct") != fusion:
        raise ValueError(
            f"data.task {config.data.task!r} and model.name {config.model.name!r} "
            f"do not match: task petct needs a model of {sorted(FUSION_GENERATORS)}"
            " and those models need task petct"
        )
    if not fusion:
        return
    if n.kind != "window":
        raise ValueError(f"task petct needs normalization.kind window (SUV), got {n.kind!r}")
    guide = config.model.kwargs.get("guide_channels", 2)
    if guide != len(n.guide_windows):
        raise ValueError(
            f"model.guide_channels {guide} != {len(n.guide_windows)} "
            f"normalization.guide_windows {n.guide_windows}"
        )
    for window in n.guide_windows:
        if len(window) != 2 or not window[1] > window[0]:
            raise ValueError(f"normalization.guide_windows: {window} is not [low, high]")


def config_from_dict(data: dict[str, Any], overrides: list[str] | None = None) -> TrainConfig:
    """Build and validate a `TrainConfig` from a plain dict plus `key=value` overrides."""
    data = upgrade_config(data)
    cli = [parse_override(o) for o in overrides or []]
    # The phase may come from the command line; its overrides go under the CLI's.
    phase = next((v for k, v in reversed(cli) if k == "phase"), data.get("phase", "pretrain"))
    phase_overrides = data.get("phase_overrides") or {}
    if not isinstance(phase_overrides, dict):
        raise ValueError(f"phase_overrides must be a mapping, got {phase_overrides!r}")
    for key, value in [*(phase_overrides.get(phase) or {}).items(), *cli]:
        _set_dotted(data, MOVED_KEYS.get(key, key), value)
    config: TrainConfig = _build(TrainConfig, data)
    _validate(config)
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config, apply `phase_overrides` and `key=value` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a YAML mapping, got {type(data).__name__}")
    return config_from_dict(data, overrides)
