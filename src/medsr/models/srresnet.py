"""SRResNet, the SRGAN generator."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from medsr.models.blocks import (
    Configurable,
    PixelShuffleUpsample,
    PReLU,
    ResidualBlock,
    check_input,
    check_int,
    check_scale,
    float32_conv,
    icnr_init,
    interpolated_input,
)

SRRESNET_UPSAMPLERS = ("progressive", "subpixel")


class SRResNet(Configurable):
    """SRResNet: Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
    Adversarial Network", CVPR 2017 (the SRGAN generator).

    `(B, in_channels, H, W) -> (B, out_channels, sH, sW)` with `s = scale`.

    9x9 conv + PReLU, `num_blocks` residual blocks (conv-BN-PReLU-conv-BN), a conv(-BN) with a
    long skip over the blocks, `log2(scale)` x2 PixelShuffle stages, and a 9x9 output conv.

    Args:
        in_channels: input channels (1 for CT or radiographs, 2 for CT + PET).
        out_channels: output channels.
        num_features: channels inside the network (64 in the paper).
        num_blocks: residual blocks (16 in the paper).
        scale: 1 (denoising, no upsampling), 2, 4 or 8.
        batch_norm: batch norm in the residual blocks as in the paper; `False` drops it
            (EDSR, Lim et al. 2017), which avoids BN's train/eval shift on intensity images.
        global_residual: add `blocks.interpolated_input(x, out_channels, scale)` (bicubic
            upsampling of the first `out_channels` input channels, or of their mean when the
            input has fewer) to the output, so the network learns only the missing detail.
        upsampler: `"progressive"` (the paper: `log2(scale)` x2 PixelShuffle stages with
            `num_features` channels, then the 9x9 output conv on the high grid) or
            `"subpixel"` (ESPCN, Shi et al. 2016: one 3x3 conv on the low grid to
            `out_channels * scale^2` channels and one PixelShuffle(scale)). `subpixel` does all
            its work on the low grid (about 3x fewer FLOPs at x4 with 32 features); its last
            conv starts ICNR-initialised (Aitken et al. 2017) so it starts free of the
            sub-pixel checkerboard.
        unshuffle: 1, or 2 for FFDNet's layout (Zhang et al. 2018) at `scale=1`: the input is
            split into its 2x2 sub-images (PixelUnshuffle, 4x the channels on a grid half as
            wide), the whole network runs on that grid (4x fewer FLOPs for the same receptive
            field in pixels of the image) and a PixelShuffle(2) puts the output back on the
            input grid, before the global residual.
    """

    float32_input = True  # the input convolution runs in float32 (blocks.float32_conv)

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 1,
        num_features: int = 64,
        num_blocks: int = 16,
        scale: int = 4,
        batch_norm: bool = True,
        global_residual: bool = False,
        upsampler: str = "progressive",
        unshuffle: int = 1,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("out_channels", out_channels)
        check_int("num_features", num_features)
        check_int("num_blocks", num_blocks)
        stages = check_scale(scale)
        if upsampler not in SRRESNET_UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {SRRESNET_UPSAMPLERS}, got {upsampler!r}")
        if unshuffle not in (1, 2) or (unshuffle == 2 and scale != 1):
            raise ValueError(f"unshuffle must be 1, or 2 with scale 1; got {unshuffle!r}")
        self._config: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "num_features": num_features,
            "num_blocks": num_blocks,
            "scale": scale,
            "batch_norm": bool(batch_norm),
            "global_residual": bool(global_residual),
        }
        if upsampler != "progressive":  # the shipped progressive checkpoints lack the key
            self._config["upsampler"] = upsampler
        if unshuffle != 1:  # nor the unshuffle key
            self._config["unshuffle"] = unshuffle
        self.unshuffle = unshuffle
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.global_residual = bool(global_residual)

        grid = unshuffle**2  # channels per input channel on the network's grid
        self.conv_first = nn.Conv2d(in_channels * grid, num_features, 9, padding=4)
        self.act_first = PReLU(num_features)
        self.body = nn.Sequential(
            *(ResidualBlock(num_features, batch_norm) for _ in range(num_blocks))
        )
        self.conv_body = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.bn_body = nn.BatchNorm2d(num_features) if batch_norm else nn.Identity()
        if upsampler == "progressive":
            self.upsample: nn.Module = nn.Sequential(
                *(PixelShuffleUpsample(num_features) for _ in range(stages))
            )
            self.conv_last: nn.Module = nn.Conv2d(num_features, out_channels * grid, 9, padding=4)
        else:
            self.upsample = nn.Identity()
            subpixel = nn.Conv2d(num_features, out_channels * scale**2, 3, padding=1)
            icnr_init(subpixel, scale)
            self.conv_last = nn.Sequential(subpixel, nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels)
        if self.unshuffle != 1:
            height, width = x.shape[-2:]
            padded = _pad_to_multiple(x, self.unshuffle)
            grid = F.pixel_unshuffle(padded, self.unshuffle)
            feat = self.act_first(float32_conv(self.conv_first, grid))
        else:
            feat = self.act_first(float32_conv(self.conv_first, x))
        feat = feat + self.bn_body(self.conv_body(self.body(feat)))
        out = self.conv_last(self.upsample(feat))
        if self.unshuffle != 1:
            out = F.pixel_shuffle(out, self.unshuffle)[..., :height, :width]
        if self.global_residual:
            out = out + interpolated_input(x, self.out_channels, self.scale)
        return out


def _pad_to_multiple(x: torch.Tensor, factor: int) -> torch.Tensor:
    """`x` with its last row / column mirrored until height and width divide by `factor`."""
    pad_h, pad_w = -x.shape[-2] % factor, -x.shape[-1] % factor
    if not (pad_h or pad_w):
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
