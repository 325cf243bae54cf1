"""Sliding-window (tiled) inference with smooth blending and an out-of-memory fallback.

The whole image stays in host memory (numpy); only a batch of `(B, 1, t, t)` tiles at a
time goes to the model (and so to the accelerator); `plan_tiles` picks the tile and the
batch from a memory budget, and one whole-image call when the image fits. Tiles overlap by
`overlap` input pixels; each tile's output is weighted by a separable window `w(y) w(x)`
and accumulated into one preallocated float32 output array, then divided by the summed
weights (which are separable too, so no second full-size array is needed):

    out = sum_t w_t * f(tile_t) / sum_t w_t

Along an axis, a tile's window (on the output grid; `o = overlap * scale` output pixels)
is 1 in its interior and, on each side that borders another tile (not the image edge), 0
over the outer `d = 3 * o // 8` pixels (where zero padding makes a convolutional network's
output differ from whole-image inference), then a raised-cosine ramp `sin^2` over the next
`o - 2d` pixels. Neighbouring ramps are complementary (`sin^2 + cos^2 = 1`), so the blend
is continuous and has no seams, and away from the image border the result equals
whole-image inference whenever the network's receptive-field radius is at most
`3 * overlap // 8` input pixels (up to float rounding).

`on_tile(done, total)`, when given, is called after each call of the model with the tiles of
this image done so far and their total; an exception it raises stops the work at once and
propagates unchanged (nothing is retried or returned), which is how callers cancel a run.

`tiled_apply` catches out-of-memory errors (`torch.OutOfMemoryError`, RuntimeErrors saying
"out of memory", onnxruntime allocation failures), halves the tile and starts again.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch

MIN_TILE = 16
"""Smallest tile (input pixels) the out-of-memory fallback will try."""

Runner = Callable[[np.ndarray], np.ndarray]
"""A model on host arrays: `(B, 1, h, w)` float32 -> `(B, 1, s*h, s*w)` float32."""

TileHook = Callable[[int, int], None]
"""Progress hook `(tiles_done, tiles_total)`; raising from it aborts the work."""


class _HookError(Exception):
    """Carries an exception raised by `on_tile` past the out-of-memory handler."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def is_out_of_memory(error: BaseException) -> bool:
    """True for the errors PyTorch (CPU, CUDA, MPS) and onnxruntime raise when memory runs out."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in text or "failed to allocate" in text
    )


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles of size `min(tile, length)` covering `[0, length)`, stepping by
    `tile - overlap`; the last tile is moved back to end exactly at `length`."""
    if tile <= overlap:
        raise ValueError(f"tile size {tile} must be larger than the overlap {overlap}")
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def axis_window(size: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """1-D blending weights `(size,)` of a tile in the module doc's shape (sizes in pixels of
    the grid the weights apply to: output pixels, i.e. input pixels times the scale).

    `first`/`last` say the tile touches the image start/end on this axis (no ramp there).
    """
    weights = np.ones(size, dtype=np.float64)
    dead = 3 * overlap // 8
    ramp_len = overlap - 2 * dead
    ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len) + 0.5) / max(ramp_len, 1)) ** 2
    if not first and overlap > 0:
        weights[:dead] = 0.0
        weights[dead : dead + ramp_len] = ramp
    if not last and overlap > 0:
        weights[size - dead :] = 0.0
        weights[size - dead - ramp_len : size - dead] = ramp[::-1]
    return weights


def tile_count(shape: tuple[int, int], tile_size: int | None, overlap: int) -> int:
    """Number of tiles `tiled_apply` runs on an image of `shape` (before any out-of-memory
    retry)."""
    if tile_size is None:
        return 1
    overlap = min(overlap, tile_size - 1)
    return len(tile_starts(shape[0], tile_size, overlap)) * len(
        tile_starts(shape[1], tile_size, overlap)
    )


def _report(on_tile: TileHook | None, done: int, total: int) -> None:
    if on_tile is None:
        return
    try:
        on_tile(done, total)
    except BaseException as error:  # noqa: BLE001 - re-raised unchanged by tiled_apply
        raise _HookError(error) from error


def _tiled_once(
    image: np.ndarray,
    run: Runner,
    scale: int,
    tile: int,
    overlap: int,
    batch_size: int = 1,
    on_tile: TileHook | None = None,
) -> np.ndarray:
    height, width = image.shape
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    expected = (th * scale, tw * scale)
    if len(rows) == len(cols) == 1:  # one tile: its output is the image (weights all 1)
        result = _checked(run(image[None, None]), 1, expected)
        _report(on_tile, 1, 1)
        return np.ascontiguousarray(result[0, 0])
    out = np.zeros((height * scale, width * scale), dtype=np.float32)
    # Windows on the output grid, so the ramps are smooth at the output's resolution.
    row_w = [axis_window(th * scale, overlap * scale, r == rows[0], r == rows[-1]) for r in rows]
    col_w = [axis_window(tw * scale, overlap * scale, c == cols[0], c == cols[-1]) for c in cols]
    row_sum = np.zeros(height * scale)
    col_sum = np.zeros(width * scale)
    for r, wr in zip(rows, row_w, strict=True):
        row_sum[r * scale : (r + th) * scale] += wr
    for c, wc in zip(cols, col_w, strict=True):
        col_sum[c * scale : (c + tw) * scale] += wc
    tiles = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    batch_size = max(1, int(batch_size))
    for first in range(0, len(tiles), batch_size):
        chunk = tiles[first : first + batch_size]
        blocks = np.stack([image[rows[i] : rows[i] + th, cols[j] : cols[j] + tw] for i, j in chunk])
        results = _checked(run(blocks[:, None]), len(chunk), expected)
        for (i, j), result in zip(chunk, results[:, 0], strict=True):
            r, c = rows[i] * scale, cols[j] * scale
            weight = np.outer(row_w[i], col_w[j]).astype(np.float32)
            out[r : r + expected[0], c : c + expected[1]] += result * weight
        _report(on_tile, first + len(chunk), len(tiles))
    # Every pixel has a positive weight sum (see axis_window); the clamp only guards rounding.
    out /= np.maximum(row_sum, 1e-12)[:, None].astype(np.float32)
    out /= np.maximum(col_sum, 1e-12)[None, :].astype(np.float32)
    return out


def _checked(result: np.ndarray, count: int, expected: tuple[int, int]) -> np.ndarray:
    result = np.asarray(result, dtype=np.float32)
    if result.shape != (count, 1, *expected):
        raise ValueError(f"model returned {result.shape} for {count} tile(s) of output {expected}")
    return result


def plan_tiles(
    shape: tuple[int, int], bytes_per_pixel: float, budget_bytes: float, overlap: int
) -> tuple[int | None, int]:
    """`(tile_size, batch_size)` that keep one model call within `budget_bytes` of
    activations (`bytes_per_pixel` per input pixel): `(None, 1)`, one whole-image pass, when
    the image fits, since overlapping tiles recompute their borders; else the largest tile
    that fits, shrunk so the tiles split each axis evenly (the last tile is not moved back
    over its neighbour), and as many tiles per call as the budget holds."""
    height, width = shape
    pixels = max(1, int(budget_bytes // max(bytes_per_pixel, 1e-9)))
    if height * width <= pixels:
        return None, 1
    side = max(math.isqrt(pixels), 4 * MIN_TILE, 2 * overlap + MIN_TILE)

    def even(length: int) -> int:
        if length <= side:
            return length
        count = math.ceil((length - overlap) / (side - overlap))
        return math.ceil((length + (count - 1) * overlap) / count)

    tile = max(even(height), even(width))
    batch = max(1, pixels // (min(tile, height) * min(tile, width)))
    return tile, min(batch, tile_count(shape, tile, overlap))


def tiled_apply(
    image: np.ndarray,
    run: Runner,
    scale: int,
    tile_size: int | None = 256,
    overlap: int = 32,
    on_retry: Callable[[int], None] | None = None,
    on_tile: TileHook | None = None,
    batch_size: int = 1,
) -> np.ndarray:
    """Apply `run` to a 2-D image `(H, W)` tile by tile; returns `(scale*H, scale*W)` float32.

    Args:
        image: `(H, W)` array, already in the model's units (e.g. normalised to [0, 1]).
        run: the model on host arrays (see `Runner`); called once per batch of tiles.
        scale: the model's upscaling factor.
        tile_size: tile side in input pixels, or None for the whole image in one call.
        overlap: overlap of neighbouring tiles in input pixels (< tile_size).
        on_retry: called with the new tile size after an out-of-memory error (default: warn).
        on_tile: progress hook `(tiles_done, tiles_total)` for this image (module doc); an
            exception it raises propagates unchanged and stops the work.
        batch_size: tiles per call of `run` (MONAI's `sw_batch_size`; `plan_tiles`).

    On out-of-memory the tile is halved (down to `MIN_TILE`; the overlap shrinks to at most a
    quarter of the tile) and the image is processed again from the start.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (H, W), got shape {image.shape}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if tile_size is not None and tile_size <= overlap:
        raise ValueError(f"tile_size {tile_size} must be larger than the overlap {overlap}")
    tile = max(image.shape) if tile_size is None else int(tile_size)
    while True:
        try:
            tile_overlap = min(overlap, tile - 1)
            return _tiled_once(image, run, scale, tile, tile_overlap, batch_size, on_tile)
        except _HookError as hooked:
            raise hooked.error from None
        except (RuntimeError, MemoryError) as error:
            if not is_out_of_memory(error) or tile // 2 < MIN_TILE:
                raise
            _release_cached_memory()
            tile = min(tile, max(image.shape)) // 2
            overlap = min(overlap, tile // 4)
            batch_size = 1
            if on_retry is not None:
                on_retry(tile)
            else:
                warnings.warn(f"out of memory; retrying with {tile}-pixel tiles", stacklevel=2)


def _release_cached_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
