"""2-D PET acquisition and OSEM reconstruction on a coarse grid, parallel-beam sinograms.

Data model (expected prompts per sinogram bin, `(V, D)`):

    ybar = eta * a * R(PSF * x) + r,     a = exp(-R mu511)

`x` activity (SUV), `R` the parallel-beam projector with line integrals in units of the
coarse pixel (`ParallelBeamProjector`), PSF a Gaussian, `mu511` in 1/cm (`R mu511` times the
pixel size in cm), `eta` the efficiency (counts per SUV x pixel of line integral) that sets
the total counts, `r` randoms + scatter. `simulate_trues` evaluates `a * R(PSF * x)` on a grid
`oversample` times finer than the reconstruction, with an `oversample`-times finer detector
whose bins are then summed, so data and reconstruction use different discretisations.

OSEM (Hudson & Larkin 1994) with `S` subsets of interleaved views:

    x <- x / (A_s^T 1) * A_s^T (y_s / (A_s x + r_s)),   A = eta * diag(a) * R * PSF

models attenuation, PSF and the additive randoms/scatter. With the true `eta` the image is in
SUV: `eta` is the calibration factor.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from medsr.image import gaussian_kernel1d
from medsr.physics.projector import ParallelBeamProjector
from medsr.physics.resize import downsample

FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))  # 2.355


def blur_fwhm(image: torch.Tensor, fwhm_mm: float, pixel_mm: float) -> torch.Tensor:
    """Gaussian blur of `(..., H, W)` with FWHM in mm, zero padding (a symmetric operator,
    so it is its own adjoint, as OSEM needs for the PSF)."""
    if fwhm_mm < 0:
        raise ValueError(f"fwhm_mm must be >= 0, got {fwhm_mm}")
    if fwhm_mm == 0:
        return image
    kernel = gaussian_kernel1d(fwhm_mm / FWHM_PER_SIGMA / pixel_mm, image.dtype)
    radius = kernel.numel() // 2
    shape = image.shape
    x = image.reshape(-1, 1, *shape[-2:])
    x = F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, radius))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    return x.reshape(shape)


def simulate_trues(
    activity: torch.Tensor,
    mu511_per_cm: torch.Tensor,
    spacing_mm: float,
    grid_factor: int,
    oversample: int,
    num_views: int,
    psf_fwhm_mm: float,
) -> torch.Tensor:
    """`a * R(PSF * x)` on the coarse detector, `(V, D)`, in SUV x coarse pixel.

    `activity` and `mu511_per_cm` are `(H, W)` on the CT grid (H, W multiples of
    `grid_factor`); the PSF is applied there, both are area-downsampled to a grid
    `grid_factor / oversample` coarser, projected with a detector of `oversample * D` bins
    (`D` that of the coarse grid) and the bins summed in groups of `oversample`.
    """
    if grid_factor % oversample:
        raise ValueError(f"oversample {oversample} must divide grid_factor {grid_factor}")
    height, width = activity.shape[-2] // grid_factor, activity.shape[-1] // grid_factor
    bins = ParallelBeamProjector(height, width, 1).num_bins
    step = grid_factor // oversample
    images = torch.stack((blur_fwhm(activity.float(), psf_fwhm_mm, spacing_mm), mu511_per_cm))
    if step > 1:
        images = downsample(images, step, "area")
    fine = ParallelBeamProjector(height * oversample, width * oversample, num_views)
    fine.num_bins = bins * oversample  # aligns `oversample` fine bins with each coarse bin
    emission, attenuation = fine.forward(images)
    trues = emission * torch.exp(-attenuation * (spacing_mm * step / 10.0))
    # Fine bins are in fine pixels (x oversample) and there are oversample of them per bin.
    return trues.view(num_views, bins, oversample).sum(-1) / oversample**2


def background_shape(
    trues: torch.Tensor, pixel_mm: float, scatter_share: float = 0.5
) -> torch.Tensor:
    """Randoms + scatter distribution over the sinogram, summing to 1.

    `1 - scatter_share` uniform over all bins (randoms), `scatter_share` the trues blurred
    along the detector by a Gaussian of SD 50 mm (a broad scatter tail).
    """
    sigma_bins = 50.0 / pixel_mm
    kernel = gaussian_kernel1d(sigma_bins, trues.dtype)
    radius = kernel.numel() // 2
    smooth = F.conv1d(trues[:, None], kernel.view(1, 1, -1), padding=radius)[:, 0]
    uniform = torch.full_like(trues, 1.0 / trues.numel())
    return (1 - scatter_share) * uniform + scatter_share * smooth / smooth.sum().clamp(min=1e-12)


class SubsetProjector:
    """`ParallelBeamProjector`'s forward and back-projection for a fixed set of view angles,
    with the sampling grids computed once: OSEM calls both twice per sub-iteration."""

    def __init__(self, height: int, width: int, angles: torch.Tensor) -> None:
        reference = ParallelBeamProjector(height, width, 1)
        bins = reference.num_bins
        position = torch.arange(bins, dtype=torch.float32) - (bins - 1) / 2
        cos = torch.cos(angles).float().view(-1, 1, 1)
        sin = torch.sin(angles).float().view(-1, 1, 1)
        t, s = position.view(1, 1, -1), position.view(1, -1, 1)
        x, y = t * cos - s * sin, t * sin + s * cos  # (V, S, D) ray samples, as in forward
        half_w, half_h = (width - 1) / 2, (height - 1) / 2
        self.forward_grid = torch.stack((x / half_w, y / half_h), -1).reshape(1, -1, bins, 2)
        col = (torch.arange(width, dtype=torch.float32) - half_w).view(1, 1, -1)
        row = (torch.arange(height, dtype=torch.float32) - half_h).view(1, -1, 1)
        bin_of_pixel = (col * cos + row * sin) / ((bins - 1) / 2)  # (V, H, W)
        self.back_grid = torch.stack((bin_of_pixel, torch.zeros_like(bin_of_pixel)), -1)
        self.num_views, self.num_bins = len(angles), bins

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Line integrals `(h, w) -> (V, D)` in pixel units."""
        samples = F.grid_sample(
            image[None, None].float(),
            self.forward_grid,
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
        return samples.view(self.num_views, -1, self.num_bins).sum(1)

    def backproject(self, sinogram: torch.Tensor) -> torch.Tensor:
        """Linear-interpolation back-projection `(V, D) -> (h, w)`."""
        source = sinogram.float().view(self.num_views, 1, 1, self.num_bins)
        smeared = F.grid_sample(
            source, self.back_grid, mode="bilinear", padding_mode="zeros", align_corners=True
        )
        return smeared.sum(0)[0]


@functools.lru_cache(maxsize=4)
def subset_projectors(
    height: int, width: int, num_views: int, subsets: int
) -> tuple[list[torch.Tensor], list[SubsetProjector]]:
    """Views of each subset (`s, s + S, ...`) and their projectors, cached per geometry
    (training draws many slices of one size)."""
    angles = ParallelBeamProjector(height, width, num_views).angles
    views = [torch.arange(s, num_views, subsets) for s in range(subsets)]
    return views, [SubsetProjector(height, width, angles[v]) for v in views]


class PetSystem:
    """`A x = eta * a * R(PSF * x)` on a coarse `(h, w)` grid, split into subsets.

    Args:
        mu511_per_cm: `(h, w)` attenuation at 511 keV on the reconstruction grid.
        pixel_mm: reconstruction pixel size.
        num_views: projection angles over 180 degrees (a multiple of `subsets`).
        subsets: OSEM subsets; subset `s` holds views `s, s + S, s + 2S, ...`.
        psf_fwhm_mm: Gaussian PSF modelled in the system matrix.
        efficiency: eta, counts per (SUV x pixel) of attenuated line integral.
    """

    def __init__(
        self,
        mu511_per_cm: torch.Tensor,
        pixel_mm: float,
        num_views: int,
        subsets: int,
        psf_fwhm_mm: float,
        efficiency: float,
    ) -> None:
        if subsets < 1 or num_views % subsets:
            raise ValueError(f"num_views {num_views} must be a multiple of subsets {subsets}")
        height, width = mu511_per_cm.shape
        self.pixel_mm = pixel_mm
        self.psf_fwhm_mm = psf_fwhm_mm
        self.efficiency = efficiency
        self.views, self.projectors = subset_projectors(height, width, num_views, subsets)
        self.weights = [  # eta * a per subset, a = exp(-R mu * pixel in cm)
            efficiency * torch.exp(-p.forward(mu511_per_cm) * pixel_mm / 10)
            for p in self.projectors
        ]
        self.sensitivity = [self.back(s, w) for s, w in enumerate(self.weights)]

    def psf(self, image: torch.Tensor) -> torch.Tensor:
        return blur_fwhm(image, self.psf_fwhm_mm, self.pixel_mm)

    def forward(self, subset: int, image: torch.Tensor) -> torch.Tensor:
        """`A_s x`: expected trues of subset `s`, `(V/S, D)`."""
        return self.weights[subset] * self.projectors[subset].forward(self.psf(image))

    def back(self, subset: int, sinogram: torch.Tensor) -> torch.Tensor:
        """`PSF R_s^T (eta a_s v)` up to the weights already in `sinogram`: `(h, w)`."""
        return self.psf(self.projectors[subset].backproject(sinogram))

    def expected(self, image: torch.Tensor) -> torch.Tensor:
        """`A x` over all views, in the order of the full projector's views `(V, D)`."""
        out = torch.empty(sum(len(v) for v in self.views), self.weights[0].shape[-1])
        for subset, views in enumerate(self.views):
            out[views] = self.forward(subset, image)
        return out

    def osem(
        self, prompts: torch.Tensor, background: torch.Tensor, iterations: int
    ) -> torch.Tensor:
        """OSEM image `(h, w)` in SUV from prompts `(V, D)` and the expected background."""
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        height, width = self.sensitivity[0].shape
        ones = torch.ones(height, width)
        trues = (prompts.sum() - background.sum()).clamp(min=1.0)
        image = ones * trues / self.expected(ones).sum()  # uniform start with the right counts
        for _ in range(iterations):
            for subset, views in enumerate(self.views):
                ratio = prompts[views] / (self.forward(subset, image) + background[views])
                update = self.back(subset, self.weights[subset] * ratio)
                sensitivity = self.sensitivity[subset]
                image = image * update / sensitivity.clamp(min=1e-6 * float(sensitivity.max()))
        return image
