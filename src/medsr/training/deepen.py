"""Deepen a trained SRResNet, or give it more inputs, without changing what it computes, to
train on from there.

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


def deepen(payload: dict[str, Any], num_blocks: int, seed: int = 0) -> dict[str, Any]:
    """A copy of checkpoint `payload` whose SRResNet generator has `num_blocks` residual
    blocks: the trained ones (the EMA weights when the checkpoint has them), then identity
    blocks. Optimiser, discriminator and RNG states are dropped: this is a warm start.

    Raises ValueError if the generator is not an SRResNet or already has `num_blocks` or more.
    """
    spec = payload["generator"]
    if spec["name"] != "srresnet":
        raise ValueError(f"only an srresnet generator can be deepened, got {spec['name']!r}")
    old_blocks = int(spec["config"]["num_blocks"])
    if num_blocks <= old_blocks:
        raise ValueError(f"num_blocks must exceed the model's {old_blocks}, got {num_blocks}")
    trained = payload.get("ema") or spec["state_dict"]
    config = {**spec["config"], "num_blocks": num_blocks}
    with torch.random.fork_rng():  # the new blocks' conv1 and PReLU: the constructor's init
        torch.manual_seed(seed)
        model = build_generator("srresnet", **config)
    state = model.state_dict()
    missing = set(state) - set(trained)
    unexpected = set(trained) - set(state)
    if unexpected or any(not key.startswith("body.") for key in missing):
        raise ValueError(
            f"checkpoint does not match srresnet {spec['config']}: {sorted(unexpected)}"
        )
    state.update(trained)
    for block in range(old_blocks, num_blocks):
        state[f"body.{block}.conv2.weight"].zero_()
        state[f"body.{block}.conv2.bias"].zero_()
    model.load_state_dict(state)
    grown_from = {"num_blocks": old_blocks, "step": payload.get("step")}
    return _warm_start(payload, model, deepened_from=grown_from)


def add_inputs(payload: dict[str, Any], in_channels: int) -> dict[str, Any]:
    """A copy of checkpoint `payload` whose SRResNet generator takes `in_channels` inputs:
    the trained ones first (the EMA weights when the checkpoint has them), then channels with
    zero weights in `conv_first`, so the output does not depend on them. Optimiser,
    discriminator and RNG states are dropped: this is a warm start.

    Raises ValueError if the generator is not an SRResNet or already has `in_channels` or
    more inputs.
    """
    spec = payload["generator"]
    if spec["name"] != "srresnet":
        raise ValueError(f"only an srresnet generator can get inputs, got {spec['name']!r}")
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
    model = build_generator("srresnet", **config)
    model.load_state_dict(state)
    grown_from = {"in_channels": old_channels, "step": payload.get("step")}
    return _warm_start(payload, model, inputs_added_to=grown_from)


def _warm_start(payload: dict[str, Any], model: Any, **provenance: Any) -> dict[str, Any]:
    """`payload` with `model` as its generator at step 0 and no EMA, optimiser,
    discriminator or RNG state; `provenance` records what it was grown from."""
    generator = {"name": "srresnet", "config": model.config(), "state_dict": model.state_dict()}
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
        f"wrote {path}: srresnet with {config['num_blocks']} blocks and "
        f"{config.get('in_channels', 1)} input channels"
    )


if __name__ == "__main__":
    main()
