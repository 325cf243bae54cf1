"""Simulated FDG PET of a real CT slice (no real PET is available offline; PHYSICS.md).

1. Activity in SUV from the CT's tissue classes, with hot lesions (`activity_from_ct`,
   classes and values in `medsr.physics.pet_activity`).
2. Attenuation at 511 keV (`mu511_from_hu`): 0.096 (1 + HU/1000) /cm for HU <= 0,
   0.096 + 5.1e-5 HU above (bilinear scaling, after Kinahan et al. 1998: per HU, bone
   attenuates less at 511 keV than at CT energies).
3. Prompts per sinogram bin: y ~ Poisson(eta exp(-R mu511) R(PSF * x) + r), PSF a 5 mm FWHM
   Gaussian, r randoms + scatter = 35 % of the trues (half uniform, half a broad blur of the
   trues), eta set so that the expected prompts total `counts`. The low-count data keep each
   prompt with probability `count_fraction` (binomial thinning, as when a list-mode
   acquisition is cut short), so they are a subset of the full-count data.
4. OSEM (3 iterations x 15 subsets) on a grid `grid_factor` times coarser than the CT, with
   attenuation, PSF and r in the system model (`medsr.physics.pet_recon`), then a 4 mm FWHM
   Gaussian post-filter. The known eta calibrates the image in SUV.

The super-resolution target is the activity on the CT grid blurred by a residual 2 mm FWHM
Gaussian (`target_fwhm_mm`): what a PET/CT SR model can be asked to recover from the CT
edges; a perfectly sharp target would ask it to invent edges no scanner resolves.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from medsr.physics.pet_activity import (
    ANATOMIES,
    CLASSES,
    SUV,
    ActivityMap,
    Lesion,
    activity_from_ct,
)
from medsr.physics.pet_recon import PetSystem, background_shape, blur_fwhm, simulate_trues
from medsr.physics.resize import SCALES, crop_to_multiple, downsample

__all__ = [
    "ANATOMIES",
    "CLASSES",
    "SUV",
    "ActivityMap",
    "Lesion",
    "PetFromCT",
    "PetSimulation",
    "activity_from_ct",
    "mu511_from_hu",
]

MU_WATER_511_PER_CM = 0.096
MU_BONE_SLOPE_PER_CM_HU = 5.1e-5


def mu511_from_hu(ct_hu: torch.Tensor) -> torch.Tensor:
    """Linear attenuation at 511 keV in 1/cm from HU, any shape; air and padding give 0."""
    hu = ct_hu.float()
    soft = MU_WATER_511_PER_CM * (1.0 + hu / 1000.0)
    dense = MU_WATER_511_PER_CM + MU_BONE_SLOPE_PER_CM_HU * hu
    return torch.where(hu <= 0, soft, dense).clamp(min=0.0)


@dataclass
class PetSimulation:
    """One simulated PET/CT slice. CT grid `(H, W)` (the input cropped to a multiple of
    `grid_factor`), PET grid `(h, w) = (H, W) / grid_factor`, sinograms `(V, D)`.

    `ct` HU; `activity` the true activity (SUV) with classes and lesions; `target` the
    activity blurred by the residual PSF (SUV); `mu511` 1/cm; `pet` and `pet_low` the
    reconstructions (SUV) from all prompts and from the thinned low-count prompts (`pet` is
    None when the full-count image was not asked for); `params` every setting and drawn value.
    """

    ct: torch.Tensor
    activity: ActivityMap
    target: torch.Tensor
    mu511: torch.Tensor
    pet: torch.Tensor | None
    pet_low: torch.Tensor
    prompts: torch.Tensor
    prompts_low: torch.Tensor
    params: dict[str, Any]


@dataclass(frozen=True)
class PetFromCT:
    """Deterministic PET simulation from a CT slice (module docstring); randomness only from
    the generator passed to the call.

    Args:
        counts: expected prompts (trues + randoms + scatter) per slice at full count;
            ~5e5 for an abdomen, ~2e6 for a brain.
        count_fraction: share of the prompts kept in the low-count data, in (0, 1].
        psf_fwhm_mm: scanner resolution, Gaussian FWHM, simulated and modelled.
        randoms_fraction: randoms + scatter as a fraction of the trues.
        iterations, subsets: OSEM; `num_views` must be a multiple of `subsets`.
        num_views: sinogram angles over 180 degrees.
        grid_factor: PET pixel = `grid_factor` CT pixels (one of 2, 3, 4, 8).
        oversample: data are projected on a grid `oversample` times finer than the PET grid
            (2 makes data and model differ in discretisation too, at ~4x the projection
            cost; 1, the default, differs only in where the PSF is applied).
        postfilter_fwhm_mm: Gaussian post-filter of the reconstruction.
        target_fwhm_mm: residual Gaussian blur of the SR target on the CT grid.
        lesion_count, lesion_radius_mm, lesion_suv: uniform ranges of the drawn lesions.
        texture_amplitude: peak relative amplitude of the smooth texture of soft tissue.
        anatomy: "auto", "head" or "body" (brain detection, `activity_from_ct`).
    """

    counts: float = 1e6
    count_fraction: float = 0.25
    psf_fwhm_mm: float = 5.0
    randoms_fraction: float = 0.35
    iterations: int = 3
    subsets: int = 15
    num_views: int = 180
    grid_factor: int = 4
    oversample: int = 1
    postfilter_fwhm_mm: float = 4.0
    target_fwhm_mm: float = 2.0
    lesion_count: tuple[int, int] = (2, 4)
    lesion_radius_mm: tuple[float, float] = (4.0, 10.0)
    lesion_suv: tuple[float, float] = (4.0, 12.0)
    texture_amplitude: float = 0.15
    anatomy: str = "auto"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.counts) and self.counts > 0):
            raise ValueError(f"counts must be > 0, got {self.counts}")
        if not 0 < self.count_fraction <= 1:
            raise ValueError(f"count_fraction must be in (0, 1], got {self.count_fraction}")
        for name in ("psf_fwhm_mm", "randoms_fraction", "postfilter_fwhm_mm", "target_fwhm_mm"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.iterations < 1 or self.subsets < 1:
            raise ValueError(
                f"iterations and subsets must be >= 1, got {self.iterations}, {self.subsets}"
            )
        if self.num_views % self.subsets:
            raise ValueError(
                f"num_views {self.num_views} must be a multiple of subsets {self.subsets}"
            )
        if isinstance(self.grid_factor, bool) or self.grid_factor not in SCALES:
            raise ValueError(f"grid_factor must be one of {SCALES}, got {self.grid_factor!r}")
        step, rest = divmod(self.grid_factor, self.oversample) if self.oversample > 0 else (0, 1)
        if rest or step not in (1, *SCALES):
            raise ValueError(
                f"oversample must divide grid_factor {self.grid_factor} into 1 or "
                f"one of {SCALES}, got {self.oversample}"
            )
        if self.anatomy not in ANATOMIES:
            raise ValueError(f"anatomy must be one of {ANATOMIES}, got {self.anatomy!r}")

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    def activity(
        self, ct_hu: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> tuple[torch.Tensor, ActivityMap]:
        """`(ct, activity)`: the CT `(H, W)` cropped to a multiple of `grid_factor` and its
        activity map, whose random values (texture, lesions) come from `generator`."""
        if ct_hu.ndim != 2:
            raise ValueError(f"ct_hu must be (H, W), got shape {tuple(ct_hu.shape)}")
        if not spacing_mm > 0:
            raise ValueError(f"spacing_mm must be > 0, got {spacing_mm}")
        ct = crop_to_multiple(ct_hu.float(), self.grid_factor)
        activity = activity_from_ct(
            ct,
            spacing_mm,
            generator,
            lesion_count=self.lesion_count,
            lesion_radius_mm=self.lesion_radius_mm,
            lesion_suv=self.lesion_suv,
            texture_amplitude=self.texture_amplitude,
            anatomy=self.anatomy,
        )
        return ct, activity

    def target(self, activity: ActivityMap, spacing_mm: float) -> torch.Tensor:
        """The super-resolution target: the activity blurred by `target_fwhm_mm`."""
        return blur_fwhm(activity.activity, self.target_fwhm_mm, spacing_mm)

    def __call__(
        self,
        ct_hu: torch.Tensor,
        spacing_mm: float,
        generator: torch.Generator,
        *,
        full_count: bool = True,
        noise_generator: torch.Generator | None = None,
    ) -> PetSimulation:
        """Simulate `ct_hu` `(H, W)` in HU with square pixels of `spacing_mm`.

        The generator draws, in order, the activity's values (`activity_from_ct`), then the
        seed of the Poisson and binomial draws (from `noise_generator` when given).
        `full_count=False` skips the full-count reconstruction (the data are drawn all the
        same, so `pet_low` does not change).
        """
        # One function on purpose: it reads in the order of the acquisition (activity,
        # attenuation, trues, randoms, Poisson counts, thinning, OSEM), and the order of the
        # generator's draws is part of what makes a simulation reproducible.
        ct, activity = self.activity(ct_hu, spacing_mm, generator)
        mu = mu511_from_hu(ct)
        trues = simulate_trues(
            activity.activity,
            mu,
            spacing_mm,
            self.grid_factor,
            self.oversample,
            self.num_views,
            self.psf_fwhm_mm,
        )
        pixel_mm = spacing_mm * self.grid_factor
        total = float(trues.sum())
        if not total > 0:
            raise ValueError("the activity map is empty: no body found in the CT slice")
        efficiency = self.counts / ((1 + self.randoms_fraction) * total)
        background = self.randoms_fraction * efficiency * total * background_shape(trues, pixel_mm)
        noise_source = generator if noise_generator is None else noise_generator
        noise_seed = int(torch.randint(0, 2**62, (1,), generator=noise_source))
        noise = torch.Generator().manual_seed(noise_seed)
        prompts = torch.poisson(efficiency * trues + background, generator=noise)
        keep = torch.full_like(prompts, self.count_fraction)
        prompts_low = torch.binomial(prompts, keep, generator=noise)
        system = PetSystem(
            downsample(mu, self.grid_factor, "area"),
            pixel_mm,
            self.num_views,
            self.subsets,
            self.psf_fwhm_mm,
            efficiency,
        )

        def reconstruct(data: torch.Tensor, fraction: float) -> torch.Tensor:
            # OSEM is scale-equivariant: data / f with the full-count model is the
            # low-count model (f eta, f r) on the data.
            image = system.osem(data / fraction, background, self.iterations)
            return blur_fwhm(image, self.postfilter_fwhm_mm, pixel_mm)

        pet = reconstruct(prompts, 1.0) if full_count else None
        pet_low = reconstruct(prompts_low, self.count_fraction)
        target = self.target(activity, spacing_mm)
        params = {
            **self.describe(),
            **{k: v for k, v in activity.params.items() if k not in self.describe()},
            "noise_seed": noise_seed,
            "efficiency": efficiency,
            "pet_pixel_mm": pixel_mm,
            "ct_shape": list(ct.shape),
            "pet_shape": list(pet_low.shape),
            "sinogram_shape": list(prompts.shape),
            "expected_trues": efficiency * total,
            "expected_background": float(background.sum()),
            "prompts": float(prompts.sum()),
            "prompts_low": float(prompts_low.sum()),
            "unit": "SUV",
        }
        return PetSimulation(ct, activity, target, mu, pet, pet_low, prompts, prompts_low, params)
