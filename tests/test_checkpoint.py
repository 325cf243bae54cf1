"""medsr.checkpoint: one read per file, and the Normalization training writes is the one
inference reads (round trip on every shipped model, forward then inverse is the identity)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from medsr.checkpoint import ModelInfo, Normalization, read_checkpoint
from medsr.inference.registry import MODELS


@pytest.mark.parametrize("name", list(MODELS))
def test_shipped_checkpoints_read_once_and_round_trip(name: str) -> None:
    path = MODELS[name].path
    checkpoint = read_checkpoint(path)
    assert checkpoint.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    stored = checkpoint.payload["normalization"]
    normalization = Normalization.from_dict(stored)
    assert normalization.to_dict() == stored and normalization == stored
    info = checkpoint.info("petct" if MODELS[name].task == "petct" else None)
    assert info.task == MODELS[name].task
    assert ModelInfo.from_dict(info.to_dict()) == info


@pytest.mark.parametrize(
    "record",
    [
        {"kind": "window", "low": -1024.0, "high": 3071.0, "unit": "HU"},
        {"kind": "percentile", "percentiles": [0.5, 99.5], "unit": "[0, 1]"},
    ],
)
def test_forward_then_inverse_is_the_identity(record: dict[str, object]) -> None:
    normalization = Normalization.from_dict(record)
    image = np.random.default_rng(0).normal(40.0, 300.0, (32, 32)).astype(np.float32)
    bounds = normalization.bounds(image)
    mapped = normalization.forward(image, bounds)
    assert mapped.dtype == np.float32
    np.testing.assert_allclose(normalization.inverse(mapped, bounds), image, atol=1e-3)
    tensor = normalization.forward(torch.from_numpy(image), bounds)
    np.testing.assert_allclose(tensor.numpy(), mapped, atol=1e-6)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown intensity normalisation"):
        Normalization.from_dict({"kind": "histogram"})
