from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from medsr.checkpoint import FORMAT, generator_from, load_checkpoint, save_atomic
from medsr.models import build_generator
from medsr.training.config import TrainConfig
from medsr.training.deepen import add_inputs, deepen
from medsr.training.state import TrainState

CONFIG = {
    "in_channels": 2,
    "out_channels": 1,
    "num_features": 8,
    "num_blocks": 2,
    "scale": 1,
    "batch_norm": False,
    "global_residual": True,
    "unshuffle": 2,
}


# float32 convolutions over more input channels sum in another order (AVX2 kernels: up to
# ~4e-6 on outputs of ~10); a trained extra input would move them by far more
SAME = {"rtol": 1e-6, "atol": 1e-5}


def _trained_payload() -> dict[str, Any]:
    torch.manual_seed(1)
    model = build_generator("srresnet", **CONFIG)
    ema = {key: value + 0.01 for key, value in model.state_dict().items()}  # differs from raw
    return {
        "format": FORMAT,
        "step": 700,
        "generator": {
            "name": "srresnet",
            "config": model.config(),
            "state_dict": model.state_dict(),
        },
        "ema": ema,
        "config": {"name": "tiny"},
    }


def test_deepened_model_computes_the_same_as_the_source() -> None:
    payload = _trained_payload()
    deeper = deepen(payload, num_blocks=5)
    assert deeper["generator"]["config"]["num_blocks"] == 5
    assert deeper["deepened_from"] == {"num_blocks": 2, "step": 700}
    source, grown = generator_from(payload), generator_from(deeper)  # the source's EMA weights
    assert len(grown.body) == 5
    x = torch.rand(2, 2, 20, 18)
    with torch.no_grad():
        torch.testing.assert_close(grown(x), source(x), **SAME)
    # the new blocks are not all zero: conv1 keeps its initialisation, so they can learn
    assert grown.body[4].conv1.weight.abs().sum() > 0
    assert grown.body[4].conv2.weight.abs().sum() == 0


def test_deepened_model_trains_its_new_blocks() -> None:
    grown = generator_from(deepen(_trained_payload(), num_blocks=3)).train()
    x = torch.rand(2, 2, 16, 16)
    grown(x).square().mean().backward()
    assert grown.body[2].conv2.weight.grad.abs().sum() > 0


def test_deepened_file_is_a_warm_start_for_the_deeper_config(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    shallow = tiny_config()
    model = build_generator("srresnet", scale=shallow.data.scale, **shallow.model.kwargs)
    payload = {
        "format": FORMAT,
        "generator": {
            "name": "srresnet",
            "config": model.config(),
            "state_dict": model.state_dict(),
        },
        "ema": None,
    }
    path = save_atomic(deepen(payload, num_blocks=4), tmp_path / "deeper.pt")
    deeper = tiny_config("model.num_blocks=4", f"initial_weights={path}")
    state = TrainState.build(deeper, torch.device("cpu"))
    expected = load_checkpoint(path)["generator"]["state_dict"]
    for key, value in state.generator.state_dict().items():
        assert torch.equal(value, expected[key])


def test_deepen_refuses_what_it_cannot_grow() -> None:
    payload = _trained_payload()
    with pytest.raises(ValueError, match="must exceed the model's 2"):
        deepen(payload, num_blocks=2)
    fusion = {**payload, "generator": {**payload["generator"], "name": "petct-fusion"}}
    with pytest.raises(ValueError, match="only an srresnet or rrdbnet"):
        deepen(fusion, num_blocks=4)


def test_added_inputs_leave_the_output_unchanged_until_trained() -> None:
    payload = _trained_payload()
    wider = add_inputs(payload, in_channels=3)
    assert wider["generator"]["config"]["in_channels"] == 3
    assert wider["inputs_added_to"] == {"in_channels": 2, "step": 700}
    # the trained channels keep their place on the unshuffled grid (2 x 2 per channel)
    _check_new_inputs(generator_from(payload), generator_from(wider), 2, 1, first_weight=8)
    with pytest.raises(ValueError, match="must exceed the model's 2"):
        add_inputs(payload, in_channels=2)
    deeper_and_wider = add_inputs(deepen(payload, num_blocks=3), in_channels=3)
    _check_new_inputs(generator_from(payload), generator_from(deeper_and_wider), 2, 1, 8)


RRDB_CONFIG = {
    "in_channels": 1,
    "out_channels": 1,
    "num_features": 8,
    "num_blocks": 2,
    "growth_channels": 4,
    "scale": 2,
    "upsampler": "nearest-conv",
    "global_residual": True,
}


def _trained_rrdbnet() -> dict[str, Any]:
    torch.manual_seed(2)
    model = build_generator("rrdbnet", **RRDB_CONFIG)
    spec = {"name": "rrdbnet", "config": model.config(), "state_dict": model.state_dict()}
    return {"format": FORMAT, "step": 300, "generator": spec, "ema": None}


def test_deepened_rrdbnet_computes_the_same_as_the_source_and_trains_its_new_blocks() -> None:
    payload = _trained_rrdbnet()
    deeper = deepen(payload, num_blocks=4)
    assert deeper["generator"]["name"] == "rrdbnet"
    assert deeper["deepened_from"] == {"num_blocks": 2, "step": 300}
    source, grown = generator_from(payload), generator_from(deeper)
    assert len(grown.body) == 4
    x = torch.rand(2, 1, 12, 14)
    with torch.no_grad():
        torch.testing.assert_close(grown(x), source(x), **SAME)
        # the new block alone is the identity, though its first dense blocks are not
        features = torch.randn(2, 8, 10, 10)
        torch.testing.assert_close(grown.body[3](features), features, **SAME)
        assert not torch.allclose(grown.body[3].rdb1(features), features, **SAME)
    grown.train()
    grown(x).square().mean().backward()
    assert grown.body[3].rdb3.conv5.weight.grad.abs().sum() > 0


def test_an_rrdbnet_gets_inputs_it_ignores_until_trained() -> None:
    payload = _trained_rrdbnet()
    wider = add_inputs(deepen(payload, num_blocks=3), in_channels=3)
    assert wider["generator"]["name"] == "rrdbnet"
    assert wider["generator"]["config"]["in_channels"] == 3
    _check_new_inputs(generator_from(payload), generator_from(wider), 1, 2, first_weight=1)


def _check_new_inputs(
    source: torch.nn.Module, grown: torch.nn.Module, old: int, new: int, first_weight: int
) -> None:
    """`grown` (with `new` inputs after the `old` ones of `source`) computes what `source`
    does whatever the new inputs hold, and its `conv_first` weights from `first_weight` on
    (the new inputs') get a gradient: they can learn."""
    x, extra = torch.rand(2, old, 12, 14), torch.rand(2, new, 12, 14)
    with torch.no_grad():
        torch.testing.assert_close(grown(torch.cat([x, extra], 1)), source(x), **SAME)
        torch.testing.assert_close(grown(torch.cat([x, 7 * extra], 1)), source(x), **SAME)
    grown.train()
    grown(torch.cat([x, extra], 1)).square().mean().backward()
    assert grown.conv_first.weight.grad[:, first_weight:].abs().sum() > 0
