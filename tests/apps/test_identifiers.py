"""NIfTI outputs of `medsr enhance` and `medsr degrade` carry no patient, study or scanner
identifiers in their header extension unless `--keep-identifiers` is given."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from medsr.cli import app

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))
from conftest import CT_WINDOW, save_checkpoint  # noqa: E402

IDENTIFIERS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUIDs")
IDENTIFIERS += ("FrameOfReferenceUID", "Manufacturer", "ManufacturerModelName")
runner = CliRunner()


def _extension(path: Path) -> dict[str, object]:
    (extension,) = nib.load(str(path)).header.extensions
    return json.loads(extension.get_content())["medsr"]["metadata"]


@pytest.mark.parametrize("keep", [False, True])
def test_enhance_and_degrade_nifti_identifiers(tmp_path: Path, keep: bool) -> None:
    source = get_testdata_file("CT_small.dcm")
    model = save_checkpoint(tmp_path / "ct.pt", task="ldct-x4", scale=4, normalization=CT_WINDOW)
    flag = ["--keep-identifiers"] if keep else []
    enhance = ["enhance", source, "-o", str(tmp_path / "e"), "--model", str(model)]
    result = runner.invoke(app, [*enhance, "--format", "nifti", *flag])
    assert result.exit_code == 0, result.output
    degrade = ["degrade", source, "-o", str(tmp_path / "d"), "--task", "x2", *flag]
    result = runner.invoke(app, degrade)
    assert result.exit_code == 0, result.output
    for path in (tmp_path / "e" / "CT_small_x4.nii.gz", tmp_path / "d" / "CT_small_lr.nii.gz"):
        metadata = _extension(path)
        text = json.dumps(metadata)
        if keep:
            assert metadata["PatientID"] == "1CT1" and "RHAPSODE" in text
        else:
            assert not set(IDENTIFIERS) & set(metadata), sorted(metadata)
            assert "1CT1" not in text and "RHAPSODE" not in text and "1.3.6.1.4" not in text
            assert metadata["identifiers_removed"] is True and metadata["source"] == "dicom"
