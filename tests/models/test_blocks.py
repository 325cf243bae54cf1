"""Shared layers: the PReLU with a faster CPU inference path in reduced precision."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medsr.models.blocks import PReLU

pytestmark = pytest.mark.usefixtures("one_thread")


def _activation(slopes: tuple[float, float] = (-0.5, 1.0)) -> tuple[PReLU, torch.nn.PReLU]:
    """Ours and torch's with the same slopes (negative, zero, small, one), channels-last."""
    ours, theirs = PReLU(6), torch.nn.PReLU(6)
    with torch.no_grad():
        ours.weight.copy_(torch.linspace(*slopes, 6))
        theirs.weight.copy_(ours.weight)
    return ours, theirs


def _input(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    x = torch.randn(3, 6, 9, 7, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, :3] = torch.tensor([0.0, -0.0, 1e-30])
    return x.to(dtype).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("slopes", [(-0.5, 1.0), (0.5, 1.7)])  # the fast path, the fallback
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_inference_gives_torch_prelus_numbers_bit_for_bit(
    dtype: torch.dtype, slopes: tuple[float, float]
) -> None:
    ours, theirs = _activation(slopes)
    ours, theirs = ours.to(dtype), theirs.to(dtype)  # torch's PReLU wants the input's dtype
    x = _input(dtype)
    with torch.inference_mode():
        assert torch.equal(ours(x), F.prelu(x, theirs.weight))


def test_inside_autocast_it_computes_in_the_autocast_dtype_as_torch_does() -> None:
    ours, theirs = _activation()
    x = _input()  # float32, as after the float32 input convolution
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        mine, reference = ours(x), theirs(x)
    assert mine.dtype == reference.dtype == torch.bfloat16
    assert torch.equal(mine, reference)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_training_gives_torch_prelus_gradients(dtype: torch.dtype) -> None:
    ours, theirs = _activation()
    grads = []
    for module in (ours.to(dtype), theirs.to(dtype)):  # torch's wants the input's dtype
        x = _input(dtype).requires_grad_()
        module(x).float().square().sum().backward()
        assert x.grad is not None and module.weight.grad is not None
        grads.append((x.grad, module.weight.grad.float()))
    (ours_x, ours_w), (theirs_x, theirs_w) = grads
    assert torch.equal(ours_x, theirs_x)
    assert torch.equal(ours_w, theirs_w)


def test_the_parameter_name_of_shipped_checkpoints_is_kept() -> None:
    assert list(PReLU(4).state_dict()) == list(torch.nn.PReLU(4).state_dict()) == ["weight"]
