"""The `petct` task: CT-guided PET super-resolution pairs simulated from real CT slices.

`make_task("petct")(ct (1, H, W) in HU, spacing_mm, generator)` returns a `DegradedPair`:

| field | shape | content |
|---|---|---|
| `high` | (1, H, W) | target: true activity (SUV) blurred by the 2 mm residual PSF |
| `low` | (1, H/s, W/s) | OSEM PET (SUV) from `count_fraction` x `counts` prompts, s = `scale` |
| `guide` | (1, H, W) | the CT (HU) on the target grid: the input cropped like `high` |

A two-input generator takes `(guide, low)` and predicts `high`; a single-input one ignores
`guide`. `low` and `high` share the unit (SUV), `guide` has its own (normalise it apart).
`count_fraction=1` gives the full-count PET. H and W are cropped to multiples of `scale`.

`apps.degrade.degrade_petct` runs the task over a `Volume` for `medsr degrade --task petct`
and returns the CT, the target, the full-count and the low-count PET as `PetCtVolumes`;
`viz.strips.petct_strip` draws CT | activity | PET | PET low-count with the lesions circled.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, NamedTuple

import torch

from medsr.image import Volume, Window
from medsr.physics.degradation import (
    DegradedPair,
    SampledDegradation,
    check_range,
    draw_range,
)
from medsr.physics.pet import PetFromCT, PetSimulation
from medsr.physics.pet_recon import blur_fwhm
from medsr.physics.resize import downsample

SUV_WINDOW = Window(center=5.0, width=10.0)


_PET = PetFromCT()  # the operator's defaults are the task's: one place to change them
_SETTINGS = tuple(f.name for f in fields(PetFromCT) if f.name != "grid_factor")


@dataclass(frozen=True)
class PetParams:
    """One draw of `PetCtTask.sample` (JSON-able): the `PetFromCT` settings, drawn or fixed,
    the seed of the activity's texture and lesions, and the CT's pixel spacing (`fit`)."""

    counts: float
    count_fraction: float
    psf_fwhm_mm: float
    randoms_fraction: float
    iterations: int
    subsets: int
    num_views: int
    oversample: int
    postfilter_fwhm_mm: float
    target_fwhm_mm: float
    lesion_count: tuple[int, int]
    lesion_radius_mm: tuple[float, float]
    lesion_suv: tuple[float, float]
    texture_amplitude: float
    anatomy: str
    activity_seed: int
    spacing_mm: float | None = None


@dataclass(frozen=True)
class PetCtTask(SampledDegradation):
    """PET from CT on a `scale`-times coarser grid (`PetFromCT`, `grid_factor = scale`).

    The arguments other than `task`, `scale` and the `*_range`s are those of `PetFromCT`.
    The contract (`degradation.py`), for a CT `x` in HU:

        sample   the settings (`counts_range` log-uniform, the other ranges uniform, when
                 set) and the seed of the activity's texture and lesions
        target   the activity drawn from x with that seed, blurred by `target_fwhm_mm` (SUV)
        forward  the noise-free PET's resolution model: the target blurred to the scanner
                 PSF and post-filter (the no-recovery bound of OSEM's PSF modelling) and
                 area-averaged onto the PET grid
        noise    the acquisition: Poisson prompts with attenuation, randoms and scatter,
                 binomial thinning to `count_fraction`, OSEM and post-filter (`PetFromCT`)

    `__call__` runs the simulation once and adds the CT guide and the drawn lesions and
    prompts to the pair.
    """

    task: str
    scale: int = 4
    counts: float = _PET.counts
    count_fraction: float = _PET.count_fraction
    psf_fwhm_mm: float = _PET.psf_fwhm_mm
    randoms_fraction: float = _PET.randoms_fraction
    iterations: int = _PET.iterations
    subsets: int = _PET.subsets
    num_views: int = _PET.num_views
    oversample: int = _PET.oversample
    postfilter_fwhm_mm: float = _PET.postfilter_fwhm_mm
    target_fwhm_mm: float = _PET.target_fwhm_mm
    lesion_count: tuple[int, int] = _PET.lesion_count
    lesion_radius_mm: tuple[float, float] = _PET.lesion_radius_mm
    lesion_suv: tuple[float, float] = _PET.lesion_suv
    texture_amplitude: float = _PET.texture_amplitude
    anatomy: str = _PET.anatomy
    counts_range: tuple[float, float] | None = None
    psf_fwhm_mm_range: tuple[float, float] | None = None
    randoms_fraction_range: tuple[float, float] | None = None
    postfilter_fwhm_mm_range: tuple[float, float] | None = None

    bank: ClassVar[str | None] = "pet"

    def __post_init__(self) -> None:
        for name in (
            "counts_range",
            "psf_fwhm_mm_range",
            "randoms_fraction_range",
            "postfilter_fwhm_mm_range",
        ):
            bounds = getattr(self, name)
            if bounds is not None:
                object.__setattr__(self, name, (float(bounds[0]), float(bounds[1])))
            check_range(name, getattr(self, name), positive=name == "counts_range")
        self.operator()  # validates every argument before any simulation

    def operator(self, params: PetParams | None = None) -> PetFromCT:
        """The simulator of one draw (default: of the task's fixed settings)."""
        source: Any = self if params is None else params
        return PetFromCT(grid_factor=self.scale, **{k: getattr(source, k) for k in _SETTINGS})

    def sample(self, generator: torch.Generator) -> PetParams:
        drawn = {
            "counts": draw_range(self.counts_range, self.counts, generator, log=True),
            "psf_fwhm_mm": draw_range(self.psf_fwhm_mm_range, self.psf_fwhm_mm, generator),
            "randoms_fraction": draw_range(
                self.randoms_fraction_range, self.randoms_fraction, generator
            ),
            "postfilter_fwhm_mm": draw_range(
                self.postfilter_fwhm_mm_range, self.postfilter_fwhm_mm, generator
            ),
        }
        settings = {k: drawn.get(k, getattr(self, k)) for k in _SETTINGS}
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        return PetParams(**settings, activity_seed=seed)

    def fit(self, high: torch.Tensor, spacing_mm: float, params: PetParams) -> PetParams:
        return replace(params, spacing_mm=float(spacing_mm))

    def target(self, high: torch.Tensor, params: PetParams) -> torch.Tensor:
        if params.spacing_mm is None:
            raise ValueError("the CT's spacing is unknown: call fit first")
        operator = self.operator(params)
        generator = torch.Generator().manual_seed(params.activity_seed)
        _, activity = operator.activity(high[0], params.spacing_mm, generator)
        return operator.target(activity, params.spacing_mm)[None]

    def forward(self, high: torch.Tensor, spacing_mm: float, params: PetParams) -> torch.Tensor:
        fwhm = (params.psf_fwhm_mm**2 + params.postfilter_fwhm_mm**2) - params.target_fwhm_mm**2
        blurred = blur_fwhm(high, max(fwhm, 0.0) ** 0.5, spacing_mm)
        return downsample(blurred, self.scale, "area")

    def simulate(
        self,
        high: torch.Tensor,
        spacing_mm: float,
        params: PetParams,
        generator: torch.Generator,
        full_count: bool = False,
    ) -> PetSimulation:
        """The whole simulation of the CT `high` `(1, H, W)`: activity from the params' seed,
        counts noise from `generator`."""
        if high.ndim != 3 or high.shape[0] != 1:
            raise ValueError(f"high must be one CT slice (1, H, W) in HU, got {tuple(high.shape)}")
        activity_generator = torch.Generator().manual_seed(params.activity_seed)
        return self.operator(params)(
            high[0],
            spacing_mm,
            activity_generator,
            full_count=full_count,
            noise_generator=generator,
        )

    def noise(
        self,
        clean: torch.Tensor,
        params: PetParams,
        generator: torch.Generator,
        *,
        high: torch.Tensor,
        spacing_mm: float,
    ) -> torch.Tensor:
        return self.simulate(high, spacing_mm, params, generator).pet_low[None]

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair:
        if high.ndim != 3 or high.shape[0] != 1:
            raise ValueError(f"high must be one CT slice (1, H, W) in HU, got {tuple(high.shape)}")
        params = self.fit(high, spacing_mm, self.sample(generator))
        simulation = self.simulate(high, spacing_mm, params, generator)
        low, target, ct = simulation.pet_low[None], simulation.target[None], simulation.ct[None]
        extra = {**simulation.params, "guide": "CT, HU, high grid"}
        return self.pack(low, target, spacing_mm, params, generator, extra=extra, guide=ct)


class PetCtVolumes(NamedTuple):
    """What `apps.degrade.degrade_petct` returns: `ct` (HU) and `target` (SUV) on the cropped
    CT grid, `pet` (full count) and `pet_low` (`count_fraction`) on the PET grid, in SUV;
    `params` as `degrade_volume`'s, with the full-count prompts per slice under
    `full_count`."""

    ct: Volume
    target: Volume
    pet: Volume
    pet_low: Volume
    params: dict[str, Any]
