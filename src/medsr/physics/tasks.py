"""The named degradation tasks: how each (low, high) training pair is made.

Every task follows the contract of `degradation.py`: `sample(generator) -> params` (every
random parameter of one pair, a JSON-able dataclass), `forward(high, spacing_mm, params)`
(the deterministic, noise-free low image), `noise(clean, params, generator, high=...)`, and
`for_scan(volume)` for settings calibrated once per scan. `make_task("ldct-x4")` returns one;
called as `task(high (C, H, W), spacing_mm, generator)` it returns a
`DegradedPair(low, high, params)`. The high image is the input cropped to a multiple of the
scale; `params` lists every parameter, so a pair can be remade from its log.
`degrade_volume` applies a task to every slice of a `Volume`. Adding a task is one class and
one line in `TASKS`.

| task | low image |
|---|---|
| x2, x4, x8 | area (box) downsample of the high image |
| ldct | 25 % dose, projection-domain noise, same grid (`low_dose_task.py`, its I0 policy) |
| ldct-x2, ldct-x4 | 25 % dose, then area downsample of the low-dose image |
| ldct-legacy-x4 | image-domain Poisson + Gaussian noise (`ImageDomainNoise`), then x4 |
| xray-x4 | radiograph blur, 4x4 detector binning, quantum + electronic noise |
| xray-blind-x2, -x4 | an unknown resize, noise, 8-bit, JPEG, drawn per item (`unknown_resize.py`) |
| petct | PET simulated from the CT, OSEM on a 4x coarser grid; CT guide (`pet_task.py`) |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from medsr._version import __version__
from medsr.image import Volume, rescaled_in_plane
from medsr.physics.degradation import (
    NoiseThenDownsample,
    SampledDegradation,
    check_range,
    draw_range,
)
from medsr.physics.low_dose_task import LowDoseCTTask, LowDoseParams
from medsr.physics.noise import ImageDomainNoise
from medsr.physics.pet_task import PetCtTask
from medsr.physics.resize import DOWNSAMPLE_METHODS, SCALES, crop_to_multiple
from medsr.physics.unknown_resize import UnknownResizeTask
from medsr.physics.xray import RadiographDegradation, image_range

__all__ = [
    "TASKS",
    "DownsampleTask",
    "LegacyNoiseTask",
    "LowDoseCTTask",
    "LowDoseParams",
    "PetCtTask",
    "RadiographTask",
    "UnknownResizeTask",
    "degrade_volume",
    "make_task",
    "slice_seed",
]


def _check_task(task: Any, scales: tuple[int, ...] = (1, *SCALES)) -> None:
    """Fail at construction, before any costly simulation, on a bad scale or method."""
    if isinstance(task.scale, bool) or task.scale not in scales:
        raise ValueError(f"scale must be one of {scales}, got {task.scale!r}")
    if task.method not in DOWNSAMPLE_METHODS:
        raise ValueError(f"method must be one of {DOWNSAMPLE_METHODS}, got {task.method!r}")


def _as_range(task: Any, name: str) -> None:
    """Store a `[low, high]` range argument (e.g. from YAML) as a tuple of floats."""
    bounds = getattr(task, name)
    if bounds is not None:
        if len(bounds) != 2:
            raise ValueError(f"{name} must be (low, high), got {bounds}")
        object.__setattr__(task, name, (float(bounds[0]), float(bounds[1])))


@dataclass(frozen=True)
class DownsampleParams:
    """`DownsampleTask` draws nothing: its one setting, logged."""

    method: str


@dataclass(frozen=True)
class DownsampleTask(NoiseThenDownsample):
    """Super-resolution only: `low = forward(high) = downsample(high, scale, method)`."""

    task: str
    scale: int
    method: str = "area"

    adds_noise: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_task(self, SCALES)

    def sample(self, generator: torch.Generator) -> DownsampleParams:
        return DownsampleParams(self.method)


@dataclass(frozen=True)
class LegacyParams:
    """One draw of `LegacyNoiseTask.sample` (JSON-able; units of the image)."""

    method: str
    gaussian_sd: float
    poisson_scale: float | None
    offset: float | None
    noise_model: str = "image-domain"


@dataclass(frozen=True)
class LegacyNoiseTask(NoiseThenDownsample):
    """Image-domain Poisson + Gaussian noise (older SRGAN CT projects), then downsampling.

    Defaults (HU): offset 1024 (air at 0 counts), 20 counts/HU and 5 HU Gaussian give about
    9 HU SD in water, near the projection-domain 25 % dose level of head CT (PHYSICS.md).
    `gaussian_sd_range` (uniform) and `poisson_scale_range` (log-uniform), when set, are
    drawn per pair instead of the fixed values.
    """

    task: str
    scale: int = 4
    method: str = "area"
    gaussian_sd: float = 5.0
    poisson_scale: float | None = 20.0
    offset: float | None = 1024.0
    gaussian_sd_range: tuple[float, float] | None = None
    poisson_scale_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        _check_task(self)
        for name in ("gaussian_sd_range", "poisson_scale_range"):
            _as_range(self, name)
        check_range("gaussian_sd_range", self.gaussian_sd_range)
        check_range("poisson_scale_range", self.poisson_scale_range, positive=True)
        ImageDomainNoise(self.gaussian_sd, self.poisson_scale, self.offset)  # validates them

    def sample(self, generator: torch.Generator) -> LegacyParams:
        return LegacyParams(
            method=self.method,
            gaussian_sd=draw_range(self.gaussian_sd_range, self.gaussian_sd, generator),
            poisson_scale=draw_range(
                self.poisson_scale_range, self.poisson_scale, generator, log=True
            ),
            offset=self.offset,
        )

    def operator(self, params: LegacyParams) -> ImageDomainNoise:
        return ImageDomainNoise(params.gaussian_sd, params.poisson_scale, params.offset)

    def noisy(
        self,
        high: torch.Tensor,
        spacing_mm: float,
        params: LegacyParams,
        generator: torch.Generator,
    ) -> torch.Tensor:
        return self.operator(params)(self.target(high, params), generator)


@dataclass(frozen=True)
class RadiographParams:
    """One draw of `RadiographTask.sample`; `value_range` is filled in by `fit` from the image
    when the task leaves it None."""

    method: str
    incident_photons: float
    electronic_noise_sd: float
    blur_sigma_px: float
    attenuation_range: float
    value_range: tuple[float, float] | None
    binning: int
    noise_model: str = "radiograph-poisson-gaussian"


@dataclass(frozen=True)
class RadiographTask(SampledDegradation):
    """Radiograph: detector blur, `scale x scale` binning and Poisson-Gaussian noise on the
    binned detector signal (`RadiographDegradation`, model in `xray.py`).

    `forward` is the noise-free read-out `lo + (hi - lo) * -ln(Nd / I0) / k` of the mean
    detected quanta `Nd`; `noise` draws the quanta of the same detector pixels. `incident_photons`
    is per low-resolution (detector) pixel where the image is darkest; `blur_sigma_px` is in
    high-resolution pixels; `value_range` None uses each image's range. The `*_range`
    arguments, when set, are drawn per pair (I0 log-uniform, the others uniform).
    """

    task: str
    scale: int = 4
    incident_photons: float = 1e4
    electronic_noise_sd: float = 2.0
    blur_sigma_px: float = 1.0
    attenuation_range: float = 4.0
    value_range: tuple[float, float] | None = None
    incident_photons_range: tuple[float, float] | None = None
    electronic_noise_sd_range: tuple[float, float] | None = None
    blur_sigma_px_range: tuple[float, float] | None = None
    method: str = field(default="area", init=False)

    def __post_init__(self) -> None:
        _check_task(self)
        names = ("incident_photons_range", "electronic_noise_sd_range", "blur_sigma_px_range")
        for name in names:
            _as_range(self, name)
            check_range(name, getattr(self, name), positive=name == names[0])
        self.operator(self.sample(torch.Generator()))  # validates the fixed values

    def sample(self, generator: torch.Generator) -> RadiographParams:
        return RadiographParams(
            method=self.method,
            incident_photons=draw_range(
                self.incident_photons_range, self.incident_photons, generator, log=True
            ),
            electronic_noise_sd=draw_range(
                self.electronic_noise_sd_range, self.electronic_noise_sd, generator
            ),
            blur_sigma_px=draw_range(self.blur_sigma_px_range, self.blur_sigma_px, generator),
            attenuation_range=self.attenuation_range,
            value_range=self.value_range,
            binning=self.scale,
        )

    def operator(self, params: RadiographParams) -> RadiographDegradation:
        return RadiographDegradation(
            incident_photons=params.incident_photons,
            electronic_noise_sd=params.electronic_noise_sd,
            blur_sigma_px=params.blur_sigma_px,
            attenuation_range=params.attenuation_range,
            value_range=params.value_range,
            scale=self.scale,
        )

    def target(self, high: torch.Tensor, params: RadiographParams) -> torch.Tensor:
        return crop_to_multiple(high, self.scale)

    def fit(
        self, high: torch.Tensor, spacing_mm: float, params: RadiographParams
    ) -> RadiographParams:
        if params.value_range is not None:
            return params
        return replace(params, value_range=image_range(self.target(high, params)))

    def forward(
        self, high: torch.Tensor, spacing_mm: float, params: RadiographParams
    ) -> torch.Tensor:
        operator = self.operator(params)
        lo, hi = operator.range_of(high)
        transmission = operator.mean_counts(high) / params.incident_photons
        value = lo + (hi - lo) * (-torch.log(transmission) / params.attenuation_range)
        return value.to(high.dtype if high.is_floating_point() else torch.float32)

    def noise(
        self,
        clean: torch.Tensor,
        params: RadiographParams,
        generator: torch.Generator,
        *,
        high: torch.Tensor,
        spacing_mm: float,
    ) -> torch.Tensor:
        # The quanta are drawn on the detector signal of the input (float64), whose
        # noise-free read-out is `clean`.
        return self.operator(params)(self.target(high, params), generator)


@dataclass(frozen=True)
class TaskSpec:
    """A named task: its class, default arguments and the modalities it makes sense for."""

    name: str
    description: str
    factory: Callable[..., SampledDegradation]  # a dataclass: its fields are the arguments
    defaults: Mapping[str, Any]
    modalities: tuple[str, ...] | None = None  # None: any modality


_CT = ("CT",)
_XRAY = ("CR", "DX", "OT")
TASKS: dict[str, TaskSpec] = {
    **{
        f"x{s}": TaskSpec(f"x{s}", f"x{s} area downsample", DownsampleTask, {"scale": s})
        for s in (2, 4, 8)
    },
    "ldct": TaskSpec("ldct", "25 % dose CT, same grid", LowDoseCTTask, {"scale": 1}, _CT),
    **{
        f"ldct-x{s}": TaskSpec(
            f"ldct-x{s}", f"25 % dose CT then x{s} downsample", LowDoseCTTask, {"scale": s}, _CT
        )
        for s in (2, 4)
    },
    "ldct-legacy-x4": TaskSpec(
        "ldct-legacy-x4",
        "image-domain Poisson+Gaussian noise then x4 (legacy)",
        LegacyNoiseTask,
        {"scale": 4},
        _CT,
    ),
    "xray-x4": TaskSpec(
        "xray-x4",
        "radiograph blur, x4 binning, quantum+electronic noise",
        RadiographTask,
        {"scale": 4},
        _XRAY,
    ),
    **{
        f"xray-blind-x{s}": TaskSpec(
            f"xray-blind-x{s}",
            f"x{s} by an unknown resize (bicubic/bilinear/lanczos/box/gaussian, aliased or not), "
            "noise, JPEG",
            UnknownResizeTask,
            {"scale": s},
            _XRAY,
        )
        for s in (2, 4)
    },
    "petct": TaskSpec(
        "petct", "PET from CT: low-res PET (25 % counts), CT guide", PetCtTask, {"scale": 4}, _CT
    ),
}


def make_task(name: str, **overrides: Any) -> SampledDegradation:
    """The degradation of task `name`, with constructor arguments replaced by `overrides`.

    Example: `make_task("ldct-x4", dose_fraction=0.1, incident_photons=3e5)`.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    spec = TASKS[name]
    allowed = {
        f.name
        for f in fields(spec.factory)  # type: ignore[arg-type]
        if f.init and "set_by" not in f.metadata
    } - {"task"}
    unknown = set(overrides) - allowed
    if unknown:
        raise ValueError(
            f"task {name!r} takes no {sorted(unknown)}; its parameters: {sorted(allowed)}"
        )
    return spec.factory(task=name, **{**spec.defaults, **overrides})


def slice_seed(seed: int, index: int) -> int:
    """Independent, reproducible seed for slice `index` of a run seeded with `seed`."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class DegradedVolume(NamedTuple):
    """What `degrade_volume` returns; see its docstring."""

    high: Volume
    low: Volume
    params: dict[str, Any]
    noisy: Volume | None


def _task_for_scan(volume: Volume, task_name: str, overrides: dict[str, Any]) -> SampledDegradation:
    """The task, checked against the modality and calibrated on the whole scan."""
    spec = TASKS.get(task_name)
    if spec is not None and spec.modalities and volume.modality not in spec.modalities:
        raise ValueError(
            f"task {task_name!r} is for {'/'.join(spec.modalities)} images, "
            f"got modality {volume.modality!r}"
        )
    # The projector and the physics take one in-plane spacing: the column spacing.
    scan = torch.from_numpy(np.ascontiguousarray(volume.array))
    return make_task(task_name, **overrides).for_scan(scan, float(volume.spacing[-1]))


def _degrade_slices(
    task: SampledDegradation,
    images: np.ndarray,
    indices: list[int],
    spacing_mm: float,
    seed: int,
    progress: Callable[[Iterable[int]], Iterable[int]] | None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[dict[str, Any]]]:
    """`(lows, highs, noisy, params)` of each slice; slice `k` seeded `slice_seed(seed, k)`."""
    lows, highs, noisy, slices = [], [], [], []
    positions: Iterable[int] = range(len(indices))
    for position in progress(positions) if progress else positions:
        seed_k = slice_seed(seed, indices[position])
        high = torch.from_numpy(np.ascontiguousarray(images[position]))[None]
        pair = task(high, spacing_mm, torch.Generator().manual_seed(seed_k))
        lows.append(pair.low[0].numpy())
        highs.append(pair.high[0].numpy())
        if pair.noisy is not None:
            noisy.append(pair.noisy[0].numpy())
        slices.append({"slice_index": indices[position], "seed": seed_k, **pair.params})
    return lows, highs, noisy, slices


def degrade_volume(
    volume: Volume,
    task_name: str,
    seed: int = 0,
    slice_index: int | None = None,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
    **overrides: Any,
) -> DegradedVolume:
    """Apply a task to an image, one slice of a volume, or every slice.

    The task is first calibrated on the whole scan (`task.for_scan`, e.g. the I0 of
    low-dose CT), also when one slice is asked for. Slice `k` then uses
    `torch.Generator().manual_seed(slice_seed(seed, k))`, so any slice can be remade alone.
    Returns `(high, low, params, noisy)`: the high volume cropped to a multiple of the
    scale, the low volume on the coarser grid (in-plane spacing times the scale, origin moved to
    the centre of the first low-resolution pixel), the parameters of every slice, and for
    noise tasks the noisy image on the high grid (else None).
    """
    task = _task_for_scan(volume, task_name, overrides)
    if slice_index is not None and volume.is_volume:
        volume = volume.slice(slice_index)
    elif slice_index not in (None, 0, -1):
        raise ValueError(f"slice {slice_index} requested but the input is a 2-D image")
    if volume.is_volume:
        images, indices = volume.array, list(range(volume.num_slices))
    else:
        images, indices = volume.array[None], [int(volume.metadata.get("slice_index", 0))]
    spacing_mm = float(volume.spacing[-1])
    lows, highs, noisy, slices = _degrade_slices(task, images, indices, spacing_mm, seed, progress)
    scale = int(slices[0]["scale"])
    high_array, low_array = np.stack(highs), np.stack(lows)
    if not volume.is_volume:
        high_array, low_array = high_array[0], low_array[0]
    low_spacing, low_origin = rescaled_in_plane(volume, scale)
    high_volume = volume.with_array(high_array)
    low_volume = replace(
        volume.with_array(low_array, spacing=low_spacing),
        origin=low_origin,
        metadata={**volume.metadata, "derived_by": f"medsr {__version__} task {task_name}"},
    )
    params = {
        "task": task_name,
        "overrides": overrides,
        "seed": seed,
        "medsr_version": __version__,
        "high_shape": list(high_array.shape),
        "low_shape": list(low_array.shape),
        "high_spacing_mm": list(volume.spacing),
        "low_spacing_mm": list(low_spacing),
        "slices": slices,
    }
    noisy_volume = None
    if noisy:
        noisy_array = np.stack(noisy) if volume.is_volume else noisy[0]
        noisy_volume = volume.with_array(noisy_array)
    return DegradedVolume(high_volume, low_volume, params, noisy_volume)
