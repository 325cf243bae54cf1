"""`medsr info` and `medsr data list`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medsr.cli import app
from medsr.io.samples import SAMPLES

runner = CliRunner()


def test_info_on_ct_slice() -> None:
    from pydicom.data import get_testdata_file

    result = runner.invoke(app, ["info", str(get_testdata_file("CT_small.dcm"))])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "modality: CT" in lines and "shape: 128 x 128" in lines and "unit: HU" in lines
    assert "spacing_mm: 0.6615 x 0.6615" in lines
    assert "value_range: -896 .. 1167" in lines
    assert any(line.startswith("source: dicom") for line in lines)


def test_info_on_png(tmp_path: Path) -> None:
    Image.fromarray(np.full((5, 7), 300, np.uint16)).save(tmp_path / "p.png")
    result = runner.invoke(app, ["info", str(tmp_path / "p.png")])
    assert result.exit_code == 0
    assert "shape: 5 x 7" in result.stdout and "(unknown, assumed)" in result.stdout


@pytest.mark.parametrize("name", ["missing.dcm", "fake.dcm"])
def test_info_bad_input_exits_2_with_one_line(tmp_path: Path, name: str) -> None:
    if name == "fake.dcm":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / name, format="JPEG")
    result = runner.invoke(app, ["info", str(tmp_path / name)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and name in result.stderr


def test_data_list_shows_every_sample() -> None:
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "modality", "shape", "installed"]
    assert [line.split()[0] for line in lines[1:]] == list(SAMPLES)
    assert all(line.split()[-1] in ("yes", "no") for line in lines[1:])


def test_info_on_a_named_sample_and_an_unknown_one() -> None:
    result = runner.invoke(app, ["info", "sample:ct-small"])
    assert result.exit_code == 0, result.output
    assert "shape: 128 x 128" in result.output and "unit: HU" in result.output
    unknown = runner.invoke(app, ["info", "sample:no-such-sample"])
    assert unknown.exit_code == 2
    assert "unknown sample 'no-such-sample'" in unknown.output
