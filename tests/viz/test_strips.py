from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsr.image import Window
from medsr.viz.strips import comparison_strip, pair_strip, to_size


def test_to_size_replicates_pixels() -> None:
    low = np.array([[1.0, 2.0], [3.0, 4.0]])
    big = to_size(low, (4, 4))
    np.testing.assert_array_equal(big[:2, :2], np.ones((2, 2)))
    np.testing.assert_array_equal(big[2:, 2:], np.full((2, 2), 4.0))
    with pytest.raises(ValueError, match="integer"):
        to_size(low, (5, 4))


def test_comparison_strip_writes_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    high = rng.normal(40, 10, (64, 64))
    low = high[::4, ::4]
    path = comparison_strip(
        [("high", high), ("low", low), ("noise", rng.normal(0, 5, (64, 64)))],
        tmp_path / "strip.png",
        Window(40, 400),
        unit="HU",
        differences={2},
    )
    with Image.open(path) as image:
        width, height = image.size
    assert width > 2.5 * height  # three panels side by side


def test_pair_strip_and_bad_panels(tmp_path: Path) -> None:
    high = np.random.default_rng(1).normal(0, 1, (32, 32))
    assert pair_strip(high, high[::2, ::2], tmp_path / "p.png", spacing_mm=0.5).is_file()
    with pytest.raises(ValueError, match="2-D"):
        comparison_strip([("volume", np.zeros((2, 4, 4)))], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="empty"):
        comparison_strip([], tmp_path / "empty.png")
