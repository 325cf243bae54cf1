"""What this machine computes fast, read in one place for training and inference."""

from __future__ import annotations

import torch


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """True when `device` computes bf16 in hardware: a CPU with bf16 dot-product instructions
    (AVX512-BF16 or AMX tiles) and PyTorch built with oneDNN, or a CUDA GPU with bf16 support.
    Without them bf16 is emulated: a training step of the shipped CT config took over 10x
    the float32 time on an AVX2-only AMD EPYC."""
    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind != "cpu":
        return False
    cpu = torch.cpu
    hardware = cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported()
    return bool(torch.backends.mkldnn.is_available() and hardware)


def auto_precision(device: torch.device | str) -> str:
    """What `precision: auto` means on `device`, for training and inference alike: "bf16"
    (autocast) where it computes bf16 natively (`native_bf16`), else "fp32"."""
    return "bf16" if native_bf16(device) else "fp32"
