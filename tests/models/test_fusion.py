"""The CT + PET fusion generator: packing, shapes, gradients, arguments, bicubic residual."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from medsr.models import (
    FUSION_GENERATORS,
    GENERATORS,
    PetCtFusion,
    build_generator,
    pack_inputs,
    unpack_inputs,
)

TINY: dict[str, Any] = {"num_features": 8, "num_blocks": 1}


pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(scale: int, guide: int = 2, size: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(scale)
    pet = torch.rand(2, 1, size, size, generator=g)
    ct = torch.rand(2, guide, size * scale, size * scale, generator=g)
    return pet, ct


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_pack_unpack_round_trip_and_alignment(scale: int) -> None:
    pet, ct = _inputs(scale)
    packed = pack_inputs(pet, ct, scale)
    assert packed.shape == (2, 1 + 2 * scale**2, 5, 5)
    back_pet, back_ct = unpack_inputs(packed, 1, 2, scale)
    assert torch.equal(back_pet, pet) and torch.equal(back_ct, ct)
    # PET pixel (i, j) carries the CT block it covers: its mean is the area downsample.
    block_mean = packed[:, 1 : 1 + scale**2].mean(dim=1)
    assert torch.allclose(block_mean, F.avg_pool2d(ct[:, :1], scale)[:, 0], atol=1e-6)


def test_pack_rejects_misaligned_grids() -> None:
    pet, ct = _inputs(4)
    with pytest.raises(ValueError, match="4x the PET grid"):
        pack_inputs(pet, ct[..., :-1], 4)
    with pytest.raises(ValueError, match="expected a packed"):
        unpack_inputs(pack_inputs(pet, ct, 4), 1, 1, 4)


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_shape_finite_and_gradients(scale: int) -> None:
    torch.manual_seed(0)
    model = PetCtFusion(scale=scale, **TINY)
    pet, ct = _inputs(scale)
    out = model.fuse(ct, pet)
    assert out.shape == (2, 1, 5 * scale, 5 * scale) and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_is_apart_from_single_input_generators_and_rebuilds_from_config() -> None:
    assert "petct-fusion" in FUSION_GENERATORS and "petct-fusion" not in GENERATORS
    model = PetCtFusion(guide_channels=1, **TINY)
    assert model.packed_channels == 1 + 16
    rebuilt = build_generator("petct-fusion", **model.config())
    rebuilt.load_state_dict(model.state_dict())
    pet, ct = _inputs(4, guide=1)
    assert isinstance(rebuilt, PetCtFusion)
    assert torch.equal(rebuilt.fuse(ct, pet), model.fuse(ct, pet))


def test_global_residual_is_bicubic_pet_when_the_head_is_zero() -> None:
    model = PetCtFusion(**TINY).eval()
    with torch.no_grad():
        for parameter in model.conv_last.parameters():
            parameter.zero_()
    pet, ct = _inputs(4)
    expected = F.interpolate(pet, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(model.fuse(ct, pet), expected, atol=1e-6)
    # ... and the CT changes nothing then; with a live head it does.
    assert torch.allclose(model.fuse(ct * 0, pet), expected, atol=1e-6)
    live = PetCtFusion(**TINY).eval()
    assert not torch.allclose(live.fuse(ct, pet), live.fuse(ct * 0, pet))


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("scale", 3),
        ("scale", True),
        ("num_features", 0),
        ("num_blocks", 0),
        ("in_channels", 0),
        ("guide_channels", 0),
        ("out_channels", -1),
    ],
)
def test_constructor_rejects(argument: str, value: object) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        PetCtFusion(**{**TINY, argument: value})
    assert repr(value) in str(info.value)
