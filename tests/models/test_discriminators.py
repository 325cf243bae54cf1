"""Every entry of DISCRIMINATORS on several patch sizes: logits, features, gradients."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from medsr.models import (
    DISCRIMINATORS,
    UNetDiscriminatorSN,
    VGGDiscriminator,
    build_discriminator,
)

TINY: dict[str, Any] = {"num_features": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


def _patch(size: int, channels: int = 1, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(size))


@pytest.mark.parametrize("size", [16, 24, 40])
@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
def test_logits_features_and_gradients(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = build_discriminator(name, **TINY)
    logits, features = model(_patch(size), return_features=True)
    assert logits.shape[:2] == (2, 1)
    assert torch.isfinite(logits).all()
    assert len(features) >= 4
    model.eval()  # in training mode spectral norm takes a power-iteration step per call
    assert torch.equal(model(_patch(size)), model(_patch(size), return_features=True)[0])
    assert all(f.shape[0] == 2 and torch.isfinite(f).all() for f in features)
    (logits.mean() + sum(f.mean() for f in features)).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
def test_two_channel_input_and_config(name: str) -> None:
    model = build_discriminator(name, in_channels=2, **TINY)
    assert model.config()["in_channels"] == 2
    rebuilt = type(model)(**model.config())
    rebuilt.load_state_dict(model.state_dict())
    assert model(_patch(16, channels=2)).shape[0] == 2
    with pytest.raises(ValueError, match="expected a"):
        model(_patch(16, channels=1))


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
@pytest.mark.parametrize(("argument", "value"), [("num_features", 0), ("in_channels", -2)])
def test_constructor_rejects(name: str, argument: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{argument}.*{value}"):
        build_discriminator(name, **{argument: value})


def test_build_discriminator_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="patchgan") as info:
        build_discriminator("patchgan")
    for name in DISCRIMINATORS:
        assert name in str(info.value)


@pytest.mark.parametrize("size", [16, 24, 48])
def test_vgg_one_logit_per_image_any_size(size: int) -> None:
    model = VGGDiscriminator(**TINY)
    features = model.features(_patch(size))
    assert model(_patch(size)).shape == (2, 1)
    assert len(features) == 8
    assert features[-1].shape == (2, 64, -(-size // 16), -(-size // 16))


def test_vgg_batch_norm_switch_and_min_size() -> None:
    with_bn = VGGDiscriminator(batch_norm=True, **TINY)
    without = VGGDiscriminator(batch_norm=False, **TINY)
    bn_keys = [k for k in with_bn.state_dict() if ".norm." in k]
    assert len(bn_keys) == 7 * 5  # seven BN layers (none after the first conv), 5 entries each
    assert not [k for k in without.state_dict() if ".norm." in k]
    with pytest.raises(ValueError, match="H and W must be >= 16"):
        without(_patch(12))


@pytest.mark.parametrize("size", [16, 20, 33])
def test_unet_per_pixel_logits_any_size(size: int) -> None:
    model = UNetDiscriminatorSN(**TINY)
    assert model(_patch(size)).shape == (2, 1, size, size)


def test_unet_spectral_norm_keys_and_skip_switch() -> None:
    keys = set(UNetDiscriminatorSN(**TINY).state_dict())
    for k in range(1, 9):
        assert {f"conv{k}.weight_orig", f"conv{k}.weight_u", f"conv{k}.weight_v"} <= keys
    assert "conv0.weight" in keys and "conv9.bias" in keys
    torch.manual_seed(0)
    skip = UNetDiscriminatorSN(skip_connection=True, **TINY).eval()
    plain = UNetDiscriminatorSN(skip_connection=False, **TINY).eval()
    plain.load_state_dict(skip.state_dict())
    x = _patch(16)
    assert not torch.allclose(skip(x), plain(x))


def test_unet_spectral_norm_bounds_the_layer() -> None:
    """However large the raw weight, the weight used has spectral norm ~1 (power iteration)."""
    model = UNetDiscriminatorSN(**TINY)
    original = model.conv2.weight_orig
    assert isinstance(original, torch.Tensor)
    with torch.no_grad():
        original.mul_(50.0)
    for _ in range(50):
        model(_patch(16))
    weight = model.conv2.weight.reshape(model.conv2.weight.shape[0], -1)
    raw = original.reshape(weight.shape[0], -1)
    assert torch.linalg.matrix_norm(raw, ord=2).item() > 10
    assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=0.05)
