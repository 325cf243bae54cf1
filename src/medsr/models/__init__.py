"""Super-resolution generators and GAN discriminators.

Models are built from plain dicts, `GENERATORS` and `DISCRIMINATORS`; add a model by adding
it to the dict (the tests are parametrised over them). Every model takes keyword arguments
only and exposes `config()`, its constructor arguments, so a checkpoint that stores
`{"name": ..., "config": model.config(), "state_dict": ...}` rebuilds it with
`build_generator(name, **config)`.

`FUSION_GENERATORS` holds the two-input (CT + PET) generators: they take a packed tensor
with more channels than `in_channels` (see `medsr.models.fusion`), so they are kept apart
from `GENERATORS`, whose contract is `(B, in_channels, h, w)`; `build_generator` builds both.
"""

from __future__ import annotations

from typing import Any

from medsr.models.blocks import SCALES, Configurable, interpolated_input
from medsr.models.discriminators import Discriminator, UNetDiscriminatorSN, VGGDiscriminator
from medsr.models.fusion import PetCtFusion, pack_inputs, unpack_inputs
from medsr.models.rrdbnet import UPSAMPLERS, RRDBNet
from medsr.models.srresnet import SRResNet

GENERATORS: dict[str, type[Configurable]] = {"srresnet": SRResNet, "rrdbnet": RRDBNet}
FUSION_GENERATORS: dict[str, type[Configurable]] = {"petct-fusion": PetCtFusion}
DISCRIMINATORS: dict[str, type[Discriminator]] = {
    "vgg": VGGDiscriminator,
    "unet-sn": UNetDiscriminatorSN,
}


def _check_name(kind: str, table: dict[str, Any], name: str) -> None:
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid names: {sorted(table)}")


def build_generator(name: str, **kwargs: Any) -> Configurable:
    """`GENERATORS[name](**kwargs)` (or `FUSION_GENERATORS`); ValueError listing the valid
    names for an unknown one."""
    table = {**GENERATORS, **FUSION_GENERATORS}
    _check_name("generator", table, name)
    return table[name](**kwargs)


def build_discriminator(name: str, **kwargs: Any) -> Discriminator:
    """`DISCRIMINATORS[name](**kwargs)`; ValueError listing the valid names for an unknown one."""
    _check_name("discriminator", DISCRIMINATORS, name)
    return DISCRIMINATORS[name](**kwargs)


__all__ = [
    "DISCRIMINATORS",
    "FUSION_GENERATORS",
    "GENERATORS",
    "SCALES",
    "UPSAMPLERS",
    "Configurable",
    "Discriminator",
    "PetCtFusion",
    "RRDBNet",
    "SRResNet",
    "UNetDiscriminatorSN",
    "VGGDiscriminator",
    "build_discriminator",
    "build_generator",
    "interpolated_input",
    "pack_inputs",
    "unpack_inputs",
]
