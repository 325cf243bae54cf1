"""Image-domain noise: the legacy low-dose model of older SRGAN CT projects.

This noise is white (independent per pixel) and, through the Poisson term, tracks the pixel
values, so it outlines anatomy. Real low-dose CT noise is correlated and streaky: use
`medsr.physics.ct.LowDoseCT` (projection-domain noise insertion) for realistic pairs, and this
module only to reproduce or compare with those projects (see PHYSICS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch


def white_noise_like(image: torch.Tensor, sd: float, generator: torch.Generator) -> torch.Tensor:
    """White Gaussian noise with the shape, dtype and device of `image` and SD `sd`.

    Returns only the noise (same unit as `sd`), e.g. to add to a CT image as a white-noise
    control with the same SD as a projection-domain low-dose simulation.
    """
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be finite and >= 0, got {sd}")
    dtype = image.dtype if image.is_floating_point() else torch.float32
    noise = torch.randn(image.shape, generator=generator, dtype=dtype, device=image.device)
    return noise * sd


@dataclass(frozen=True)
class ImageDomainNoise:
    """Poisson noise on shifted pixel values plus white Gaussian noise, in the image's unit.

        counts = poisson_scale * max(x + offset, 0)
        y      = Poisson(counts) / poisson_scale - offset + N(0, gaussian_sd^2)

    so `Var(y | x) = max(x + offset, 0) / poisson_scale + gaussian_sd^2` (unit^2).

    Args:
        gaussian_sd: SD of the additive white Gaussian noise, in the image's unit (HU for CT).
        poisson_scale: counts per image unit (e.g. 20 counts/HU); None leaves out the Poisson
            term. Larger means less Poisson noise.
        offset: added before the Poisson draw so values are non-negative (1024 maps -1024 HU,
            air, to 0 counts). None shifts each image by its own minimum, which is what
            min-max normalising projects did.
    """

    gaussian_sd: float
    poisson_scale: float | None = None
    offset: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gaussian_sd) and self.gaussian_sd >= 0):
            raise ValueError(f"gaussian_sd must be finite and >= 0, got {self.gaussian_sd}")
        if self.poisson_scale is not None and not (
            math.isfinite(self.poisson_scale) and self.poisson_scale > 0
        ):
            raise ValueError(f"poisson_scale must be > 0 or None, got {self.poisson_scale}")
        if self.offset is not None and not math.isfinite(self.offset):
            raise ValueError(f"offset must be finite or None, got {self.offset}")

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Noisy copy of `image` (any shape, image unit); the input is not modified."""
        x = image if image.is_floating_point() else image.float()
        out = x
        if self.poisson_scale is not None:
            offset = -float(x.min()) if self.offset is None else self.offset
            # Poisson draws are done in float64: float32 rates lose integer precision at 2^24.
            counts = ((x.double() + offset).clamp_min(0.0)) * self.poisson_scale
            drawn = torch.poisson(counts, generator=generator)
            out = (drawn / self.poisson_scale - offset).to(x.dtype)
        if self.gaussian_sd > 0:
            out = out + white_noise_like(x, self.gaussian_sd, generator)
        return out

    def variance(self, value: torch.Tensor | float) -> torch.Tensor:
        """Expected noise variance (unit^2) at pixel value(s) `value`; needs a fixed offset."""
        v = torch.as_tensor(value, dtype=torch.float64)
        var = torch.full_like(v, self.gaussian_sd**2)
        if self.poisson_scale is not None:
            if self.offset is None:
                raise ValueError("variance() needs a fixed offset, got offset=None")
            var = var + (v + self.offset).clamp_min(0.0) / self.poisson_scale
        return var

    def describe(self) -> dict[str, Any]:
        return {
            "noise_model": "image-domain",
            "gaussian_sd": self.gaussian_sd,
            "poisson_scale": self.poisson_scale,
            "offset": self.offset,
        }
