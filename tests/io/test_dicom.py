"""DICOM reading: HU values, compressed syntaxes, MONOCHROME1, geometry, series, errors."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_modality_lut
from pydicom.uid import generate_uid

from medsr.io import MedsrIOError, read, read_dicom
from medsr.io.dicom import read_dicom_series, series_in_folder

TestData = Callable[[str], Path]


@pytest.fixture(scope="module")
def chest(testdata: TestData) -> tuple[object, np.ndarray]:
    """RG1 chest radiograph (MONOCHROME1), decoded once: (Volume, stored pixels)."""
    path = testdata("RG1_UNCR.dcm")
    with pytest.warns(UserWarning, match="PixelSpacing"):
        volume = read_dicom(path)
    return volume, pydicom.dcmread(path).pixel_array


@pytest.mark.parametrize("name", ["693_UNCR.dcm", "CT_small.dcm"])
def test_ct_values_are_pydicom_modality_lut(testdata: TestData, name: str) -> None:
    path = testdata(name)
    ds = pydicom.dcmread(path)
    volume = read_dicom(path)
    expected = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    np.testing.assert_array_equal(volume.array, expected)
    assert volume.unit == "HU" and volume.modality == "CT"
    assert volume.spacing == tuple(float(s) for s in ds.PixelSpacing)
    assert volume.origin == tuple(float(p) for p in ds.ImagePositionPatient)
    assert volume.metadata["SOPInstanceUIDs"] == [ds.SOPInstanceUID]
    assert volume.metadata["spacing_known"] is True


def test_window_and_metadata_of_head_ct(testdata: TestData) -> None:
    volume = read_dicom(testdata("693_UNCR.dcm"))
    assert volume.window is not None
    assert (volume.window.center, volume.window.width) == (40.0, 100.0)
    assert volume.array.min() >= -3024 and 1000 < volume.array.max() < 3072


@pytest.mark.parametrize(
    ("compressed", "plain"),
    [("693_J2KR.dcm", "693_UNCR.dcm"), ("MR_small_RLE.dcm", "MR_small.dcm")],
)
def test_compressed_equals_uncompressed(testdata: TestData, compressed: str, plain: str) -> None:
    a, b = read_dicom(testdata(compressed)), read_dicom(testdata(plain))
    np.testing.assert_array_equal(a.array, b.array)
    assert a.spacing == b.spacing and a.unit == b.unit


def test_monochrome1_is_inverted(chest: tuple, testdata: TestData) -> None:
    volume, stored = chest
    high = 2**15 - 1  # BitsStored 15, unsigned: stored range 0..32767
    np.testing.assert_array_equal(volume.array, (high - stored).astype(np.float32))
    assert volume.metadata["inverted"] is True
    assert volume.window.center == high - 15000 and volume.window.width == 30000
    # RG1 stores PixelSpacing [0, 0] and no ImagerPixelSpacing.
    assert volume.spacing == (1.0, 1.0) and volume.metadata["spacing_known"] is False


def test_compressed_radiograph_equals_uncompressed(chest: tuple, testdata: TestData) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compressed = read_dicom(testdata("RG1_J2KR.dcm"))
    np.testing.assert_array_equal(compressed.array, chest[0].array)


def test_spacing_falls_back_to_imager_pixel_spacing(testdata: TestData, tmp_path: Path) -> None:
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    ds.PixelSpacing = [0, 0]
    ds.ImagerPixelSpacing = [0.2, 0.3]
    ds.save_as(tmp_path / "a.dcm")
    assert read_dicom(tmp_path / "a.dcm").spacing == (0.2, 0.3)
    del ds.PixelSpacing, ds.ImagerPixelSpacing
    ds.save_as(tmp_path / "b.dcm")
    with pytest.warns(UserWarning, match="b.dcm"):
        volume = read_dicom(tmp_path / "b.dcm")
    assert volume.spacing == (1.0, 1.0) and volume.metadata["spacing_known"] is False


def test_multiframe_uses_functional_groups(testdata: TestData) -> None:
    path = testdata("eCT_Supplemental.dcm")
    volume = read_dicom(path)
    stored = pydicom.dcmread(path).pixel_array.astype(np.float32)
    assert volume.shape == (2, 512, 512)
    assert volume.spacing == (10.0, 0.388672, 0.388672)
    # Frame 2 (z = -149) lies further along the normal (0, 0, -1) than frame 1 (z = -159).
    np.testing.assert_allclose(volume.direction[:, 2], [0.0, 0.0, -1.0])
    assert volume.origin == (99.5, -301.5, -149.0)
    np.testing.assert_array_equal(volume.array, stored[::-1] - 1024.0)
    assert volume.unit == "HU" and volume.window.center == 49.0


def _write_series(source: Path, folder: Path, count: int = 4, **changes: object) -> list[float]:
    """Slices of CT_small with a marker pixel, shuffled names and reversed instance numbers."""
    folder.mkdir(exist_ok=True)
    ds = pydicom.dcmread(source)
    base = ds.pixel_array.copy()
    rng = np.random.default_rng(0)
    z = [float(ds.ImagePositionPatient[2]) + 2.5 * k for k in range(count)]
    for k, name in zip(range(count), rng.permutation(count), strict=True):
        pixels = base.copy()
        pixels[0, 0] = 1000 + k
        ds.PixelData = pixels.tobytes()
        ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], z[k]]
        ds.InstanceNumber = count - k
        ds.SOPInstanceUID = generate_uid()
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        ds.save_as(folder / f"IM{name:04d}")  # no suffix: found by the DICM preamble
    return z


def test_series_folder_sorted_by_position(testdata: TestData, tmp_path: Path) -> None:
    z = _write_series(testdata("CT_small.dcm"), tmp_path / "series")
    volume = read(tmp_path / "series")
    assert volume.shape == (4, 128, 128)
    np.testing.assert_array_equal(volume.array[:, 0, 0], 1000 + np.arange(4) - 1024)
    assert volume.spacing[0] == pytest.approx(2.5)
    assert volume.origin[2] == pytest.approx(z[0])
    assert len(set(volume.metadata["SOPInstanceUIDs"])) == 4


def test_series_without_positions_uses_instance_number(testdata: TestData, tmp_path: Path) -> None:
    folder = tmp_path / "series"
    _write_series(testdata("CT_small.dcm"), folder)
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        ds.save_as(path)
    volume = read(folder)
    # Instance numbers run backwards, so the markers come out reversed.
    np.testing.assert_array_equal(volume.array[:, 0, 0], 1000 + np.arange(4)[::-1] - 1024)
    assert volume.spacing[0] == 5.0  # SpacingBetweenSlices


def test_mixed_series_folder_lists_series(testdata: TestData, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    _write_series(testdata("CT_small.dcm"), folder, count=2, SeriesInstanceUID="1.2.3.1")
    ds = pydicom.dcmread(next(folder.iterdir()))
    ds.SeriesInstanceUID, ds.SOPInstanceUID = "1.2.3.2", generate_uid()
    ds.save_as(folder / "other.dcm")
    with pytest.raises(MedsrIOError, match="mixed") as info:
        read(folder)
    assert "1.2.3.1" in str(info.value) and "1.2.3.2" in str(info.value)


def test_series_in_folder_and_reading_one_of_them(testdata: TestData, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    source = testdata("CT_small.dcm")
    _write_series(source, folder, count=3, SeriesInstanceUID="1.2.3.2", SeriesNumber=7)
    _write_series(
        source, folder / "sub", count=2, SeriesInstanceUID="1.2.3.1", SeriesNumber=2,
        SeriesDescription="thin",
    )  # fmt: skip
    (folder / "notes.txt").write_text("not DICOM")
    found = series_in_folder(folder)
    assert [(s.uid, s.number, s.images) for s in found] == [("1.2.3.1", 2, 2), ("1.2.3.2", 7, 3)]
    assert found[0].label == "series 2 (thin, 2 images)"
    assert read_dicom_series(folder, series_uid="1.2.3.2").shape == (3, 128, 128)
    assert read_dicom_series(folder, series_uid="1.2.3.1").shape == (2, 128, 128)
    with pytest.raises(MedsrIOError, match="no DICOM images of series 9.9"):
        read_dicom_series(folder, series_uid="9.9")


def test_a_localizer_stored_in_the_axial_series_is_left_out(
    testdata: TestData, tmp_path: Path
) -> None:
    """Some scanners store the scout in the slices' series: it is a projection (here also
    of another size), not a slice of the volume."""
    folder = tmp_path / "series"
    axial = ["ORIGINAL", "PRIMARY", "AXIAL"]
    z = _write_series(testdata("CT_small.dcm"), folder, count=3, ImageType=axial)
    scout = pydicom.dcmread(testdata("CT_small.dcm"))
    scout.ImageType, scout.SOPInstanceUID = ["ORIGINAL", "PRIMARY", "LOCALIZER"], generate_uid()
    scout.SeriesInstanceUID = pydicom.dcmread(next(folder.iterdir())).SeriesInstanceUID
    scout.PixelData, scout.Rows = scout.pixel_array[:64].tobytes(), 64
    scout.save_as(folder / "scout.dcm")
    (found,) = series_in_folder(folder)
    assert found.images == 3 and not found.localizer
    with pytest.warns(UserWarning, match=r"1 localizer image\(s\) \(scout\) of the series skipped"):
        volume = read(folder)
    assert volume.shape == (3, 128, 128) and volume.origin[2] == pytest.approx(z[0])
    assert len(volume.metadata["SOPInstanceUIDs"]) == 3
    assert scout.SOPInstanceUID not in volume.metadata["SOPInstanceUIDs"]


def test_mixed_sizes_folder_lists_sizes(testdata: TestData, tmp_path: Path) -> None:
    folder = tmp_path / "sizes"
    _write_series(testdata("CT_small.dcm"), folder, count=2)
    ds = pydicom.dcmread(next(folder.iterdir()))
    ds.PixelData = np.ascontiguousarray(ds.pixel_array[::2, ::2]).tobytes()
    ds.Rows, ds.Columns, ds.SOPInstanceUID = 64, 64, generate_uid()
    ds.save_as(folder / "small.dcm")
    with pytest.raises(MedsrIOError, match="128x128.*64x64|64x64.*128x128"):
        read(folder)


def test_duplicate_positions_are_an_error(testdata: TestData, tmp_path: Path) -> None:
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    for name in ("a.dcm", "b.dcm"):
        ds.SOPInstanceUID = generate_uid()
        ds.save_as(tmp_path / name)
    with pytest.raises(MedsrIOError, match="share one position"):
        read(tmp_path)


def test_truncated_file_names_the_file(testdata: TestData, tmp_path: Path) -> None:
    data = testdata("693_UNCR.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MedsrIOError, match="cut.dcm"):
        read(path)


def test_missing_pixel_data(testdata: TestData, tmp_path: Path) -> None:
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(MedsrIOError, match="nopix.dcm.*no pixel data"):
        read(tmp_path / "nopix.dcm")


def test_rtstruct_is_not_an_image(testdata: TestData) -> None:
    with pytest.raises(MedsrIOError, match="rtstruct.dcm.*RT structure set"):
        read(testdata("rtstruct.dcm"))


def test_jpeg_named_dcm_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "photo.dcm"
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(path, format="JPEG")
    with pytest.raises(MedsrIOError, match="photo.dcm.*not a DICOM file"):
        read(path)


def test_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "empty_series"
    folder.mkdir()
    with pytest.raises(MedsrIOError, match="empty_series.*no DICOM files"):
        read(folder)


def test_non_image_files_in_series_are_skipped(testdata: TestData, tmp_path: Path) -> None:
    _write_series(testdata("CT_small.dcm"), tmp_path / "s", count=2)
    shutil.copy(testdata("rtstruct.dcm"), tmp_path / "s" / "rt.dcm")
    with pytest.warns(UserWarning, match="rt.dcm"):
        volume = read(tmp_path / "s")
    assert volume.shape == (2, 128, 128)
