"""Adversarial losses against values worked out by hand, and the relativistic symmetries."""

from __future__ import annotations

import math

import pytest
import torch

from medsr.losses import (
    ADVERSARIAL_KINDS,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
)

LN2 = math.log(2.0)


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values).view(-1, 1)


def test_bce() -> None:
    # BCE of logit z against label 1 is log(1 + e^-z): ln 2 at 0, ln(4/3) at ln 3.
    fake = _t(0.0, math.log(3.0))
    expected = (LN2 + math.log(4 / 3)) / 2
    assert generator_adversarial_loss("bce", None, fake).item() == pytest.approx(expected)
    # Discriminator: real term ln 2 (logit 0, label 1) + fake term log(1 + e^z), label 0.
    d = discriminator_adversarial_loss("bce", _t(0.0), _t(math.log(3.0)))
    assert d.item() == pytest.approx(LN2 + math.log(4.0))


def test_hinge() -> None:
    real, fake = _t(0.5, 2.0), _t(-2.0, 0.0)
    # mean(relu(1 - [0.5, 2])) = 0.25; mean(relu(1 + [-2, 0])) = 0.5
    assert discriminator_adversarial_loss("hinge", real, fake).item() == pytest.approx(0.75)
    assert generator_adversarial_loss("hinge", real, fake).item() == pytest.approx(1.0)


def test_relativistic() -> None:
    real, fake = _t(1.0, 3.0), _t(0.0, 2.0)  # means 2 and 1
    # D: real - mean(fake) = [0, 2] against 1, fake - mean(real) = [-2, 0] against 0; both
    # give {ln 2, ln(1 + e^-2)}, so the average of the two terms is that mean.
    a = (LN2 + math.log(1 + math.exp(-2.0))) / 2
    assert discriminator_adversarial_loss("relativistic", real, fake).item() == pytest.approx(a)
    # G: the labels swap: [0, 2] against 0 and [-2, 0] against 1 give {ln 2, ln(1 + e^2)}.
    b = (LN2 + math.log(1 + math.exp(2.0))) / 2
    assert generator_adversarial_loss("relativistic", real, fake).item() == pytest.approx(b)


def test_relativistic_symmetries() -> None:
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(4, 1, 3, 3, generator=gen), torch.randn(4, 1, 3, 3, generator=gen)
    d = discriminator_adversarial_loss("relativistic", real, fake)
    g = generator_adversarial_loss("relativistic", real, fake)
    # The generator's loss is the discriminator's with the roles of real and fake swapped.
    assert g.item() == pytest.approx(
        discriminator_adversarial_loss("relativistic", fake, real).item()
    )
    assert d.item() == pytest.approx(generator_adversarial_loss("relativistic", fake, real).item())
    # Only differences of logits count: a common shift changes nothing.
    shifted = discriminator_adversarial_loss("relativistic", real + 5.0, fake + 5.0)
    assert shifted.item() == pytest.approx(d.item(), rel=1e-5)
    # Indistinguishable logits: every relativistic probability is 1/2, both losses ln 2.
    same = torch.full((4, 1), 0.7)
    assert discriminator_adversarial_loss("relativistic", same, same).item() == pytest.approx(LN2)
    assert generator_adversarial_loss("relativistic", same, same).item() == pytest.approx(LN2)


@pytest.mark.parametrize("kind", ADVERSARIAL_KINDS)
def test_better_discriminator_has_lower_loss_and_generator_gradient(kind: str) -> None:
    confident = discriminator_adversarial_loss(kind, _t(3.0, 4.0), _t(-3.0, -4.0))
    confused = discriminator_adversarial_loss(kind, _t(-3.0, -4.0), _t(3.0, 4.0))
    assert confident.item() < confused.item()
    fake = _t(0.5, -1.0).requires_grad_()
    generator_adversarial_loss(kind, _t(1.0, 2.0), fake).backward()
    # Raising the fake logits (looking more real) lowers the generator loss.
    assert fake.grad is not None and (fake.grad < 0).all()


def test_errors() -> None:
    with pytest.raises(ValueError, match="'wgan'"):
        generator_adversarial_loss("wgan", _t(0.0), _t(0.0))
    with pytest.raises(ValueError, match="'lsgan'"):
        discriminator_adversarial_loss("lsgan", _t(0.0), _t(0.0))
    with pytest.raises(ValueError, match="needs real_logits"):
        generator_adversarial_loss("relativistic", None, _t(0.0))
