"""The comparison grid's columns: input, methods, target, each once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from medsr.viz.figures import TARGET, grid_panels


def _result(scale: int, methods: list[str]) -> SimpleNamespace:
    low = np.zeros((8, 8), np.float32)
    high = np.ones((8 * scale, 8 * scale), np.float32)
    pair = SimpleNamespace(low=low, high=high, scale=scale)
    outputs = {m: (low if m == "input" else high * k) for k, m in enumerate(methods)}
    return SimpleNamespace(pair=pair, outputs=outputs)


def test_scale_1_shows_the_input_once() -> None:
    # a denoiser's evaluation: every interpolation collapses into the `input` baseline
    result = _result(1, ["input", "bm3d-lanczos", "ct-ldct"])
    names = [name for name, _ in grid_panels(result)]  # type: ignore[arg-type]
    assert names == ["input", "bm3d-lanczos", "ct-ldct", TARGET]


def test_scale_4_input_upsampled_then_methods() -> None:
    result = _result(4, ["nearest", "lanczos", "ct-ldct-x4"])
    panels = grid_panels(result)  # type: ignore[arg-type]
    assert [name for name, _ in panels] == ["input", "nearest", "lanczos", "ct-ldct-x4", TARGET]
    assert panels[0][1].shape == (32, 32)
