"""Pixel losses between a prediction and its target, `(B, C, H, W)` or any equal shapes.

All return the mean over every element, in the units of the image (L1, Charbonnier) or its
square (MSE).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PIXEL_LOSSES = ("l1", "mse", "charbonnier")


def _check_shapes(prediction: torch.Tensor, target: torch.Tensor) -> None:
    # F.l1_loss would broadcast (B, 1, H, W) against (B, H, W) with only a warning.
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction and target shapes differ: {tuple(prediction.shape)} "
            f"vs {tuple(target.shape)}"
        )


def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error, `mean(|p - t|)`."""
    _check_shapes(prediction, target)
    return F.l1_loss(prediction, target)


def mse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, `mean((p - t)^2)`."""
    _check_shapes(prediction, target)
    return F.mse_loss(prediction, target)


def charbonnier_loss(
    prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-3
) -> torch.Tensor:
    """Charbonnier loss, `mean(sqrt((p - t)^2 + eps^2))`: a differentiable L1.

    `eps` is in image units: errors much smaller than `eps` are penalised quadratically, much
    larger ones linearly. (Some codebases put `eps` un-squared under the root.)
    """
    _check_shapes(prediction, target)
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    return torch.sqrt((prediction - target).square() + eps * eps).mean()


def pixel_loss(
    kind: str, prediction: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-3
) -> torch.Tensor:
    """The pixel loss named `kind` (one of `PIXEL_LOSSES`); `eps` is Charbonnier's."""
    if kind == "l1":
        return l1_loss(prediction, target)
    if kind == "mse":
        return mse_loss(prediction, target)
    if kind == "charbonnier":
        return charbonnier_loss(prediction, target, eps)
    raise ValueError(f"unknown pixel loss {kind!r}; valid kinds: {PIXEL_LOSSES}")
