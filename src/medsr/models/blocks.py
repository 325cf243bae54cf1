"""Layers shared by the generators and discriminators, and argument checks.

Blocks keep the spatial size: `(B, F, H, W) -> (B, F, H, W)` unless stated otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SCALES = (1, 2, 4, 8)
"""Upscaling factors of the generators: 1 is pure denoising, 2/4/8 are one/two/three x2 stages."""

LEAKY_SLOPE = 0.2
"""Negative slope of every LeakyReLU (ESRGAN and SRGAN discriminator)."""


class Configurable(nn.Module):
    """An `nn.Module` that keeps its constructor arguments: `type(m)(**m.config())` rebuilds
    the architecture, so a checkpoint holding `config()` and the state dict is self-contained."""

    _config: dict[str, Any]

    def config(self) -> dict[str, Any]:
        """The constructor arguments, as plain Python values."""
        return dict(self._config)


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Return `value` if it is an int (not a bool) >= `minimum`; else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_scale(scale: object) -> int:
    """Return the number of x2 upsampling stages for `scale` (0 for 1, 3 for 8)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return int(math.log2(scale))


def check_input(x: torch.Tensor, in_channels: int, min_size: int = 1) -> None:
    """Raise ValueError unless `x` is `(B, in_channels, H, W)` with H, W >= `min_size`."""
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"expected a (B, {in_channels}, H, W) tensor, got shape {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"H and W must be >= {min_size}, got {tuple(x.shape[-2:])}")


def float32_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)` computed in the weights' dtype with autocast off: a generator's input
    convolution sees the image unrounded inside a bf16 / fp16 autocast region, in training
    as at inference, and the layers after it are autocast as usual.

    bf16 keeps 8 bits of mantissa: cast to it, the input image itself is quantised to about
    0.4 % of its value (1.6 HU on the x1 CT window, 0.004 of a radiograph's range near
    white) before the network sees it. The input convolution is ~1 % of a shipped
    generator's FLOPs; in float32 it gave back what bf16 lost on RG3 (`xray-x2`, Gaussian
    LR: 51.32 dB in bf16, 51.93 with it, 51.94 in float32; the last convolution in float32
    as well: 51.93). A model trained in bf16 this way learns on the same input it meets in
    float32. Outside autocast it is `conv(x)`."""
    with torch.autocast(x.device.type, enabled=False):
        return conv(x.to(conv.weight.dtype))


def scaled_kaiming_init(module: nn.Module, factor: float) -> None:
    """Kaiming-normal init of `module`'s convolutions scaled by `factor`, biases zero.

    ESRGAN (Wang et al. 2018, section 3.3) uses `factor=0.1` inside the dense blocks: small
    residual branches make the very deep RRDB stack start close to the identity.
    """
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(factor)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)


class PReLU(nn.PReLU):
    """`nn.PReLU` (the same `weight` parameter, the same numbers) with a faster CPU path for
    inference in reduced precision.

    Without gradients, on the CPU, a bf16 / fp16 input (or any input inside autocast, which
    casts PReLU to its lower precision) is computed as `max(x, w * x)`: equal to PReLU bit
    for bit while every slope w <= 1 (x > 0: x >= w x; x < 0: w x >= x; the product is
    rounded as PReLU rounds it). PyTorch's PReLU kernel in bf16 on channels-last tensors
    took 16 % of `xray-x4`'s 128 -> 512 call; with this path (interleaved in one process,
    2 threads, idle machine) 128 -> 512 went 60-62 -> 54-56 ms, 512 -> 2048 1026 -> 935 ms
    and `ct-ldct` 512^2 346 -> 328 ms, the outputs identical. With gradients the maximum's
    backward is slower than PReLU's (`xray-x4` bf16 training step 235 -> 293 ms), so
    training keeps `F.prelu`, as do float32 (its kernel is fast), other devices and slopes
    above 1 (BENCHMARKS.md, "Inference speed")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.device.type != "cpu":
            return F.prelu(x, self.weight)
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        if dtype == torch.float32 or not bool((self.weight <= 1).all()):
            return F.prelu(x, self.weight)
        slope = self.weight.to(dtype).view(1, -1, *([1] * (x.ndim - 2)))
        x = x.to(dtype)
        return torch.maximum(x, x * slope)


class ResidualBlock(nn.Module):
    """SRGAN residual block (Ledig et al. 2017, fig. 4): conv-BN-PReLU-conv-BN plus the input.

    With `batch_norm=False` the BN layers are identities (EDSR-style) and have no parameters.
    """

    def __init__(self, num_features: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(num_features) if batch_norm else nn.Identity()
        self.act = PReLU(num_features)
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(num_features) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class PixelShuffleUpsample(nn.Module):
    """x2 sub-pixel upsampling (Shi et al. 2016): conv to 4F channels, PixelShuffle, PReLU.

    `(B, F, H, W) -> (B, F, 2H, 2W)`.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_features, 4 * num_features, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = PReLU(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class ResidualDenseBlock(nn.Module):
    """ESRGAN residual dense block: five densely connected 3x3 convs, output scaled by 0.2.

    Conv `k` sees the input and the `growth_channels` outputs of the `k - 1` convs before it.
    """

    def __init__(
        self, num_features: int, growth_channels: int, residual_scale: float = 0.2
    ) -> None:
        super().__init__()
        self.residual_scale = residual_scale
        nf, gc = num_features, growth_channels
        self.conv1 = nn.Conv2d(nf, gc, 3, padding=1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, padding=1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, padding=1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, padding=1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, padding=1)
        scaled_kaiming_init(self, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            features.append(F.leaky_relu(conv(torch.cat(features, dim=1)), LEAKY_SLOPE))
        return x + self.residual_scale * self.conv5(torch.cat(features, dim=1))


class RRDB(nn.Module):
    """ESRGAN residual-in-residual dense block: three dense blocks, outer residual scaled 0.2."""

    def __init__(
        self, num_features: int, growth_channels: int, residual_scale: float = 0.2
    ) -> None:
        super().__init__()
        self.residual_scale = residual_scale
        self.rdb1 = ResidualDenseBlock(num_features, growth_channels, residual_scale)
        self.rdb2 = ResidualDenseBlock(num_features, growth_channels, residual_scale)
        self.rdb3 = ResidualDenseBlock(num_features, growth_channels, residual_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual_scale * self.rdb3(self.rdb2(self.rdb1(x)))


def icnr_init(conv: nn.Conv2d, scale: int) -> None:
    """ICNR (Aitken et al. 2017): the `C * s^2` output channels of `conv`, before a
    PixelShuffle(s), start as `s^2` copies of `C` kernels, so the shuffled output starts as a
    nearest-neighbour upsampling, free of the sub-pixel checkerboard."""
    out_channels = conv.out_channels // scale**2
    base = torch.empty(out_channels, *conv.weight.shape[1:])
    nn.init.kaiming_normal_(base)
    with torch.no_grad():
        conv.weight.copy_(base.repeat_interleave(scale**2, dim=0) * 0.1)
        if conv.bias is not None:
            conv.bias.zero_()


def interpolated_input(x: torch.Tensor, out_channels: int, scale: int) -> torch.Tensor:
    """The image a generator with `global_residual=True` adds to its output.

    `(B, C, H, W) -> (B, out_channels, sH, sW)`: the first `out_channels` input channels when
    `C >= out_channels` (so a CT + PET input super-resolving the CT puts the CT first), else
    the channel mean repeated `out_channels` times; then bicubic upsampling by `scale` with
    `align_corners=False` (the grid of `medsr.physics.resize`), none at scale 1.
    """
    if x.shape[1] >= out_channels:
        base = x[:, :out_channels]
    else:
        base = x.mean(dim=1, keepdim=True).expand(-1, out_channels, -1, -1)
    if scale == 1:
        return base
    return F.interpolate(base, scale_factor=scale, mode="bicubic", align_corners=False)
