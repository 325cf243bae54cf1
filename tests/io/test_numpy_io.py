""".npy: plain arrays, and the medsr sidecar that keeps spacing, modality and unit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medsr.image import Volume, Window
from medsr.io import MedsrIOError, read, write
from medsr.io.numpy_io import sidecar_path


def test_round_trip_with_sidecar(tmp_path: Path) -> None:
    volume = Volume(
        np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32),
        spacing=(2.0, 0.5, 0.6),
        modality="CT",
        unit="HU",
        window=Window(-600, 1500),
        origin=(1.0, 2.0, 3.0),
    )
    write(volume, tmp_path / "v.npy")
    assert sidecar_path(tmp_path / "v.npy").is_file()
    back = read(tmp_path / "v.npy")
    np.testing.assert_array_equal(back.array, volume.array)
    assert (back.spacing, back.modality, back.unit) == ((2.0, 0.5, 0.6), "CT", "HU")
    assert back.window == Window(-600, 1500) and back.origin == (1.0, 2.0, 3.0)


def test_plain_npy_has_unknown_spacing(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.arange(6, dtype=np.int16).reshape(2, 3))
    back = read(tmp_path / "p.npy")
    np.testing.assert_array_equal(back.array, [[0, 1, 2], [3, 4, 5]])
    assert back.spacing == (1.0, 1.0) and back.metadata["spacing_known"] is False


def test_bad_arrays_are_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "four.npy", np.zeros((1, 2, 3, 4)))
    with pytest.raises(MedsrIOError, match="four.npy"):
        read(tmp_path / "four.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(MedsrIOError, match="obj.npy"):
        read(tmp_path / "obj.npy")


def test_existing_sidecar_blocks_write(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text("{}")
    with pytest.raises(FileExistsError, match="v.json"):
        write(Volume(np.zeros((2, 2)), (1, 1)), tmp_path / "v.npy")
    assert not (tmp_path / "v.npy").exists()
