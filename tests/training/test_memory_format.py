"""Training in channels-last memory format (`loop.channels_last`) takes the same steps as in
the default layout: for every generator and discriminator, two updates from the same seed
give the same losses and end at the same generator and EMA weights within float32
rounding. The discriminator is compared by its first gradients: a conv bias before batch
norm has a zero gradient up to rounding, which Adam scales to a full step of either sign,
so its weights drift apart by the learning rate in a way that does not matter."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from medsr.models import DISCRIMINATORS, FUSION_GENERATORS, GENERATORS
from medsr.training.config import TrainConfig, config_from_dict
from medsr.training.loop import _step_options, _train_step, channels_last
from medsr.training.state import TrainState

MODELS: dict[str, dict[str, Any]] = {  # small models built like the shipped configs'
    "srresnet": {"num_features": 8, "num_blocks": 2, "upsampler": "subpixel", "batch_norm": False},
    "rrdbnet": {"num_features": 8, "num_blocks": 1, "growth_channels": 4},
    "petct-fusion": {"guide_channels": 2, "num_features": 8, "num_blocks": 1},
}
SCALE = {"srresnet": 2, "rrdbnet": 2, "petct-fusion": 4}


def config(generator: str, discriminator: str | None) -> TrainConfig:
    return config_from_dict(
        {
            "name": "layout",
            "phase": "pretrain",
            "data": {
                "task": "petct" if generator in FUSION_GENERATORS else f"x{SCALE[generator]}",
                "scale": SCALE[generator],
                "patch_size": 32,
            },
            "model": {"name": generator, **MODELS[generator]},
            "discriminator": {"name": discriminator or "vgg", "num_features": 4},
            "training": {"batch_size": 2, "lr": 1e-3, "precision": "fp32"},
        },
        [],
    )


def state_for(cfg: TrainConfig, discriminator: str | None) -> TrainState:
    torch.manual_seed(0)
    state = TrainState.build(cfg, torch.device("cpu"))
    if discriminator is not None:  # the gan phase's models, without a pretrained file
        from medsr.models import build_discriminator
        from medsr.training.state import make_optimizer

        state.discriminator = build_discriminator(discriminator, **cfg.discriminator.kwargs)
        state.opt_d = make_optimizer(state.discriminator.parameters(), cfg.training)
    return state


def batch(generator: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    scale = SCALE[generator]
    channels = 1 + 2 * scale**2 if generator in FUSION_GENERATORS else 1  # PET + folded CT
    return {
        "low": torch.rand(2, channels, 32 // scale, 32 // scale, generator=g),
        "high": torch.rand(2, 1, 32, 32, generator=g),
    }


@pytest.mark.parametrize("discriminator", [None, *DISCRIMINATORS])
@pytest.mark.parametrize("generator", [*GENERATORS, *FUSION_GENERATORS])
def test_channels_last_steps_match_the_default_layout(
    generator: str, discriminator: str | None
) -> None:
    cfg = config(generator, discriminator)
    device = torch.device("cpu")
    results = []
    for layout in ("default", "channels_last"):
        state = state_for(cfg, discriminator)
        memory_format = channels_last(state, device) if layout == "channels_last" else None
        options = _step_options(cfg.training, device, state, memory_format or torch.preserve_format)
        conv = next(p for p in state.generator.parameters() if p.ndim == 4 and p.shape[1] > 1)
        assert conv.is_contiguous() == (layout == "default")
        logs = [_train_step(state, batch(generator), cfg, options, None, device)]
        models = [m for m in (state.generator, state.discriminator) if m is not None]
        grads = [{n: p.grad.clone() for n, p in m.named_parameters()} for m in models]
        logs.append(_train_step(state, batch(generator), cfg, options, None, device))
        weights = [state.generator.state_dict(), state.ema.state_dict()]
        results.append((logs, weights, grads))
    (logs, weights, grads), (logs_cl, weights_cl, grads_cl) = results
    for model_grads, model_grads_cl in zip(grads, grads_cl, strict=True):
        largest = max(float(g.abs().max()) for g in model_grads.values())
        for name, grad in model_grads.items():
            # float32 sums in another order (oneDNN's kernels differ per CPU: AVX2 vs
            # AVX-512): a bias gradient that cancels to ~0 can differ by ~1e-5 of the largest
            close = {"rtol": 1e-3, "atol": 1e-4 * largest}
            torch.testing.assert_close(model_grads_cl[name], grad, **close, msg=name)
    compared = 2 if discriminator is None else 1  # step 2 sees the discriminator drift
    for step, step_cl in zip(logs[:compared], logs_cl[:compared], strict=True):
        assert step.keys() == step_cl.keys()
        for key in step:
            assert step_cl[key] == pytest.approx(step[key], rel=1e-4, abs=1e-6), key
    for state, state_cl in zip(weights, weights_cl, strict=True):
        for name, value in state.items():
            torch.testing.assert_close(state_cl[name], value, rtol=1e-4, atol=1e-5, msg=name)
