from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medsr.image import Volume, rescaled_in_plane
from medsr.io import read, read_dicom, write
from medsr.io.dicom_write import ANONYMOUS_ID, write_dicom, write_dicom_series

INFO = {
    "model": "tiny-srresnet",
    "architecture": "srresnet",
    "task": "ldct-x4",
    "scale": 2,
    "checkpoint_sha256": "0123456789abcdef" * 4,
    "model_medsr_version": "0.1.0",
}


def enhanced(source: Volume) -> Volume:
    """What `Predictor.enhance` returns at x2 (pixels repeated; geometry and provenance)."""
    array = np.kron(source.array, np.ones((2, 2), np.float32)) + 0.25
    spacing, origin = rescaled_in_plane(source, 2, finer=True)
    metadata = {**source.metadata, "inference": INFO, "research_use_only": True}
    return Volume(
        array,
        spacing,
        source.modality,
        source.unit,
        source.window,
        origin,
        source.direction,
        metadata,
    )


def test_derived_ct_image(testdata: Callable[[str], Path], tmp_path: Path) -> None:
    source_path = testdata("CT_small.dcm")
    src = pydicom.dcmread(source_path)
    volume = enhanced(read_dicom(source_path))
    path = write(volume, tmp_path / "out.dcm")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert (ds.PatientName, ds.PatientID) == (src.PatientName, src.PatientID)
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.SOPInstanceUID not in (src.SOPInstanceUID, ds.SeriesInstanceUID)
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert (ds.Rows, ds.Columns) == (2 * src.Rows, 2 * src.Columns)
    np.testing.assert_allclose(
        [float(v) for v in ds.PixelSpacing], [float(v) / 2 for v in src.PixelSpacing], rtol=1e-5
    )
    assert "tiny-srresnet" in ds.DerivationDescription
    assert "0.1.0" in ds.DerivationDescription and "0123456789ab" in ds.DerivationDescription
    assert ds.SeriesDescription.startswith("medsr RESEARCH USE ONLY")
    assert ds.BurnedInAnnotation == "NO"
    reference = ds.SourceImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert reference.ReferencedSOPClassUID == src.SOPClassUID
    assert ds.RescaleType == "HU"
    back = read(path)  # integer HU (RescaleSlope 1) and geometry survive exactly
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    assert back.unit == "HU" and np.array_equal(back.array, np.rint(volume.array))
    np.testing.assert_allclose(back.origin, volume.origin, atol=1e-3)


def test_derived_series_references_each_source_slice(
    testdata: Callable[[str], Path], tmp_path: Path
) -> None:
    """Three CT_small copies 2.5 mm apart, written in shuffled file order."""
    template = pydicom.dcmread(testdata("CT_small.dcm"))
    series_uid = pydicom.uid.generate_uid()
    z0 = float(template.ImagePositionPatient[2])
    (tmp_path / "in").mkdir()
    for name, k in (("b.dcm", 2), ("a.dcm", 0), ("c.dcm", 1)):
        template.SOPInstanceUID = pydicom.uid.generate_uid()
        template.SeriesInstanceUID = series_uid
        template.ImagePositionPatient[2] = z0 + 2.5 * k
        template.save_as(tmp_path / "in" / name)
    source = read_dicom(tmp_path / "in")
    paths = write_dicom_series(enhanced(source), tmp_path / "out")
    written = [pydicom.dcmread(p) for p in paths]
    assert len({ds.SeriesInstanceUID for ds in written}) == 1
    assert len({ds.SOPInstanceUID for ds in written}) == 3
    by_uid = {
        pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in (tmp_path / "in").iterdir()
    }
    for ds in written:
        ref = by_uid[ds.SourceImageSequence[0].ReferencedSOPInstanceUID]
        assert float(ref.ImagePositionPatient[2]) == pytest.approx(
            float(ds.ImagePositionPatient[2]), abs=1e-3
        )
    back = read_dicom(tmp_path / "out")
    assert back.shape == (3, 256, 256) and back.spacing[0] == pytest.approx(2.5)
    with pytest.raises(FileExistsError):
        write_dicom_series(enhanced(source), tmp_path / "out")


def test_non_dicom_input_gets_a_new_study_and_placeholders(tmp_path: Path) -> None:
    image = Volume(
        np.random.default_rng(0).random((16, 12)) * 1000,
        spacing=(0.2, 0.2),
        modality="CR",
        metadata={"source": "png", "inference": INFO},
    )
    first = pydicom.dcmread(write_dicom(image, tmp_path / "a.dcm"))
    second = pydicom.dcmread(write_dicom(image, tmp_path / "b.dcm"))
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    assert first.Modality == "CR" and first.PatientID == ANONYMOUS_ID
    assert first.StudyInstanceUID != second.StudyInstanceUID
    assert "SourceImageSequence" not in first
    assert list(first.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert np.abs(read(tmp_path / "a.dcm").array - image.array).max() < 1000 / 65535


@pytest.mark.parametrize("unit", ["SUV", "BQML", "counts"])
def test_pet_unit_round_trips(unit: str, tmp_path: Path) -> None:
    metadata = {"source": "png", "inference": INFO}
    pet = Volume(
        np.random.default_rng(1).random((8, 8)) * 12,
        spacing=(4.0, 4.0),
        modality="PT",
        unit=unit,
        metadata=metadata,
    )
    written = pydicom.dcmread(write_dicom(pet, tmp_path / "pet.dcm"))
    assert written.Units == {"SUV": "GML", "BQML": "BQML", "counts": "CNTS"}[unit]
    back = read(tmp_path / "pet.dcm")
    assert back.modality == "PT" and back.unit == unit
    assert np.abs(back.array - pet.array).max() < 12 / 65535 * 1.01
