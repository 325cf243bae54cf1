"""Pixel losses against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from medsr.losses import PIXEL_LOSSES, charbonnier_loss, l1_loss, mse_loss, pixel_loss

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
