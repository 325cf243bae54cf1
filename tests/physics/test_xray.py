from __future__ import annotations

import math

import pytest
import torch

from medsr.physics.degradation import params_record
from medsr.physics.tasks import make_task
from medsr.physics.xray import RadiographDegradation

RANGE = (0.0, 1000.0)  # image units mapped to v = 0 .. 1


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def two_regions(dark: float = 0.2, bright: float = 0.8) -> torch.Tensor:
    image = torch.full((1, 160, 320), dark * 1000)
    image[..., 160:] = bright * 1000
    return image


def second_moment_sigma(profile: torch.Tensor) -> float:
    x = torch.arange(profile.numel(), dtype=torch.float64)
    weights = profile.double() / profile.double().sum()
    mean = (weights * x).sum()
    return float(((weights * (x - mean) ** 2).sum()).sqrt())


def test_noise_is_signal_dependent_as_the_formula_predicts() -> None:
    operator = RadiographDegradation(
        2e4, electronic_noise_sd=10.0, blur_sigma_px=1.0, value_range=RANGE
    )
    noisy = operator(two_regions(), gen())
    # Regions away from the edge (blur radius 4 px) are uniform before noise.
    dark_sd = float(noisy[..., 10:-10, 10:150].std())
    bright_sd = float(noisy[..., 10:-10, 170:310].std())
    predicted = operator.predicted_sd(torch.tensor([0.2, 0.8])) * 1000
    assert dark_sd == pytest.approx(float(predicted[0]), rel=0.04)
    assert bright_sd == pytest.approx(float(predicted[1]), rel=0.04)
    # Bright (attenuating) regions receive exp(-k * 0.6) times fewer quanta: 3.3x the SD from
    # quantum noise alone, 3.5x with the electronic noise.
    assert bright_sd / dark_sd == pytest.approx(float(predicted[1] / predicted[0]), rel=0.06)
    assert bright_sd / dark_sd > 3.0


def test_sd_falls_as_one_over_sqrt_incident_photons() -> None:
    image = torch.full((1, 256, 256), 500.0)
    sds = []
    for photons in (1e3, 1e5):
        operator = RadiographDegradation(photons, 0.0, 0.0, value_range=RANGE)
        sds.append(float(operator(image, gen()).std()))
    assert sds[0] / sds[1] == pytest.approx(10.0, rel=0.05)


def test_electronic_noise_dominates_at_low_counts() -> None:
    image = torch.full((1, 256, 256), 1000.0)  # v = 1: I0 * exp(-4) = 1832 quanta
    quantum = RadiographDegradation(1e5, 0.0, 0.0, value_range=RANGE)
    both = RadiographDegradation(1e5, 60.0, 0.0, value_range=RANGE)
    ratio = float(both(image, gen()).std() / quantum(image, gen()).std())
    counts = 1e5 * math.exp(-4.0)
    assert ratio == pytest.approx(math.sqrt((counts + 60**2) / counts), rel=0.04)  # 1.72


def test_degradation_blurs_a_faint_line_by_blur_sigma() -> None:
    # A faint line keeps the log transform linear, and a huge I0 makes noise negligible, so the
    # output profile is the detector blur.
    image = torch.full((1, 64, 41), 500.0)
    image[..., 20] += 1.0
    operator = RadiographDegradation(1e13, 0.0, blur_sigma_px=1.5, value_range=RANGE)
    profile = (operator(image.double(), gen()) - 500.0)[0, 20:44].mean(0)
    assert float(profile.sum()) == pytest.approx(1.0, rel=0.05)
    assert second_moment_sigma(profile.clamp_min(0)) == pytest.approx(1.5, rel=0.05)


def test_binning_shape_and_noise_per_detector_pixel() -> None:
    image = torch.full((1, 258, 259), 500.0)
    operator = RadiographDegradation(5e3, 0.0, 1.0, value_range=RANGE, scale=4)
    low = operator(image, gen())
    assert low.shape == (1, 64, 64)
    assert operator.crop(image).shape == (1, 256, 256)
    # I0 counts per detector (output) pixel: the SD is that of one pixel with 5e3 * exp(-2).
    assert float(low.std()) == pytest.approx(float(operator.predicted_sd(0.5)) * 1000, rel=0.05)
    assert float(low.mean()) == pytest.approx(500.0, abs=1.0)


def test_default_normalisation_uses_the_image_range() -> None:
    image = two_regions()
    operator = RadiographDegradation(1e4)
    assert operator.range_of(image) == (200.0, 800.0)
    with pytest.raises(ValueError, match="constant"):
        operator.range_of(torch.ones(4, 4))


def test_same_seed_same_output_different_seed_differs() -> None:
    image = two_regions()
    operator = RadiographDegradation(1e4, 2.0)
    assert torch.equal(operator(image, gen(1)), operator(image, gen(1)))
    assert not torch.equal(operator(image, gen(1)), operator(image, gen(2)))


def test_task_sample_ranges_and_reproducibility() -> None:
    """The radiograph task's `sample` is the random sampler (training and `degrade` alike)."""
    task = make_task(
        "xray-x4",
        incident_photons_range=(1e3, 1e5),
        electronic_noise_sd_range=(0.0, 5.0),
        blur_sigma_px_range=(0.5, 1.5),
    )
    for seed in range(20):
        params = task.sample(gen(seed))
        operator = task.operator(params)  # type: ignore[attr-defined]
        assert 1e3 <= operator.incident_photons <= 1e5
        assert 0.0 <= operator.electronic_noise_sd <= 5.0
        assert 0.5 <= operator.blur_sigma_px <= 1.5
        assert params_record(params)["incident_photons"] == operator.incident_photons
    assert task.sample(gen(3)) == task.sample(gen(3))
    pair = task(two_regions(), 1.0, gen(3))  # the pair logs its generator's draw
    assert pair.params["incident_photons"] == task.sample(gen(3)).incident_photons
    with pytest.raises(ValueError, match="incident_photons_range"):
        make_task("xray-x4", incident_photons_range=(0.0, 1e3))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"incident_photons": 0.0},
        {"incident_photons": 1e4, "electronic_noise_sd": -1.0},
        {"incident_photons": 1e4, "blur_sigma_px": -0.5},
        {"incident_photons": 1e4, "scale": 5},
        {"incident_photons": 1e4, "value_range": (1.0, 1.0)},
    ],
)
def test_invalid_arguments_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RadiographDegradation(**kwargs)  # type: ignore[arg-type]
