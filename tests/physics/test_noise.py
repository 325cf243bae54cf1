from __future__ import annotations

import pytest
import torch

from medsr.physics.degradation import params_record
from medsr.physics.noise import ImageDomainNoise, white_noise_like
from medsr.physics.tasks import make_task


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_white_noise_has_the_requested_sd_and_shape() -> None:
    image = torch.zeros(2, 128, 128, dtype=torch.float64)
    noise = white_noise_like(image, 6.4, gen())
    assert noise.shape == image.shape and noise.dtype == torch.float64
    assert float(noise.std()) == pytest.approx(6.4, rel=0.02)
    assert abs(float(noise.mean())) < 0.1
    # White: neighbouring pixels are uncorrelated.
    corr = torch.corrcoef(torch.stack([noise[..., :-1].flatten(), noise[..., 1:].flatten()]))
    assert abs(float(corr[0, 1])) < 0.025  # 4.5 standard errors for 32512 pairs


def test_image_domain_noise_variance_tracks_pixel_values() -> None:
    image = torch.zeros(128, 256)
    image[:, 128:] = 1000.0  # water | bone, HU
    operator = ImageDomainNoise(gaussian_sd=5.0, poisson_scale=2.0, offset=1024.0)
    noisy = operator(image, gen())
    for region, value in ((noisy[:, :128], 0.0), (noisy[:, 128:], 1000.0)):
        expected_sd = float(operator.variance(value).sqrt())
        assert float(region.std()) == pytest.approx(expected_sd, rel=0.03)
        assert float(region.mean()) == pytest.approx(value, abs=1.0)
    assert float(operator.variance(1000.0)) == pytest.approx(2024 / 2 + 25)


def test_gaussian_only_and_poisson_only() -> None:
    image = torch.full((256, 256), 100.0)
    assert float((ImageDomainNoise(3.0)(image, gen()) - image).std()) == pytest.approx(3, rel=0.03)
    poisson = ImageDomainNoise(0.0, poisson_scale=1.0, offset=0.0)(image, gen())
    assert float(poisson.var()) == pytest.approx(100.0, rel=0.05)
    assert torch.equal(poisson, poisson.round())  # integer counts at 1 count per unit


def test_default_offset_shifts_by_the_image_minimum() -> None:
    image = torch.full((128, 128), -1000.0)
    image[:, 64:] = 0.0
    noisy = ImageDomainNoise(0.0, poisson_scale=1.0)(image, gen())
    assert float(noisy[:, :64].std()) == 0.0  # minimum maps to 0 counts: no Poisson noise
    assert float(noisy[:, 64:].std()) == pytest.approx(1000**0.5, rel=0.05)


def test_same_seed_same_noise_different_seed_different_noise() -> None:
    image = torch.rand(1, 32, 32) * 100
    operator = ImageDomainNoise(2.0, 5.0, 0.0)
    assert torch.equal(operator(image, gen(3)), operator(image, gen(3)))
    assert not torch.equal(operator(image, gen(3)), operator(image, gen(4)))


def test_input_is_not_modified() -> None:
    image = torch.rand(16, 16)
    before = image.clone()
    ImageDomainNoise(1.0, 10.0)(image, gen())
    assert torch.equal(image, before)


def test_legacy_task_sample_draws_in_range_and_logs() -> None:
    """The legacy task's `sample` is the random sampler: training and `degrade` draw alike."""
    task = make_task(
        "ldct-legacy-x4", gaussian_sd_range=(2.0, 8.0), poisson_scale_range=(1.0, 100.0)
    )
    draws = [task.sample(gen(seed)) for seed in range(20)]
    for params in draws:
        operator = task.operator(params)  # type: ignore[attr-defined]
        assert 2.0 <= operator.gaussian_sd <= 8.0
        assert operator.poisson_scale is not None and 1.0 <= operator.poisson_scale <= 100.0
        assert params_record(params)["gaussian_sd"] == operator.gaussian_sd
    assert len({p.gaussian_sd for p in draws}) == 20
    assert task.sample(gen(7)) == task.sample(gen(7))
    # a pair logs the values it was made with: those of its generator's draw
    pair = task(torch.full((1, 16, 16), 40.0), 1.0, gen(7))
    assert pair.params["gaussian_sd"] == task.sample(gen(7)).gaussian_sd


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gaussian_sd": -1.0},
        {"gaussian_sd": 1.0, "poisson_scale": 0.0},
        {"gaussian_sd": float("nan")},
    ],
)
def test_invalid_arguments_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ImageDomainNoise(**kwargs)


def test_invalid_ranges_raise() -> None:
    with pytest.raises(ValueError, match="sd_range"):
        make_task("ldct-legacy-x4", gaussian_sd_range=(5.0, 1.0))
    with pytest.raises(ValueError, match="poisson_scale_range"):
        make_task("ldct-legacy-x4", gaussian_sd_range=(1.0, 2.0), poisson_scale_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="sd"):
        white_noise_like(torch.zeros(2), -1.0, gen())
