"""Every entry of GENERATORS at every scale: shapes, gradients, arguments, global residual."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from medsr.models import GENERATORS, SCALES, RRDBNet, build_generator, interpolated_input

TINY: dict[str, Any] = {"num_features": 8, "num_blocks": 1}


pytestmark = pytest.mark.usefixtures("one_thread")


def _input(batch: int = 2, channels: int = 1, size: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_shape_finite_and_gradients(name: str, scale: int) -> None:
    torch.manual_seed(0)
    model = build_generator(name, scale=scale, **TINY)
    x = _input()
    out = model(x)
    assert out.shape == (2, 1, 6 * scale, 6 * scale)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize(("in_channels", "out_channels"), [(2, 1), (1, 2), (2, 2)])
def test_multichannel(name: str, in_channels: int, out_channels: int) -> None:
    model = build_generator(
        name, in_channels=in_channels, out_channels=out_channels, scale=2, **TINY
    )
    out = model(_input(channels=in_channels))
    assert out.shape == (2, out_channels, 12, 12)
    with pytest.raises(ValueError, match="expected a"):
        model(_input(channels=in_channels + 1))


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("scale", 3),
        ("scale", 16),
        ("scale", True),
        ("num_features", 0),
        ("num_blocks", 0),
        ("in_channels", 0),
        ("out_channels", -1),
        ("num_features", 8.0),
    ],
)
def test_constructor_rejects(name: str, argument: str, value: object) -> None:
    kwargs = {**TINY, argument: value}
    with pytest.raises(ValueError, match=argument) as info:
        build_generator(name, **kwargs)
    assert repr(value) in str(info.value)


def test_build_generator_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="'edsr'") as info:
        build_generator("edsr")
    for name in GENERATORS:
        assert name in str(info.value)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_config_rebuilds_the_model(name: str) -> None:
    model = build_generator(name, in_channels=2, scale=8, global_residual=True, **TINY)
    config = model.config()
    assert config["in_channels"] == 2 and config["scale"] == 8 and config["num_features"] == 8
    rebuilt = type(model)(**config)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    x = _input(channels=2, size=4)
    assert torch.equal(rebuilt(x), model(x))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_global_residual_with_zero_network_is_the_interpolated_input(name: str, scale: int) -> None:
    model = build_generator(name, scale=scale, global_residual=True, **TINY)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    # A constant image stays constant under bicubic interpolation, so the output is exactly it.
    x = torch.full((1, 1, 5, 5), 0.375)
    out = model(x)
    assert torch.allclose(out, torch.full((1, 1, 5 * scale, 5 * scale), 0.375), atol=1e-6)
    if scale == 1:
        ramp = torch.arange(25.0).view(1, 1, 5, 5)
        assert torch.equal(model(ramp), ramp)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_global_residual_is_bicubic_by_hand(name: str) -> None:
    model = build_generator(name, scale=2, global_residual=True, **TINY)
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    # HR column 5 sits at LR coordinate (5 + 0.5) / 2 - 0.5 = 2.25, between LR columns 1..4 at
    # distances 1.25, 0.25, 0.75, 1.75. Keys cubic weights with a = -0.75 (PyTorch's):
    # |x| <= 1: 1.25|x|^3 - 2.25|x|^2 + 1; 1 < |x| < 2: -0.75|x|^3 + 3.75|x|^2 - 6|x| + 3.
    weights = (-0.10546875, 0.87890625, 0.26171875, -0.03515625)
    expected = 1 * weights[0] + 2 * weights[1] + 3 * weights[2] + 4 * weights[3]  # 2.296875
    out = model(ramp)
    assert out.shape == (1, 1, 16, 16)
    assert torch.allclose(out[0, 0, :, 5], torch.full((16,), expected), atol=1e-5)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_global_residual_adds_the_first_channel(name: str) -> None:
    """With trained-like weights, residual minus plain output is the upsampled CT channel."""
    torch.manual_seed(1)
    plain = build_generator(name, in_channels=2, scale=2, **TINY).eval()
    residual = build_generator(name, in_channels=2, scale=2, global_residual=True, **TINY)
    residual.load_state_dict(plain.state_dict())
    residual.eval()
    ct = torch.full((1, 1, 4, 4), 0.25)
    pet = torch.full((1, 1, 4, 4), 7.0)
    x = torch.cat([ct, pet], dim=1)
    difference = residual(x) - plain(x)
    assert torch.allclose(difference, torch.full((1, 1, 8, 8), 0.25), atol=1e-5)


def test_interpolated_input_channel_rules() -> None:
    x = torch.stack([torch.full((3, 3), 1.0), torch.full((3, 3), 3.0)]).unsqueeze(0)
    assert torch.equal(interpolated_input(x, 1, 1), x[:, :1])
    mean = interpolated_input(x[:, :2], 3, 1)
    assert mean.shape == (1, 3, 3, 3) and torch.allclose(mean, torch.full_like(mean, 2.0))


def test_rrdbnet_upsampler_choice() -> None:
    nearest = RRDBNet(scale=4, upsampler="nearest-conv", **TINY)
    shuffle = RRDBNet(scale=4, upsampler="pixelshuffle", **TINY)
    assert nearest.state_dict()["conv_up2.weight"].shape == (8, 8, 3, 3)
    assert shuffle.state_dict()["conv_up2.weight"].shape == (32, 8, 3, 3)
    x = _input(size=5)
    assert nearest(x).shape == shuffle(x).shape == (2, 1, 20, 20)
    assert not hasattr(RRDBNet(scale=1, **TINY), "conv_up1")
    with pytest.raises(ValueError, match="'bilinear'"):
        RRDBNet(upsampler="bilinear", **TINY)
    with pytest.raises(ValueError, match="growth_channels"):
        RRDBNet(growth_channels=0, **TINY)


def test_rrdbnet_nearest_conv_is_flat_on_flat_input() -> None:
    """On a constant image, away from the zero-padded border (receptive field < 19 LR pixels),
    nearest + conv gives a constant output; PixelShuffle gives its periodic checkerboard."""
    spread = {}
    for upsampler in ("nearest-conv", "pixelshuffle"):
        torch.manual_seed(0)
        model = RRDBNet(scale=4, upsampler=upsampler, **TINY).eval()
        with torch.no_grad():
            out = model(torch.full((1, 1, 40, 40), 0.5))[0, 0, 76:-76, 76:-76]
        spread[upsampler] = (out.max() - out.min()).item()
    assert spread["nearest-conv"] < 1e-6
    assert spread["pixelshuffle"] > 1e-3


def test_rrdbnet_keys_follow_basicsr() -> None:
    keys = set(RRDBNet(num_blocks=2, scale=4).state_dict())
    expected = {"conv_first.weight", "conv_body.weight", "conv_up1.weight", "conv_up2.weight"}
    expected |= {"conv_hr.weight", "conv_last.weight", "body.1.rdb3.conv5.weight"}
    assert expected <= keys
    # 6 top-level convs + 2 blocks x 3 dense blocks x 5 convs, each a weight and a bias.
    assert len(keys) == (6 + 2 * 3 * 5) * 2


# every generator, the fusion one and SRResNet's pixel-unshuffle variant (its own branch)
INPUT_CONVOLUTION_CASES: list[tuple[str, dict[str, Any], int]] = [
    *((name, {"scale": 2}, 1) for name in sorted(GENERATORS)),
    ("srresnet", {"scale": 1, "unshuffle": 2}, 1),
    ("petct-fusion", {"scale": 2}, 9),  # PET plus the CT guide packed as 2 x 2 x 2 channels
]


@pytest.mark.parametrize(("name", "arguments", "channels"), INPUT_CONVOLUTION_CASES)
def test_input_convolution_sees_the_unrounded_input_under_bf16_autocast(
    name: str, arguments: dict[str, Any], channels: int
) -> None:
    """In training and at inference alike (`blocks.float32_conv`): autocast on, the input
    convolution still gets the float32 image and gives what it gives outside autocast,
    while the same convolution autocast as usual would have rounded the input to bf16."""
    torch.manual_seed(0)
    model = build_generator(name, **TINY, **arguments)
    if name == "petct-fusion":
        model = build_generator(name, guide_channels=2, **TINY, **arguments)
    # near white, a 0.1 % ramp: below bf16's step there (2 ** -8 = 0.4 %)
    ramp = 0.9 + 1e-3 * torch.linspace(0, 1, 16 * 16).reshape(1, 1, 16, 16)
    x = ramp.repeat(1, channels, 1, 1)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    first = model.get_submodule("conv_first")
    handle = first.register_forward_hook(lambda m, i, o: seen.append((i[0], o)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    handle.remove()
    (conv_input, conv_output), *_ = seen
    assert type(model).float32_input  # what the runner's describe() reports
    assert conv_input.dtype == conv_output.dtype == torch.float32
    with torch.no_grad():
        exact = first(conv_input.detach())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rounded = first(conv_input.detach()).float()
    torch.testing.assert_close(conv_output.detach(), exact)
    assert (rounded - exact).abs().max() > 1e-3  # what autocast alone would have given
    out.float().square().mean().backward()  # trains through it
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
