"""Derived DICOM as other tools read it: no made-up pixel spacing, valid Type 1/2
attributes, integer HU for CT with the clipping stated, and no `dciodvfy` error that the
source did not already have (dicom3tools; `make test` installs it and requires it)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from medsr.image import Volume, rescaled_in_plane
from medsr.io import read, write
from medsr.io.dicom_write import write_dicom, write_dicom_series
from medsr.physics.pet_units import to_suv_bw
from tests.io.dicom_builders import pet_dicom, tilted_series

INFO = {"model": "tiny", "architecture": "srresnet", "task": "x2", "scale": 2}
DCIODVFY = shutil.which("dciodvfy")
REQUIRE_DCIODVFY = bool(os.environ.get("MEDSR_REQUIRE_DCIODVFY"))
TestData = Callable[[str], Path]


def enhanced(source: Volume, crop: int | None = None) -> Volume:
    """What `Predictor.enhance` returns at x2 (pixels repeated, +0.25), optionally on the
    top-left `crop x crop` pixels (origin and metadata unchanged) to keep tests small."""
    array = source.array if crop is None else source.array[..., :crop, :crop]
    source = Volume(
        array,
        source.spacing,
        source.modality,
        source.unit,
        source.window,
        source.origin,
        source.direction,
        source.metadata,
    )
    spacing, origin = rescaled_in_plane(source, 2, finer=True)
    return Volume(
        np.kron(array, np.ones((2, 2), np.float32)) + 0.25,
        spacing,
        source.modality,
        source.unit,
        source.window,
        origin,
        source.direction,
        {**source.metadata, "inference": INFO},
    )


def read_quietly(path: Path) -> Volume:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing PixelSpacing, uneven spacing: tested apart
        return read(path)


# -- item 3: unknown pixel spacing stays unknown -------------------------------------------


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG3_UNCR.dcm"])
def test_radiograph_without_spacing_gets_none(
    testdata: TestData, name: str, tmp_path: Path
) -> None:
    source = read_quietly(testdata(name))
    assert source.metadata["spacing_known"] is False
    ds = pydicom.dcmread(write_dicom(enhanced(source, crop=64), tmp_path / "out.dcm"))
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "ImagePositionPatient"):
        assert keyword not in ds, keyword
    assert read_quietly(tmp_path / "out.dcm").metadata["spacing_known"] is False


def test_png_without_spacing_gets_none_in_dicom_and_png(tmp_path: Path) -> None:
    Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).save(tmp_path / "in.png")
    source = read(tmp_path / "in.png")
    assert source.metadata["spacing_known"] is False
    output = enhanced(source)
    ds = pydicom.dcmread(write_dicom(output, tmp_path / "out.dcm"))
    assert "PixelSpacing" not in ds and "ImagePositionPatient" not in ds
    back = read(write(output, tmp_path / "out.png"))  # the medsr header says "unknown" too
    assert back.metadata["spacing_known"] is False


# -- item 4: attributes validators check ---------------------------------------------------


def test_single_valued_image_type_and_empty_type_1_values(
    testdata: TestData, tmp_path: Path
) -> None:
    """A source with ImageType 'ORIGINAL' (one value), empty StudyInstanceUID and
    SOPInstanceUID and no PatientID (as three TotalSegmentator slices)."""
    source = pydicom.dcmread(testdata("CT_small.dcm"))
    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(3):
        ds = copy.deepcopy(source)
        ds.ImageType = "ORIGINAL"
        ds.StudyInstanceUID = ""
        ds.SOPInstanceUID = ""
        del ds.PatientID
        ds.ImagePositionPatient[2] = 10.0 + 2.0 * k
        ds.save_as(folder / f"{k}.dcm", enforce_file_format=False)
    paths = write_dicom_series(enhanced(read_quietly(folder)), tmp_path / "out")
    written = [pydicom.dcmread(p) for p in paths]
    for ds in written:
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]  # not D, E, R, ...
        assert pydicom.uid.UID(ds.StudyInstanceUID).is_valid
        assert "PatientID" in ds and ds.PatientID == ""  # Type 2: present, empty
        assert "SourceImageSequence" not in ds  # no empty ReferencedSOPInstanceUID
    assert len({ds.StudyInstanceUID for ds in written}) == 1  # one new study for the series


# -- item 5: CT in integer HU, physically possible range -----------------------------------


def test_ct_is_integer_hu_with_slope_1_and_clipping_stated(tmp_path: Path) -> None:
    values = np.linspace(-1300.0, 3500.0, 64 * 64).reshape(64, 64) + 0.3
    ct = Volume(values, (0.5, 0.5), "CT", "HU", metadata={"inference": INFO})
    with pytest.warns(UserWarning, match="clipped"):
        ds = pydicom.dcmread(write_dicom(ct, tmp_path / "ct.dcm"))
    assert (ds.RescaleSlope, ds.RescaleIntercept) == (1, -1024)
    assert ds.pixel_array.dtype == np.uint16
    expected = np.clip(np.rint(values), -1024, 3071)
    assert np.array_equal(read(tmp_path / "ct.dcm").array, expected)
    below, above = int(np.sum(np.rint(values) < -1024)), int(np.sum(np.rint(values) > 3071))
    assert f"{below + above} pixel(s) outside the physically possible -1024..3071 HU" in (
        ds.DerivationDescription
    )


def test_ct_keeps_a_source_range_above_3071(testdata: TestData, tmp_path: Path) -> None:
    """Metal or contrast up to 4000 HU in the source is kept, not cut at 3071."""
    source = read(testdata("CT_small.dcm"))
    array = source.array.copy()
    array[0, 0] = 4000.0
    hot = Volume(array, source.spacing, "CT", "HU", None, source.origin, source.direction, {})
    hot.metadata = {**source.metadata, "source_value_range": [float(array.min()), 4000.0]}
    output = enhanced(hot)  # 4000.25 rounds to 4000
    ds = pydicom.dcmread(write_dicom(output, tmp_path / "ct.dcm"))
    assert read(tmp_path / "ct.dcm").array.max() == 4000.0 and float(ds.RescaleSlope) == 1.0


def padded_ct(padding: np.ndarray | float) -> Volume:
    """A 64^2 CT slice whose corners outside a circle hold `padding` (the field of view of
    a scanner that writes -2000 / -3024 HU there); inside, -1000 .. 3000 HU and 3 pixels
    a model made below -1024 HU."""
    yy, xx = np.mgrid[:64, :64]
    outside = (yy - 31.5) ** 2 + (xx - 31.5) ** 2 > 30**2
    values = np.linspace(-1000.0, 3000.0, 64 * 64).reshape(64, 64)
    values[32, 30:33] = -1100.0
    values[outside] = np.broadcast_to(padding, values.shape)[outside]
    return Volume(values, (0.5, 0.5), "CT", "HU", metadata={"inference": INFO})


def test_ct_padding_outside_the_field_of_view_is_kept_and_declared(
    dciodvfy: Callable[[Path], set[str]], tmp_path: Path
) -> None:
    """The padding the model's output kept from its input is written as it was (not clipped
    to -1024 HU, not counted as clipped), and declared as PixelPaddingValue."""
    ct = padded_ct(-3024.0)
    with pytest.warns(UserWarning, match="3 pixel"):
        ds = pydicom.dcmread(write_dicom(ct, tmp_path / "ct.dcm"))
    assert (ds.RescaleSlope, ds.RescaleIntercept, ds.PixelPaddingValue) == (1, -3024, 0)
    expected = np.where(ct.array < -1500, ct.array, np.clip(np.rint(ct.array), -1024, 3071))
    assert np.array_equal(read(tmp_path / "ct.dcm").array, expected)
    assert "3 pixel(s) outside the physically possible -1024..3071 HU clipped (3 below" in (
        ds.DerivationDescription
    )
    assert not dciodvfy(tmp_path / "ct.dcm")


def test_ct_padding_of_several_values_is_kept_without_a_padding_value(tmp_path: Path) -> None:
    ct = padded_ct(np.where(np.arange(64) < 32, -2000.0, -3024.0)[:, None])
    with pytest.warns(UserWarning, match="clipped"):
        ds = pydicom.dcmread(write_dicom(ct, tmp_path / "ct.dcm"))
    assert ds.RescaleIntercept == -3024 and "PixelPaddingValue" not in ds
    padding = ct.array < -1500
    assert np.array_equal(read(tmp_path / "ct.dcm").array[padding], ct.array[padding])


# -- dciodvfy over the bundled samples -----------------------------------------------------


def dciodvfy_errors(path: Path) -> set[str]:
    """The `Error` lines dciodvfy prints for `path`."""
    assert DCIODVFY is not None
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    return {line.strip() for line in lines if line.startswith("Error")}


@pytest.fixture(scope="module")
def dciodvfy() -> Callable[[Path], set[str]]:
    if DCIODVFY is None:
        message = "dciodvfy not found (apt-get install dicom3tools; `make test` installs it)"
        if REQUIRE_DCIODVFY:
            pytest.fail(message + " and MEDSR_REQUIRE_DCIODVFY is set")
        pytest.skip(message)
    return dciodvfy_errors


SAMPLES = [
    "CT_small.dcm",  # pydicom CT
    "MR_small.dcm",  # pydicom MR
    "693_UNCR.dcm",  # pydicom-data head CT (source lacks FrameOfReferenceUID)
    "explicit_VR-UN.dcm",  # pydicom-data abdomen CT (JPEG 2000)
    "RG1_UNCR.dcm",  # pydicom-data CR, no pixel spacing
    "RG3_UNCR.dcm",  # pydicom-data CR, no pixel spacing
]


@pytest.mark.parametrize("name", SAMPLES)
def test_dciodvfy_finds_no_new_error_in_sample(
    dciodvfy: Callable[[Path], set[str]], testdata: TestData, name: str, tmp_path: Path
) -> None:
    path = testdata(name)
    derived = write_dicom(enhanced(read_quietly(path), crop=128), tmp_path / "out.dcm")
    assert dciodvfy(derived) <= dciodvfy(path)


def test_dciodvfy_finds_no_error_in_non_dicom_inputs(
    dciodvfy: Callable[[Path], set[str]], tmp_path: Path
) -> None:
    """Derived DICOM from the InVesalius head CT (if installed), a PNG and a PET volume."""
    from medsr.io import SampleNotAvailable, load_sample

    volumes = [
        read(write(Volume(np.eye(32) * 900, (0.2, 0.2), "CR"), tmp_path / "cr.png")),
        Volume(np.random.default_rng(0).random((2, 8, 8)) * 5, (3.0, 4.0, 4.0), "PT", "SUV"),
    ]
    Image.fromarray(np.eye(16, dtype=np.uint8) * 200).save(tmp_path / "plain.png")
    volumes.append(read(tmp_path / "plain.png"))
    try:
        head = load_sample("invesalius-head-ct")
        volumes.append(Volume(head.array[50:52], head.spacing, "CT", "HU", metadata=head.metadata))
    except SampleNotAvailable:
        pass  # the other inputs still run; the sample test of medsr.io says why it is absent
    for k, volume in enumerate(volumes):
        for path in write_dicom_series(enhanced(volume), tmp_path / f"out{k}"):
            assert dciodvfy(path) == set(), path


def test_dciodvfy_finds_no_new_error_in_a_tilted_series(
    dciodvfy: Callable[[Path], set[str]], testdata: TestData, tmp_path: Path
) -> None:
    sources = tilted_series(testdata("CT_small.dcm"), tmp_path / "in")
    source_errors = set().union(*(dciodvfy(p) for p in (tmp_path / "in").iterdir()))
    for path in write_dicom_series(enhanced(read_quietly(tmp_path / "in")), tmp_path / "out"):
        assert dciodvfy(path) <= source_errors, path
    assert len(sources) == 7


def test_dciodvfy_finds_no_new_error_in_a_pet_series(
    dciodvfy: Callable[[Path], set[str]], testdata: TestData, tmp_path: Path
) -> None:
    """A PET in Bq/mL converted to SUV (as `medsr fuse` does) written as derived DICOM."""
    source = pet_dicom(testdata("CT_small.dcm"), tmp_path / "pet.dcm")
    suv = to_suv_bw(read_quietly(source))
    (derived,) = write_dicom_series(enhanced(suv), tmp_path / "out")
    assert pydicom.dcmread(derived).Units == "GML"
    assert dciodvfy(derived) <= dciodvfy(source)


def test_acr_nema_dates_and_times_of_a_source_are_written_as_dicom(
    dciodvfy: Callable[[Path], set[str]], testdata: TestData, tmp_path: Path
) -> None:
    """`1993.04.30` / `11:27:24` (old files) become `19930430` / `112724`; a value no form
    reads is left empty (Type 2), with a warning; and dciodvfy finds no error, the Secondary
    Capture of an image of unknown spacing included (its Laterality, Type 2C, is present)."""
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values it writes
        ds.StudyDate, ds.StudyTime, ds.PatientBirthDate = "1993.04.30", "11:27:24", "unknown"
        del ds.PixelSpacing  # Secondary Capture: Laterality is then required (Type 2C)
        ds.save_as(tmp_path / "old.dcm")
    with pytest.warns(UserWarning, match="PatientBirthDate 'unknown' is not a DICOM DA"):
        path = write_dicom(enhanced(read_quietly(tmp_path / "old.dcm")), tmp_path / "out.dcm")
    out = pydicom.dcmread(path)
    assert (out.StudyDate, out.StudyTime, out.PatientBirthDate) == ("19930430", "112724", "")
    assert not dciodvfy(path)
