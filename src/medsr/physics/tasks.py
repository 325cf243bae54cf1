"""The named degradation tasks: how each (low, high) training pair is made.

`make_task("ldct-x4")` returns a `Degradation` (see `degradation.py`):
`task(high (C, H, W), spacing_mm, generator) -> DegradedPair(low, high, params)`. The high
image is the input cropped to a multiple of the scale; `params` lists every parameter, so a
pair can be remade from its log. `degrade_volume` applies a task to every slice of a `Volume`.

| task | low image |
|---|---|
| x2, x4, x8 | area (box) downsample of the high image |
| ldct | 25 % dose, projection-domain noise (`LowDoseCT`), same grid |
| ldct-x2, ldct-x4 | 25 % dose, then area downsample of the low-dose image |
| ldct-legacy-x4 | image-domain Poisson + Gaussian noise (`ImageDomainNoise`), then x4 |
| xray-x4 | radiograph blur, 4x4 detector binning, quantum + electronic noise |
| xray-blind-x2, -x4 | an unknown resize, noise, 8-bit, JPEG, drawn per item (`unknown_resize.py`) |
| petct | PET simulated from the CT, OSEM on a 4x coarser grid; CT guide (`pet_task.py`) |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, NamedTuple

import numpy as np
import torch

from medsr._version import __version__
from medsr.image import Volume, rescaled_in_plane
from medsr.physics.ct import LowDoseCT
from medsr.physics.ct_calibration import calibrate_incident_photons
from medsr.physics.degradation import Degradation, DegradedPair
from medsr.physics.noise import ImageDomainNoise
from medsr.physics.pet_task import PetCtTask
from medsr.physics.resize import DOWNSAMPLE_METHODS, SCALES, crop_to_multiple, downsample
from medsr.physics.unknown_resize import UnknownResizeTask
from medsr.physics.xray import RadiographDegradation, image_range


def _check_input(high: torch.Tensor, spacing_mm: float) -> None:
    if high.ndim != 3:
        raise ValueError(f"high must be (C, H, W), got shape {tuple(high.shape)}")
    if not spacing_mm > 0:
        raise ValueError(f"spacing_mm must be > 0, got {spacing_mm}")


def _check_task(task: Any, scales: tuple[int, ...] = (1, *SCALES)) -> None:
    """Fail at construction, before any costly simulation, on a bad scale or method."""
    if isinstance(task.scale, bool) or task.scale not in scales:
        raise ValueError(f"scale must be one of {scales}, got {task.scale!r}")
    if task.method not in DOWNSAMPLE_METHODS:
        raise ValueError(f"method must be one of {DOWNSAMPLE_METHODS}, got {task.method!r}")


def _resample(image: torch.Tensor, scale: int, method: str) -> torch.Tensor:
    return image.clone() if scale == 1 else downsample(image, scale, method)


def _pair(
    task: Any,
    low: torch.Tensor,
    high: torch.Tensor,
    spacing_mm: float,
    generator: torch.Generator,
    extra: Mapping[str, Any],
    noisy: torch.Tensor | None = None,
) -> DegradedPair:
    params = {
        **asdict(task),
        **extra,
        "high_shape": list(high.shape),
        "low_shape": list(low.shape),
        "high_spacing_mm": spacing_mm,
        "low_spacing_mm": spacing_mm * task.scale,
        "generator_seed": generator.initial_seed(),
    }
    return DegradedPair(low.contiguous(), high.contiguous(), params, noisy)


@dataclass(frozen=True)
class DownsampleTask:
    """Super-resolution only: `low = downsample(high, scale, method)`."""

    task: str
    scale: int
    method: str = "area"

    def __post_init__(self) -> None:
        _check_task(self, SCALES)

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair:
        _check_input(high, spacing_mm)
        cropped = crop_to_multiple(high, self.scale)
        return _pair(
            self, _resample(cropped, self.scale, self.method), cropped, spacing_mm, generator, {}
        )


_LOW_DOSE = LowDoseCT()  # the operator's defaults are the task's: one place to change them


@dataclass(frozen=True)
class LowDoseCTTask:
    """Low-dose CT by projection-domain noise insertion, then optional downsampling.

    The high image (HU) is cropped to a multiple of `scale`; noise for `dose_fraction` is
    inserted on that grid, and the noisy image is downsampled (the scanner's reduced dose and
    coarser grid). The other arguments are those of `LowDoseCT`, except that
    `incident_photons=None` (the default) calibrates I0 on each image's own noise in uniform
    ROIs (`calibrate_incident_photons` with this `filter_window`), so the low-dose image has
    SD / sqrt(dose) whatever scanner made the input.
    """

    task: str
    scale: int = 1
    method: str = "area"
    dose_fraction: float = _LOW_DOSE.dose_fraction
    incident_photons: float | None = None
    electronic_noise_variance: float | None = _LOW_DOSE.electronic_noise_variance
    num_views: int = _LOW_DOSE.num_views
    filter_window: str = _LOW_DOSE.filter_window
    mu_water_per_cm: float = _LOW_DOSE.mu_water_per_cm

    def __post_init__(self) -> None:
        _check_task(self)

    def operator(self, incident_photons: float | None = None) -> LowDoseCT:
        return LowDoseCT(
            dose_fraction=self.dose_fraction,
            incident_photons=incident_photons
            or self.incident_photons
            or _LOW_DOSE.incident_photons,
            electronic_noise_variance=self.electronic_noise_variance,
            num_views=self.num_views,
            filter_window=self.filter_window,
            mu_water_per_cm=self.mu_water_per_cm,
        )

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair:
        _check_input(high, spacing_mm)
        cropped = crop_to_multiple(high, self.scale)
        projection = self.operator().project(cropped, spacing_mm)
        calibrated = self.incident_photons is None
        incident_photons = self.incident_photons
        if incident_photons is None:
            incident_photons = calibrate_incident_photons(
                cropped.reshape(-1, *cropped.shape[-2:])[0],
                spacing_mm,
                windows=(self.filter_window,),
                num_views=self.num_views,
                mu_water_per_cm=self.mu_water_per_cm,
                projection=projection,
            ).incident_photons
        operator = self.operator(incident_photons)
        noise = operator.noise(projection, generator).reshape(cropped.shape)
        noisy = cropped + noise
        low = _resample(noisy, self.scale, self.method)
        extra = {
            "noise_model": "ct-projection-domain",
            "unit": "HU",
            "incident_photons_calibrated": calibrated,
            **operator.describe(),
        }
        return _pair(self, low, cropped, spacing_mm, generator, extra, noisy)


@dataclass(frozen=True)
class LegacyNoiseTask:
    """Image-domain Poisson + Gaussian noise (older SRGAN CT projects), then downsampling.

    Defaults (HU): offset 1024 (air at 0 counts), 20 counts/HU and 5 HU Gaussian give about
    9 HU SD in water, near the projection-domain 25 % dose level of head CT (PHYSICS.md).
    """

    task: str
    scale: int = 4
    method: str = "area"
    gaussian_sd: float = 5.0
    poisson_scale: float | None = 20.0
    offset: float | None = 1024.0

    def __post_init__(self) -> None:
        _check_task(self)

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair:
        _check_input(high, spacing_mm)
        operator = ImageDomainNoise(self.gaussian_sd, self.poisson_scale, self.offset)
        cropped = crop_to_multiple(high, self.scale)
        noisy = operator(cropped, generator)
        low = _resample(noisy, self.scale, self.method)
        return _pair(self, low, cropped, spacing_mm, generator, operator.describe(), noisy)


@dataclass(frozen=True)
class RadiographTask:
    """Radiograph: detector blur, `scale x scale` binning and Poisson-Gaussian noise on the
    binned detector signal (`RadiographDegradation`, model in `xray.py`).

    `incident_photons` is per low-resolution (detector) pixel where the image is darkest;
    `blur_sigma_px` is in high-resolution pixels; `value_range` None uses each image's range.
    """

    task: str
    scale: int = 4
    incident_photons: float = 1e4
    electronic_noise_sd: float = 2.0
    blur_sigma_px: float = 1.0
    attenuation_range: float = 4.0
    value_range: tuple[float, float] | None = None
    method: str = field(default="area", init=False)

    def __post_init__(self) -> None:
        _check_task(self)

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair:
        _check_input(high, spacing_mm)
        cropped = crop_to_multiple(high, self.scale)
        operator = RadiographDegradation(
            incident_photons=self.incident_photons,
            electronic_noise_sd=self.electronic_noise_sd,
            blur_sigma_px=self.blur_sigma_px,
            attenuation_range=self.attenuation_range,
            value_range=self.value_range or image_range(cropped),
            scale=self.scale,
        )
        return _pair(
            self, operator(cropped, generator), cropped, spacing_mm, generator, operator.describe()
        )


@dataclass(frozen=True)
class TaskSpec:
    """A named task: its factory, default arguments and the modalities it makes sense for."""

    name: str
    description: str
    factory: Callable[..., Degradation]
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
            f"x{s} by an unknown resize (bicubic/bilinear/lanczos/box/gaussian), noise, JPEG",
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


def make_task(name: str, **overrides: Any) -> Degradation:
    """The degradation of task `name`, with constructor arguments replaced by `overrides`.

    Example: `make_task("ldct-x4", dose_fraction=0.1, incident_photons=3e5)`.
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    spec = TASKS[name]
    allowed = {f.name for f in fields(spec.factory) if f.init} - {"task"}  # type: ignore[arg-type]
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


def degrade_volume(
    volume: Volume,
    task_name: str,
    seed: int = 0,
    slice_index: int | None = None,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
    **overrides: Any,
) -> DegradedVolume:
    """Apply a task to an image, one slice of a volume, or every slice.

    Slice `k` uses `torch.Generator().manual_seed(slice_seed(seed, k))`, so any slice can be
    remade alone. Returns `(high, low, params, noisy)`: the high volume cropped to a multiple of the
    scale, the low volume on the coarser grid (in-plane spacing times the scale, origin moved to
    the centre of the first low-resolution pixel), the parameters of every slice, and for
    noise tasks the noisy image on the high grid (else None).
    """
    spec = TASKS.get(task_name)
    if spec is not None and spec.modalities and volume.modality not in spec.modalities:
        raise ValueError(
            f"task {task_name!r} is for {'/'.join(spec.modalities)} images, "
            f"got modality {volume.modality!r}"
        )
    task = make_task(task_name, **overrides)
    if slice_index is not None and volume.is_volume:
        volume = volume.slice(slice_index)
    elif slice_index not in (None, 0, -1):
        raise ValueError(f"slice {slice_index} requested but the input is a 2-D image")
    if volume.is_volume:
        images, indices = volume.array, list(range(volume.num_slices))
    else:
        images, indices = volume.array[None], [int(volume.metadata.get("slice_index", 0))]
    lows, highs, noisy, slices = [], [], [], []
    positions: Iterable[int] = range(len(indices))
    for position in progress(positions) if progress else positions:
        seed_k = slice_seed(seed, indices[position])
        high = torch.from_numpy(np.ascontiguousarray(images[position]))[None]
        # The projector and the physics take one in-plane spacing: the column spacing.
        pair = task(high, float(volume.spacing[-1]), torch.Generator().manual_seed(seed_k))
        lows.append(pair.low[0].numpy())
        highs.append(pair.high[0].numpy())
        if pair.noisy is not None:
            noisy.append(pair.noisy[0].numpy())
        slices.append({"slice_index": indices[position], "seed": seed_k, **pair.params})
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
