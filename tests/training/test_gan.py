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
