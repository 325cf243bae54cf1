"""Pixel losses against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from medsr.losses import (
    PIXEL_LOSSES,
    band_pixel_loss,
    charbonnier_loss,
    gaussian_lowpass,
    grid_loss,
    l1_loss,
    mse_loss,
    pixel_loss,
    window_weights,
)

PREDICTION = torch.tensor([[[[0.0, 1.0], [-2.0, 3.0]]]])  # errors 0, 1, -2, 3 against zero
TARGET = torch.zeros(1, 1, 2, 2)


def test_l1() -> None:
    assert l1_loss(PREDICTION, TARGET).item() == pytest.approx((0 + 1 + 2 + 3) / 4)


def test_mse() -> None:
    assert mse_loss(PREDICTION, TARGET).item() == pytest.approx((0 + 1 + 4 + 9) / 4)


def test_charbonnier() -> None:
    expected = (math.sqrt(0 + 1) + math.sqrt(1 + 1) + math.sqrt(4 + 1) + math.sqrt(9 + 1)) / 4
    assert charbonnier_loss(PREDICTION, TARGET, eps=1.0).item() == pytest.approx(expected)
    # A tiny eps gives the L1 loss plus at most eps.
    small = charbonnier_loss(PREDICTION, TARGET, eps=1e-4).item()
    assert 1.5 <= small <= 1.5 + 1e-4


def test_charbonnier_gradient_is_finite_at_zero_error() -> None:
    prediction = torch.zeros(3, requires_grad=True)
    charbonnier_loss(prediction, torch.zeros(3)).backward()
    assert prediction.grad is not None and torch.equal(prediction.grad, torch.zeros(3))


@pytest.mark.parametrize("kind", PIXEL_LOSSES)
def test_dispatch_and_zero_for_equal_inputs(kind: str) -> None:
    assert pixel_loss(kind, TARGET, TARGET, eps=1e-6).item() == pytest.approx(0.0, abs=1e-6)
    direct = {"l1": 1.5, "mse": 3.5}.get(kind)
    if direct is not None:
        assert pixel_loss(kind, PREDICTION, TARGET).item() == pytest.approx(direct)


def test_errors() -> None:
    with pytest.raises(ValueError, match="'l3'"):
        pixel_loss("l3", PREDICTION, TARGET)
    with pytest.raises(ValueError, match="eps must be > 0, got 0.0"):
        charbonnier_loss(PREDICTION, TARGET, eps=0.0)
    with pytest.raises(ValueError, match=r"\(1, 1, 2, 2\) vs \(1, 2, 2\)"):
        l1_loss(PREDICTION, TARGET[0])


def test_grid_loss_is_the_mse_of_the_period_pattern() -> None:
    pattern = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(3, 4)[None, None]  # (1, 1, 6, 8)
    # A pure period-2 checkerboard of amplitude 1: all its energy is at the grid frequency.
    assert grid_loss(pattern, torch.zeros_like(pattern), 2).item() == pytest.approx(1.0)
    assert mse_loss(pattern, torch.zeros_like(pattern)).item() == pytest.approx(1.0)
    # A constant offset or a pattern of another period (here 3 along the width) has none.
    offset = torch.full((2, 1, 6, 6), 5.0)
    assert grid_loss(offset, torch.zeros_like(offset), 2).item() == pytest.approx(0.0)
    stripes = torch.tensor([1.0, -0.5, -0.5]).repeat(6, 2)[None, None]
    assert grid_loss(stripes, torch.zeros_like(stripes), 2).item() == pytest.approx(0.0, abs=1e-7)
    assert grid_loss(stripes, torch.zeros_like(stripes), 3).item() == pytest.approx(0.5)


def test_grid_loss_equals_the_grid_frequencies_of_the_spectrum() -> None:
    generator = torch.Generator().manual_seed(0)
    error = torch.randn(2, 1, 16, 16, generator=generator)
    spectrum = torch.fft.fft2(error).abs().square() / 16**4  # Parseval: sums to mean(e^2)
    grid = spectrum[..., ::8, ::8].sum(dim=(-2, -1)) - spectrum[..., 0, 0]
    expected = grid.mean().item()
    assert grid_loss(error, torch.zeros_like(error), 2).item() == pytest.approx(expected)


def test_grid_loss_rejects_a_period_that_does_not_divide_the_image() -> None:
    with pytest.raises(ValueError, match="period"):
        grid_loss(torch.zeros(1, 1, 6, 6), torch.zeros(1, 1, 6, 6), 4)


def test_window_weights_count_targets_outside_0_1_less() -> None:
    target = torch.tensor([[-0.5, 0.0, 0.5, 1.0, 3.0]])
    weights = window_weights(target, 0.25)
    assert weights.tolist() == [[0.25, 1.0, 1.0, 1.0, 0.25]]
    with pytest.raises(ValueError, match="outside must be > 0"):
        window_weights(target, 0.0)


@pytest.mark.parametrize("kind", PIXEL_LOSSES)
def test_weighted_pixel_loss_is_the_weighted_mean_and_ones_give_the_mean(kind: str) -> None:
    ones = torch.ones_like(TARGET)
    plain = pixel_loss(kind, PREDICTION, TARGET)
    assert pixel_loss(kind, PREDICTION, TARGET, weights=ones).item() == pytest.approx(plain.item())
    # only the first two elements (errors 0 and 1) count
    weights = torch.tensor([[[[1.0, 1.0], [1e-9, 1e-9]]]])
    expected = {"l1": 0.5, "mse": 0.5, "charbonnier": (1e-3 + math.sqrt(1 + 1e-6)) / 2}[kind]
    weighted = pixel_loss(kind, PREDICTION, TARGET, weights=weights).item()
    assert weighted == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="weights"):
        pixel_loss(kind, PREDICTION, TARGET, weights=ones[0])


def test_gaussian_lowpass_keeps_a_constant_and_a_slow_wave_and_removes_a_checkerboard() -> None:
    rows, columns = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    constant = torch.full((1, 1, 32, 32), 0.3)
    torch.testing.assert_close(gaussian_lowpass(constant, 1.0), constant)
    slow = torch.cos(2 * math.pi * columns / 32)[None, None]  # 1/32 cycles/pixel
    gain = math.exp(-2 * math.pi**2 * (1 / 32) ** 2)  # the Gaussian's transfer there
    centre = (slice(None), slice(None), slice(8, 24), slice(8, 24))
    torch.testing.assert_close(
        gaussian_lowpass(slow, 1.0)[centre], gain * slow[centre], atol=2e-3, rtol=0
    )
    checkerboard = ((rows + columns) % 2 * 2 - 1)[None, None]  # 0.5 cycles/pixel
    assert gaussian_lowpass(checkerboard, 1.0)[centre].abs().max() < 1e-3
    assert gaussian_lowpass(checkerboard, 0.0) is checkerboard
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        gaussian_lowpass(constant, -1.0)


def test_band_pixel_loss_weighs_the_fine_band_as_asked() -> None:
    rows, columns = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    target = torch.zeros(1, 1, 32, 32)
    fine = (((rows + columns) % 2) * 2 - 1)[None, None]  # all in the fine band
    coarse = torch.full((1, 1, 32, 32), 2.0)  # all in the low band
    # the blur replicates the edges, where a checkerboard is not all fine: count the 4-pixel
    # border (the kernel's radius) a million times less
    inside = torch.full((1, 1, 32, 32), 1e-6)
    inside[..., 4:-4, 4:-4] = 1.0
    for weight in (0.0, 0.25, 1.0):
        loss = band_pixel_loss(
            "mse", fine, target, lowpass_sigma=1.0, highpass_weight=weight, weights=inside
        )
        assert loss.item() == pytest.approx(weight * 1.0, abs=1e-3)  # Nyquist passes ~0
        loss = band_pixel_loss("mse", coarse, target, lowpass_sigma=1.0, highpass_weight=weight)
        assert loss.item() == pytest.approx(4.0, abs=1e-5)
    plain = band_pixel_loss("l1", fine, target, lowpass_sigma=0.0, highpass_weight=0.0)
    assert plain.item() == pixel_loss("l1", fine, target).item()  # sigma 0: the plain loss


def test_gaussian_lowpass_stays_float32_under_bf16_autocast() -> None:
    ramp = 0.9 + 1e-3 * torch.linspace(0, 1, 16 * 16).reshape(1, 1, 16, 16)  # below bf16's step
    exact = gaussian_lowpass(ramp, 1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = gaussian_lowpass(ramp, 1.0)
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, exact)
