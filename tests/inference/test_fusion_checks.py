"""`medsr fuse` refuses two patients or frames of reference (unless --allow-mismatch, which
the output then states) and fuses a PET in Bq/mL as SUVbw, never labelling other units SUV."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.uid import generate_uid
from typer.testing import CliRunner

from medsr.cli import app
from medsr.image import Volume
from medsr.inference.fusion import FusionPredictor
from medsr.inference.resample import coarse_geometry
from medsr.io.dicom_write import write_dicom_series
from medsr.physics.resize import upsample
from tests.io.dicom_builders import PET_TAGS

sys.path.insert(0, str(Path(__file__).parent))
from test_fusion_predictor import PET_WINDOW, TINY, ct_and_pet  # noqa: E402

HAND_FACTOR = 3.000864e-4  # tests/physics/test_pet_units.py: SUVbw per Bq/mL for PET_TAGS


@pytest.fixture
def predictor(make_checkpoint: Callable[..., Path]) -> FusionPredictor:
    path = make_checkpoint(
        task="petct", name="petct-fusion", normalization=PET_WINDOW, bicubic=True, **TINY
    )
    return FusionPredictor.load(str(path))


def with_identity(volume: Volume, patient: str, frame: str) -> Volume:
    metadata = {**volume.metadata, "PatientID": patient, "FrameOfReferenceUID": frame}
    return replace(volume, metadata=metadata)


def test_two_patients_or_frames_are_refused(predictor: FusionPredictor) -> None:
    ct, pet = ct_and_pet(1)
    frame = generate_uid()
    with pytest.raises(ValueError, match="not of the same patient.*PatientID CT 'A' vs PET 'B'"):
        predictor.fuse(with_identity(ct, "A", frame), with_identity(pet, "B", frame))
    with pytest.raises(ValueError, match="FrameOfReferenceUID"):
        predictor.fuse(with_identity(ct, "A", frame), with_identity(pet, "A", generate_uid()))
    same = predictor.fuse(with_identity(ct, "A", frame), with_identity(pet, "A", frame))
    assert same.enhanced.metadata["derivation_notes"] == []


def test_allow_mismatch_is_written_into_the_output(
    predictor: FusionPredictor, tmp_path: Path
) -> None:
    ct, pet = ct_and_pet(1)
    frame = generate_uid()
    with pytest.warns(UserWarning, match="despite different PatientID"):
        result = predictor.fuse(
            with_identity(ct, "A", frame), with_identity(pet, "B", frame), allow_mismatch=True
        )
    (path,) = write_dicom_series(result.enhanced, tmp_path / "out")
    ds = pydicom.dcmread(path)
    assert "despite different PatientID CT 'A' vs PET 'B' (--allow-mismatch)" in (
        ds.DerivationDescription
    )


def test_pet_in_bqml_is_fused_as_suv(predictor: FusionPredictor) -> None:
    ct, pet = ct_and_pet(1)
    bqml = replace(
        pet,
        array=pet.array / HAND_FACTOR,
        unit="BQML",
        metadata={"pet_suv_tags": {**PET_TAGS, "Units": "BQML"}},
    )
    result = predictor.fuse(ct, bqml)
    assert result.enhanced.unit == "SUV"
    expected = upsample(torch.from_numpy(pet.array[0]), 4, "bicubic").numpy()  # SUV in
    np.testing.assert_allclose(result.enhanced.array[0], expected, rtol=1e-4, atol=1e-4)
    assert any("SUVbw" in note for note in result.enhanced.metadata["derivation_notes"])
    missing = {**PET_TAGS, "PatientWeight": None}
    with pytest.raises(ValueError, match="missing or zero PatientWeight"):
        predictor.fuse(ct, replace(bqml, metadata={"pet_suv_tags": missing}))


def test_other_units_are_not_labelled_suv(predictor: FusionPredictor, tmp_path: Path) -> None:
    ct, pet = ct_and_pet(1)
    with pytest.warns(UserWarning, match="expects PET in SUV, got 'counts'"):
        result = predictor.fuse(ct, replace(pet, unit="counts"))
    assert result.enhanced.unit == "counts"
    (path,) = write_dicom_series(result.enhanced, tmp_path / "out")
    assert pydicom.dcmread(path).Units == "CNTS"


def test_fuse_cli_refuses_two_patients(tmp_path: Path, make_checkpoint: Callable) -> None:
    model = make_checkpoint(
        task="petct", name="petct-fusion", normalization=PET_WINDOW, bicubic=True, **TINY
    )
    rng = np.random.default_rng(0)
    frame = generate_uid()
    ct = Volume(rng.normal(40, 200, (32, 48)), (1.0, 1.0), "CT", "HU", origin=(-20, -10, 50))
    grid = coarse_geometry(ct, 4)
    pet = Volume(rng.uniform(0, 8, grid.shape[1:]), grid.spacing[1:], "PT", "SUV")
    pet = replace(pet, origin=grid.origin)
    write_dicom_series(with_identity(ct, "PHANTOM", frame), tmp_path / "ct")
    write_dicom_series(with_identity(pet, "BREAST-7", frame), tmp_path / "pet")
    command = ["fuse", "--ct", str(tmp_path / "ct"), "--pet", str(tmp_path / "pet")]
    command += ["--model", str(model), "--format", "dicom"]
    refused = CliRunner().invoke(app, [*command, "-o", str(tmp_path / "out")])
    assert refused.exit_code == 2 and "not of the same patient" in refused.output
    assert not (tmp_path / "out").exists()
    # the CLI prints warnings as one 'warning:' line (medsr.apps.console), not Python's
    allowed = CliRunner().invoke(app, [*command, "-o", str(tmp_path / "out"), "--allow-mismatch"])
    assert allowed.exit_code == 0, allowed.output
    assert "warning:" in allowed.output and "--allow-mismatch" in allowed.output
    ds = pydicom.dcmread(tmp_path / "out" / "pet_x4.dcm")
    assert "PatientID CT 'PHANTOM' vs PET 'BREAST-7' (--allow-mismatch)" in (
        ds.DerivationDescription
    )
