"""`medsr evaluate --low DIR --high DIR`: a user's own real pairs, matched by name or position."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from medsr.cli import app
from medsr.evaluation.real_pairs import read_real_pairs
from medsr.image import Volume
from medsr.io import write

runner = CliRunner()


def _pairs_by_name(root: Path, scale: int = 2, count: int = 3) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    low_dir, high_dir = root / "low", root / "high"
    for k in range(count):
        high = rng.random((32, 32)).cumsum(0).cumsum(1)
        low = high.reshape(32 // scale, scale, 32 // scale, scale).mean(axis=(1, 3))
        write(Volume(high, spacing=(0.5, 0.5), modality="CR"), high_dir / f"img{k}.tif")
        write(Volume(low, spacing=(1.0, 1.0), modality="CR"), low_dir / f"img{k}.tif")
    return low_dir, high_dir


def test_pairs_matched_by_name_and_scale_inferred(tmp_path: Path) -> None:
    low_dir, high_dir = _pairs_by_name(tmp_path)
    pairs = read_real_pairs(low_dir, high_dir)
    assert [p.name for p in pairs] == ["img0", "img1", "img2"]
    assert {p.scale for p in pairs} == {2} and pairs[0].task == "x2"
    assert pairs[0].high.shape == (32, 32) and pairs[0].low.shape == (16, 16)


def test_cli_report_on_real_pairs(tmp_path: Path) -> None:
    low_dir, high_dir = _pairs_by_name(tmp_path)
    out = tmp_path / "report"
    command = ["evaluate", "--no-model", "--low", str(low_dir), "--high", str(high_dir)]
    result = runner.invoke(app, [*command, "--baselines", "bicubic,lanczos", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "per_image.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert {r["image"] for r in rows} == {"img0", "img1", "img2"}
    assert {r["method"] for r in rows} >= {"bicubic", "lanczos"}


def test_pairs_matched_by_dicom_position_when_names_differ(tmp_path: Path) -> None:
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for folder, prefix, shift in (("low", "quarter", 0.0), ("high", "full", 0.2)):
        (tmp_path / folder).mkdir()
        for k, z in enumerate((10.0, 15.0, 20.0)):
            ds = source.copy()
            ds.ImagePositionPatient = [0.0, 0.0, z + shift]
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            # File order differs from position order in the high folder.
            ds.save_as(tmp_path / folder / f"{prefix}_{(k * 2) % 3 if folder == 'high' else k}.dcm")
    pairs = read_real_pairs(tmp_path / "low", tmp_path / "high", "ldct")
    matched = {Path(p.params["low_file"]).name: Path(p.params["high_file"]).name for p in pairs}
    assert matched == {
        "quarter_0.dcm": "full_0.dcm",
        "quarter_1.dcm": "full_2.dcm",
        "quarter_2.dcm": "full_1.dcm",
    }


def test_mismatched_sizes_and_missing_positions_are_one_line_errors(tmp_path: Path) -> None:
    low_dir, high_dir = _pairs_by_name(tmp_path)
    write(
        Volume(np.zeros((30, 30)), spacing=(1.0, 1.0), modality="CR"), tmp_path / "odd" / "img0.tif"
    )
    with pytest.raises(ValueError, match="is not 1, 2, 4 or 8 times"):
        read_real_pairs(low_dir / "img0.tif", tmp_path / "odd" / "img0.tif")
    (low_dir / "img0.tif").rename(low_dir / "renamed.tif")
    with pytest.raises(ValueError, match="no DICOM slice position"):
        read_real_pairs(low_dir, high_dir)
