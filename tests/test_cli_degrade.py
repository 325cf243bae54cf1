from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medsr import Volume, __version__
from medsr.cli import app
from medsr.io import read, write

pydicom_data = pytest.importorskip("pydicom.data")
CT_SMALL = Path(pydicom_data.get_testdata_file("CT_small.dcm"))
runner = CliRunner()
SUFFIX = {"png": ".png", "nifti": ".nii.gz", "npy": ".npy"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["png", "nifti", "npy"])
def test_degrade_ct_small_writes_pair_params_and_strip(tmp_path: Path, fmt: str) -> None:
    before = digest(CT_SMALL)
    out = tmp_path / "out"
    args = ["degrade", "--task", "ldct-x4", str(CT_SMALL), "-o", str(out), "--format", fmt]
    result = runner.invoke(app, [*args, "--seed", "7", "--dose", "0.5"])
    assert result.exit_code == 0, result.output
    hr, lr = read(out / f"CT_small_hr{SUFFIX[fmt]}"), read(out / f"CT_small_lr{SUFFIX[fmt]}")
    assert hr.shape == (128, 128) and lr.shape == (32, 32)
    assert lr.spacing == pytest.approx(tuple(4 * s for s in hr.spacing))
    assert hr.modality == "CT" and float(np.median(hr.array)) < 500  # HU kept
    assert abs(float(lr.array.mean()) - float(hr.array.mean())) < 5.0
    assert (out / "CT_small_strip.png").stat().st_size > 10_000
    params = json.loads((out / "CT_small_params.json").read_text())
    assert params["seed"] == 7 and params["medsr_version"] == __version__
    assert params["input"] == str(CT_SMALL.resolve())
    assert params["slices"][0]["dose_fraction"] == 0.5
    # I0 was calibrated on CT_small's own noise (it is a noisy, low-dose-like image).
    assert params["slices"][0]["incident_photons_calibrated"] is True
    assert 1e2 < params["slices"][0]["incident_photons"] < 1e5
    assert "wrote" in result.output and digest(CT_SMALL) == before


def test_same_seed_same_output_and_no_overwrite(tmp_path: Path) -> None:
    args = ["degrade", "--task", "ldct-legacy-x4", str(CT_SMALL), "--format", "npy"]
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "a")]).exit_code == 0
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "b")]).exit_code == 0
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "c"), "--seed", "1"]).exit_code == 0
    a, b, c = (np.load(tmp_path / d / "CT_small_lr.npy") for d in "abc")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    stamp = (tmp_path / "a" / "CT_small_lr.npy").stat().st_mtime_ns
    again = runner.invoke(app, [*args, "-o", str(tmp_path / "a"), "--seed", "5"])
    assert again.exit_code == 2 and "will not overwrite" in again.output
    assert (tmp_path / "a" / "CT_small_lr.npy").stat().st_mtime_ns == stamp


def test_volume_all_slices_and_one_slice(tmp_path: Path) -> None:
    array = np.full((3, 24, 24), -1000.0, dtype=np.float32)
    array[:, 4:20, 4:20] = np.arange(3, dtype=np.float32)[:, None, None] * 10
    source = write(Volume(array, (2.0, 0.5, 0.5), modality="CT", unit="HU"), tmp_path / "v.npy")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["degrade", "--task", "x4", str(source), "-o", str(out), "--format", "png"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("v_z*_lr.png")) == [
        f"v_z000{k}_lr.png" for k in range(3)
    ]
    assert read(out / "v_z0002_lr.png").shape == (6, 6)
    result = runner.invoke(
        app,
        [
            "degrade",
            "--task",
            "x2",
            str(source),
            "-o",
            str(out),
            "--format",
            "nifti",
            "--slice",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    lr = read(out / "v_z0001_lr.nii.gz")
    assert lr.shape == (12, 12) and lr.spacing == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize(
    "extra",
    [
        ["--task", "x5"],
        ["--task", "x4", "--dose", "0.25"],
        ["--format", "jpeg"],
        ["--task", "xray-x4"],
        ["--scale", "5"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, extra: list[str]) -> None:
    result = runner.invoke(app, ["degrade", str(CT_SMALL), "-o", str(tmp_path), *extra])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and result.output.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_missing_input_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["degrade", str(tmp_path / "nope.dcm"), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "nope.dcm" in result.output
