"""Progress and time of an enhance run, as the command line shows them.

* `TileBar`: a tqdm bar over the tiles of one 2-D image (a volume has its bar over slices,
  `Predictor.enhance(progress=True)`), fed by the Predictor's `on_tile(done, total)` hook;
* `JobResult` and `timing_line`: one line per image, with the seconds it took and how
  the model ran over it (whole, or tiles: `tiles_text`, the choice of `--tile auto`);
* `summary_line`: the batch at the end (images, time, time per image, skipped);
* `RunLog`: all of these lines as `medsr enhance` prints them while it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from medsr.inference.registry import ModelChoice

TileHook = Callable[[int, int], None]
"""`on_tile(tiles_done, tiles_total)`, called by the Predictor after each batch of tiles."""


class TileBar:
    """A tqdm bar over one image's tiles, made on the first report of two or more tiles (a
    small image in one tile shows none). A smaller-tile retry after running out of memory
    reports a new total: the bar starts again. Use as a context manager: it closes."""

    def __init__(self, desc: str, leave: bool = True, **options: Any) -> None:
        self.desc, self.leave, self.options = desc, leave, options
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < 2:
                return
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc=self.desc, unit="tile", leave=self.leave, **self.options
            )
        if total != self.bar.total or done < self.bar.n:
            self.bar.reset(total=total)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> TileBar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class JobResult:
    """One input enhanced: its source, the model, shapes in and out, files, seconds (read,
    enhance and write), and how the model ran over each image (`tiles_text`; "" unknown)."""

    source: str
    model: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    paths: list[Path]
    seconds: float
    tiles: str = ""


def tiles_text(shape: Sequence[int], tile: int | None, batch: int, overlap: int) -> str:
    """How `Predictor.plan`'s `(tile, batch)` runs an image of `shape` (H, W): `whole
    image`, or `6 tiles of 994 px overlapping by 32, 2 per call`."""
    from medsr.inference.tiling import tile_count

    height, width = shape[-2:]
    if tile is None or tile >= max(height, width):
        return "whole image"
    count = tile_count((height, width), tile, overlap)
    return f"{count} tiles of {tile} px overlapping by {min(overlap, tile - 1)}, {batch} per call"


def _shape(shape: Sequence[int]) -> str:
    return " x ".join(str(n) for n in shape)


def timing_line(result: JobResult) -> str:
    """`SOURCE: MODEL, H x W -> sH x sW px in 12.3 s (whole image)`."""
    tiles = f" ({result.tiles})" if result.tiles else ""
    return (
        f"{result.source}: {result.model}, {_shape(result.input_shape)} -> "
        f"{_shape(result.output_shape)} px in {result.seconds:.1f} s{tiles}"
    )


def summary_line(results: Sequence[JobResult], skipped: int, seconds: float) -> str:
    """`medsr enhance: 3 images in 41.0 s (13.7 s per image), 1 skipped`."""
    count = len(results)
    if count == 0:
        return f"medsr enhance: nothing to do ({skipped} skipped: outputs exist)"
    images = f"{count} image{'s' if count != 1 else ''}"
    skip = f", {skipped} skipped (outputs exist)" if skipped else ""
    return f"medsr enhance: {images} in {seconds:.1f} s ({seconds / count:.1f} s per image){skip}"


class RunLog:
    """The lines of an enhance run, passed to `echo` as they happen: the model picked for an
    input and why, each file written, each input skipped, each input's time; `summary()`
    at the end (None for a single image, whose time line says it all)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.results: list[JobResult] = []
        self.skipped_count = 0
        self.start = time.perf_counter()

    def chosen(self, source: str, choice: ModelChoice) -> None:
        self.echo(f"{source}: model {choice.name} (auto): {choice.reason}")

    def wrote(self, path: Path) -> None:
        self.echo(f"wrote {path}")

    def skipped(self, source: str) -> None:
        self.skipped_count += 1
        self.echo(f"skipped {source} (output exists)")

    def done(self, result: JobResult) -> None:
        self.results.append(result)
        self.echo(timing_line(result))

    def summary(self) -> str | None:
        if len(self.results) == 1 and not self.skipped_count:
            return None
        seconds = time.perf_counter() - self.start
        return summary_line(self.results, self.skipped_count, seconds)
