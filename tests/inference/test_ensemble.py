from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from medsr.image import PROVENANCE_KEY, Volume
from medsr.inference import Predictor
from medsr.inference.ensemble import self_ensemble


def test_an_equivariant_model_is_unchanged_at_any_scale() -> None:
    def nearest_x2(batch: np.ndarray) -> np.ndarray:  # commutes with flips and rotations
        return batch.repeat(2, axis=-2).repeat(2, axis=-1) * np.float32(3)

    batch = np.random.default_rng(0).random((3, 1, 6, 9)).astype(np.float32)
    result = self_ensemble(nearest_x2)(batch)
    assert result.shape == (3, 1, 12, 18) and result.dtype == np.float32
    np.testing.assert_allclose(result, nearest_x2(batch), rtol=1e-6)


def test_the_average_is_over_all_eight() -> None:
    """A model that ignores its input and lights pixel (row 0, column 1): that pixel has 8
    distinct images under the symmetries of a square, so the ensemble lights 8 pixels with
    1/8 each (the 4 rotations alone would give 4 pixels with 1/4)."""

    def one_pixel(batch: np.ndarray) -> np.ndarray:
        output = np.zeros_like(batch)
        output[..., 0, 1] = 1.0
        return output

    result = self_ensemble(one_pixel)(np.zeros((1, 1, 5, 5), np.float32))[0, 0]
    assert np.count_nonzero(result) == 8
    np.testing.assert_allclose(result[result > 0], 1 / 8)
    assert result[0, 1] == result[1, 0] == result[4, 3] == result[3, 4] == 1 / 8


def test_predictor_ensemble_keeps_an_equivariant_model_and_records_itself(
    make_checkpoint: Callable[..., Path],
) -> None:
    image = np.random.default_rng(3).normal(40.0, 300.0, (24, 30)).astype(np.float32)
    exact = Predictor.load(str(make_checkpoint(bicubic=True, scale=2, task="x2")))
    single = exact.enhance_array(image, tile_size=None)
    ensembled = exact.with_geometric_ensemble().enhance_array(image, tile_size=16, overlap=4)
    assert np.abs(ensembled - single).max() < 0.05  # HU: bicubic is equivariant

    learned = Predictor.load(str(make_checkpoint(scale=2, task="x2", seed=5)))
    plus = learned.with_geometric_ensemble()
    one_pass, averaged = learned.enhance_array(image), plus.enhance_array(image)
    assert not np.allclose(one_pass, averaged)  # a random model is not equivariant
    assert not learned.geometric_ensemble  # the original predictor is unchanged
    record = plus.enhance(Volume(image, (1.0, 1.0), modality="CT", unit="HU")).metadata[
        PROVENANCE_KEY
    ]
    assert record["backend"].endswith("+ensemble8")
    assert "ensemble" not in learned.provenance(None, 0).backend


@pytest.mark.parametrize("enabled", [False, True])
def test_with_geometric_ensemble_switches_it(
    make_checkpoint: Callable[..., Path], enabled: bool
) -> None:
    predictor = Predictor.load(str(make_checkpoint(scale=2, task="x2")))
    assert predictor.with_geometric_ensemble(enabled).geometric_ensemble is enabled
