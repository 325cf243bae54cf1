"""CT-guided PET super-resolution: a two-input generator packed into one tensor.

The model takes the low-resolution PET `(B, in_channels, h, w)` and the CT on the target
grid `(B, guide_channels, sh, sw)` (`s = scale`). Both travel as one tensor on the PET grid,
the CT folded into `s^2` channels per guide channel by `pixel_unshuffle` (lossless and
aligned with area downsampling: PET pixel `i` covers CT pixels `s i .. s i + s - 1`):

    packed = pack_inputs(pet_low, ct, scale)          # (B, in_channels + guide_channels s^2, h, w)
    high = model(packed)                              # (B, out_channels, s h, s w)
    high = model.fuse(ct, pet_low)                    # the same, packing for you

So the training loop, EMA, checkpoints and ONNX export see the usual `model(x)` contract.
The packed input has more channels than `in_channels`, so the model is not in `GENERATORS`
(whose tests feed `(B, in_channels, h, w)`) but in `FUSION_GENERATORS`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medsr.models.blocks import (
    Configurable,
    PixelShuffleUpsample,
    PReLU,
    ResidualBlock,
    check_int,
    check_scale,
    float32_conv,
)


def pack_inputs(pet_low: torch.Tensor, ct: torch.Tensor, scale: int) -> torch.Tensor:
    """`(B, C, h, w)` PET and `(B, G, s h, s w)` CT -> `(B, C + G s^2, h, w)` (PET first)."""
    if pet_low.ndim != 4 or ct.ndim != 4:
        raise ValueError(
            f"pet_low and ct must be (B, C, H, W), got {tuple(pet_low.shape)} and {tuple(ct.shape)}"
        )
    expected = (pet_low.shape[0], pet_low.shape[-2] * scale, pet_low.shape[-1] * scale)
    if (ct.shape[0], *ct.shape[-2:]) != expected:
        raise ValueError(
            f"ct {tuple(ct.shape)} must be {scale}x the PET grid "
            f"{tuple(pet_low.shape)} with the same batch"
        )
    folded = F.pixel_unshuffle(ct, scale) if scale > 1 else ct
    return torch.cat([pet_low, folded.to(pet_low.dtype)], dim=1)


def unpack_inputs(
    packed: torch.Tensor, in_channels: int, guide_channels: int, scale: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `pack_inputs`: `(pet_low (B, C, h, w), ct (B, G, s h, s w))`."""
    expected = in_channels + guide_channels * scale**2
    if packed.ndim != 4 or packed.shape[1] != expected:
        raise ValueError(
            f"expected a packed (B, {expected}, h, w) tensor ({in_channels} PET + "
            f"{guide_channels} x {scale}^2 CT channels), got "
            f"{tuple(packed.shape)}"
        )
    pet, folded = packed[:, :in_channels], packed[:, in_channels:]
    return pet, F.pixel_shuffle(folded, scale) if scale > 1 else folded


class PetCtFusion(Configurable):
    """CT-guided PET super-resolution network (after the guided-SR designs of Song et al.,
    "PET image super-resolution using generative adversarial networks", Neural Networks
    2020, and the SRResNet body of Ledig et al. 2017).

    Packed `(B, in_channels + guide_channels s^2, h, w) -> (B, out_channels, s h, s w)`
    (module doc). A residual body (`num_blocks` EDSR blocks, no batch norm) works on the PET
    grid, where it sees the PET and the folded CT; `log2(scale)` PixelShuffle stages bring
    its features to the CT grid; a fusion head of three 3x3 convolutions there combines them
    with features of the full-resolution CT, so edges come from the CT and levels from the
    PET. With `global_residual` the bicubic upsampling of the PET is added to the output.

    Args:
        in_channels: PET channels (1).
        out_channels: output channels (1).
        guide_channels: CT channels (e.g. 2: a wide and a brain window of the same CT).
        num_features: channels inside the network.
        num_blocks: residual blocks on the PET grid.
        scale: 1, 2, 4 or 8 (CT pixels per PET pixel along each axis).
        global_residual: add the bicubic-upsampled PET to the output.
    """

    float32_input = True  # the input convolution runs in float32 (blocks.float32_conv)

    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 1,
        guide_channels: int = 2,
        num_features: int = 32,
        num_blocks: int = 6,
        scale: int = 4,
        global_residual: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("guide_channels", guide_channels),
            ("num_features", num_features),
            ("num_blocks", num_blocks),
        ):
            check_int(name, value)
        stages = check_scale(scale)
        self._config: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "guide_channels": guide_channels,
            "num_features": num_features,
            "num_blocks": num_blocks,
            "scale": scale,
            "global_residual": bool(global_residual),
        }
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.guide_channels, self.global_residual = guide_channels, bool(global_residual)
        packed = in_channels + guide_channels * scale**2
        nf, ng = num_features, max(num_features // 2, 1)
        self.conv_first = nn.Conv2d(packed, nf, 3, padding=1)
        self.act_first = PReLU(nf)
        self.body = nn.Sequential(*(ResidualBlock(nf, batch_norm=False) for _ in range(num_blocks)))
        self.conv_body = nn.Conv2d(nf, nf, 3, padding=1)
        self.upsample = nn.Sequential(*(PixelShuffleUpsample(nf) for _ in range(stages)))
        self.conv_guide = nn.Conv2d(guide_channels, ng, 3, padding=1)
        self.act_guide = PReLU(ng)
        self.conv_fuse = nn.Conv2d(nf + ng, nf, 3, padding=1)
        self.act_fuse = PReLU(nf)
        self.conv_refine = nn.Conv2d(nf, nf, 3, padding=1)
        self.act_refine = PReLU(nf)
        self.conv_last = nn.Conv2d(nf, out_channels, 3, padding=1)

    @property
    def packed_channels(self) -> int:
        """Channels of the packed input: `in_channels + guide_channels * scale^2`."""
        return self.in_channels + self.guide_channels * self.scale**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pet, ct = unpack_inputs(x, self.in_channels, self.guide_channels, self.scale)
        feat = self.act_first(float32_conv(self.conv_first, x))
        feat = feat + self.conv_body(self.body(feat))
        feat = self.upsample(feat)
        guide = self.act_guide(self.conv_guide(ct))
        feat = self.act_fuse(self.conv_fuse(torch.cat([feat, guide], dim=1)))
        out = self.conv_last(self.act_refine(self.conv_refine(feat)))
        if self.global_residual:
            base = (
                pet[:, : self.out_channels]
                if self.in_channels >= self.out_channels
                else (pet.mean(dim=1, keepdim=True).expand(-1, self.out_channels, -1, -1))
            )
            if self.scale > 1:
                base = F.interpolate(
                    base, scale_factor=self.scale, mode="bicubic", align_corners=False
                )
            out = out + base
        return out

    def fuse(self, ct: torch.Tensor, pet_low: torch.Tensor) -> torch.Tensor:
        """`(B, G, s h, s w)` CT and `(B, C, h, w)` PET (model units) -> `(B, O, s h, s w)`."""
        return self(pack_inputs(pet_low, ct, self.scale))
