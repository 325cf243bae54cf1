import math
import statistics

import pytest
import torch

from medsr.metrics.noise import Roi, axis_power_ratio
from medsr.physics.ct import (
    LowDoseCT,
    added_ray_variance,
    attenuation_to_hu,
    hu_to_attenuation,
    view_modulation,
)


def head_phantom(size: int = 64) -> torch.Tensor:
    """Water disk in air with a bone ring and a soft-tissue insert, in HU."""
    coordinates = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(coordinates, coordinates, indexing="ij")
    radius = torch.hypot(x, y)
    image = torch.full((size, size), -1000.0)
    image[radius < 0.42 * size] = 1000.0
    image[radius < 0.38 * size] = 40.0
    image[torch.hypot(x - 6, y + 4) < 5] = 80.0
    return image


def test_hu_attenuation_round_trip_and_padding_is_air() -> None:
    hu = torch.tensor([-3024.0, -2000.0, -1000.0, 0.0, 1000.0])
    mu = hu_to_attenuation(hu, 0.2)
    assert mu.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.2, 0.4])
    assert attenuation_to_hu(mu[2:], 0.2).tolist() == pytest.approx([-1000.0, 0.0, 1000.0])


def test_added_variance_matches_the_formula_by_hand() -> None:
    p, a, i0, se2 = 3.0, 0.25, 1e5, 10.0
    by_hand = (0.75 / 0.25) * (math.exp(3) / 1e5) * (1 + (1.25 / 0.25) * 10 * math.exp(3) / 1e5)
    value = added_ray_variance(torch.tensor([p]), a, i0, se2)
    assert float(value) == pytest.approx(by_hand, rel=1e-6)


def test_same_generator_same_image_and_other_seeds_differ() -> None:
    image = head_phantom()
    simulator = LowDoseCT(dose_fraction=0.25, incident_photons=2e4, num_views=90)
    first = simulator(image, 0.8, torch.Generator().manual_seed(7))
    again = simulator(image, 0.8, torch.Generator().manual_seed(7))
    other = simulator(image, 0.8, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.shape == image.shape


def test_noise_is_zero_mean_and_scales_with_dose() -> None:
    image = head_phantom(96)
    projection_model = LowDoseCT(incident_photons=2e4, num_views=120)
    projection = projection_model.project(image, 0.8)
    inside = (image > 0) & (image < 100)

    def added_sd(dose: float) -> float:
        simulator = LowDoseCT(dose_fraction=dose, incident_photons=2e4, num_views=120)
        draws = [simulator.noise(projection, torch.Generator().manual_seed(s))[0] for s in range(4)]
        noise = torch.stack(draws)
        assert abs(float(noise[:, inside].mean())) < 0.1 * float(noise[:, inside].std())
        return float(noise[:, inside].std())

    ratio = added_sd(0.1) / added_sd(0.25)
    # Quantum noise dominates: SD ratio ~ sqrt(((1-0.1)/0.1) / ((1-0.25)/0.25)) = sqrt(3).
    assert ratio == pytest.approx(math.sqrt(3), rel=0.05)


def test_full_dose_returns_the_input_and_batches_keep_shape() -> None:
    image = head_phantom(32).expand(2, 1, 32, 32)
    assert torch.equal(LowDoseCT(dose_fraction=1.0)(image, 1.0, torch.Generator()), image)
    low = LowDoseCT(num_views=30)(image, 1.0, torch.Generator().manual_seed(0))
    assert low.shape == (2, 1, 32, 32)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"dose_fraction": 0.0}, "dose_fraction"),
        ({"dose_fraction": 1.5}, "dose_fraction"),
        ({"incident_photons": -1.0}, "incident_photons"),
        ({"filter_window": "gaussian"}, "filter_window"),
        ({"electronic_noise_variance": -2.0}, "electronic_noise_variance"),
        ({"tube_current_modulation": -0.5}, "tube_current_modulation"),
    ],
)
def test_bad_parameters_are_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LowDoseCT(**arguments)  # type: ignore[arg-type]


def test_describe_resolves_the_electronic_noise() -> None:
    described = LowDoseCT(incident_photons=2e5).describe()
    assert described["electronic_noise_variance"] == pytest.approx(20.0)
    assert described["dose_fraction"] == 0.25


def ellipse_phantom(size: int = 96) -> torch.Tensor:
    """A water ellipse in air, twice as wide (x, columns) as it is tall: a body's section."""
    coordinates = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(coordinates, coordinates, indexing="ij")
    image = torch.full((size, size), -1000.0)
    image[(x / (0.46 * size)) ** 2 + (y / (0.23 * size)) ** 2 < 1] = 0.0
    return image


def test_view_modulation_follows_attenuation_at_the_same_mean() -> None:
    image = ellipse_phantom()
    projection = LowDoseCT(num_views=90).project(image, 1.0)
    flat = view_modulation(projection.line_integrals, 0.0)
    assert flat.shape == (1, 90, 1) and torch.all(flat == 1)
    modulation = view_modulation(projection.line_integrals, 0.5)
    assert float(modulation.mean()) == pytest.approx(1.0, rel=1e-6)  # the same dose
    # view 0 integrates along image columns (rays along y, the short axis: little
    # attenuation); view 45 (90 degrees) along rows, through the long axis: more current
    assert float(modulation[0, 45]) > 1.5 * float(modulation[0, 0])
    stronger = view_modulation(projection.line_integrals, 1.0)
    ratio = float(stronger[0, 45] / stronger[0, 0])
    assert ratio == pytest.approx(float(modulation[0, 45] / modulation[0, 0]) ** 2, rel=1e-4)


def test_tube_current_modulation_makes_body_noise_less_streaky() -> None:
    """A constant current leaves an ellipse's noise streaky along its long axis (noise
    power on one frequency axis ~1.6 times the other's); the square-root rule (m = 0.5)
    evens it out, at the same mean current."""
    image = ellipse_phantom().expand(8, -1, -1)
    ratios = {}
    for m in (0.0, 0.5):
        simulator = LowDoseCT(num_views=180, tube_current_modulation=m, filter_window="hann")
        noise = simulator.noise(simulator.project(image, 1.0), torch.Generator().manual_seed(0))
        centre = [Roi(32, 32, 32)]  # inside the ellipse
        ratios[m] = statistics.mean(axis_power_ratio(n.numpy(), centre) for n in noise)
    anisotropy = {m: abs(math.log(r)) for m, r in ratios.items()}
    assert anisotropy[0.0] > math.log(1.4), ratios
    assert anisotropy[0.5] < 0.5 * anisotropy[0.0], ratios
