"""RRDBNet, the ESRGAN generator."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medsr.models.blocks import (
    LEAKY_SLOPE,
    RRDB,
    Configurable,
    check_input,
    check_int,
    check_scale,
    float32_conv,
    interpolated_input,
)

UPSAMPLERS = ("nearest-conv", "pixelshuffle")


class RRDBNet(Configurable):
    """RRDBNet: Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial
    Networks", ECCV Workshops 2018 (the ESRGAN generator).

    `(B, in_channels, H, W) -> (B, out_channels, sH, sW)` with `s = scale`.

    3x3 conv, `num_blocks` residual-in-residual dense blocks (no batch norm, residuals scaled
    by 0.2, dense-block convs initialised at 0.1 x Kaiming), a conv with a long skip,
    `log2(scale)` x2 upsampling stages, then conv + LeakyReLU + conv.

    Parameter names follow BasicSR's `RRDBNet` (`conv_first`, `body.N.rdbK.convJ`,
    `conv_body`, `conv_upK`, `conv_hr`, `conv_last`): at `scale=4`,
    `upsampler="nearest-conv"`, 3 channels in and out, ESRGAN / Real-ESRGAN x4 state dicts load.

    Args:
        in_channels: input channels (1 for CT or radiographs, 2 for CT + PET).
        out_channels: output channels.
        num_features: channels inside the network (64 in the paper).
        num_blocks: RRDB blocks (23 in the paper).
        growth_channels: channels each dense-block conv adds (32 in the paper).
        scale: 1 (denoising, no upsampling), 2, 4 or 8.
        upsampler: `"nearest-conv"` (nearest-neighbour x2 then 3x3 conv, as ESRGAN's code;
            avoids the checkerboard that PixelShuffle leaves on flat regions such as soft
            tissue) or `"pixelshuffle"` (conv to 4F channels then PixelShuffle).
        global_residual: add `blocks.interpolated_input(x, out_channels, scale)` (bicubic
            upsampling of the first `out_channels` input channels, or of their mean when the
            input has fewer) to the output, so the network learns only the missing detail.
    """

    float32_input = True  # the input convolution runs in float32 (blocks.float32_conv)

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 1,
        num_features: int = 64,
        num_blocks: int = 23,
        growth_channels: int = 32,
        scale: int = 4,
        upsampler: str = "nearest-conv",
        global_residual: bool = False,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("out_channels", out_channels)
        check_int("num_features", num_features)
        check_int("num_blocks", num_blocks)
        check_int("growth_channels", growth_channels)
        stages = check_scale(scale)
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        self._config: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "num_features": num_features,
            "num_blocks": num_blocks,
            "growth_channels": growth_channels,
            "scale": scale,
            "upsampler": upsampler,
            "global_residual": bool(global_residual),
        }
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.upsampler = upsampler
        self.global_residual = bool(global_residual)
        nf = num_features

        self.conv_first = nn.Conv2d(in_channels, nf, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(nf, growth_channels) for _ in range(num_blocks)))
        self.conv_body = nn.Conv2d(nf, nf, 3, padding=1)
        up_out = nf if upsampler == "nearest-conv" else 4 * nf
        # Flat names conv_up1, conv_up2, ... (not a container) keep BasicSR's key layout.
        self._up_names = [f"conv_up{k}" for k in range(1, stages + 1)]
        for name in self._up_names:
            self.add_module(name, nn.Conv2d(nf, up_out, 3, padding=1))
        self.conv_hr = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_last = nn.Conv2d(nf, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels)
        feat = float32_conv(self.conv_first, x)
        feat = feat + self.conv_body(self.body(feat))
        for name in self._up_names:
            conv = self.get_submodule(name)
            if self.upsampler == "nearest-conv":
                feat = conv(F.interpolate(feat, scale_factor=2, mode="nearest"))
            else:
                feat = F.pixel_shuffle(conv(feat), 2)
            feat = F.leaky_relu(feat, LEAKY_SLOPE)
        out = self.conv_last(F.leaky_relu(self.conv_hr(feat), LEAKY_SLOPE))
        if self.global_residual:
            out = out + interpolated_input(x, self.out_channels, self.scale)
        return out
