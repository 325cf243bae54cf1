"""Fit the low-dose simulator to a real image: FBP window from the noise texture, I0 from its SD.

PHYSICS.md step 5: measure the real noise SD in uniform ROIs, simulate the normal-dose noise
at a trial I0, rescale I0 = I0_trial * (sd_sim / sd_real)^2 (noise variance is proportional
to 1/I0); choose the FBP window whose noise power spectrum matches the real noise best,
judged by the NPS-weighted mean frequency.

Two ways to measure the real noise (`CALIBRATION_METHODS`):
- `roi-sd` (the default): the pooled SD of the uniform ROIs. Anatomy left in the ROIs (the
  fat marbling of muscle, liver vessels) counts as noise, which matters for smooth kernels:
  on the L143 B30f slices of the shoulders and pelvis it overstates the noise by 37-87 %.
- `nps-band`: the noise power of the ROIs in the band of frequencies that holds the upper
  third of the simulated noise's power (above ~0.32 cycles/pixel for B30f, ~0.47 for D45f),
  scaled to a SD by the simulated noise's NPS shape. Anatomy has little power there, so the
  estimate follows the noise: on the 11 L143 slices the simulated 25 % dose SD lands within
  -11 to +14 % of the real one per slice, -3 % (D45f) and +3 % (B30f) per kernel, where
  `roi-sd` gives +3 % and +36 % (`benchmarks/ct_noise.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from medsr.metrics.noise import (
    Roi,
    find_uniform_rois,
    mean_nps_frequency,
    noise_power_spectrum,
    noise_sd,
    radial_frequencies,
)
from medsr.physics.ct import (
    LowDoseCT,
    Projection,
    default_electronic_noise_variance,
    normal_dose_ray_variance,
    reconstruct_ray_noise,
)
from medsr.physics.projector import FILTER_WINDOWS

CALIBRATION_METHODS = ("roi-sd", "nps-band")
# The band of `nps-band`: where the simulated noise has this share of its power, at the top.
_BAND_POWER_SHARE = 1 / 3


@dataclass(frozen=True)
class WindowFit:
    """The simulated normal-dose noise at the trial I0 for one FBP window."""

    noise_sd: float
    mean_nps_frequency: float


@dataclass(frozen=True)
class CalibrationResult:
    """Calibrated parameters and the measurements behind them (HU, cycles/pixel)."""

    incident_photons: float
    filter_window: str
    real_noise_sd: float
    real_mean_nps_frequency: float
    simulated_mean_nps_frequency: float
    rois: list[Roi]
    per_window: dict[str, WindowFit] = field(default_factory=dict)
    method: str = "roi-sd"
    projection: Projection | None = field(default=None, repr=False, compare=False)

    def simulator(self, dose_fraction: float, **overrides: object) -> LowDoseCT:
        """A `LowDoseCT` at `dose_fraction` with the calibrated I0 and window."""
        settings: dict[str, object] = {
            "incident_photons": self.incident_photons,
            "filter_window": self.filter_window,
            **overrides,
        }
        return LowDoseCT(dose_fraction=dose_fraction, **settings)  # type: ignore[arg-type]


def simulate_normal_dose_noise(
    simulator: LowDoseCT, projection: Projection, generator: torch.Generator
) -> torch.Tensor:
    """One draw of noise with the normal-dose scan's own statistics, in HU `(B, H, W)`."""
    variance = normal_dose_ray_variance(
        projection.line_integrals,
        simulator.incident_per_view(projection),
        simulator.electronic_variance,
    )
    return reconstruct_ray_noise(
        variance, projection, simulator.filter_window, simulator.mu_water_per_cm, generator
    )


def calibrate_incident_photons(
    image_hu: torch.Tensor,
    pixel_spacing_mm: float,
    rois: list[Roi] | None = None,
    windows: tuple[str, ...] = FILTER_WINDOWS,
    num_views: int = 720,
    mu_water_per_cm: float = 0.195,
    trial_photons: float = 1e5,
    seed: int = 0,
    projection: Projection | None = None,
    method: str = "roi-sd",
) -> CalibrationResult:
    """Calibrate I0 and the FBP window on one real `(H, W)` HU image.

    `method` measures the real noise (module doc): `roi-sd` its ROI SD, `nps-band` the ROI
    noise power where the simulated noise of the chosen window has its upper third of power
    (then `real_noise_sd` is that estimate).

    The electronic noise variance follows I0 (`default_electronic_noise_variance`), which
    keeps the noise variance exactly proportional to 1/I0, so one rescaling suffices.
    Pass `projection` (of the same image, same `num_views`) to skip projecting again.
    Raises ValueError when the image has no uniform soft-tissue region to measure.
    """
    if image_hu.ndim != 2:
        raise ValueError(f"image_hu must be (H, W), got shape {tuple(image_hu.shape)}")
    if not windows:
        raise ValueError("windows must name at least one FBP window")
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {method!r}")
    image = image_hu.detach().cpu().numpy()
    rois = rois or _largest_uniform_rois(image)
    real_sd = noise_sd(image, rois)
    if not real_sd > 0:
        raise ValueError("the image has no noise in its uniform regions to calibrate I0 on")
    real_frequency = mean_nps_frequency(image, rois)

    base = LowDoseCT(
        incident_photons=trial_photons, num_views=num_views, mu_water_per_cm=mu_water_per_cm
    )
    if projection is None or projection.projector.num_views != num_views:
        projection = base.project(image_hu, pixel_spacing_mm)
    per_window: dict[str, WindowFit] = {}
    band_sd: dict[str, float] = {}
    for window in windows:
        simulator = LowDoseCT(
            incident_photons=trial_photons,
            electronic_noise_variance=default_electronic_noise_variance(trial_photons),
            num_views=num_views,
            filter_window=window,
            mu_water_per_cm=mu_water_per_cm,
        )
        generator = torch.Generator().manual_seed(seed)
        noise = simulate_normal_dose_noise(simulator, projection, generator)[0].numpy()
        per_window[window] = WindowFit(noise_sd(noise, rois), mean_nps_frequency(noise, rois))
        if method == "nps-band":
            band_sd[window] = band_noise_sd(image, noise, rois)

    best = min(windows, key=lambda w: abs(per_window[w].mean_nps_frequency - real_frequency))
    fit = per_window[best]
    if method == "nps-band":
        real_sd = band_sd[best]
    return CalibrationResult(
        incident_photons=float(trial_photons * (fit.noise_sd / real_sd) ** 2),
        filter_window=best,
        real_noise_sd=real_sd,
        real_mean_nps_frequency=real_frequency,
        simulated_mean_nps_frequency=fit.mean_nps_frequency,
        rois=rois,
        per_window=per_window,
        method=method,
        projection=projection,
    )


def band_noise_sd(
    image: np.ndarray, noise: np.ndarray, rois: list[Roi], share: float = _BAND_POWER_SHARE
) -> float:
    """The noise SD of `image` in `rois`, measured where `noise` (a simulated draw of the
    same kernel) has the top `share` of its power, and scaled by that noise's NPS shape:
    `sd(noise) * sqrt(P_image(band) / P_noise(band))` (the `nps-band` method)."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    image_power = noise_power_spectrum(image, rois)
    noise_power = noise_power_spectrum(noise, rois)
    radius = radial_frequencies(noise_power.shape[0]).ravel()
    order = np.argsort(radius, kind="stable")
    cumulative = np.cumsum(noise_power.ravel()[order]) / noise_power.sum()
    low = radius[order][min(int(np.searchsorted(cumulative, 1 - share)), radius.size - 1)]
    band = radius >= low
    ratio = image_power.ravel()[band].sum() / noise_power.ravel()[band].sum()
    return float(noise_sd(noise, rois) * np.sqrt(ratio))


def _largest_uniform_rois(image: np.ndarray) -> list[Roi]:
    """Uniform ROIs of 24 pixels, or smaller ones for small images (at least 12)."""
    for size in (24, 16, 12):
        try:
            return find_uniform_rois(image, size=size)
        except ValueError:
            continue
    return find_uniform_rois(image, size=12)  # raises with the explanation


def low_dose_noise_sd(
    calibration: CalibrationResult, image_hu: torch.Tensor, dose_fraction: float, seed: int = 1
) -> float:
    """Total noise SD (real + added) in the calibration ROIs of one simulated low-dose image.

    Reuses the calibration's cached projection of `image_hu`, the image it was fitted on.
    """
    if calibration.projection is None:
        raise ValueError("the calibration holds no projection of the image")
    simulator = calibration.simulator(dose_fraction)
    noise = simulator.noise(calibration.projection, torch.Generator().manual_seed(seed))[0]
    low = image_hu.detach().cpu() + noise.cpu()
    return noise_sd(np.asarray(low.numpy()), calibration.rois)
