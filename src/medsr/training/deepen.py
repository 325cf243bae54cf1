"""Deepen a trained SRResNet or RRDBNet, or give it more inputs, without changing what it
computes, to train on from there.

    python -m medsr.training.deepen src/medsr/weights/ct-ldct.pt runs/ct-ldct-16.pt \
        --num-blocks 16

then train from the new file with the matching architecture:

    medsr train --config configs/srgan-ct-ldct.yaml initial_weights=runs/ct-ldct-16.pt \
        model.num_blocks=16 ...

The new residual blocks go after the trained ones, before `conv_body`. Each starts as the
identity: its second conv is zero, so `x + conv2(act(conv1(x))) = x`, and the deeper network
gives the same output as the source (net2net's function-preserving growth, Chen et al.,
"Net2Net: Accelerating Learning via Knowledge Transfer", ICLR 2016). Training then grows the
new blocks from there instead of from scratch: the gradient reaches `conv2` at once and the
rest of the block as soon as `conv2` moves.

An RRDBNet (ESRGAN) grows the same way with RRDBs, `x + 0.2 rdb3(rdb2(rdb1(x)))`, where a
dense block is `y + 0.2 conv5([y, f1, .., f4])`: the new RRDB's last `conv5` takes `-y / 0.2`
from its input `y` (the centre tap, one per channel) and nothing from the dense features
`f1..f4`, so `rdb3` returns 0 and the RRDB returns `x`. Its other convs keep their
initialisation; the gradient reaches that `conv5`'s dense-feature weights at once.

`--in-channels` appends input channels (e.g. the noise frequency of a kernel-aware denoiser,
`data.ldct.noise_frequency_unit`, after the image and the noise level) whose first-conv
weights are zero: the model ignores them until training moves those weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from medsr.checkpoint import load_checkpoint, save_atomic
from medsr.models import build_generator
from medsr.models.blocks import RRDB


def deepen(payload: dict[str, Any], num_blocks: int, seed: int = 0) -> dict[str, Any]:
    """A copy of checkpoint `payload` whose SRResNet or RRDBNet generator has `num_blocks`
    residual blocks: the trained ones (the EMA weights when the checkpoint has them), then
    identity blocks. Optimiser, discriminator and RNG states are dropped: a warm start.

    Raises ValueError if the generator is neither or already has `num_blocks` or more.
    """
    spec = payload["generator"]
    name = spec["name"]
    if name not in IDENTITY_BLOCK:
        raise ValueError(f"only an srresnet or rrdbnet generator can be deepened, got {name!r}")
    old_blocks = int(spec["config"]["num_blocks"])
    if num_blocks <= old_blocks:
        raise ValueError(f"num_blocks must exceed the model's {old_blocks}, got {num_blocks}")
    trained = payload.get("ema") or spec["state_dict"]
    config = {**spec["config"], "num_blocks": num_blocks}
    with torch.random.fork_rng():  # the new blocks' conv1 and PReLU: the constructor's init
        torch.manual_seed(seed)
        model = build_generator(name, **config)
    state = model.state_dict()
    missing = set(state) - set(trained)
    unexpected = set(trained) - set(state)
    if unexpected or any(not key.startswith("body.") for key in missing):
        raise ValueError(f"checkpoint does not match {name} {spec['config']}: {sorted(unexpected)}")
    state.update(trained)
    for block in range(old_blocks, num_blocks):
        IDENTITY_BLOCK[name](state, f"body.{block}.", model.get_submodule(f"body.{block}"))
    model.load_state_dict(state)
    grown_from = {"num_blocks": old_blocks, "step": payload.get("step")}
    return _warm_start(payload, model, deepened_from=grown_from)


def _identity_residual_block(
    state: dict[str, torch.Tensor], prefix: str, block: torch.nn.Module
) -> None:
    """SRResNet's `x + conv2(act(conv1(x)))` is `x` with `conv2` zero."""
    state[f"{prefix}conv2.weight"].zero_()
    state[f"{prefix}conv2.bias"].zero_()


def _identity_rrdb(state: dict[str, torch.Tensor], prefix: str, block: torch.nn.Module) -> None:
    """An RRDB is `x` when its last dense block returns 0: that block's `conv5` maps its
    input `y` (the first `num_features` input channels) to `-y / residual_scale` through
    the centre tap and ignores the dense features."""
    weight, bias = state[f"{prefix}rdb3.conv5.weight"], state[f"{prefix}rdb3.conv5.bias"]
    weight.zero_()
    bias.zero_()
    channels, centre = weight.shape[0], weight.shape[-1] // 2
    index = torch.arange(channels)
    if not isinstance(block, RRDB):
        raise TypeError(f"expected an RRDB at {prefix!r}, got {type(block).__name__}")
    weight[index, index, centre, centre] = -1.0 / block.rdb3.residual_scale


IDENTITY_BLOCK = {"srresnet": _identity_residual_block, "rrdbnet": _identity_rrdb}


def add_inputs(payload: dict[str, Any], in_channels: int) -> dict[str, Any]:
    """A copy of checkpoint `payload` whose SRResNet or RRDBNet generator takes
    `in_channels` inputs: the trained ones first (the EMA weights when the checkpoint has
    them), then channels with zero weights in `conv_first`, so the output does not depend on
    them (the global residual, if any, adds the first channel: the image). Optimiser,
    discriminator and RNG states are dropped: this is a warm start.

    Raises ValueError if the generator is neither or already has `in_channels` or more inputs.
    """
    spec = payload["generator"]
    if spec["name"] not in IDENTITY_BLOCK:
        raise ValueError(
            f"only an srresnet or rrdbnet generator can get inputs, got {spec['name']!r}"
        )
    old_channels = int(spec["config"].get("in_channels", 1))
    if in_channels <= old_channels:
        raise ValueError(f"in_channels must exceed the model's {old_channels}, got {in_channels}")
    state = dict(payload.get("ema") or spec["state_dict"])
    grid = int(spec["config"].get("unshuffle", 1)) ** 2  # pixel_unshuffle: channel-major
    weight = state["conv_first.weight"]
    extra = weight.new_zeros(
        weight.shape[0], (in_channels - old_channels) * grid, *weight.shape[2:]
    )
    state["conv_first.weight"] = torch.cat([weight, extra], dim=1)
    config = {**spec["config"], "in_channels": in_channels}
    model = build_generator(spec["name"], **config)
    model.load_state_dict(state)
    grown_from = {"in_channels": old_channels, "step": payload.get("step")}
    return _warm_start(payload, model, inputs_added_to=grown_from)


def _warm_start(payload: dict[str, Any], model: Any, **provenance: Any) -> dict[str, Any]:
    """`payload` with `model` as its generator at step 0 and no EMA, optimiser,
    discriminator or RNG state; `provenance` records what it was grown from."""
    name = payload["generator"]["name"]
    generator = {"name": name, "config": model.config(), "state_dict": model.state_dict()}
    return {
        **payload,
        "step": 0,
        "generator": generator,
        "discriminator": None,
        "ema": None,
        "optimizers": None,
        "scaler": None,
        "rng": None,
        **provenance,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    parser.add_argument("--num-blocks", type=int, help="residual blocks of the new model")
    parser.add_argument("--in-channels", type=int, help="input channels of the new model")
    arguments = parser.parse_args()
    if arguments.num_blocks is None and arguments.in_channels is None:
        parser.error("give --num-blocks, --in-channels or both")
    if arguments.destination.exists():
        raise SystemExit(f"will not overwrite {arguments.destination}")
    payload = load_checkpoint(arguments.source)
    if arguments.num_blocks is not None:
        payload = deepen(payload, arguments.num_blocks)
    if arguments.in_channels is not None:
        payload = add_inputs(payload, arguments.in_channels)
    path = save_atomic(payload, arguments.destination)
    config = payload["generator"]["config"]
    print(
        f"wrote {path}: {payload['generator']['name']} with {config['num_blocks']} blocks and "
        f"{config.get('in_channels', 1)} input channels"
    )


if __name__ == "__main__":
    main()
