"""Dispatch of `read` / `write`, the overwrite guard and unknown formats."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from medsr.image import Volume
from medsr.io import MedsrIOError, read, write
from medsr.io.read import image_stem


def test_dicom_without_suffix_is_found_by_preamble(
    testdata: Callable[[str], Path], tmp_path: Path
) -> None:
    shutil.copy(testdata("CT_small.dcm"), tmp_path / "IM0001")
    assert read(tmp_path / "IM0001").shape == (128, 128)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(MedsrIOError, match="nothing_here.png.*no such file"):
        read(tmp_path / "nothing_here.png")


def test_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MedsrIOError, match="notes.txt.*unknown format"):
        read(tmp_path / "notes.txt")


def test_medsr_io_error_is_value_error() -> None:
    assert issubclass(MedsrIOError, ValueError)


@pytest.mark.parametrize("name", ["a.nii", "a.nii.gz", "a.png", "a.tif", "a.tiff", "a.npy"])
def test_existing_output_is_not_overwritten(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"keep me")
    image = Volume(np.ones((4, 4), np.float32), spacing=(1.0, 1.0))
    with pytest.raises(FileExistsError, match=name):
        write(image, path)
    assert path.read_bytes() == b"keep me"
    write(image, path, overwrite=True)
    np.testing.assert_array_equal(read(path).array, image.array)


def test_write_refuses_dicom_volume_and_unknown_suffix(tmp_path: Path) -> None:
    image = Volume(np.zeros((2, 2)), spacing=(1.0, 1.0))
    volume = Volume(np.zeros((2, 2, 2)), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(MedsrIOError, match="out.dcm.*series"):  # one .dcm file is one 2-D image
        write(volume, tmp_path / "out.dcm")
    with pytest.raises(MedsrIOError, match="out.bmp"):
        write(image, tmp_path / "out.bmp")
    with pytest.raises(MedsrIOError, match="unsupported option"):
        write(image, tmp_path / "out.npy", value_range=(0, 1))


@pytest.mark.parametrize(
    ("name", "stem"),
    [("scan.nii.gz", "scan"), ("CXR.PNG", "CXR"), ("a.b.dcm", "a.b"), ("IM0001", "IM0001")],
)
def test_image_stem_drops_the_suffix_medsr_reads_by(name: str, stem: str) -> None:
    assert image_stem(name) == stem
