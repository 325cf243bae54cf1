"""Pixel losses between a prediction and its target, `(B, C, H, W)` or any equal shapes.

All return the mean over every element, in the units of the image (L1, Charbonnier) or its
square (MSE).
"""

from __future__ import annotations

import torch

from medsr.image import gaussian_blur

PIXEL_LOSSES = ("l1", "mse", "charbonnier")


def _check_shapes(prediction: torch.Tensor, target: torch.Tensor) -> None:
    # an elementwise difference would broadcast (B, 1, H, W) against (B, H, W) silently.
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction and target shapes differ: {tuple(prediction.shape)} "
            f"vs {tuple(target.shape)}"
        )


def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error, `mean(|p - t|)`."""
    return pixel_loss("l1", prediction, target)


def mse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, `mean((p - t)^2)`."""
    return pixel_loss("mse", prediction, target)


def charbonnier_loss(
    prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-3
) -> torch.Tensor:
    """Charbonnier loss, `mean(sqrt((p - t)^2 + eps^2))`: a differentiable L1.

    `eps` is in image units: errors much smaller than `eps` are penalised quadratically, much
    larger ones linearly. (Some codebases put `eps` un-squared under the root.)
    """
    return pixel_loss("charbonnier", prediction, target, eps=eps)


def grid_loss(prediction: torch.Tensor, target: torch.Tensor, period: int) -> torch.Tensor:
    """The energy of the error's period-`period` pattern: `mean((m_ij - mean(e))^2)` where
    `e = p - t` and `m_ij` is the mean of `e` over the pixels at `(i, j)` modulo `period`.

    By Parseval this is the part of the MSE at the frequencies `k / period` cycles/pixel
    (k = 0..period-1, not (0, 0)) of each `(H, W)` image, a period-`period` grid such as a
    x`period` upsampler can print; the MSE counts it once among all frequencies, so adding
    this term with a weight w counts it 1 + w times. `H` and `W` must be multiples of
    `period`; 0 for `period` 1.
    """
    _check_shapes(prediction, target)
    height, width = prediction.shape[-2:]
    if period < 1 or height % period or width % period:
        raise ValueError(f"period must be >= 1 and divide {height} x {width}, got {period!r}")
    error = (prediction - target).reshape(-1, height // period, period, width // period, period)
    phases = error.mean(dim=(1, 3))  # (N, period, period)
    return (phases - phases.mean(dim=(1, 2), keepdim=True)).square().mean()


def window_weights(target: torch.Tensor, outside: float) -> torch.Tensor:
    """Per-element weights: 1 where `target` lies in [0, 1] (inside the normalisation's
    window, e.g. the soft tissue of a CT window), `outside` elsewhere (air and bone there)."""
    if not outside > 0:
        raise ValueError(f"outside must be > 0, got {outside!r}")
    inside = (target >= 0) & (target <= 1)
    return torch.where(inside, 1.0, float(outside)).to(target.dtype)


def pixel_loss(
    kind: str,
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    eps: float = 1e-3,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The pixel loss named `kind` (one of `PIXEL_LOSSES`); `eps` is Charbonnier's. With
    `weights` (the shape of `target`, > 0) the weighted mean `sum(w l) / sum(w)` of the
    per-element loss instead of the mean."""
    if kind not in PIXEL_LOSSES:
        raise ValueError(f"unknown pixel loss {kind!r}; valid kinds: {PIXEL_LOSSES}")
    _check_shapes(prediction, target)
    error = prediction - target
    if kind == "l1":
        values = error.abs()
    elif kind == "mse":
        values = error.square()
    else:
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        values = torch.sqrt(error.square() + eps * eps)
    if weights is None:
        return values.mean()
    if weights.shape != target.shape:
        raise ValueError(f"weights {tuple(weights.shape)} differ from {tuple(target.shape)}")
    return (values * weights).sum() / weights.sum()


def gaussian_lowpass(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """`medsr.image.gaussian_blur` (SD `sigma` pixels, edges replicated) in float32 with
    autocast off: a bf16 loss would round the target to 0.4 % of its value (1.6 HU on the x1
    CT window). `sigma` 0 returns `image`."""
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    if sigma == 0:
        return image
    with torch.autocast(image.device.type, enabled=False):
        return gaussian_blur(image.float(), sigma)


def band_pixel_loss(
    kind: str,
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    lowpass_sigma: float,
    highpass_weight: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """`pixel_loss` of the images' low band (`gaussian_lowpass`, SD `lowpass_sigma`) plus
    `highpass_weight` times that of the rest (image minus its low band).

    For a GAN whose target holds noise no model can predict (a full-dose CT's own grain): the
    pixel loss keeps the content below ~0.19 / `lowpass_sigma` cycles/pixel (where the
    Gaussian passes half) and weighs the fine band less, so that the adversarial and feature
    terms, not the regression to the mean, shape the texture there. `lowpass_sigma` 0 is
    `pixel_loss` itself."""
    if lowpass_sigma == 0:
        return pixel_loss(kind, prediction, target, weights=weights)
    if not highpass_weight >= 0:
        raise ValueError(f"highpass_weight must be >= 0, got {highpass_weight!r}")
    low_prediction = gaussian_lowpass(prediction, lowpass_sigma)
    low_target = gaussian_lowpass(target, lowpass_sigma)
    loss = pixel_loss(kind, low_prediction, low_target, weights=weights)
    if highpass_weight > 0:
        high_band = pixel_loss(
            kind, prediction - low_prediction, target - low_target, weights=weights
        )
        loss = loss + highpass_weight * high_band
    return loss
