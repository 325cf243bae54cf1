from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from medsr.evaluation import evaluate, make_pairs
from medsr.evaluation.runner import EvaluationResult
from medsr.inference import consistency_map
from medsr.physics.resize import upsample


@dataclass
class LanczosModel:
    """A stand-in for `Predictor`: Lanczos upsampling plus a constant offset (HU)."""

    scale: int = 2
    task: str = "x2"
    model_name: str = "fake-lanczos"
    checkpoint_sha256: str = "ab" * 32
    medsr_version: str = "0.0-test"
    offset: float = 0.0

    def enhance_array(
        self, image: np.ndarray, tile_size: int | str | None = "auto", overlap: int = 32
    ) -> np.ndarray:
        out = upsample(torch.from_numpy(np.ascontiguousarray(image)), self.scale, "lanczos")
        return out.numpy() + np.float32(self.offset)


@pytest.fixture(scope="package")
def ct_small_result() -> EvaluationResult:
    """ct-small, x2, baselines + the Lanczos stand-in model, with consistency maps."""
    pytest.importorskip("pydicom")
    pairs = make_pairs(["sample:ct-small"], "x2", seed=0)
    return evaluate(pairs, LanczosModel(), consistency=consistency_map)
