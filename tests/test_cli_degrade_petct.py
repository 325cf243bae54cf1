from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medsr import Volume
from medsr.cli import app
from medsr.io import read, write
from medsr.io.samples import is_available, load_sample
from medsr.physics.resize import downsample

runner = CliRunner()
HEAD = "invesalius-head-ct"
pytestmark = pytest.mark.skipif(not is_available(HEAD), reason="InVesalius head CT not installed")


@pytest.fixture(scope="module")
def head_volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Slices 59-61 of the InVesalius head, area-downsampled to 128^2 (1.91 mm), as npy."""
    import torch

    volume = load_sample(HEAD)
    array = downsample(torch.from_numpy(volume.array[59:62].copy()), 2).numpy()
    small = Volume(
        array,
        (volume.spacing[0], *(2 * s for s in volume.spacing[1:])),
        modality="CT",
        unit="HU",
        window=volume.window,
    )
    return write(small, tmp_path_factory.mktemp("ct") / "head.npy")


def test_petct_writes_ct_target_pet_params_and_strip(tmp_path: Path, head_volume: Path) -> None:
    out = tmp_path / "out"
    args = [
        "degrade",
        str(head_volume),
        "-o",
        str(out),
        "--task",
        "petct",
        "--slice",
        "1",
        "--format",
        "nifti",
        "--scale",
        "2",
        "--counts",
        "1e6",
        "--dose",
        "0.5",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stem = "head_z0001"
    ct, target = read(out / f"{stem}_ct.nii.gz"), read(out / f"{stem}_hr.nii.gz")
    pet, pet_full = read(out / f"{stem}_lr.nii.gz"), read(out / f"{stem}_lr_fullcount.nii.gz")
    assert ct.shape == target.shape == (128, 128) and pet.shape == pet_full.shape == (64, 64)
    assert ct.modality == "CT" and float(np.median(ct.array)) < 0  # HU kept, mostly air
    assert pet.modality == "PT" and pet.unit == "SUV" and target.unit == "SUV"
    assert pet.spacing == pytest.approx(tuple(2 * s for s in ct.spacing))
    # Same activity: the PET means agree with the target's (calibrated, SUV).
    for image in (pet, pet_full):
        assert float(image.array.mean()) == pytest.approx(float(target.array.mean()), rel=0.1)
    # Half the counts: the low-count image is noisier than the full-count one.
    assert np.abs(pet.array - pet_full.array).mean() > 0.01
    params = json.loads((out / f"{stem}_params.json").read_text())
    info = params["slices"][0]
    assert info["task"] == "petct" and info["count_fraction"] == 0.5 and info["counts"] == 1e6
    assert params["full_count"]["prompts"][0] == pytest.approx(1e6, rel=0.01)
    assert info["prompts_low"] == pytest.approx(0.5e6, rel=0.02)
    assert info["lesions"] and all(
        0 <= lesion["row"] < 128 and 0 <= lesion["col"] < 128 and lesion["suv"] >= 4
        for lesion in info["lesions"]
    )
    assert (out / f"{stem}_strip.png").stat().st_size > 20_000


def test_petct_volume_as_png_slices_and_counts_refused_elsewhere(
    tmp_path: Path, head_volume: Path
) -> None:
    out = tmp_path / "png"
    args = [
        "degrade",
        str(head_volume),
        "-o",
        str(out),
        "--task",
        "petct",
        "--format",
        "png",
        "--scale",
        "4",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for k in range(3):
        for kind, shape in (
            ("ct", (128, 128)),
            ("hr", (128, 128)),
            ("lr", (32, 32)),
            ("lr_fullcount", (32, 32)),
        ):
            assert read(out / f"head_z{k:04d}_{kind}.png").shape == shape
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "will not overwrite" in again.output
    other = [
        "degrade",
        str(head_volume),
        "-o",
        str(tmp_path / "x"),
        "--task",
        "x4",
        "--counts",
        "1e6",
    ]
    refused = runner.invoke(app, other)
    assert refused.exit_code == 2 and "counts" in refused.output
