"""`medsr fuse`: writes the enhanced PET and a fused PNG; refuses a PET that misses the CT."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from medsr.cli import app
from medsr.image import Volume
from medsr.io import read, write

sys.path.insert(0, str(Path(__file__).parent / "inference"))
from conftest import save_checkpoint  # noqa: E402

runner = CliRunner()
PET_WINDOW = {
    "kind": "window",
    "low": 0.0,
    "high": 10.0,
    "unit": "SUV",
    "guide_windows": [[-1000.0, 1000.0], [0.0, 80.0]],
    "guide_unit": "HU",
}


def test_fuse_writes_pet_and_fused_image_and_refuses_disjoint_inputs(tmp_path: Path) -> None:
    model = save_checkpoint(
        tmp_path / "fusion.pt",
        task="petct",
        name="petct-fusion",
        normalization=PET_WINDOW,
        num_features=8,
        num_blocks=1,
    )
    rng = np.random.default_rng(1)
    ct = write(
        Volume(rng.normal(0, 300, (3, 32, 32)), (2.0, 1.0, 1.0), "CT", "HU"),
        tmp_path / "in" / "ct.nii.gz",
    )
    pet = write(
        Volume(rng.uniform(0, 5, (2, 8, 8)), (3.0, 4.0, 4.0), "PT", "SUV", origin=(1.5, 1.5, 0.0)),
        tmp_path / "in" / "pet.nii.gz",
    )
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "fuse",
            "--ct",
            str(ct),
            "--pet",
            str(pet),
            "-o",
            str(out),
            "--model",
            str(model),
            "--alpha",
            "0.6",
        ],
    )
    assert result.exit_code == 0, result.output
    enhanced = read(out / "pet_x4.nii.gz")
    assert enhanced.shape == (3, 32, 32) and enhanced.unit == "SUV"
    fused = [np.asarray(Image.open(out / f"pet_x4_fused_z{k:04d}.png")) for k in range(3)]
    assert all(image.shape == (32, 32, 3) for image in fused)
    far = write(
        Volume(np.ones((2, 8, 8)), (3.0, 4.0, 4.0), "PT", "SUV", origin=(0, 0, 500.0)),
        tmp_path / "in" / "far.nii.gz",
    )
    result = runner.invoke(
        app,
        [
            "fuse",
            "--ct",
            str(ct),
            "--pet",
            str(far),
            "-o",
            str(tmp_path / "out2"),
            "--model",
            str(model),
        ],
    )
    assert result.exit_code == 2 and "do not overlap" in result.output
    assert not (tmp_path / "out2").exists()
