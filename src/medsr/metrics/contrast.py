"""How much of a reference image's fine, low-contrast structure an output keeps.

A denoiser can lower the noise by flattening structure that is not much brighter than the
noise (a kidney's cortex against its medulla, liver vessels): PSNR counts both in one number.
`contrast_retention` isolates the structure: both images are band-passed with a difference of
Gaussians (DoG), and the output's band is regressed on the reference's inside a soft-tissue
mask:

    retention = <B(output), B(reference)> / <B(reference), B(reference)>,
    B(x) = G_{s1} * x - G_{s2} * x

Noise in the output that is uncorrelated with the reference adds to <B(output), B(output)>,
not to the numerator, so it leaves the retention unbiased: the quarter dose of a full-dose
scan keeps ~1, a blur of it less (a Gaussian of SD 1 px keeps ~0.78 of the 1-3 px band of
real B30f CT). The reference's own noise in the band counts as its content: for pairs made by
projection-domain noise insertion (the AAPM/Mayo quarter doses) the input shares it, so a
denoiser that keeps it is rewarded, as PSNR rewards it.

Images are 2-D numpy arrays in one unit (HU for CT).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


class NothingToMeasure(ValueError):
    """The mask holds no pixel, or the reference no structure in the band, to measure the
    contrast in: the measure is undefined (not a caller's mistake, unlike a shape mismatch)."""


def soft_tissue_mask(
    image_hu: np.ndarray,
    hu_range: tuple[float, float] = (-100.0, 200.0),
    smoothing_sigma: float = 4.0,
    margin: int = 8,
) -> np.ndarray:
    """Pixels whose neighbourhood is soft tissue: the image smoothed by a Gaussian of
    `smoothing_sigma` pixels lies within `hu_range`, eroded by `margin` pixels (away from fat,
    air and bone edges, whose contrast would dominate the band)."""
    image = np.asarray(image_hu, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    smooth = ndimage.gaussian_filter(image, smoothing_sigma)
    mask = (smooth > hu_range[0]) & (smooth < hu_range[1])
    return ndimage.binary_erosion(mask, iterations=margin) if margin > 0 else mask


def band_pass(image: np.ndarray, sigmas: tuple[float, float]) -> np.ndarray:
    """The difference of Gaussians `G_{s1} * image - G_{s2} * image`, `s1 < s2` pixels."""
    fine, coarse = sigmas
    if not 0 < fine < coarse:
        raise ValueError(f"sigmas must be 0 < s1 < s2, got {sigmas}")
    x = np.asarray(image, dtype=np.float64)
    return ndimage.gaussian_filter(x, fine) - ndimage.gaussian_filter(x, coarse)


def contrast_retention(
    output: np.ndarray,
    reference: np.ndarray,
    mask: np.ndarray,
    sigmas: tuple[float, float] = (1.0, 3.0),
) -> float:
    """The share of `reference`'s band-passed structure (`band_pass` with `sigmas`) that
    `output` keeps inside `mask` (the module doc): 1 kept, < 1 flattened, > 1 exaggerated."""
    if output.shape != reference.shape or mask.shape != reference.shape:
        raise ValueError(
            f"output {output.shape}, reference {reference.shape} and mask {mask.shape} "
            "must have one shape"
        )
    if not mask.any():
        raise NothingToMeasure("mask is empty: no pixel to measure the contrast in")
    kept = band_pass(output, sigmas)[mask]
    wanted = band_pass(reference, sigmas)[mask]
    power = float(np.dot(wanted, wanted))
    if power == 0:
        raise NothingToMeasure("the reference has no structure in this band inside the mask")
    return float(np.dot(kept, wanted) / power)
