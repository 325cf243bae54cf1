"""InVesalius .inv3: the real head CT (orientation checked) and small synthetic projects."""

from __future__ import annotations

import io
import plistlib
import tarfile
from pathlib import Path

import numpy as np
import pytest

from medsr.image import Volume
from medsr.io import MedsrIOError, read, read_invesalius

CRANIUM = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")


def _make_inv3(path: Path, array: np.ndarray, **changes: object) -> Path:
    """A minimal .inv3: gzip'd tar with main.plist and matrix.dat, as InVesalius writes it."""
    plist = {
        "matrix": {"dtype": "int16", "filename": "matrix.dat", "shape": list(array.shape)},
        "modality": "CT",
        "name": "synthetic",
        "orientation": 1,
        "spacing": [0.5, 0.6, 2.0],
        "window_level": 40.0,
        "window_width": 400.0,
    }
    plist.update(changes)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (
            ("tmpx/main.plist", plistlib.dumps(plist)),
            ("tmpx/matrix.dat", array.astype("<i2").tobytes()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def cranium() -> Volume:
    if not CRANIUM.is_file():
        pytest.skip("apt-get install -y invesalius-examples")
    return read(CRANIUM)


def test_cranium_shape_spacing_window(cranium: Volume) -> None:
    assert cranium.shape == (108, 256, 256)
    np.testing.assert_allclose(cranium.spacing, (1.5, 0.9570312, 0.9570312))
    assert (cranium.modality, cranium.unit) == ("CT", "HU")
    assert (cranium.window.center, cranium.window.width) == (-18.0, 406.0)
    assert cranium.array.min() == -1024 and cranium.array.max() == 2986


def test_cranium_is_in_radiological_orientation(cranium: Volume) -> None:
    """Teeth (> 2000 HU) sit in the lowest slices (slice axis +S) and at the top of the
    axial image (anterior up); the skull vertex is in the last slices."""
    teeth = cranium.array > 2000
    inferior, superior = teeth[:20].sum(), teeth[-40:].sum()
    assert inferior > 300 and superior < inferior / 10
    assert teeth[:20, :128].sum() > 20 * teeth[:20, 128:].sum()
    assert cranium.metadata["rows_flipped"] is True


def test_synthetic_rows_are_flipped(tmp_path: Path) -> None:
    matrix = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    volume = read_invesalius(_make_inv3(tmp_path / "s.inv3", matrix))
    np.testing.assert_array_equal(volume.array, matrix[:, ::-1, :])
    assert volume.spacing == (2.0, 0.6, 0.5)  # plist (x, y, z) -> (z, y, x)


def test_non_axial_project_is_refused(tmp_path: Path) -> None:
    path = _make_inv3(tmp_path / "cor.inv3", np.zeros((2, 2, 2)), orientation=2)
    with pytest.raises(MedsrIOError, match="cor.inv3.*axial"):
        read(path)


def test_wrong_matrix_size_is_an_error(tmp_path: Path) -> None:
    matrix = {"dtype": "int16", "filename": "matrix.dat", "shape": [3, 2, 2]}
    path = _make_inv3(tmp_path / "bad.inv3", np.zeros((2, 2, 2)), matrix=matrix)
    with pytest.raises(MedsrIOError, match="bad.inv3.*expected shape"):
        read(path)


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "x.inv3").write_bytes(b"plain bytes")
    with pytest.raises(MedsrIOError, match="x.inv3"):
        read(tmp_path / "x.inv3")
