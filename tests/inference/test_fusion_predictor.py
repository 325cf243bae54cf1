"""FusionPredictor and `fuse_paths`: units, geometry, refusal, a readable fused image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medsr.apps.fuse import fuse_paths
from medsr.image import Volume, Window
from medsr.inference import Predictor
from medsr.inference.fusion import FusionPredictor
from medsr.inference.resample import coarse_geometry
from medsr.io import read, write
from medsr.physics.resize import upsample
from medsr.viz.overlays import fused_overlay

PET_WINDOW = {
    "kind": "window",
    "low": 0.0,
    "high": 10.0,
    "unit": "SUV",
    "guide_windows": [[-1000.0, 1000.0], [0.0, 80.0]],
    "guide_unit": "HU",
}
TINY = {"num_features": 8, "num_blocks": 1}


@pytest.fixture
def fusion_checkpoint(make_checkpoint: Callable[..., Path]) -> Callable[..., Path]:
    def make(bicubic: bool = True) -> Path:
        return make_checkpoint(
            task="petct", name="petct-fusion", normalization=PET_WINDOW, bicubic=bicubic, **TINY
        )

    return make


def ct_and_pet(slices: int = 2) -> tuple[Volume, Volume]:
    rng = np.random.default_rng(0)
    ct = Volume(
        rng.normal(40, 200, (slices, 32, 48)).astype(np.float32),
        (3.0, 1.0, 1.0),
        "CT",
        "HU",
        origin=(-20.0, -10.0, 50.0),
    )
    grid = coarse_geometry(ct, 4)
    pet = Volume(
        rng.uniform(0, 8, grid.shape).astype(np.float32),
        grid.spacing,
        "PT",
        "SUV",
        origin=grid.origin,
    )
    return ct, pet


def test_fuse_puts_the_pet_on_the_ct_grid_in_suv(fusion_checkpoint: Callable[..., Path]) -> None:
    predictor = FusionPredictor.load(str(fusion_checkpoint()))
    ct, pet = ct_and_pet()
    result = predictor.fuse(ct, pet)
    enhanced = result.enhanced
    assert enhanced.shape == ct.shape and enhanced.spacing == ct.spacing
    assert enhanced.origin == ct.origin and (enhanced.modality, enhanced.unit) == ("PT", "SUV")
    assert enhanced.metadata["inference"]["research_use_only"] is True
    assert result.coverage == pytest.approx(1.0)
    assert np.allclose(result.pet_low.array, pet.array, atol=1e-5)  # PET already on the grid
    # A zero head makes the model bicubic upsampling: SUV in, SUV out (normalisation undone).
    expected = upsample(torch.from_numpy(pet.array), 4, "bicubic").numpy()
    assert np.allclose(enhanced.array, expected, atol=1e-4)


def test_trained_weights_use_the_ct(fusion_checkpoint: Callable[..., Path]) -> None:
    predictor = FusionPredictor.load(str(fusion_checkpoint(bicubic=False)))
    ct, pet = ct_and_pet(1)
    a = predictor.fuse_array(ct.array[0], pet.array[0])
    b = predictor.fuse_array(ct.array[0] + 300.0, pet.array[0])
    assert a.shape == (32, 48) and np.abs(a - b).max() > 1e-3
    with pytest.raises(ValueError, match="multiples of 4"):
        predictor.fuse_array(ct.array[0, :30], pet.array[0])


def test_refusals(
    fusion_checkpoint: Callable[..., Path], make_checkpoint: Callable[..., Path]
) -> None:
    path = fusion_checkpoint()
    predictor = FusionPredictor.load(str(path))
    ct, pet = ct_and_pet()
    with pytest.raises(ValueError, match="do not overlap"):
        predictor.fuse(ct, Volume(pet.array, pet.spacing, "PT", "SUV", origin=(0, 0, 900.0)))
    with pytest.raises(ValueError, match="in HU"):
        predictor.fuse(Volume(ct.array, ct.spacing, "CT", "a.u."), pet)
    with pytest.raises(ValueError, match="fusion model"):
        Predictor.load(str(path))  # the single-input predictor refuses it
    with pytest.raises(ValueError, match="not a CT \\+ PET fusion"):
        FusionPredictor.load(str(make_checkpoint()))


def test_fused_overlay_blends_grey_ct_and_hot_pet() -> None:
    ct = np.array([[-1000.0, 40.0], [240.0, 40.0]], np.float32)
    pet = np.array([[0.0, 0.0], [0.0, 10.0]], np.float32)
    grey = fused_overlay(ct, pet, Window(40, 400), alpha=0.0)
    assert grey[0, 0].tolist() == [0, 0, 0] and grey[1, 0].tolist() == [255, 255, 255]
    assert grey[0, 1].tolist() == [128, 128, 128]
    hot = fused_overlay(ct, pet, Window(40, 400), alpha=1.0, suv_max=10.0)
    assert hot[1, 1].tolist() == [255, 255, 255] and hot[0, 1].tolist() == [11, 0, 0]  # hot(0)
    half = fused_overlay(ct, np.full_like(pet, 5.0), Window(40, 400), alpha=0.5)
    assert half[0, 0, 0] > half[0, 0, 2]  # hot is red before blue
    with pytest.raises(ValueError, match="alpha"):
        fused_overlay(ct, pet, alpha=1.5)


def test_fuse_paths_writes_pet_and_a_readable_fused_image(
    fusion_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    ct, pet = ct_and_pet(1)
    ct2d = ct.slice(0)
    pet2d = Volume(pet.array[0], pet.spacing[1:], "PT", "SUV", origin=pet.origin)
    inputs = tmp_path / "in"
    ct_path, pet_path = write(ct2d, inputs / "ct.nii.gz"), write(pet2d, inputs / "pet.nii.gz")
    out = tmp_path / "out"
    written = fuse_paths(str(ct_path), str(pet_path), out, str(fusion_checkpoint()), alpha=0.4)
    assert [p.name for p in written] == ["pet_x4.nii.gz", "pet_x4_fused.png"]
    enhanced = read(out / "pet_x4.nii.gz")
    assert enhanced.shape[-2:] == (32, 48) and enhanced.unit == "SUV"
    image = np.asarray(Image.open(out / "pet_x4_fused.png"))
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8
    assert np.ptp(image.astype(int), axis=2).max() > 0  # colour, not grey
    with pytest.raises(FileExistsError):
        fuse_paths(str(ct_path), str(pet_path), out, str(fusion_checkpoint()))
    far = write(
        Volume(pet2d.array, pet2d.spacing, "PT", "SUV", origin=(900.0, 0.0, 0.0)),
        inputs / "far.nii.gz",
    )
    with pytest.raises(ValueError, match="do not overlap"):
        fuse_paths(str(ct_path), str(far), tmp_path / "out2", str(fusion_checkpoint()))


def test_dicom_output_is_a_derived_pet(
    fusion_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    import pydicom

    ct, pet = ct_and_pet(1)
    inputs = tmp_path / "in"
    ct_path = write(ct.slice(0), inputs / "ct.nii.gz")
    pet_path = write(
        Volume(pet.array[0], pet.spacing[1:], "PT", "SUV", origin=pet.origin), inputs / "pet.nii.gz"
    )
    written = fuse_paths(
        str(ct_path), str(pet_path), tmp_path / "out", str(fusion_checkpoint()), fmt="dicom"
    )
    ds = pydicom.dcmread(written[0])
    assert ds.Modality == "PT" and "DERIVED" in ds.ImageType and (ds.Rows, ds.Columns) == (32, 48)
    assert "petct" in ds.DerivationDescription
    expected = upsample(torch.from_numpy(pet.array[0]), 4, "bicubic").numpy()
    assert np.allclose(read(written[0]).array, expected, atol=1e-3)  # SUV kept through DICOM
