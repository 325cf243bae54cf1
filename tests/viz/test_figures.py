"""The comparison grid's columns: input, methods, target, each once; where its zoom goes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from medsr.viz import figures
from medsr.viz.figures import TARGET, grid_panels, zoom_box


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


def test_zoom_goes_to_the_most_edges_within_the_patient() -> None:
    target = np.zeros((96, 96))
    target[10:40, 10:40] = 0.5  # the patient: one square, few edges
    target[20:30, 20:30] = 0.8
    target[80:96, :] = (np.arange(80, 96) // 2 % 2)[:, None]  # the table's rails: many edges
    region = (slice(0, 96), slice(0, 96))
    assert zoom_box(target, region, 16)[0] >= 64  # edges alone: the rails
    patient = np.zeros(target.shape, bool)
    patient[10:40, 10:40] = True
    top, left = zoom_box(target, region, 16, within=patient)
    assert 10 - 16 < top < 40 and 10 - 16 < left < 40  # overlaps the patient
    # a mask that leaves the region empty is ignored, not a blank zoom
    assert zoom_box(target, region, 16, within=np.zeros(target.shape, bool))[0] >= 64


def test_zoom_prefers_many_ordinary_edges_to_a_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    target = np.full((96, 96), 0.5)
    target[6:18, 70:82] = 0.0  # a lead marker: a few edges of full contrast ...
    target[9:15, 73:79] = 1.0
    rows, cols = np.mgrid[:32, :32]
    target[50:82, 10:42] += 0.04 * np.sin(rows * 1.3) * np.cos(cols * 1.1)  # ... or lung texture
    region = (slice(0, 96), slice(0, 96))
    top, left = zoom_box(target, region, 24)
    assert 50 - 24 < top < 82 and 10 - 24 < left < 42
    monkeypatch.setattr(figures, "EDGE_CAP_PERCENTILE", 100.0)  # uncapped: the marker wins
    assert zoom_box(target, region, 24)[0] < 18
