"""PNG/TIFF: exact 8/16-bit round trips, HU quantisation, restored spacing and modality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from medsr.image import Volume, Window
from medsr.io import MedsrIOError, read, write
from medsr.io.raster import CT_RANGE_HU


def test_png_16bit_exact_including_extremes(tmp_path: Path) -> None:
    values = np.arange(65536, dtype=np.float32).reshape(256, 256)
    write(Volume(values, spacing=(0.2, 0.3)), tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "I;16"
    back = read(tmp_path / "a.png")
    assert back.array.dtype == np.float32
    np.testing.assert_array_equal(back.array, values)
    assert back.array.min() == 0 and back.array.max() == 65535
    assert back.spacing == (0.2, 0.3)


def test_png_8bit_exact(tmp_path: Path) -> None:
    values = np.arange(256, dtype=np.float32).reshape(16, 16)
    write(Volume(values, spacing=(1.0, 1.0)), tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "L"
    np.testing.assert_array_equal(read(tmp_path / "a.png").array, values)


def test_foreign_uint16_png_reads_exact_values(tmp_path: Path) -> None:
    stored = np.array([[0, 1, 4095], [32768, 65534, 65535]], dtype=np.uint16)
    Image.fromarray(stored).save(tmp_path / "plain.png")
    back = read(tmp_path / "plain.png")
    np.testing.assert_array_equal(back.array, stored.astype(np.float32))
    assert back.metadata["spacing_known"] is False and back.spacing == (1.0, 1.0)


def test_ct_float_round_trip_within_quantisation_step(tmp_path: Path) -> None:
    hu = np.random.default_rng(0).uniform(-1024, 3071, (40, 50)).astype(np.float32)
    volume = Volume(hu, spacing=(0.48, 0.5), modality="CT", unit="HU", window=Window(40, 400))
    write(volume, tmp_path / "ct.png")
    back = read(tmp_path / "ct.png")
    step = (CT_RANGE_HU[1] - CT_RANGE_HU[0]) / 65535
    assert back.metadata["quantisation_step"] == pytest.approx(step)
    assert np.abs(back.array - hu).max() <= step / 2 + 1e-3
    assert (back.modality, back.unit, back.spacing) == ("CT", "HU", (0.48, 0.5))
    assert back.window == Window(40, 400)


def test_integer_hu_is_exact(tmp_path: Path) -> None:
    hu = np.random.default_rng(0).integers(-1024, 3072, (30, 30)).astype(np.float32)
    write(Volume(hu, spacing=(1, 1), modality="CT", unit="HU"), tmp_path / "ct.png")
    np.testing.assert_array_equal(read(tmp_path / "ct.png").array, hu)


def test_explicit_value_range_clips_with_warning(tmp_path: Path) -> None:
    values = np.array([[-10.5, 0.0], [50.0, 200.25]], dtype=np.float32)
    with pytest.warns(UserWarning, match="clipped"):
        write(Volume(values, (1, 1)), tmp_path / "a.png", value_range=(0.0, 100.0))
    back = read(tmp_path / "a.png").array
    np.testing.assert_allclose(back, [[0.0, 0.0], [50.0, 100.0]], atol=100 / 65535)


def test_tiff_16bit_exact_and_stack(tmp_path: Path) -> None:
    values = np.arange(65536, dtype=np.float32).reshape(4, 128, 128)
    volume = Volume(values, spacing=(3.0, 0.5, 0.5), modality="CT", unit="HU")
    write(volume, tmp_path / "stack.tif")
    assert tifffile.imread(tmp_path / "stack.tif").dtype == np.uint16
    back = read(tmp_path / "stack.tif")
    np.testing.assert_array_equal(back.array, values)
    assert back.spacing == (3.0, 0.5, 0.5) and back.modality == "CT"


def test_tiff_float32_exact(tmp_path: Path) -> None:
    values = np.random.default_rng(2).normal(0, 1000, (20, 30)).astype(np.float32)
    write(Volume(values, (0.1, 0.2), unit="SUV", modality="PT"), tmp_path / "f.tiff", float32=True)
    back = read(tmp_path / "f.tiff")
    np.testing.assert_array_equal(back.array, values)
    assert back.unit == "SUV" and back.modality == "PT"


def test_png_refuses_volume(tmp_path: Path) -> None:
    with pytest.raises(MedsrIOError, match="v.png"):
        write(Volume(np.zeros((2, 3, 3)), (1, 1, 1)), tmp_path / "v.png")


def test_corrupt_png_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(MedsrIOError, match="bad.png"):
        read(tmp_path / "bad.png")
