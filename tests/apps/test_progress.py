"""Progress and time of an enhance run: the tile bar, the per-image line, the summary."""

from __future__ import annotations

import io
from pathlib import Path

from medsr.apps.progress import JobResult, TileBar, summary_line, tiles_text, timing_line


def test_tile_bar_counts_and_restarts_on_a_new_total() -> None:
    stream = io.StringIO()
    with TileBar("img", file=stream, mininterval=0) as bar:
        bar(1, 1)  # a single tile: no bar
        assert bar.bar is None
        bar(1, 4)
        bar(2, 4)
        bar(1, 16)  # out of memory: smaller tiles, counted again
        assert (bar.bar.n, bar.bar.total) == (1, 16)
        bar(16, 16)
    assert "16/16" in stream.getvalue() and "tile" in stream.getvalue()


def test_timing_and_summary_lines() -> None:
    result = JobResult("a.png", "xray-x2", (100, 80), (200, 160), [Path("o.png")], 3.04)
    assert timing_line(result) == "a.png: xray-x2, 100 x 80 -> 200 x 160 px in 3.0 s"
    whole = JobResult("a.png", "xray-x2", (100, 80), (200, 160), [], 3.04, "whole image")
    assert timing_line(whole) == "a.png: xray-x2, 100 x 80 -> 200 x 160 px in 3.0 s (whole image)"
    assert summary_line([result, result], 0, 6.5) == (
        "medsr enhance: 2 images in 6.5 s (3.2 s per image)"
    )
    assert summary_line([result], 2, 3.1).endswith(
        "1 image in 3.1 s (3.1 s per image), 2 skipped (outputs exist)"
    )
    assert summary_line([], 3, 0.1) == "medsr enhance: nothing to do (3 skipped: outputs exist)"


def test_tiles_text() -> None:
    assert tiles_text((3, 512, 512), None, 1, 32) == "whole image"
    assert tiles_text((512, 512), 512, 1, 32) == "whole image"  # one tile covers it
    # 2000 px in 1016 px tiles overlapping by 32: 2 per axis
    assert (
        tiles_text((2000, 2000), 1016, 2, 32) == "4 tiles of 1016 px overlapping by 32, 2 per call"
    )
