"""PHYSICS.md's targets on real CT: calibrated low-dose noise SD and texture.

Real normal-dose noise is measured in uniform ROIs of each image; the simulator is calibrated
on it; the simulated low-dose image must then have SD/sqrt(dose) in the same ROIs (within
10 %), and the inserted noise must have the real noise's texture (mean NPS frequency within
0.05 cycles/pixel), which white image-domain noise of the same SD does not.
"""

from __future__ import annotations

import math

import pytest
import torch

from medsr.io.samples import load_sample
from medsr.metrics.noise import mean_nps_frequency
from medsr.physics.ct_calibration import (
    CalibrationResult,
    calibrate_incident_photons,
    low_dose_noise_sd,
)
from medsr.physics.noise import white_noise_like

CASES = {
    "ct-head-693": lambda: load_sample("ct-head-693"),
    "invesalius-slice-80": lambda: load_sample("invesalius-head-ct").slice(80),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def calibrated(request: pytest.FixtureRequest) -> tuple[torch.Tensor, CalibrationResult]:
    image = CASES[request.param]()
    image_hu = torch.from_numpy(image.array)
    return image_hu, calibrate_incident_photons(image_hu, image.spacing[-1])


@pytest.mark.parametrize("dose", [0.25, 0.1])
def test_low_dose_noise_sd_is_sd_over_sqrt_dose(
    calibrated: tuple[torch.Tensor, CalibrationResult], dose: float
) -> None:
    image_hu, calibration = calibrated
    expected = calibration.real_noise_sd / math.sqrt(dose)
    assert low_dose_noise_sd(calibration, image_hu, dose) == pytest.approx(expected, rel=0.10)


def test_inserted_noise_has_the_real_noise_texture_and_white_noise_does_not(
    calibrated: tuple[torch.Tensor, CalibrationResult],
) -> None:
    image_hu, calibration = calibrated
    assert calibration.projection is not None
    simulator = calibration.simulator(0.25)
    noise = simulator.noise(calibration.projection, torch.Generator().manual_seed(3))[0].numpy()
    real = calibration.real_mean_nps_frequency
    assert abs(mean_nps_frequency(noise, calibration.rois) - real) < 0.05

    # The legacy image-domain model at the same SD: white, so its texture is wrong.
    generator = torch.Generator().manual_seed(3)
    white = white_noise_like(image_hu, float(noise.std()), generator).numpy()
    assert abs(mean_nps_frequency(white, calibration.rois) - real) > 0.05
