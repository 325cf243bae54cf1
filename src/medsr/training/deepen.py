"""Deepen a trained SRResNet without changing what it computes, to train on from there.

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
    return {
        **payload,
        "step": 0,
        "generator": {"name": "srresnet", "config": config, "state_dict": model.state_dict()},
        "discriminator": None,
        "ema": None,
        "optimizers": None,
        "scaler": None,
        "rng": None,
        "deepened_from": {"num_blocks": old_blocks, "step": payload.get("step")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    parser.add_argument("--num-blocks", type=int, required=True)
    arguments = parser.parse_args()
    if arguments.destination.exists():
        raise SystemExit(f"will not overwrite {arguments.destination}")
    payload = deepen(load_checkpoint(arguments.source), arguments.num_blocks)
    path = save_atomic(payload, arguments.destination)
    print(f"wrote {path}: srresnet with {arguments.num_blocks} blocks")


if __name__ == "__main__":
    main()
