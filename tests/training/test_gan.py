"""`medsr.training.gan`: the generator's pixel term as the config weighs it."""

from __future__ import annotations

import pytest
import torch

from medsr.training.config import LossesConfig, PixelLossConfig
from medsr.training.gan import StepOptions, generator_step


def _pixel_term(outside_window: float) -> float:
    generator = torch.nn.Conv2d(1, 1, 1)
    optimizer = torch.optim.SGD(generator.parameters(), lr=0.0)
    fake = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]]]) + 0 * generator.weight.sum()
    high = torch.tensor([[[[0.5, 0.5], [0.5, 2.5]]]])  # one target above the window: error 2
    losses = LossesConfig(pixel=PixelLossConfig(kind="mse", outside_window=outside_window))
    return generator_step(generator, optimizer, fake, high, losses, StepOptions())["g_pixel"]


def test_pixels_outside_the_window_count_as_the_config_says() -> None:
    assert _pixel_term(1.0) == pytest.approx(4 / 4)  # the plain mean
    assert _pixel_term(0.25) == pytest.approx(0.25 * 4 / (3 + 0.25))


def test_the_pixel_term_is_the_band_loss_when_the_config_asks() -> None:
    from medsr.losses import band_pixel_loss

    torch.manual_seed(0)
    generator = torch.nn.Conv2d(1, 1, 1)
    optimizer = torch.optim.SGD(generator.parameters(), lr=0.0)
    fake = torch.rand(2, 1, 16, 16) + 0 * generator.weight.sum()
    high = torch.rand(2, 1, 16, 16)
    pixel = PixelLossConfig(kind="mse", lowpass_sigma=1.0, highpass_weight=0.25)
    logs = generator_step(
        generator, optimizer, fake, high, LossesConfig(pixel=pixel), StepOptions()
    )
    expected = band_pixel_loss("mse", fake, high, lowpass_sigma=1.0, highpass_weight=0.25)
    assert logs["g_pixel"] == pytest.approx(expected.item())
    assert logs["g_pixel"] < torch.nn.functional.mse_loss(fake, high).item()
