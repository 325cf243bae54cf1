"""One optimisation step of the generator and of the discriminator, as small functions.

The loop computes `fake = generator(low)` once, then calls `discriminator_step` (on
`fake.detach()`) and `generator_step` (through `fake`). In pretraining the generator step
runs with `discriminator=None`: pixel (and optional grid and perceptual) loss only.

    L_D = adversarial_D(D(high), D(fake))
    L_G = w_pix * pixel(fake, high) + w_grid * grid(fake, high) + w_perc * VGG(fake, high)
          + w_adv * adversarial_G(D(high), D(fake)) + w_fm * FM(D_feats(fake), D_feats(high))
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from medsr.losses import (
    band_pixel_loss,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    grid_loss,
    window_weights,
)
from medsr.training.config import LossesConfig


def _no_sync(model: nn.Module) -> None:
    return None


@dataclass
class StepOptions:
    """How an update runs: mixed precision, fp16 scaler, clipping, gradient averaging, and
    the memory format the batches are put in (that of the models)."""

    autocast: Callable[[], AbstractContextManager[object]] = nullcontext
    scaler: torch.amp.GradScaler | None = None
    grad_clip: float | None = None
    sync_gradients: Callable[[nn.Module], None] = field(default=_no_sync)
    memory_format: torch.memory_format = torch.preserve_format


def apply_update(
    loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, options: StepOptions
) -> float:
    """Backward, average gradients over ranks, clip, step. Returns the gradient norm
    before clipping (0.0 when clipping is off)."""
    optimizer.zero_grad(set_to_none=True)
    scaler = options.scaler
    (scaler.scale(loss) if scaler is not None else loss).backward()
    options.sync_gradients(model)
    if scaler is not None:
        scaler.unscale_(optimizer)
    norm = 0.0
    if options.grad_clip is not None:
        norm = float(nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip))
    if scaler is not None:
        scaler.step(optimizer)
    else:
        optimizer.step()
    return norm


def discriminator_step(
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
    kind: str,
    options: StepOptions,
) -> dict[str, float]:
    """One update of the discriminator on `real` and (detached) `fake` `(B, C, H, W)`."""
    discriminator.requires_grad_(True)
    with options.autocast():
        real_logits = discriminator(real)
        fake_logits = discriminator(fake.detach())
        loss = discriminator_adversarial_loss(kind, real_logits.float(), fake_logits.float())
    apply_update(loss, discriminator, optimizer, options)
    return {
        "d_loss": float(loss.detach()),
        "d_real": float(real_logits.detach().float().mean()),
        "d_fake": float(fake_logits.detach().float().mean()),
    }


def generator_step(
    generator: nn.Module,
    optimizer: torch.optim.Optimizer,
    fake: torch.Tensor,
    high: torch.Tensor,
    losses: LossesConfig,
    options: StepOptions,
    discriminator: nn.Module | None = None,
    perceptual: nn.Module | None = None,
    grid_period: int = 1,
) -> dict[str, float]:
    """One update of the generator from its output `fake` (with graph) and target `high`.

    With `discriminator=None` only the pixel, grid and perceptual terms are used
    (pretraining). `grid_period`: the model's scale, the period `losses.grid` weighs.
    The discriminator is frozen during the update, so it gets no gradients.
    """
    with options.autocast():
        outside = losses.pixel.outside_window
        weights = None if outside == 1.0 else window_weights(high, outside)
        pixel = band_pixel_loss(
            losses.pixel.kind,
            fake.float(),
            high,
            lowpass_sigma=losses.pixel.lowpass_sigma,
            highpass_weight=losses.pixel.highpass_weight,
            weights=weights,
        )
        terms = {"pixel": losses.pixel.weight * pixel}
        if losses.grid.weight > 0 and grid_period > 1:
            grid = grid_loss(fake.float(), high, grid_period)
            terms["grid"] = losses.grid.weight * grid
        if perceptual is not None and losses.perceptual.weight > 0:
            terms["perceptual"] = losses.perceptual.weight * perceptual(fake.float(), high)
        if discriminator is not None:
            discriminator.requires_grad_(False)
            with torch.no_grad():
                real_logits, real_features = discriminator(high, return_features=True)
            fake_logits, fake_features = discriminator(fake, return_features=True)
            kind = losses.adversarial.kind
            terms["adversarial"] = losses.adversarial.weight * generator_adversarial_loss(
                kind, real_logits.float(), fake_logits.float()
            )
            if losses.feature_matching.weight > 0:
                fm = feature_matching_loss(
                    [f.float() for f in fake_features], [f.float() for f in real_features]
                )
                terms["feature_matching"] = losses.feature_matching.weight * fm
        loss = torch.stack(list(terms.values())).sum()
    apply_update(loss, generator, optimizer, options)
    if discriminator is not None:
        discriminator.requires_grad_(True)
    return {
        "g_loss": float(loss.detach()),
        **{f"g_{k}": float(v.detach()) for k, v in terms.items()},
    }
