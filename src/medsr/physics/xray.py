"""Radiograph (CR/DX) degradation: detector blur, quantum and electronic noise, binning.

Image model. A projection radiograph, displayed MONOCHROME2 (bone bright, air dark;
MONOCHROME1 images are inverted by the reader), stores a value that is linear in the log of
the detected x-ray signal, i.e. linear in the attenuation line integral along each ray. With
the image normalised to `v = (x - lo) / (hi - lo)` in [0, 1] (`lo, hi` the stated
`value_range`, by default the image's own min and max), we take

    A(v) = k * v                   line integral (dimensionless), k = `attenuation_range`
    N(v) = I0 * exp(-k * v)        mean detected quanta per detector pixel (Beer-Lambert)

so `v = 0` (the darkest pixel, direct exposure) receives `I0` quanta and `v = 1` (the most
attenuating) `I0 * exp(-k)`. The detector then

    Nb = G_sigma * N               Gaussian detector blur (phosphor light spread), sigma in px
    Nd = I0 * box_s(Nb / I0)       pixel binning: a detector pixel covers s x s input pixels
    M  = Poisson(Nd) + N(0, se^2)  quantum noise + electronic (readout) noise, in quanta

and the value is read back through the same log transform, `v' = -ln(max(M, m0) / I0) / k`,
`x' = lo + v' (hi - lo)`, with `m0 = 0.5` quanta keeping the log finite. By the delta method
the noise SD of a uniform region at `v` is

    sd(v') = sqrt(N + se^2) / (k N)    (normalised units; times (hi - lo) in image units)

so noise is larger in bright (attenuating) regions and falls as 1/sqrt(I0) once quantum
noise dominates. The noise is white: the blur acts on the mean signal (a simplification; a real
phosphor also blurs part of the quantum noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from medsr.image import gaussian_blur
from medsr.physics.resize import crop_to_multiple, downsample

MIN_COUNTS = 0.5


def image_range(image: torch.Tensor) -> tuple[float, float]:
    """`(min, max)` of a non-constant image: the default `value_range` of the normalisation."""
    lo, hi = float(image.min()), float(image.max())
    if not hi > lo:
        raise ValueError(f"image is constant ({lo}); pass value_range=(lo, hi)")
    return lo, hi


@dataclass(frozen=True)
class RadiographDegradation:
    """Quantum + electronic noise and detector blur on a radiograph (model in the module doc).

    Args:
        incident_photons: I0, mean detected quanta per detector pixel where v = 0.
        electronic_noise_sd: SD of the readout noise, in quanta (counts) per detector pixel.
        blur_sigma_px: SD of the Gaussian detector blur, in input-image pixels (0: none).
        attenuation_range: k, the line integral at v = 1 (exp(-k) is the lowest transmission).
        value_range: `(lo, hi)` mapped to v = 0 and 1; None uses each image's min and max.
        scale: binning factor s; the output is `(..., H//s, W//s)` after cropping to
            multiples of s, and `incident_photons` counts quanta per output pixel.
    """

    incident_photons: float
    electronic_noise_sd: float = 0.0
    blur_sigma_px: float = 1.0
    attenuation_range: float = 4.0
    value_range: tuple[float, float] | None = None
    scale: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.incident_photons) and self.incident_photons > 0):
            raise ValueError(f"incident_photons must be > 0, got {self.incident_photons}")
        if not (math.isfinite(self.electronic_noise_sd) and self.electronic_noise_sd >= 0):
            raise ValueError(f"electronic_noise_sd must be >= 0, got {self.electronic_noise_sd}")
        if not (math.isfinite(self.blur_sigma_px) and self.blur_sigma_px >= 0):
            raise ValueError(f"blur_sigma_px must be >= 0, got {self.blur_sigma_px}")
        if not (math.isfinite(self.attenuation_range) and self.attenuation_range > 0):
            raise ValueError(f"attenuation_range must be > 0, got {self.attenuation_range}")
        if self.value_range is not None and not self.value_range[1] > self.value_range[0]:
            raise ValueError(f"value_range must be (lo, hi) with hi > lo, got {self.value_range}")
        if self.scale not in (1, 2, 3, 4, 8):
            raise ValueError(f"scale must be one of (1, 2, 3, 4, 8), got {self.scale}")

    def range_of(self, image: torch.Tensor) -> tuple[float, float]:
        """The `(lo, hi)` that maps `image` to [0, 1]: `value_range` or its min and max."""
        if self.value_range is not None:
            return float(self.value_range[0]), float(self.value_range[1])
        return image_range(image)

    def mean_counts(self, image: torch.Tensor) -> torch.Tensor:
        """Noise-free detected quanta `Nd` per detector pixel, `(..., H//s, W//s)`, float64."""
        lo, hi = self.range_of(image)
        v = (image.double() - lo) / (hi - lo)
        transmission = gaussian_blur(torch.exp(-self.attenuation_range * v), self.blur_sigma_px)
        if self.scale > 1:
            transmission = downsample(transmission, self.scale, "area")
        return self.incident_photons * transmission

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Degraded radiograph, same unit as `image`; `(..., H, W)` -> `(..., H//s, W//s)`."""
        lo, hi = self.range_of(image)
        counts = self.mean_counts(image)
        measured = torch.poisson(counts, generator=generator)
        if self.electronic_noise_sd > 0:
            noise = torch.randn(counts.shape, generator=generator, dtype=counts.dtype)
            measured = measured + self.electronic_noise_sd * noise.to(counts.device)
        v = -torch.log(measured.clamp_min(MIN_COUNTS) / self.incident_photons)
        v = v / self.attenuation_range
        dtype = image.dtype if image.is_floating_point() else torch.float32
        return (lo + v * (hi - lo)).to(dtype)

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """The high-resolution image that matches the output grid (crop to multiples of s)."""
        return crop_to_multiple(image, self.scale) if self.scale > 1 else image

    def predicted_sd(self, v: float | torch.Tensor) -> torch.Tensor:
        """Noise SD (normalised units) of a uniform region at normalised value(s) `v`."""
        counts = self.incident_photons * torch.exp(
            -self.attenuation_range * torch.as_tensor(v, dtype=torch.float64)
        )
        return torch.sqrt(counts + self.electronic_noise_sd**2) / (self.attenuation_range * counts)

    def describe(self) -> dict[str, Any]:
        return {
            "noise_model": "radiograph-poisson-gaussian",
            "incident_photons": self.incident_photons,
            "electronic_noise_sd": self.electronic_noise_sd,
            "blur_sigma_px": self.blur_sigma_px,
            "attenuation_range": self.attenuation_range,
            "value_range": self.value_range,
            "binning": self.scale,
        }
