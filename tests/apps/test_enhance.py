"""`medsr enhance`'s option parsing (`--tile` as the Predictor takes it) and its inputs."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from medsr.apps.enhance import parse_tile, plan_jobs
from medsr.io import MedsrIOError


@pytest.mark.parametrize(
    ("text", "expected"), [("auto", "auto"), (" AUTO ", "auto"), ("0", None), ("256", 256)]
)
def test_parse_tile(text: str, expected: object) -> None:
    assert parse_tile(text, overlap=32) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("big", "--tile must be auto, 0 (whole image) or a tile side in pixels, got 'big'"),
        ("-64", "--tile must be auto, 0 (whole image) or a tile side in pixels, got '-64'"),
        ("2.5", "--tile must be auto, 0 (whole image) or a tile side in pixels, got '2.5'"),
        ("32", "--tile 32 must be larger than --overlap 32"),
    ],
)
def test_parse_tile_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_tile(text, overlap=32)
    assert str(error.value) == message


def test_a_folder_with_dicom_in_subfolders_only_is_one_series_input(tmp_path: Path) -> None:
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    (tmp_path / "cd" / "DICOM" / "S1").mkdir(parents=True)
    template.save_as(tmp_path / "cd" / "DICOM" / "S1" / "IM1")  # no suffix: the preamble
    (job,) = plan_jobs([str(tmp_path / "cd")])
    assert (job.stem, job.series, job.folder_input) == ("cd", None, True)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(MedsrIOError, match="no DICOM files and no images"):
        plan_jobs([str(tmp_path / "empty")])


def write_series(folder: Path, uid: str, number: int, image_type: list[str]) -> None:
    """One CT_small file as series `uid` with `image_type`."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    template.SeriesInstanceUID, template.SeriesNumber = uid, number
    template.ImageType, template.SOPInstanceUID = image_type, pydicom.uid.generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    template.save_as(folder / f"IM{number}.dcm")


def test_a_localizer_series_of_a_study_is_skipped_with_a_warning(tmp_path: Path) -> None:
    study = tmp_path / "study"
    write_series(study / "s1", "1.2.3.1", 1, ["ORIGINAL", "PRIMARY", "LOCALIZER", "CT_SOM5 TOP"])
    write_series(study / "s2", "1.2.3.2", 2, ["ORIGINAL", "PRIMARY", "AXIAL"])
    with pytest.warns(UserWarning, match=r"series 1 \(STANDARD, 1 image\) skipped: a localizer"):
        (job,) = plan_jobs([str(study)])
    assert job.stem == "study_series2" and job.series is not None and not job.series.localizer


def test_a_folder_of_localizers_only_is_not_skipped(tmp_path: Path) -> None:
    """The user pointed at the scouts themselves: they are enhanced."""
    study = tmp_path / "scouts"
    for number in (1, 2):
        write_series(study, f"1.2.3.{number}", number, ["ORIGINAL", "PRIMARY", "LOCALIZER"])
    jobs = plan_jobs([str(study)])
    assert [job.stem for job in jobs] == ["scouts_series1", "scouts_series2"]
