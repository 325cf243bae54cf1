"""VGG19 features from a torchvision-layout state dict, the perceptual loss, feature matching."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from medsr.losses import (
    VGG19_LAYERS,
    FeatureMatchingLoss,
    PerceptualLoss,
    VGG19Features,
    feature_matching_loss,
    load_vgg19_weights,
)
from medsr.models import DISCRIMINATORS, build_discriminator

# torchvision's vgg19().features: conv indices and (in, out) channels; pools at 4, 9, 18, 27, 36.
CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256)}
CONVS |= {14: (256, 256), 16: (256, 256), 19: (256, 512), 21: (512, 512), 23: (512, 512)}
CONVS |= {25: (512, 512), 28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512)}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full torchvision VGG19 state dict with random He-scaled weights (and a classifier key
    that must be ignored)."""
    gen = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    for index, (cin, cout) in CONVS.items():
        std = math.sqrt(2.0 / (9 * cin))
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * std
        state[f"features.{index}.bias"] = torch.randn(cout, generator=gen) * 0.1
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    torch.save(state, path)
    return path


def _image(size: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(seed))


def test_layer_names_match_torchvision_indices() -> None:
    assert VGG19_LAYERS["conv1_1"] == 0 and VGG19_LAYERS["conv2_1"] == 5
    assert VGG19_LAYERS["conv5_4"] == 34 and VGG19_LAYERS["relu5_4"] == 35
    assert sorted(i for n, i in VGG19_LAYERS.items() if n.startswith("conv")) == sorted(CONVS)


def test_chosen_layer_equals_manual_forward_before_relu(vgg_file: Path) -> None:
    state = load_vgg19_weights(vgg_file)
    vgg = VGG19Features(["conv3_1", "relu1_2"])
    vgg.load_torchvision_state_dict(state)
    x = _image()
    out = vgg(x)

    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = (x.repeat(1, 3, 1, 1) - mean) / std

    def conv(t: torch.Tensor, index: int) -> torch.Tensor:
        w, b = state[f"features.{index}.weight"], state[f"features.{index}.bias"]
        return F.conv2d(t, w, b, padding=1)

    h = F.relu(conv(F.relu(conv(h, 0)), 2))
    assert torch.allclose(out["relu1_2"], h, atol=1e-5)
    h = F.max_pool2d(F.relu(conv(F.relu(conv(F.max_pool2d(h, 2), 5)), 7)), 2)
    conv3_1 = conv(h, 10)
    assert out["conv3_1"].shape == (2, 256, 4, 4)
    assert torch.allclose(out["conv3_1"], conv3_1, atol=1e-4)
    assert (out["conv3_1"] < 0).any()  # before the ReLU
    assert len(vgg.features) == 11  # cut after conv3_1


def test_deepest_layer_and_input_range(vgg_file: Path) -> None:
    vgg = VGG19Features(["conv5_4"], input_range=(-1.0, 1.0))
    vgg.load_torchvision_state_dict(load_vgg19_weights(vgg_file))
    unit = VGG19Features(["conv5_4"])
    unit.load_torchvision_state_dict(load_vgg19_weights(vgg_file))
    x = _image()
    assert vgg(2 * x - 1)["conv5_4"].shape == (2, 512, 1, 1)
    assert torch.allclose(vgg(2 * x - 1)["conv5_4"], unit(x)["conv5_4"], atol=1e-4)
    three = x.repeat(1, 3, 1, 1)
    assert torch.allclose(unit(three)["conv5_4"], unit(x)["conv5_4"])


def test_bare_features_state_dict_and_missing_keys() -> None:
    vgg = VGG19Features(["conv1_2"])
    bare = {k: torch.ones_like(v) for k, v in vgg.features.state_dict().items()}
    vgg.load_torchvision_state_dict(bare)
    assert torch.equal(vgg.features.state_dict()["2.weight"], torch.ones(64, 64, 3, 3))
    with pytest.raises(ValueError, match=r"features\.2\.bias"):
        vgg.load_torchvision_state_dict({"features.0.weight": bare["0.weight"]})


def test_missing_weights_file_says_where_to_get_them(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "vgg19.pth"
    with pytest.raises(FileNotFoundError) as info:
        PerceptualLoss(missing, {"conv5_4": 1.0})
    message = str(info.value)
    assert str(missing) in message
    assert "never downloads" in message
    assert "vgg19-dcbb9e9d.pth" in message
    assert "FeatureMatchingLoss" in message


def test_perceptual_loss_value_frozen_and_eval(vgg_file: Path) -> None:
    loss = PerceptualLoss(vgg_file, {"conv1_1": 2.0, "conv2_1": 0.5}, criterion="mse")
    x, y = _image(seed=1), _image(seed=2)
    assert loss(x, x).item() == 0.0
    reference = VGG19Features(["conv1_1", "conv2_1"])
    reference.load_torchvision_state_dict(load_vgg19_weights(vgg_file))
    fx, fy = reference(x), reference(y)
    expected = 2.0 * F.mse_loss(fx["conv1_1"], fy["conv1_1"])
    expected = expected + 0.5 * F.mse_loss(fx["conv2_1"], fy["conv2_1"])
    prediction = x.clone().requires_grad_()
    value = loss(prediction, y)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in loss.parameters())
    loss.train()
    assert not loss.vgg.training


def test_perceptual_loss_arguments(vgg_file: Path) -> None:
    with pytest.raises(ValueError, match="conv6_1"):
        PerceptualLoss(vgg_file, {"conv6_1": 1.0})
    with pytest.raises(ValueError, match="'huber'"):
        PerceptualLoss(vgg_file, {"conv1_1": 1.0}, criterion="huber")
    with pytest.raises(ValueError, match="-1.0"):
        PerceptualLoss(vgg_file, {"conv1_1": -1.0})


def test_feature_matching_by_hand() -> None:
    fake = [torch.ones(1, 1, 2, 2), torch.full((1, 2, 1, 1), 2.0)]
    real = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 1, 1)]
    assert feature_matching_loss(fake, real).item() == pytest.approx((1.0 + 2.0) / 2)
    assert FeatureMatchingLoss("mse")(fake, real).item() == pytest.approx((1.0 + 4.0) / 2)
    with pytest.raises(ValueError, match="1 and 2"):
        feature_matching_loss(fake[:1], real)


@pytest.mark.parametrize("name", sorted(DISCRIMINATORS))
def test_feature_matching_with_discriminator(name: str) -> None:
    torch.manual_seed(0)
    disc = build_discriminator(name, num_features=8).eval()
    x = _image(size=16)
    loss = FeatureMatchingLoss()
    assert loss(disc.features(x), disc.features(x.clone())).item() == 0.0
    fake = (x + 0.1 * _image(size=16, seed=5)).requires_grad_()
    value = loss(disc.features(fake), disc.features(x))
    assert value.item() > 0
    value.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
