"""NIfTI: exact affine round trip, RAS <-> LPS and (x, y, z) <-> (z, y, x) conversion."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medsr.image import Volume, Window
from medsr.io import MedsrIOError, read, read_nifti, write, write_nifti


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.fixture
def oblique() -> Volume:
    rng = np.random.default_rng(1)
    return Volume(
        array=rng.normal(0, 300, (5, 6, 7)).astype(np.float32),
        spacing=(2.5, 0.7, 0.9),
        modality="CT",
        unit="HU",
        window=Window(40, 400),
        origin=(10.3, -20.1, 5.5),
        direction=_rotation(0.2, -0.35, 0.6),
    )


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz"])
def test_oblique_round_trip_is_exact(oblique: Volume, tmp_path: Path, name: str) -> None:
    write(oblique, tmp_path / name)
    back = read(tmp_path / name)
    np.testing.assert_array_equal(back.array, oblique.array)
    np.testing.assert_allclose(back.affine, oblique.affine, rtol=0, atol=1e-12)
    np.testing.assert_allclose(back.spacing, oblique.spacing, rtol=1e-12)
    assert (back.modality, back.unit, back.window) == ("CT", "HU", Window(40, 400))


def test_nifti_affine_is_ras_of_volume_affine(oblique: Volume, tmp_path: Path) -> None:
    path = write_nifti(oblique, tmp_path / "v.nii.gz")
    image = nib.load(str(path))
    np.testing.assert_allclose(np.diag([-1, -1, 1, 1]) @ image.affine, oblique.affine, atol=1e-5)
    assert image.shape == (7, 6, 5)  # (x, y, z)
    assert image.get_fdata()[6, 2, 4] == pytest.approx(oblique.array[4, 2, 6])


def test_foreign_nifti_reads_in_lps(tmp_path: Path) -> None:
    """A file written by nibabel alone (no medsr extension)."""
    data = np.arange(4 * 3 * 2, dtype=np.int16).reshape(4, 3, 2)  # (x, y, z)
    affine_ras = np.array(
        [[-0.8, 0.1, 0.0, 90.0], [0.0, 0.9, -0.3, -120.0], [0.05, 0.2, 3.0, -40.0], [0, 0, 0, 1]]
    )
    nib.save(nib.Nifti1Image(data, affine_ras), str(tmp_path / "f.nii"))
    volume = read_nifti(tmp_path / "f.nii")
    assert volume.shape == (2, 3, 4)
    assert volume.array[1, 2, 3] == data[3, 2, 1]
    np.testing.assert_allclose(volume.affine, np.diag([-1, -1, 1, 1]) @ affine_ras, atol=1e-6)
    assert volume.modality == "OT" and volume.unit == "a.u."


def test_two_d_writes_as_one_slice(tmp_path: Path) -> None:
    image = Volume(np.arange(12, dtype=np.float32).reshape(3, 4), spacing=(0.5, 0.25))
    write(image, tmp_path / "slice.nii.gz")
    assert nib.load(str(tmp_path / "slice.nii.gz")).shape == (4, 3, 1)
    back = read(tmp_path / "slice.nii.gz")
    np.testing.assert_array_equal(back.array, image.array)
    assert back.spacing == (0.5, 0.25)


def test_bad_nifti_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.nii"
    path.write_bytes(b"not a nifti file at all" * 20)
    with pytest.raises(MedsrIOError, match="broken.nii"):
        read(path)
