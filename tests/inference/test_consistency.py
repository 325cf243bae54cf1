from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medsr.inference.consistency import (
    consistency_map,
    estimate_noise_sd,
    forward_model,
    save_consistency,
)
from medsr.io.samples import is_available, load_sample
from medsr.physics.resize import downsample


@pytest.fixture(scope="module")
def high() -> np.ndarray:
    """A real CT slice (HU), 256 x 256, or a smooth synthetic image without the sample."""
    if is_available("invesalius-head-ct"):
        return load_sample("invesalius-head-ct").array[60].astype(np.float32)
    y, x = np.mgrid[-1:1:256j, -1:1:256j]
    return np.where(x**2 + y**2 < 0.8, 40.0 + 30 * x, -1000.0).astype(np.float32)


def down(image: np.ndarray, scale: int = 4) -> np.ndarray:
    return downsample(torch.from_numpy(image), scale, "area").numpy()


def disk(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    rows, cols = np.indices(shape)
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2


def test_perfect_reconstruction_scores_zero_and_a_fake_structure_does_not(
    high: np.ndarray,
) -> None:
    low = down(high)
    perfect = consistency_map(low, high, "x4", 4)
    assert perfect.map.shape == low.shape == (64, 64)
    assert perfect.score < 1e-3 and np.abs(perfect.map).max() < 1e-2  # HU
    fake = high.copy()
    fake[disk(high.shape, (128, 100), 10)] += 300.0  # a 300 HU disk the input does not hold
    faked = consistency_map(low, fake, "x4", 4)
    assert faked.score > 1.0 and faked.score > 1000 * perfect.score
    # the map localises it: the residual is largest (negative: output too bright) on the disk
    row, col = np.unravel_index(np.argmin(faked.map), faked.map.shape)
    assert abs(row - 32) <= 3 and abs(col - 25) <= 3
    assert faked.hotspot > 3.0


def test_denoising_residual_is_the_removed_noise() -> None:
    """ldct-x4: input = area(high + white noise); a perfect denoiser's residual is that
    noise, so the score (residual RMS / measured input noise SD) is ~1."""
    rows, cols = np.mgrid[0:256, 0:256]
    high = (40.0 + 0.2 * cols + 60.0 * (rows > 128)).astype(np.float32)
    rng = np.random.default_rng(0)
    low = down(high + rng.normal(0, 40.0, high.shape).astype(np.float32))
    assert estimate_noise_sd(low) == pytest.approx(10.0, rel=0.1)  # 40 / sqrt(16)
    result = consistency_map(low, high, "ldct-x4", 4)
    assert result.denoising and result.score == pytest.approx(1.0, abs=0.15)
    kept_noise = consistency_map(low, np.kron(low, np.ones((4, 4), np.float32)), "ldct-x4", 4)
    assert kept_noise.score < 0.01  # an output that keeps the noise explains it exactly


def test_forward_models_and_checks() -> None:
    image = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    np.testing.assert_array_equal(forward_model(image, "ldct", 1), image)
    xray = forward_model(image, "xray-x4", 4)
    assert xray.shape == (8, 8) and xray.std() < down(image).std()  # blur, then binning
    with pytest.raises(ValueError, match="scale"):
        forward_model(image, "x2", 4)
    with pytest.raises(ValueError, match="times the scale"):
        consistency_map(image[:8, :8], image, "x2", 2)


def test_save_writes_map_array_and_score(tmp_path: Path, high: np.ndarray) -> None:
    low = down(high)
    results = [consistency_map(low, high, "x4", 4), consistency_map(low, high + 5, "x4", 4)]
    paths = save_consistency(results, tmp_path / "img_x4", unit="HU")
    assert [p.name for p in paths] == [
        "img_x4_consistency.png",
        "img_x4_consistency.npy",
        "img_x4_consistency.json",
    ]
    assert paths[0].stat().st_size > 5000
    assert np.load(paths[1]).shape == (2, 64, 64)
    summary = json.loads(paths[2].read_text())
    assert summary["worst_slice"] == 1 and summary["score"] == pytest.approx(results[1].score)
    with pytest.raises(FileExistsError):
        save_consistency(results, tmp_path / "img_x4")


@pytest.mark.parametrize("task", ["xray-x4", "xray-blind-x4", "ldct-x4", "ldct"])
def test_forward_model_in_bands_equals_the_whole_image(task: str) -> None:
    scale = 1 if task == "ldct" else 4
    rng = np.random.default_rng(5)
    low = rng.random((200, 24)).astype(np.float32)  # bands of 20 low rows, 64 of context
    image = np.kron(low, np.ones((scale, scale), np.float32)) + 0.1 * rng.random(
        (200 * scale, 24 * scale)
    ).astype(np.float32)
    whole = forward_model(image, task, scale)
    banded = forward_model(image, task, scale, band_pixels=image.shape[1] * scale * 20)
    assert banded.shape == whole.shape == (200, 24)
    np.testing.assert_allclose(banded, whole, atol=1e-5)


def test_ct_padding_outside_the_field_of_view_is_not_scored() -> None:
    rng = np.random.default_rng(3)
    high = (40 + 5 * rng.standard_normal((64, 64))).astype(np.float32)
    low = high.reshape(16, 4, 16, 4).mean(axis=(1, 3))
    low[:, :3] = -3024.0  # padding (e.g. GE's) where the model wrote air
    result = consistency_map(low, high, "ldct-x4", 4, noise_sd=5.0)
    assert result.score < 1 and not result.map[:, :3].any()
    xray = consistency_map(low, high, "x4", 4, noise_sd=5.0)  # not CT: every pixel counts
    assert xray.score > 100
