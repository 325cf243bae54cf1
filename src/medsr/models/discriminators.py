"""Discriminators for adversarial super-resolution training.

Both return logits (no sigmoid; the losses in `medsr.losses.adversarial` take logits) and
their intermediate activations for feature matching: `forward(x, return_features=True)`
gives `(logits, features)` in one pass, through `forward` so that wrappers such as
DistributedDataParallel see the call. `features(x)` returns the activations alone.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from medsr.models.blocks import LEAKY_SLOPE, Configurable, check_input, check_int

Features = list[torch.Tensor]


class Discriminator(Configurable):
    """Base of the discriminators: `forward(x, return_features=False)` and `features(x)`."""

    def features(self, x: torch.Tensor) -> Features:
        """The intermediate activations, `(B, F_k, H_k, W_k)` each, shallowest first."""
        features: Features = self(x, return_features=True)[1]
        return features


class _ConvBlock(nn.Module):
    """3x3 conv (stride 1 or 2), optional batch norm, LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, batch_norm: bool):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.act = nn.LeakyReLU(LEAKY_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class VGGDiscriminator(Discriminator):
    """VGG-style discriminator of SRGAN (Ledig et al., CVPR 2017, fig. 4).

    `(B, in_channels, H, W) -> (B, 1)`: one real-vs-fake logit per image, any H, W >= 16.

    Eight 3x3 conv blocks with LeakyReLU(0.2), features F, F, 2F, 2F, 4F, 4F, 8F, 8F, every
    second one with stride 2 (so H/16 x W/16 at the end), batch norm on all but the first
    when `batch_norm=True`. The paper then flattens a fixed 6x6 map into a dense layer, which
    ties it to 96x96 patches; here a global average pool feeds the dense head (8F -> 16F,
    LeakyReLU, 16F -> 1), so one network scores any patch size.

    Args:
        in_channels: image channels.
        num_features: channels F of the first block (64 in the paper).
        batch_norm: batch norm after the convs after the first, as in the paper.
    """

    min_size = 16

    def __init__(
        self, *, in_channels: int = 1, num_features: int = 64, batch_norm: bool = True
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_features", num_features)
        self._config: dict[str, Any] = {
            "in_channels": in_channels,
            "num_features": num_features,
            "batch_norm": bool(batch_norm),
        }
        self.in_channels = in_channels
        widths = [num_features * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        blocks, previous = [], in_channels
        for index, width in enumerate(widths):
            stride = 2 if index % 2 else 1
            blocks.append(_ConvBlock(previous, width, stride, batch_norm and index > 0))
            previous = width
        self.body = nn.ModuleList(blocks)
        self.head = nn.Sequential(
            nn.Linear(previous, 2 * previous),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(2 * previous, 1),
        )

    @overload
    def forward(self, x: torch.Tensor, return_features: Literal[False] = ...) -> torch.Tensor: ...
    @overload
    def forward(
        self, x: torch.Tensor, return_features: Literal[True]
    ) -> tuple[torch.Tensor, Features]: ...
    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Features]:
        check_input(x, self.in_channels, self.min_size)
        features: Features = []
        for block in self.body:
            x = block(x)
            features.append(x)
        logits = self.head(x.mean(dim=(-2, -1)))
        return (logits, features) if return_features else logits


class UNetDiscriminatorSN(Discriminator):
    """U-Net discriminator with spectral normalisation of Real-ESRGAN (Wang et al.,
    "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data",
    ICCV Workshops 2021, section 3.3).

    `(B, in_channels, H, W) -> (B, 1, H, W)`: one real-vs-fake logit per pixel.

    Three stride-2 4x4 convs down (F -> 2F -> 4F -> 8F), three bilinear x2 + conv stages up
    with skip connections, two extra convs and a 1-channel output conv; all convs but the
    first and last spectrally normalised (`torch.nn.utils.spectral_norm`, so the keys are
    `convK.weight_orig/_u/_v` as in BasicSR and Real-ESRGAN's discriminator weights load).
    H and W that are not multiples of 8 are padded by edge replication to the next multiple
    and the logits cropped back, so any patch size works (the features keep the padded size).

    Args:
        in_channels: image channels.
        num_features: channels F of the first conv (64 in Real-ESRGAN).
        skip_connection: add the encoder features to the decoder features (U-Net skips).
    """

    def __init__(
        self, *, in_channels: int = 1, num_features: int = 64, skip_connection: bool = True
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_features", num_features)
        self._config: dict[str, Any] = {
            "in_channels": in_channels,
            "num_features": num_features,
            "skip_connection": bool(skip_connection),
        }
        self.in_channels = in_channels
        self.skip_connection = bool(skip_connection)
        nf = num_features
        self.conv0 = nn.Conv2d(in_channels, nf, 3, padding=1)
        self.conv1 = spectral_norm(nn.Conv2d(nf, 2 * nf, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(2 * nf, 4 * nf, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(4 * nf, 8 * nf, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(8 * nf, 4 * nf, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(4 * nf, 2 * nf, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(2 * nf, nf, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, padding=1)

    @overload
    def forward(self, x: torch.Tensor, return_features: Literal[False] = ...) -> torch.Tensor: ...
    @overload
    def forward(
        self, x: torch.Tensor, return_features: Literal[True]
    ) -> tuple[torch.Tensor, Features]: ...
    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Features]:
        check_input(x, self.in_channels)
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % 8, -width % 8
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, LEAKY_SLOPE)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        x7 = act(self.conv7(x6))
        x8 = act(self.conv8(x7))
        logits = self.conv9(x8)[..., :height, :width]
        return (logits, [x0, x1, x2, x3, x4, x5, x6, x7, x8]) if return_features else logits
