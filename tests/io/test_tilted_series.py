"""A tilted, unevenly spaced CT series (as a GE head series with an 18.5 degree gantry tilt
and gaps of 1.08-6.99 mm): every output slice keeps its own source's position, orientation
and SOP reference; tilt and gaps are stated; regular-grid operations refuse it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from medsr.cli import app
from medsr.image import Volume, rescaled_in_plane
from medsr.io import read_dicom, write
from medsr.io.dicom_write import write_dicom_series
from tests.io.dicom_builders import GAPS_MM, TILT_DEG, tilted_series

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))
from conftest import save_checkpoint  # noqa: E402

INFO = {"model": "tiny", "architecture": "srresnet", "task": "x2", "scale": 2}


def enhanced(source: Volume) -> Volume:
    """What `Predictor.enhance` returns at x2: pixels repeated, geometry and provenance."""
    spacing, origin = rescaled_in_plane(source, 2, finer=True)
    return Volume(
        np.kron(source.array, np.ones((2, 2), np.float32)) + 0.25,
        spacing,
        source.modality,
        source.unit,
        source.window,
        origin,
        source.direction,
        {**source.metadata, "inference": INFO},
    )


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _check_each_slice_is_its_source(
    paths: list[Path], sources: dict[str, pydicom.Dataset], shift: np.ndarray
) -> list[pydicom.Dataset]:
    """Each output references one source, all different, and sits at that source's own
    position (moved in-plane by `shift`) with its orientation."""
    written = [pydicom.dcmread(p) for p in paths]
    references = [ds.SourceImageSequence[0].ReferencedSOPInstanceUID for ds in written]
    assert sorted(references) == sorted(sources)  # one to one, none twice
    for ds, uid in zip(written, references, strict=True):
        source = sources[uid]
        assert ds.SourceImageSequence[0].ReferencedSOPClassUID == source.SOPClassUID
        np.testing.assert_allclose(
            [float(v) for v in ds.ImagePositionPatient],
            np.array(source.ImagePositionPatient, float) + shift,
            atol=1e-3,
        )
        np.testing.assert_allclose(
            [float(v) for v in ds.ImageOrientationPatient],
            [float(v) for v in source.ImageOrientationPatient],
            atol=1e-6,
        )
        for text in (ds.DerivationDescription, ds.ImageComments):
            assert f"gantry tilt of {TILT_DEG:.2f} deg" in text
            assert "uneven slice spacing 1.024..6.629 mm" in text  # gaps x cos(tilt)
    return written


def test_reader_states_tilt_and_uneven_spacing(
    testdata: Callable[[str], Path], tmp_path: Path
) -> None:
    tilted_series(testdata("CT_small.dcm"), tmp_path / "in")
    with pytest.warns(UserWarning, match="gantry tilt of 18.50 deg.*uneven slice spacing"):
        volume = read_dicom(tmp_path / "in")
    assert volume.metadata["regular_grid"] is False
    assert volume.metadata["gantry_tilt_deg"] == pytest.approx(TILT_DEG, abs=1e-3)
    steps = np.array(GAPS_MM) * np.cos(np.radians(TILT_DEG))
    np.testing.assert_allclose(volume.metadata["slice_steps_mm"], steps, atol=1e-3)
    assert [s["position"][2] for s in volume.metadata["slices"]] == sorted(
        s["position"][2] for s in volume.metadata["slices"]
    )


def test_each_output_slice_keeps_its_source_position_and_reference(
    testdata: Callable[[str], Path], tmp_path: Path
) -> None:
    sources = tilted_series(testdata("CT_small.dcm"), tmp_path / "in")
    with pytest.warns(UserWarning, match="gantry tilt"):
        source = read_dicom(tmp_path / "in")
    output = enhanced(source)
    paths = write_dicom_series(output, tmp_path / "out")
    shift = np.asarray(output.origin) - np.asarray(source.origin)
    written = _check_each_slice_is_its_source(paths, sources, shift)
    for ds in written:  # the pixels are those of the referenced slice
        reference = sources[ds.SourceImageSequence[0].ReferencedSOPInstanceUID]
        assert np.all(_hu(ds) == _hu(reference)[0, 0])


def test_regular_grid_operations_refuse_the_series(
    testdata: Callable[[str], Path], tmp_path: Path
) -> None:
    from medsr.inference.fusion_checks import check_regular_grids

    tilted_series(testdata("CT_small.dcm"), tmp_path / "in")
    with pytest.warns(UserWarning, match="gantry tilt"):
        volume = read_dicom(tmp_path / "in")
    with pytest.raises(ValueError, match="NIfTI output needs slices on a regular grid.*tilt"):
        write(volume, tmp_path / "volume.nii.gz")
    assert not (tmp_path / "volume.nii.gz").exists()
    pet = Volume(np.ones((2, 8, 8)), (3.0, 4.0, 4.0), "PT", "SUV")
    with pytest.raises(ValueError, match=r"fusion \(CT\) needs slices on a regular grid"):
        check_regular_grids(volume, pet)


def test_enhance_dicom_series_cli(testdata: Callable[[str], Path], tmp_path: Path) -> None:
    """`medsr enhance --format dicom` on the tilted series (x4 model)."""
    sources = tilted_series(testdata("CT_small.dcm"), tmp_path / "tilted")
    model = save_checkpoint(tmp_path / "ct.pt", task="ldct-x4")
    command = ["enhance", str(tmp_path / "tilted"), "--model", str(model), "--format"]
    # the CLI prints warnings as one 'warning:' line (medsr.apps.console), not Python's
    result = CliRunner().invoke(app, [*command, "dicom", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "gantry tilt" in result.output
    paths = sorted((tmp_path / "out" / "tilted_x4").iterdir())
    assert len(paths) == 7
    template = next(iter(sources.values()))
    row = np.array(template.ImageOrientationPatient[:3], float)
    column = np.array(template.ImageOrientationPatient[3:], float)
    spacing = float(template.PixelSpacing[0])  # square pixels; x4 moves the origin -3/8 pixel
    _check_each_slice_is_its_source(paths, sources, -(3 / 8) * spacing * (row + column))
    refused = CliRunner().invoke(app, [*command, "nifti", "-o", str(tmp_path / "nifti")])
    assert refused.exit_code == 2 and "regular grid" in refused.output
    assert "gantry tilt" in refused.output
