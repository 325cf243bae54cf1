from __future__ import annotations

import pytest
import torch

from medsr.physics.unknown_resize import UnknownResizeTask, resize_down, resize_only


def radiograph(size: int = 64) -> torch.Tensor:
    """A (1, size, size) image in [0, 1] with a smooth gradient and a bright disc."""
    y, x = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    disc = ((y - 30) ** 2 + (x - 34) ** 2 < 12**2).float()
    return (0.2 + 0.4 * x / size + 0.3 * disc)[None]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_inverted_pair_is_the_pair_of_the_inverted_image() -> None:
    overrides = {**resize_only("bicubic"), "scale": 2}
    plain = UnknownResizeTask(**overrides)(radiograph(), 1.0, gen())
    inverted = UnknownResizeTask(**{**overrides, "invert_probability": 1.0})(
        radiograph(), 1.0, gen()
    )
    assert inverted.params["inverted"] and not plain.params["inverted"]
    torch.testing.assert_close(inverted.high, 1.0 - plain.high)
    torch.testing.assert_close(inverted.low, 1.0 - plain.low, atol=1e-5, rtol=0)


def test_invert_probability_draws_both_polarities() -> None:
    task = UnknownResizeTask(scale=2, invert_probability=0.5)
    drawn = [task.sample(gen(seed)).inverted for seed in range(40)]
    assert 5 < sum(drawn) < 35


def test_no_inversion_draws_no_number_for_it() -> None:
    """At probability 0 the inversion consumes no random number, so every later draw (the
    noise after `sample`) is that of the task without the option; above 0 it takes one."""
    without = gen(3)
    UnknownResizeTask(scale=2).sample(without)
    with_draw = gen(3)
    UnknownResizeTask(scale=2, invert_probability=0.5).sample(with_draw)

    def draw(generator: torch.Generator) -> float:  # as `draw_bernoulli` draws: one float64
        return float(torch.rand((), generator=generator, dtype=torch.float64))

    first, second = draw(without), draw(without)
    assert draw(with_draw) == second != first


def test_resize_only_switches_inversion_off() -> None:
    task = UnknownResizeTask(**{**resize_only("box"), "scale": 4})
    assert task.invert_probability == 0.0


@pytest.mark.parametrize("probability", [-0.1, 1.5])
def test_rejects_bad_invert_probability(probability: float) -> None:
    with pytest.raises(ValueError, match="invert_probability"):
        UnknownResizeTask(scale=2, invert_probability=probability)


def test_aliased_bilinear_at_x2_is_the_block_mean() -> None:
    image = torch.rand(1, 16, 24)
    expected = image.reshape(1, 8, 2, 12, 2).mean(dim=(2, 4))
    torch.testing.assert_close(resize_down(image, 2, "bilinear-aliased"), expected)


@pytest.mark.parametrize("kernel", ["bicubic-aliased", "bilinear-aliased"])
def test_aliased_kernels_sample_a_ramp_at_the_block_centres(kernel: str) -> None:
    """Without antialiasing a linear ramp is sampled, not averaged: low pixel i holds the
    ramp at 4 i + 1.5 (away from the edges, where the cubic's taps are clamped)."""
    ramp = torch.arange(32.0).expand(1, 8, 32)
    low = resize_down(ramp, 4, kernel)
    torch.testing.assert_close(low[0, 0, 1:-1], 4 * torch.arange(1.0, 7.0) + 1.5)


def test_aliased_kernels_keep_more_of_the_fine_band_than_antialiased_ones() -> None:
    stripes = (torch.arange(64.0) % 3 == 0).float().expand(1, 64, 64)  # 1/3 cycle per pixel
    aliased = resize_down(stripes, 4, "bicubic-aliased").std()
    widened = resize_down(stripes, 4, "bicubic").std()
    assert aliased > 3 * widened
