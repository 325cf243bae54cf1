"""Feature-space losses: VGG19 perceptual loss (local weights only) and discriminator
feature matching (no external weights).

medsr never downloads anything: the VGG19 weights are a file the user provides, in
torchvision's format (`features.N.weight` / `features.N.bias`), read with
`torch.load(weights_only=True)`; torchvision itself is never imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from medsr.losses.pixel import PIXEL_LOSSES, pixel_loss

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))  # (convs, channels) per block


def _layer_index() -> dict[str, int]:
    """`conv{b}_{i}` / `relu{b}_{i}` -> index in torchvision's `vgg19().features`."""
    names, index = {}, 0
    for block, (convs, _) in enumerate(_BLOCKS, start=1):
        for i in range(1, convs + 1):
            names[f"conv{block}_{i}"], names[f"relu{block}_{i}"] = index, index + 1
            index += 2
        index += 1  # max pool
    return names


VGG19_LAYERS: dict[str, int] = _layer_index()
"""Layer name -> index in torchvision's VGG19 `features` (e.g. conv5_4 -> 34, relu5_4 -> 35)."""

_WEIGHTS_HELP = (
    "medsr never downloads weights. Provide torchvision's ImageNet VGG19 state dict, the file "
    "vgg19-dcbb9e9d.pth from https://download.pytorch.org/models/vgg19-dcbb9e9d.pth (torchvision "
    "caches it in ~/.cache/torch/hub/checkpoints/ if it has fetched it before), and pass its "
    "path. To train without it, use FeatureMatchingLoss, which needs no external weights."
)


def load_vgg19_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a torchvision VGG19 state dict from a local file (`weights_only=True`)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights file not found: {path}. {_WEIGHTS_HELP}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return dict(state)


class VGG19Features(nn.Module):
    """Activations of VGG19 (Simonyan & Zisserman 2015) at named layers.

    `(B, C, H, W) -> {name: (B, F, H / 2^k, W / 2^k)}` with C = 1 or 3.

    `self.features` is torchvision's `vgg19().features` layout (convs, ReLUs, max pools at the
    same indices), cut after the deepest requested layer, so torchvision state dicts load.
    Layer names are `conv{b}_{i}` (the conv output BEFORE its ReLU, as ESRGAN uses, e.g.
    `conv5_4`) or `relu{b}_{i}` (after it, as SRGAN).

    Input adapter: the input is assumed in `input_range` ((0, 1) by default, e.g. a CT window
    mapped to [0, 1]); it is mapped linearly to [0, 1], a 1-channel image is repeated to 3
    channels, and the ImageNet mean and std are applied, which is what VGG19 was trained on.
    Call `load_torchvision_state_dict` before use: the initial weights are random.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        layers: Sequence[str] = ("conv5_4",),
        *,
        input_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        if isinstance(layers, str) or not layers:
            raise ValueError(f"layers must be a non-empty sequence of names, got {layers!r}")
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG19 layers {unknown}; valid: {list(VGG19_LAYERS)}")
        low, high = input_range
        if not high > low:
            raise ValueError(f"input_range must be (low, high) with high > low, got {input_range}")
        self.layers = tuple(layers)
        self.input_range = (float(low), float(high))
        last = max(VGG19_LAYERS[name] for name in layers)
        modules: list[nn.Module] = []
        in_channels = 3
        for convs, channels in _BLOCKS:
            for _ in range(convs):
                modules += [nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU()]
                in_channels = channels
            modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules[: last + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def load_torchvision_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Load `features.N.*` tensors of a torchvision VGG19 (or its bare `features` state
        dict, keys `N.*`); the classifier and layers past the deepest requested are ignored."""
        prefix = "features." if any(k.startswith("features.") for k in state_dict) else ""
        own = self.features.state_dict()
        wanted = {key: state_dict[prefix + key] for key in own if prefix + key in state_dict}
        missing = sorted(set(own) - set(wanted), key=lambda k: int(k.split(".")[0]))
        if missing:
            raise ValueError(f"VGG19 state dict lacks {[prefix + k for k in missing]}")
        self.features.load_state_dict(wanted)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected a (B, 1 or 3, H, W) tensor, got {tuple(x.shape)}")
        low, high = self.input_range
        x = (x - low) / (high - low)
        x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        wanted = {VGG19_LAYERS[name]: name for name in self.layers}
        out: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                out[wanted[index]] = x
        return out


class PerceptualLoss(nn.Module):
    """Weighted distance between VGG19 features of prediction and target (Johnson et al.
    2016; ESRGAN's variant: before activation, `{"conv5_4": 1.0}`, L1).

    `(B, C, H, W), (B, C, H, W) -> ()` with C = 1 or 3, images in `input_range`.
    The VGG19 is frozen (no gradients to its weights) and stays in eval mode.

    Args:
        weights_path: local torchvision VGG19 state dict (see `load_vgg19_weights`).
        layers: layer name -> weight; None gives `{"conv5_4": 1.0}`.
        criterion: pixel loss between features, one of `PIXEL_LOSSES`.
        input_range: intensity range of the images, mapped to [0, 1] before VGG.
    """

    def __init__(
        self,
        weights_path: str | Path,
        layers: Mapping[str, float] | None = None,
        criterion: str = "l1",
        *,
        input_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        layers = {"conv5_4": 1.0} if layers is None else dict(layers)
        if criterion not in PIXEL_LOSSES:
            raise ValueError(f"unknown criterion {criterion!r}; valid: {PIXEL_LOSSES}")
        bad = {name: w for name, w in layers.items() if not float(w) >= 0}
        if bad:
            raise ValueError(f"layer weights must be >= 0, got {bad}")
        self.layer_weights = {name: float(w) for name, w in layers.items()}
        self.criterion = criterion
        self.vgg = VGG19Features(list(layers), input_range=input_range)
        self.vgg.load_torchvision_state_dict(load_vgg19_weights(weights_path))
        self.vgg.requires_grad_(False)
        self.vgg.eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.vgg.eval()
        return self

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        predicted = self.vgg(prediction)
        with torch.no_grad():
            reference = self.vgg(target)
        losses = [
            weight * pixel_loss(self.criterion, predicted[name], reference[name])
            for name, weight in self.layer_weights.items()
        ]
        return torch.stack(losses).sum()


def feature_matching_loss(
    fake_features: Sequence[torch.Tensor],
    real_features: Sequence[torch.Tensor],
    criterion: str = "l1",
) -> torch.Tensor:
    """Mean over layers of `criterion(fake_k, real_k)` (pix2pixHD, Wang et al. 2018), with
    the discriminator's activations of generated and real images (`features(x)` or
    `forward(x, return_features=True)`); the real ones are detached."""
    if len(fake_features) != len(real_features) or not fake_features:
        raise ValueError(
            f"need equally many, non-zero fake and real features, got "
            f"{len(fake_features)} and {len(real_features)}"
        )
    losses = [
        pixel_loss(criterion, fake, real.detach())
        for fake, real in zip(fake_features, real_features, strict=True)
    ]
    return torch.stack(losses).mean()


class FeatureMatchingLoss(nn.Module):
    """`feature_matching_loss` as a module: `(fake_features, real_features) -> ()`.

    A perceptual loss in the discriminator's feature space, needing no external weights.
    """

    def __init__(self, criterion: str = "l1") -> None:
        super().__init__()
        if criterion not in PIXEL_LOSSES:
            raise ValueError(f"unknown criterion {criterion!r}; valid: {PIXEL_LOSSES}")
        self.criterion = criterion

    def forward(
        self, fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        return feature_matching_loss(fake_features, real_features, self.criterion)
