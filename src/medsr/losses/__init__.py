"""Training losses for super-resolution GANs: pixel, adversarial and feature-space losses."""

from __future__ import annotations

from medsr.losses.adversarial import (
    ADVERSARIAL_KINDS,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
)
from medsr.losses.perceptual import (
    VGG19_LAYERS,
    FeatureMatchingLoss,
    PerceptualLoss,
    VGG19Features,
    feature_matching_loss,
    load_vgg19_weights,
)
from medsr.losses.pixel import (
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

__all__ = [
    "ADVERSARIAL_KINDS",
    "PIXEL_LOSSES",
    "VGG19_LAYERS",
    "FeatureMatchingLoss",
    "PerceptualLoss",
    "VGG19Features",
    "band_pixel_loss",
    "charbonnier_loss",
    "discriminator_adversarial_loss",
    "feature_matching_loss",
    "gaussian_lowpass",
    "generator_adversarial_loss",
    "grid_loss",
    "l1_loss",
    "load_vgg19_weights",
    "mse_loss",
    "pixel_loss",
    "window_weights",
]
