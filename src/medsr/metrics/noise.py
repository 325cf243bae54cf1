"""Noise in CT images: uniform regions, noise SD and the noise power spectrum (NPS).

Noise is measured in square regions of interest (ROIs) that hold one tissue: each ROI is
detrended with a least-squares plane (removing slow anatomy and cupping) before its SD or
spectrum is taken. ROIs are chosen on a smoothed copy of the image, so the choice depends
on anatomy, not on the noise being measured (choosing the quietest ROIs directly would bias
the SD low).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Roi:
    """A square region: rows `row:row+size`, columns `column:column+size`."""

    row: int
    column: int
    size: int

    def take(self, image: np.ndarray) -> np.ndarray:
        return image[self.row : self.row + self.size, self.column : self.column + self.size]


def find_uniform_rois(
    image_hu: np.ndarray,
    size: int = 24,
    hu_range: tuple[float, float] = (-100.0, 150.0),
    max_rois: int = 12,
    smoothing_sigma: float = 2.0,
) -> list[Roi]:
    """Non-overlapping ROIs of `size` pixels inside one soft tissue, most uniform first.

    A candidate must lie entirely within `hu_range` on the smoothed image; candidates are
    ranked by the detrended SD of the smoothed image (anatomical structure, not noise).
    Raises ValueError when none qualifies.
    """
    image = np.asarray(image_hu, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    smooth = ndimage.gaussian_filter(image, smoothing_sigma)
    low, high = hu_range
    candidates: list[tuple[float, Roi]] = []
    for row in range(0, image.shape[0] - size + 1, size):
        for column in range(0, image.shape[1] - size + 1, size):
            roi = Roi(row, column, size)
            block = roi.take(smooth)
            if block.min() < low or block.max() > high:
                continue
            candidates.append((float(detrend(block).std()), roi))
    if not candidates:
        raise ValueError(
            f"no {size}x{size} region of the image lies within {hu_range} HU; "
            "pass rois explicitly or a smaller size"
        )
    candidates.sort(key=lambda item: item[0])
    return [roi for _, roi in candidates[:max_rois]]


def detrend(block: np.ndarray) -> np.ndarray:
    """Subtract the least-squares plane `a + b*row + c*column` from a 2-D block."""
    rows, columns = np.indices(block.shape)
    design = np.stack((np.ones(block.size), rows.ravel(), columns.ravel()), axis=1)
    coefficients, *_ = np.linalg.lstsq(design, block.ravel(), rcond=None)
    return block - (design @ coefficients).reshape(block.shape)


def noise_sd(image: np.ndarray, rois: list[Roi]) -> float:
    """Pooled SD of the detrended ROIs (sqrt of the mean variance), in the image's unit."""
    variances = [detrend(roi.take(np.asarray(image, dtype=np.float64))).var() for roi in rois]
    if not variances:
        raise ValueError("noise_sd needs at least one ROI")
    # The plane removes 3 degrees of freedom from each ROI.
    size = rois[0].size
    correction = size * size / (size * size - 3)
    return float(np.sqrt(np.mean(variances) * correction))


def noise_power_spectrum(image: np.ndarray, rois: list[Roi]) -> np.ndarray:
    """2-D NPS averaged over ROIs, `(size, size)`, fftshift'ed, in unit^2 * pixel^2.

    NPS(f) = |FFT(detrended ROI)|^2 / (size^2), the pixel-unit form of the IEC definition.
    """
    if not rois:
        raise ValueError("noise_power_spectrum needs at least one ROI")
    image = np.asarray(image, dtype=np.float64)
    spectra = [np.abs(np.fft.fft2(detrend(roi.take(image)))) ** 2 for roi in rois]
    size = rois[0].size
    return np.fft.fftshift(np.mean(spectra, axis=0) / (size * size))


def radial_frequencies(size: int) -> np.ndarray:
    """Radial frequency in cycles per pixel of each bin of a fftshift'ed `size^2` spectrum."""
    frequency = np.fft.fftshift(np.fft.fftfreq(size))
    return np.hypot(*np.meshgrid(frequency, frequency, indexing="ij"))


def mean_nps_frequency(image: np.ndarray, rois: list[Roi]) -> float:
    """The NPS-weighted mean radial frequency, cycles per pixel.

    White noise in a square ROI gives ~0.38; real CT noise, correlated by the reconstruction
    kernel, ~0.2-0.3 (PHYSICS.md).
    """
    spectrum = noise_power_spectrum(image, rois)
    radius = radial_frequencies(spectrum.shape[0])
    return float((spectrum * radius).sum() / spectrum.sum())


def radial_nps(image: np.ndarray, rois: list[Roi], bins: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged NPS: `(frequencies, values)` with `bins` bins up to 0.5 cycles/pixel."""
    spectrum = noise_power_spectrum(image, rois)
    radius = radial_frequencies(spectrum.shape[0])
    edges = np.linspace(0.0, 0.5, bins + 1)
    index = np.digitize(radius.ravel(), edges) - 1
    valid = (index >= 0) & (index < bins)
    totals = np.bincount(index[valid], weights=spectrum.ravel()[valid], minlength=bins)
    counts = np.bincount(index[valid], minlength=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    return centres, totals / np.maximum(counts, 1)


def axis_power_ratio(image: np.ndarray, rois: list[Roi], min_frequency: float = 0.15) -> float:
    """Noise streakiness: the NPS near the vertical frequency axis (|f_y| > 2 |f_x|) over
    that near the horizontal one (|f_x| > 2 |f_y|), above `min_frequency` cycles/pixel.
    1 for isotropic noise; CT noise of a wide body at a constant tube current is > 1 (its
    streaks run along the long axis), and angular tube-current modulation brings it to ~1."""
    spectrum = noise_power_spectrum(image, rois)
    frequency = np.fft.fftshift(np.fft.fftfreq(spectrum.shape[0]))
    fy, fx = np.meshgrid(frequency, frequency, indexing="ij")
    high = np.hypot(fx, fy) > min_frequency
    vertical = high & (np.abs(fy) > 2 * np.abs(fx))
    horizontal = high & (np.abs(fx) > 2 * np.abs(fy))
    return float(spectrum[vertical].mean() / spectrum[horizontal].mean())


def mad_noise_sd(image: np.ndarray) -> float:
    """Noise SD from the median absolute deviation of the diagonal Haar detail, `/ 0.6745`.

    For white noise of SD s the detail `(a - b - c + d) / 2` of each 2x2 block has SD s.
    Structure inflates it a little; it is robust to edges, unlike a plain SD.
    """
    x = np.asarray(image, dtype=np.float64)
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    if h == 0 or w == 0:
        raise ValueError(f"image must be at least 2x2, got {x.shape}")
    x = x[:h, :w]
    detail = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2
    return float(np.median(np.abs(detail - np.median(detail))) / 0.6745)


TYPICAL_CT_NOISE_FREQUENCY = 0.3
"""NPS mean frequency (cycles/pixel) `estimate_noise` gives an image without uniform ROIs:
between a smooth body kernel's (~0.22, real B30f) and a sharp one's (~0.36, real D45f)."""


@dataclass(frozen=True)
class NoiseEstimate:
    """An image's noise: SD in its unit, NPS mean frequency (cycles/pixel) and how both were
    measured."""

    sd: float
    mean_frequency: float
    how: str


def estimate_noise(image: np.ndarray, modality: str) -> NoiseEstimate:
    """The noise SD and texture of `image`.

    CT: the pooled SD and the NPS mean frequency of its uniform soft-tissue ROIs (the largest
    ROI size that finds any); otherwise (no ROI, or not CT) `mad_noise_sd` and
    `TYPICAL_CT_NOISE_FREQUENCY`. Used by the classical denoisers' noise level and by the
    noise inputs of non-blind models (`medsr.inference`, `medsr.data.noise_bank`).
    """
    if modality == "CT":
        for size in (24, 16, 12):
            try:
                rois = find_uniform_rois(image, size=size)
            except ValueError:
                continue
            how = f"{len(rois)} uniform ROIs of {size} px"
            return NoiseEstimate(noise_sd(image, rois), mean_nps_frequency(image, rois), how)
    how = "MAD of the diagonal Haar detail"
    return NoiseEstimate(mad_noise_sd(image), TYPICAL_CT_NOISE_FREQUENCY, how)


def estimate_noise_sd(image: np.ndarray, modality: str) -> tuple[float, str]:
    """`(sd, how)`: the noise SD of `image` in its unit, and how it was estimated
    (`estimate_noise`)."""
    estimate = estimate_noise(image, modality)
    return estimate.sd, estimate.how
