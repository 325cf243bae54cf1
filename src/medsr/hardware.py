"""What this machine computes fast, read in one place for training and inference."""

from __future__ import annotations

import torch


def native_bf16() -> bool:
    """True when this CPU has bf16 dot-product instructions (AVX512-BF16 or AMX tiles) and
    PyTorch was built with oneDNN, so bf16 convolutions beat float32 ones. Without them
    bf16 is emulated: a training step of the shipped CT config took over 10x the float32 time on
    an AVX2-only AMD EPYC."""
    cpu = torch.cpu
    hardware = cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported()
    return bool(torch.backends.mkldnn.is_available() and hardware)
