"""Fixtures for the web tests: tiny random-weight checkpoints (as tests/inference builds),
and a small simulated CT + PET pair written as DICOM for the CT+PET mode."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medsr.image import Volume

_spec = importlib.util.spec_from_file_location(
    "_inference_conftest", Path(__file__).parents[1] / "inference" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_inference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_inference)
save_checkpoint: Callable[..., Path] = _inference.save_checkpoint
CT_WINDOW: dict[str, Any] = _inference.CT_WINDOW
PERCENTILE: dict[str, Any] = _inference.PERCENTILE
PET_WINDOW = {
    "kind": "window",
    "low": 0.0,
    "high": 10.0,
    "unit": "SUV",
    "guide_windows": [[-1000.0, 1000.0], [0.0, 80.0]],
    "guide_unit": "HU",
}


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CT (HU window) ldct-x4 model, a radiograph (percentile) x2 model, a blind
    radiograph x2 model (task xray-blind-x2, as the shipped xray-x2) and a CT+PET fusion
    x4 model."""
    folder = tmp_path_factory.mktemp("web-models")
    return {
        "ct": save_checkpoint(folder / "ct.pt", task="ldct-x4", scale=4, normalization=CT_WINDOW),
        "xray": save_checkpoint(folder / "xray.pt", task="x2", scale=2, normalization=PERCENTILE),
        "radiograph": save_checkpoint(
            folder / "radiograph.pt", task="xray-blind-x2", scale=2, normalization=PERCENTILE
        ),
        "fusion": save_checkpoint(
            folder / "fusion.pt",
            task="petct",
            name="petct-fusion",
            normalization=PET_WINDOW,
            num_features=8,
            num_blocks=1,
        ),
    }


def write_ct_pet(
    folder: Path, slices: int = 1, pet_shift_mm: float = 0.0, shape: tuple[int, int] = (32, 48)
) -> tuple[list[Path], list[Path]]:
    """DICOM files of a CT (HU, 1 mm pixels) and of a PET (SUV, 4 mm pixels) on the CT grid
    made 4 times coarser, shifted `pet_shift_mm` along x; one file per slice. Both carry one
    PatientID and FrameOfReferenceUID, as a PET/CT scanner writes them."""
    from pydicom.uid import generate_uid

    from medsr.inference.resample import coarse_geometry
    from medsr.io.dicom_write import write_dicom_series

    rng = np.random.default_rng(0)
    identity = {"PatientID": "PHANTOM-PETCT", "FrameOfReferenceUID": generate_uid()}
    size = (slices, *shape) if slices > 1 else shape
    ct = Volume(
        rng.normal(40, 200, size).astype(np.float32),
        (3.0, 1.0, 1.0)[-len(size) :],
        "CT",
        "HU",
        origin=(-20.0, -10.0, 50.0),
        metadata=dict(identity),
    )
    grid = coarse_geometry(ct, 4)
    low = grid.shape if slices > 1 else grid.shape[1:]
    origin = (grid.origin[0] + pet_shift_mm, *grid.origin[1:])
    pet = Volume(
        rng.uniform(0, 8, low).astype(np.float32),
        grid.spacing[-len(low) :],
        "PT",
        "SUV",
        origin=origin,
        metadata=dict(identity),
    )
    return (
        write_dicom_series(ct, folder / "ct", prefix="ct"),
        write_dicom_series(pet, folder / "pet", prefix="pet"),
    )


@pytest.fixture
def make_ct_pet(tmp_path: Path) -> Callable[..., tuple[list[Path], list[Path]]]:
    """`write_ct_pet` into the test's temporary folder."""
    return partial(write_ct_pet, tmp_path / "ct-pet")
