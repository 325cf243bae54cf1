from __future__ import annotations

import copy
import csv
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medsr.data.public.lidc import index_lidc

TEMPLATE = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))


def write_slice(
    path: Path,
    patient: str,
    study: str,
    series: str,
    modality: str,
    z: float,
    description: str = "",
) -> None:
    ds = copy.deepcopy(TEMPLATE)
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient, study, series
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality, ds.SeriesDescription = modality, description
    ds.ImagePositionPatient = [-158.1, -179.0, z]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)


def write_series(
    folder: Path,
    patient: str,
    modality: str,
    num: int,
    name: str = "1-{:03d}.dcm",
    description: str = "",
) -> str:
    study, series = generate_uid(), generate_uid()
    for k in range(num):
        write_slice(
            folder / name.format(k + 1), patient, study, series, modality, -2.5 * k, description
        )
    return series


def classic_tree(root: Path) -> dict[str, str]:
    """TCIA download tree: LIDC-IDRI/<patient>/<study uid>/<series uid>/*.dcm (+ XML)."""
    uids = {}
    for number, slices in ((1, 3), (2, 4), (3, 2)):
        patient = f"LIDC-IDRI-{number:04d}"
        folder = root / "LIDC-IDRI" / patient / f"1.3.6.1.4.1.14519.{number}" / f"1.3.6.{number}"
        uids[patient] = write_series(folder, patient, "CT", slices, "{:06d}.dcm")
        (folder / "069.xml").write_text("<LidcReadMessage/>")
    cr = root / "LIDC-IDRI" / "LIDC-IDRI-0001" / "1.3.6.1.4.1.14519.9" / "1.3.6.9"
    write_series(cr, "LIDC-IDRI-0001", "CR", 1)
    (cr / "notes.xml").write_text("<x/>")
    return uids


@pytest.mark.parametrize("below", ["", "LIDC-IDRI", "LIDC-IDRI/LIDC-IDRI-0002"])
def test_classic_tree_indexes_ct_per_patient(tmp_path: Path, below: str) -> None:
    uids = classic_tree(tmp_path)
    index = index_lidc(tmp_path / below if below else tmp_path)
    if below.endswith("0002"):
        assert [(s.patient_id, s.num_slices) for s in index.ct] == [("LIDC-IDRI-0002", 4)]
        return
    assert [(s.patient_id, s.num_slices) for s in index.ct] == [
        ("LIDC-IDRI-0001", 3),
        ("LIDC-IDRI-0002", 4),
        ("LIDC-IDRI-0003", 2),
    ]
    assert [s.series_uid for s in index.ct] == [uids[p] for p in sorted(uids)]
    assert [(s.patient_id, s.modality) for s in index.radiographs] == [("LIDC-IDRI-0001", "CR")]
    assert index.patients == ["LIDC-IDRI-0001", "LIDC-IDRI-0002", "LIDC-IDRI-0003"]
    assert index.missing == []
    assert "3 CT series of 3 patients (9 slices), 1 radiograph series" in index.describe()


def test_series_load_lazily_ignoring_xml(tmp_path: Path) -> None:
    classic_tree(tmp_path)
    series = index_lidc(tmp_path).ct[1]
    volume = series.load()
    assert volume.shape == (4, 128, 128)
    assert volume.modality == "CT" and volume.unit == "HU"


def test_split_by_patient_never_shares_a_patient(tmp_path: Path) -> None:
    classic_tree(tmp_path)
    index = index_lidc(tmp_path)
    split = index.split((0.34, 0.33, 0.33), seed=0)
    groups = [
        {s.patient_id for s in subset} for subset in (split.train, split.validation, split.test)
    ]
    assert [len(g) for g in groups] == [1, 1, 1]
    assert len(set().union(*groups)) == 3


def test_manifest_layout_uses_metadata_csv_and_reports_missing(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest-1600709154662"
    rel = "LIDC-IDRI/LIDC-IDRI-0001/01-01-2000-NA-NA-30178/3000566.000000-NA-03192"
    uid = write_series(manifest / rel, "LIDC-IDRI-0001", "CT", 5)
    gone = "LIDC-IDRI/LIDC-IDRI-0002/01-01-2000-NA-NA-1/3000522.000000-NA-04919"
    with (manifest / "metadata.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "Series UID",
                "Collection",
                "Subject ID",
                "Study UID",
                "Series Description",
                "Modality",
                "Number of Images",
                "File Location",
            ]
        )
        out.writerow(
            [
                uid,
                "LIDC-IDRI",
                "LIDC-IDRI-0001",
                "1.2.3",
                "CT chest",
                "CT",
                "5",
                ".\\" + rel.replace("/", "\\"),
            ]
        )
        out.writerow(["9.9", "LIDC-IDRI", "LIDC-IDRI-0002", "1.2.4", "", "CT", "120", "./" + gone])
    index = index_lidc(tmp_path)
    assert [(s.patient_id, s.series_uid, s.description, s.num_slices) for s in index.ct] == [
        ("LIDC-IDRI-0001", uid, "CT chest", 5)
    ]
    assert len(index.missing) == 1 and "LIDC-IDRI-0002" in index.missing[0]
    assert "1 series listed in metadata.csv are missing on disk" in index.describe()
    from_headers = index_lidc(manifest, use_metadata=False)
    assert from_headers.ct[0].description == "" and from_headers.missing == []


def test_no_patient_folders_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "something").mkdir()
    with pytest.raises(ValueError, match="no LIDC-IDRI-NNNN patient folders"):
        index_lidc(tmp_path)
    with pytest.raises(FileNotFoundError):
        index_lidc(tmp_path / "absent")
