"""Super-resolution generators and GAN discriminators.

Models are built from plain dicts, `GENERATORS` and `DISCRIMINATORS`; add a model by adding
it to the dict (the tests are parametrised over them). Every model takes keyword arguments
only and exposes `config()`, its constructor arguments, so a checkpoint that stores
`{"name": ..., "config": model.config(), "state_dict": ...}` rebuilds it with
`build_generator(name, **config)`.
"""

from __future__ import annotations

from typing import Any

from medsr.models.blocks import SCALES, Configurable, interpolated_input
from medsr.models.discriminators import Discriminator, UNetDiscriminatorSN, VGGDiscriminator
from medsr.models.rrdbnet import UPSAMPLERS, RRDBNet
from medsr.models.srresnet import SRResNet

GENERATORS: dict[str, type[Configurable]] = {"srresnet": SRResNet, "rrdbnet": RRDBNet}
DISCRIMINATORS: dict[str, type[Discriminator]] = {
    "vgg": VGGDiscriminator,
    "unet-sn": UNetDiscriminatorSN,
}


def _check_name(kind: str, table: dict[str, Any], name: str) -> None:
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid names: {sorted(table)}")


def build_generator(name: str, **kwargs: Any) -> Configurable:
    """`GENERATORS[name](**kwargs)`; ValueError listing the valid names for an unknown one."""
    _check_name("generator", GENERATORS, name)
    return GENERATORS[name](**kwargs)


def build_discriminator(name: str, **kwargs: Any) -> Discriminator:
    """`DISCRIMINATORS[name](**kwargs)`; ValueError listing the valid names for an unknown one."""
    _check_name("discriminator", DISCRIMINATORS, name)
    return DISCRIMINATORS[name](**kwargs)


__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "SCALES",
    "UPSAMPLERS",
    "Configurable",
    "Discriminator",
    "RRDBNet",
    "SRResNet",
    "UNetDiscriminatorSN",
    "VGGDiscriminator",
    "build_discriminator",
    "build_generator",
    "interpolated_input",
]
