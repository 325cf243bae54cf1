import numpy as np
import pytest
from scipy import ndimage

from medsr.metrics.noise import (
    Roi,
    axis_power_ratio,
    detrend,
    find_uniform_rois,
    mean_nps_frequency,
    noise_sd,
    radial_nps,
)


def grid_rois(size: int, image_size: int) -> list[Roi]:
    return [
        Roi(row, column, size)
        for row in range(0, image_size - size + 1, size)
        for column in range(0, image_size - size + 1, size)
    ]


def test_noise_sd_of_white_noise_on_a_ramp_is_the_noise_sd() -> None:
    rng = np.random.default_rng(0)
    ramp = np.add.outer(np.arange(128.0), 2 * np.arange(128.0))
    image = ramp + rng.normal(0, 5.0, (128, 128))
    assert noise_sd(image, grid_rois(32, 128)) == pytest.approx(5.0, rel=0.05)


def test_detrend_removes_a_plane_exactly() -> None:
    plane = 3.0 + np.add.outer(0.5 * np.arange(10.0), -2.0 * np.arange(12.0))
    assert np.abs(detrend(plane)).max() < 1e-9


def test_white_noise_mean_frequency_is_about_0_38_and_correlated_noise_is_lower() -> None:
    rng = np.random.default_rng(1)
    white = rng.normal(0, 1, (256, 256))
    rois = grid_rois(32, 256)
    assert mean_nps_frequency(white, rois) == pytest.approx(0.38, abs=0.015)
    correlated = ndimage.gaussian_filter(white, 1.0)
    assert mean_nps_frequency(correlated, rois) < 0.25


def test_radial_nps_integrates_to_the_variance() -> None:
    rng = np.random.default_rng(2)
    image = rng.normal(0, 3.0, (128, 128))
    frequencies, values = radial_nps(image, grid_rois(32, 128), bins=8)
    assert frequencies.shape == values.shape == (8,)
    # White noise: flat spectrum at the variance level.
    assert values[2:].mean() == pytest.approx(9.0, rel=0.1)


def test_uniform_rois_are_found_inside_the_uniform_tissue_only() -> None:
    rng = np.random.default_rng(3)
    coordinates = np.arange(160) - 79.5
    radius = np.hypot(*np.meshgrid(coordinates, coordinates, indexing="ij"))
    image = np.where(radius < 60, 40.0, -1000.0) + rng.normal(0, 5, (160, 160))
    rois = find_uniform_rois(image, size=16)
    assert rois
    for roi in rois:
        assert np.all(roi.take(radius) < 60)
    with pytest.raises(ValueError, match="HU"):
        find_uniform_rois(np.full((64, 64), -1000.0))


def test_axis_power_ratio_is_one_for_white_noise_and_sees_streaks() -> None:
    rng = np.random.default_rng(0)
    white = rng.normal(size=(256, 256))
    rois = grid_rois(32, 256)
    assert axis_power_ratio(white, rois) == pytest.approx(1.0, abs=0.15)
    # smoothing along x (columns) leaves streaks along x: their power sits at high f_y
    streaky = ndimage.gaussian_filter1d(white, 2.0, axis=1)
    assert axis_power_ratio(streaky, rois) > 5
    assert axis_power_ratio(streaky.T, rois) < 0.2
