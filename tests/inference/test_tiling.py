from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr.inference.predictor import TorchRunner
from medsr.inference.tiling import (
    axis_window,
    is_out_of_memory,
    plan_tiles,
    tile_count,
    tile_starts,
    tiled_apply,
)
from medsr.models import build_generator


@pytest.fixture(scope="module")
def runner() -> TorchRunner:
    """A tiny x2 SRResNet (receptive-field radius ~9 input pixels) with random weights."""
    torch.manual_seed(0)
    model = build_generator(
        "srresnet", scale=2, num_features=8, num_blocks=1, batch_norm=False, global_residual=True
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return TorchRunner(model)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(1)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(90, 110)), axis=0), axis=1)
    smooth = (smooth - smooth.min()) / np.ptp(smooth)
    return (0.8 * smooth + 0.2 * rng.random((90, 110))).astype(np.float32)


def test_tiles_cover_the_image_and_windows_blend_to_one() -> None:
    assert tile_starts(100, 40, 16) == [0, 24, 48, 60]
    assert tile_starts(30, 40, 16) == [0]
    with pytest.raises(ValueError, match="larger than the overlap"):
        tile_starts(100, 16, 16)
    # two neighbours at the nominal step: the ramps sum to exactly 1 across the overlap
    size, overlap = 64, 32
    left, right = axis_window(size, overlap, True, False), axis_window(size, overlap, False, True)
    total = np.zeros(2 * size - overlap)
    total[:size] += left
    total[size - overlap :] += right
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    assert left[-(3 * overlap // 8) :].max() == 0.0  # the outer pixels of a tile are discarded


def test_tiled_inference_equals_whole_image(runner: TorchRunner, image: np.ndarray) -> None:
    whole = tiled_apply(image, runner, 2, tile_size=None)
    assert whole.shape == (180, 220) and whole.dtype == np.float32
    for tile, overlap in ((40, 32), (64, 40)):
        tiled = tiled_apply(image, runner, 2, tile_size=tile, overlap=overlap)
        assert np.abs(tiled - whole).max() < 1e-4, (tile, overlap)


def test_no_seam_at_tile_boundaries(runner: TorchRunner, image: np.ndarray) -> None:
    """The horizontal gradient of the tiled output matches the whole image's at every tile
    edge; naive tiling without overlap has a gradient spike there (the test can fail)."""
    whole = tiled_apply(image, runner, 2, tile_size=None)
    tiled = tiled_apply(image, runner, 2, tile_size=40, overlap=32)
    naive = tiled_apply(image, runner, 2, tile_size=40, overlap=0)
    edges = [2 * c for c in tile_starts(110, 40, 32)[1:]] + [2 * (c + 40) for c in (0,)]
    grad = lambda x: np.diff(x, axis=1)  # noqa: E731
    for edge in edges:
        band = slice(edge - 3, edge + 3)
        assert np.abs(grad(tiled)[:, band] - grad(whole)[:, band]).max() < 1e-4
    spike = np.abs(grad(naive)[:, 79] - grad(whole)[:, 79]).max()  # naive seam at column 80
    assert spike > 1e-3


def test_out_of_memory_falls_back_to_smaller_tiles(runner: TorchRunner, image: np.ndarray) -> None:
    calls: list[tuple[int, int]] = []

    def small_memory(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape[-2:])
        if max(batch.shape[-2:]) > 40:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return runner(batch)

    retries: list[int] = []
    result = tiled_apply(image, small_memory, 2, tile_size=128, overlap=8, on_retry=retries.append)
    assert retries == [55, 27]  # 128 -> min(128, 110) // 2 = 55 -> 27 (<= 40: fits)
    # the retry restarted from scratch with 27-pixel tiles and the overlap cut to 27 // 4
    np.testing.assert_array_equal(result, tiled_apply(image, runner, 2, tile_size=27, overlap=6))
    assert max(max(shape) for shape in calls[-4:]) <= 40
    with pytest.warns(UserWarning, match="out of memory; retrying with 30-pixel tiles"):
        tiled_apply(image[:60, :60], small_memory, 2, tile_size=60, overlap=8)


def test_out_of_memory_detection_and_other_errors_propagate(image: np.ndarray) -> None:
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert is_out_of_memory(torch.OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("Failed to allocate memory for requested buffer"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))

    def broken(batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        tiled_apply(image, broken, 2, tile_size=64, overlap=8)
    with pytest.raises(ValueError, match="larger than the overlap"):
        tiled_apply(image, broken, 2, tile_size=16, overlap=16)


def test_on_tile_reports_progress_and_aborts(runner: TorchRunner, image: np.ndarray) -> None:
    seen: list[tuple[int, int]] = []
    tiled_apply(image, runner, 2, tile_size=40, overlap=8, on_tile=lambda d, t: seen.append((d, t)))
    total = tile_count(image.shape, 40, 8)
    assert total == 3 * 4 and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and {t for _, t in seen} == {total}

    class Cancelled(RuntimeError):  # a RuntimeError: must not be mistaken for out-of-memory
        pass

    stopped_at: list[int] = []

    def cancel(done: int, total: int) -> None:
        if done >= 2:
            stopped_at.append(done)
            raise Cancelled("out of memory (said by the user's hook)")

    calls: list[int] = []

    def counting(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return runner(batch)

    with pytest.raises(Cancelled):
        tiled_apply(image, counting, 2, tile_size=40, overlap=8, on_tile=cancel)
    assert stopped_at and sum(calls) == stopped_at[0]  # no tile after the hook raised, no retry


def test_batched_tiles_equal_one_tile_per_call(runner: TorchRunner, image: np.ndarray) -> None:
    calls: list[int] = []

    def counting(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return runner(batch)

    single = tiled_apply(image, runner, 2, tile_size=40, overlap=16)
    batched = tiled_apply(image, counting, 2, tile_size=40, overlap=16, batch_size=5)
    assert sum(calls) == tile_count(image.shape, 40, 16) and max(calls) == 5
    assert np.abs(batched - single).max() < 1e-6


def test_plan_tiles_whole_image_when_it_fits_else_even_tiles() -> None:
    assert plan_tiles((512, 512), 1000.0, 512 * 512 * 1000.0, 32) == (None, 1)
    tile, batch = plan_tiles((1024, 1024), 1000.0, 600 * 600 * 1000.0, 32)
    assert tile is not None and tile <= 600 and batch == 1
    starts = tile_starts(1024, tile, 32)
    assert len(starts) == 2 and starts[1] - starts[0] == tile - 32  # no tile moved back
    tile, batch = plan_tiles((2048, 2048), 1.0, 1e6, 32)  # 3 x 3 tiles of 704, 2 per call
    assert (tile, batch) == (704, 2) and batch * tile * tile <= 1e6
