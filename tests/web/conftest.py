"""Fixtures for the web tests: a tiny random-weight checkpoint (as tests/inference builds)
and an app serving it."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "_inference_conftest", Path(__file__).parents[1] / "inference" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_inference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_inference)
save_checkpoint: Callable[..., Path] = _inference.save_checkpoint
CT_WINDOW: dict[str, Any] = _inference.CT_WINDOW
PERCENTILE: dict[str, Any] = _inference.PERCENTILE


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CT (HU window) ldct-x4 model and a radiograph (percentile) x2 model."""
    folder = tmp_path_factory.mktemp("web-models")
    return {
        "ct": save_checkpoint(folder / "ct.pt", task="ldct-x4", scale=4, normalization=CT_WINDOW),
        "xray": save_checkpoint(folder / "xray.pt", task="x2", scale=2, normalization=PERCENTILE),
    }
