"""Low-dose CT from a normal-dose image by projection-domain noise insertion.

Yu et al. 2012, Zeng et al. 2015 (the method behind the Mayo/AAPM quarter-dose data):

1. HU -> attenuation, mu = mu_water * (1 + HU / 1000) in 1/cm (out-of-field padding and
   anything below -1000 HU is air, mu = 0).
2. Line integrals p = R mu, parallel beam, unit-less (pixel size in cm as the step).
3. For dose fraction a, incident photons per ray I0 and electronic noise variance se2
   (counts^2), add the variance missing between normal and low dose:
       Var = ((1 - a) / a) * (exp(p) / I0) * (1 + ((1 + a) / a) * se2 * exp(p) / I0)
       p_low = p + z * sqrt(Var),  z ~ N(0, 1)
4. Reconstruct only the noise: low = x + FBP(p_low - p), in HU. FBP is linear, so every pixel
   of the input is kept and gains correlated, streaky noise. A kernel fitted on detector bins
   finer than the pixels (`projector.kernel_bins_per_pixel` b > 1, the sharp kernels) gets its
   ray noise on bins of 1/b pixel: Var interpolated there and times b (each bin sees 1/b of
   the photons, and its electronic noise scales alike), so a kernel confined below the pixel
   Nyquist gives about the same noise at any b (one-pixel bins' linear interpolation smooths
   it by 10-20 %), and a sharp kernel passes noise above it that aliases into the corners.

I0 is a property of the scanner, protocol and our sampling, so it is calibrated per dataset
(`medsr.physics.ct_calibration`), not taken from papers.

Angular tube-current modulation (`tube_current_modulation` m, Gies et al. 1999; Siemens CARE
Dose and its peers do it on most body scans): the tube current of each view follows the
view's attenuation A_v = exp(p) of its most attenuating rays as A_v^m, normalised to the same
mean (the same dose). m = 0.5 is the square-root rule that minimises the image noise for a
dose; m = 0 a constant current. It makes the noise less streaky along the body's long axis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from medsr.metrics.ct import PADDING_HU
from medsr.physics.projector import (
    RECONSTRUCTION_KERNELS,
    ParallelBeamProjector,
    kernel_bins_per_pixel,
)


def hu_to_attenuation(image_hu: torch.Tensor, mu_water_per_cm: float) -> torch.Tensor:
    """mu = mu_water * (1 + HU / 1000) in 1/cm, with padding and sub-air values set to air."""
    hu = torch.where(image_hu <= PADDING_HU, torch.full_like(image_hu, -1000.0), image_hu)
    return mu_water_per_cm * (1.0 + hu.clamp(min=-1000.0) / 1000.0)


def attenuation_to_hu(mu: torch.Tensor, mu_water_per_cm: float) -> torch.Tensor:
    """Inverse of `hu_to_attenuation` (without the clamping)."""
    return 1000.0 * (mu / mu_water_per_cm - 1.0)


def default_electronic_noise_variance(incident_photons: float) -> float:
    """se2 ~ 10 counts^2 per 1e5 incident photons (PHYSICS.md)."""
    return 10.0 * incident_photons / 1e5


def view_modulation(line_integrals: torch.Tensor, strength: float) -> torch.Tensor:
    """Relative tube current per view `(B, V, 1)`, mean 1 over views: `A_v^strength`, A_v =
    exp of the view's 98th-percentile line integral (its most attenuating rays)."""
    peak = torch.quantile(line_integrals.float(), 0.98, dim=-1, keepdim=True)
    weights = torch.exp(strength * (peak - peak.amax(dim=-2, keepdim=True)))  # no overflow
    return (weights / weights.mean(dim=-2, keepdim=True)).to(line_integrals.dtype)


def added_ray_variance(
    line_integrals: torch.Tensor,
    dose_fraction: float,
    incident_photons: float | torch.Tensor,
    electronic_noise_variance: float,
) -> torch.Tensor:
    """Variance of the log-projection noise to add to reach `dose_fraction` (step 3);
    `incident_photons` a number or per view `(B, V, 1)` (tube-current modulation)."""
    a = dose_fraction
    transmission_inverse = torch.exp(line_integrals) / incident_photons
    return (
        ((1 - a) / a)
        * transmission_inverse
        * (1 + ((1 + a) / a) * electronic_noise_variance * transmission_inverse)
    )


def normal_dose_ray_variance(
    line_integrals: torch.Tensor,
    incident_photons: float | torch.Tensor,
    electronic_noise_variance: float,
) -> torch.Tensor:
    """Variance of the log-projection noise of the normal-dose scan itself (for calibration)."""
    transmission_inverse = torch.exp(line_integrals) / incident_photons
    return transmission_inverse * (1 + electronic_noise_variance * transmission_inverse)


@dataclass(frozen=True)
class Projection:
    """Line integrals of one batch of images, cached so each noise draw is one FBP."""

    line_integrals: torch.Tensor  # (B, V, D), unit-less
    projector: ParallelBeamProjector
    pixel_spacing_mm: float


@dataclass(frozen=True)
class LowDoseCT:
    """Projection-domain noise insertion (see the module docstring for the equations).

    Args:
        dose_fraction: a in (0, 1]; 0.25 is the Mayo/AAPM quarter dose.
        incident_photons: I0, photons per ray at normal dose (calibrate per dataset).
        electronic_noise_variance: se2 in counts^2; None means 10 * I0 / 1e5.
        num_views: projection angles over 180 degrees.
        filter_window: FBP window or kernel, one of `RECONSTRUCTION_KERNELS` (the classical
            windows and the kernels matched to real scanners); sets the noise texture.
        mu_water_per_cm: attenuation of water at the effective energy (~60-70 keV).
        tube_current_modulation: m in [0, 2], the angular modulation's exponent (module doc);
            0 = constant tube current.
    """

    dose_fraction: float = 0.25
    incident_photons: float = 1e5
    electronic_noise_variance: float | None = None
    num_views: int = 720
    filter_window: str = "hann"
    mu_water_per_cm: float = 0.195
    tube_current_modulation: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.dose_fraction <= 1:
            raise ValueError(f"dose_fraction must be in (0, 1], got {self.dose_fraction}")
        if not self.incident_photons > 0:
            raise ValueError(f"incident_photons must be > 0, got {self.incident_photons}")
        if self.electronic_noise_variance is not None and self.electronic_noise_variance < 0:
            raise ValueError(
                f"electronic_noise_variance must be >= 0, got {self.electronic_noise_variance}"
            )
        if self.filter_window not in RECONSTRUCTION_KERNELS:
            raise ValueError(
                f"filter_window must be one of {RECONSTRUCTION_KERNELS}, got {self.filter_window!r}"
            )
        if self.num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {self.num_views}")
        if not 0 <= self.tube_current_modulation <= 2:
            raise ValueError(
                f"tube_current_modulation must be in [0, 2], got {self.tube_current_modulation}"
            )

    @property
    def electronic_variance(self) -> float:
        if self.electronic_noise_variance is None:
            return default_electronic_noise_variance(self.incident_photons)
        return self.electronic_noise_variance

    def incident_per_view(self, projection: Projection) -> float | torch.Tensor:
        """I0 of each view `(B, V, 1)` with tube-current modulation, else the number."""
        if self.tube_current_modulation == 0:
            return self.incident_photons
        modulation = view_modulation(projection.line_integrals, self.tube_current_modulation)
        return self.incident_photons * modulation

    def describe(self) -> dict[str, Any]:
        """Every parameter, with the electronic noise variance resolved."""
        return {**asdict(self), "electronic_noise_variance": self.electronic_variance}

    def project(self, image_hu: torch.Tensor, pixel_spacing_mm: float) -> Projection:
        """Line integrals of `(..., H, W)` HU images (steps 1-2); cache and reuse."""
        if not pixel_spacing_mm > 0:
            raise ValueError(f"pixel_spacing_mm must be > 0, got {pixel_spacing_mm}")
        images = _as_batch(image_hu)
        projector = ParallelBeamProjector(images.shape[-2], images.shape[-1], self.num_views)
        mu = hu_to_attenuation(images, self.mu_water_per_cm)
        line_integrals = projector.forward(mu) * (pixel_spacing_mm / 10.0)
        return Projection(line_integrals, projector, pixel_spacing_mm)

    def noise(self, projection: Projection, generator: torch.Generator) -> torch.Tensor:
        """One draw of the added low-dose noise in HU, `(B, H, W)` (steps 3-4)."""
        variance = added_ray_variance(
            projection.line_integrals,
            self.dose_fraction,
            self.incident_per_view(projection),
            self.electronic_variance,
        )
        return reconstruct_ray_noise(
            variance, projection, self.filter_window, self.mu_water_per_cm, generator
        )

    def __call__(
        self, image_hu: torch.Tensor, pixel_spacing_mm: float, generator: torch.Generator
    ) -> torch.Tensor:
        """The low-dose image in HU, same shape as `image_hu` `(..., H, W)`."""
        if self.dose_fraction == 1:
            return image_hu.clone()
        projection = self.project(image_hu, pixel_spacing_mm)
        noise = self.noise(projection, generator)
        return image_hu + noise.reshape(image_hu.shape).to(image_hu.dtype)


def reconstruct_ray_noise(
    variance: torch.Tensor,
    projection: Projection,
    filter_window: str,
    mu_water_per_cm: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """FBP of Gaussian ray noise of the given variance (per one-pixel bin), converted to HU:
    `(B, H, W)`; on the kernel's finer bins when it has them (module doc, step 4)."""
    bins_per_pixel = kernel_bins_per_pixel(filter_window)
    projector = projection.projector.finer(bins_per_pixel)
    variance = projection.projector.resample_bins(variance, bins_per_pixel) * bins_per_pixel
    z = torch.randn(variance.shape, generator=generator, device=generator.device)
    ray_noise = z.to(variance.device) * variance.sqrt()
    # FBP in pixel units; dividing by the pixel size in cm gives attenuation in 1/cm.
    mu_noise = projector.fbp(ray_noise, filter_window) / (projection.pixel_spacing_mm / 10.0)
    return 1000.0 * mu_noise / mu_water_per_cm


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    if image.ndim < 2:
        raise ValueError(f"image must be (..., H, W), got shape {tuple(image.shape)}")
    return image.reshape(-1, image.shape[-2], image.shape[-1]).float()
