"""`medsr.hardware`: one rule for what `precision: auto` means, in training and inference."""

from __future__ import annotations

import pytest
import torch

from medsr import hardware


def test_a_cuda_device_has_native_bf16_only_where_torch_says_it_supports_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert hardware.native_bf16("cuda") and hardware.auto_precision("cuda") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert not hardware.native_bf16(torch.device("cuda:0"))
    assert hardware.auto_precision("cuda") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.auto_precision("cuda") == "fp32"  # no GPU: nothing to ask


def test_a_cpu_has_native_bf16_only_with_the_instructions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert hardware.auto_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert hardware.auto_precision("cpu") == (
        "bf16" if torch.backends.mkldnn.is_available() else "fp32"
    )


def test_other_devices_stay_in_float32() -> None:
    assert hardware.auto_precision("meta") == "fp32"
