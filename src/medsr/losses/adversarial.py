"""Adversarial losses on discriminator logits (any shape: `(B, 1)` per image or
`(B, 1, H, W)` per pixel; means run over every element).

With `r` the logits of real images, `f` those of generated ones, `sp(z) = log(1 + e^z)`
(so `sp(-z)` is BCE-with-logits against label 1 and `sp(z)` against label 0):

`"bce"` (standard GAN, SRGAN; Goodfellow et al. 2014, non-saturating generator):
    D: mean(sp(-r)) + mean(sp(f))            G: mean(sp(-f))
`"relativistic"` (relativistic average GAN, ESRGAN; Jolicoeur-Martineau 2018):
    D: [mean(sp(-(r - mean f))) + mean(sp(f - mean r))] / 2
    G: [mean(sp(r - mean f)) + mean(sp(-(f - mean r)))] / 2
    The halving follows ESRGAN's reference code, so its generator weight 5e-3 carries over.
    The generator uses the real logits too: pass them detached.
`"hinge"` (Lim & Ye 2017; Miyato et al. 2018):
    D: mean(relu(1 - r)) + mean(relu(1 + f))  G: -mean(f)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ADVERSARIAL_KINDS = ("bce", "relativistic", "hinge")


def _check_kind(kind: str) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"unknown adversarial loss {kind!r}; valid kinds: {ADVERSARIAL_KINDS}")


def _bce(logits: torch.Tensor, label: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def generator_adversarial_loss(
    kind: str, real_logits: torch.Tensor | None, fake_logits: torch.Tensor
) -> torch.Tensor:
    """Loss the generator minimises; `real_logits` is needed (detached) only for
    `"relativistic"` and may be None for the other kinds."""
    _check_kind(kind)
    if kind == "bce":
        return _bce(fake_logits, 1.0)
    if kind == "hinge":
        return -fake_logits.mean()
    if real_logits is None:
        raise ValueError("the relativistic generator loss needs real_logits, got None")
    return 0.5 * (
        _bce(real_logits - fake_logits.mean(), 0.0) + _bce(fake_logits - real_logits.mean(), 1.0)
    )


def discriminator_adversarial_loss(
    kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> torch.Tensor:
    """Loss the discriminator minimises; pass `fake_logits` of detached generator outputs."""
    _check_kind(kind)
    if kind == "bce":
        return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    return 0.5 * (
        _bce(real_logits - fake_logits.mean(), 1.0) + _bce(fake_logits - real_logits.mean(), 0.0)
    )
