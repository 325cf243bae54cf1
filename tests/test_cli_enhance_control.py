"""`medsr enhance` keeps the user informed and in control (issue 16): the model picked and
why, a tile bar for one large image, seconds per image, a batch summary, declared modality /
unit / spacing, one-line errors and warnings."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from medsr.cli import app
from medsr.image import Volume
from medsr.io import read, write
from medsr.io.samples import load_sample

sys.path.insert(0, str(Path(__file__).parent / "inference"))
from conftest import PERCENTILE, save_checkpoint  # noqa: E402

runner = CliRunner()
TIMING = re.compile(
    r"^(?P<source>\S+): (?P<model>\S+), (?P<shape>[\dx ]+) -> [\dx ]+ px in \d+\.\d s"
    r" \((?P<tiles>[^)]+)\)$"
)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def xray_model(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "xray.pt", task="xray-blind-x4", normalization=PERCENTILE)


def radiograph(path: Path, shape: tuple[int, int] = (96, 80)) -> Path:
    array = np.random.default_rng(0).random(shape) * 4000
    return write(Volume(array, spacing=(0.5, 0.5), modality="CR"), path)


def test_a_single_large_image_shows_a_tile_bar_and_its_time(
    tmp_path: Path, xray_model: Path
) -> None:
    source = radiograph(tmp_path / "in" / "chest.png")
    command = ["enhance", str(source), "-o", str(tmp_path / "out"), "--model", str(xray_model)]
    result = runner.invoke(app, [*command, "--tile", "32", "--overlap", "8"])
    assert result.exit_code == 0, result.output
    # 96 x 80 in 32 px tiles overlapping by 8: 4 x 3 tiles, counted up to the end
    assert re.search(r"chest:.*12/12 \[", result.stderr), result.stderr
    lines = result.stdout.splitlines()
    assert f"wrote {tmp_path / 'out' / 'chest_x4.png'}" in lines
    timing = [m for line in lines if (m := TIMING.match(line))]
    assert len(timing) == 1, lines
    assert timing[0]["source"] == str(source) and timing[0]["model"] == "xray.pt"
    assert timing[0]["shape"] == "96 x 80"
    assert timing[0]["tiles"] == "12 tiles of 32 px overlapping by 8, 12 per call"
    assert not any(line.startswith("medsr enhance:") for line in lines)  # one image: no summary


def test_a_batch_has_a_line_per_image_and_a_summary(tmp_path: Path, xray_model: Path) -> None:
    for k in range(3):
        radiograph(tmp_path / "in" / f"img{k}.png", (16, 12))
    command = ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    result = runner.invoke(app, [*command, "--model", str(xray_model)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert sum(bool(TIMING.match(line)) for line in lines) == 3
    assert re.fullmatch(r"medsr enhance: 3 images in \d+\.\d s \(\d+\.\d s per image\)", lines[-1])
    (tmp_path / "out" / "img1_x4.png").unlink()
    again = runner.invoke(app, [*command, "--model", str(xray_model), "--skip-existing"])
    assert again.exit_code == 0, again.output
    summary = (
        r"medsr enhance: 1 image in \d+\.\d s \(\d+\.\d s per image\), 2 skipped \(outputs exist\)"
    )
    assert re.fullmatch(summary, again.stdout.splitlines()[-1]), again.stdout


def test_model_auto_is_the_default_and_says_why(tmp_path: Path) -> None:
    source = str(Path(get_testdata_file("CT_small.dcm")))
    result = runner.invoke(app, ["enhance", source, "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{source}: model ct-ldct-x4 (auto): CT image, 128 x 128 px")
    assert "noise SD" in first
    assert (tmp_path / "out" / "CT_small_x4.dcm").is_file()


def _nifti_in_hu(path: Path) -> Path:
    """A CT volume in HU as another tool writes it: no medsr header, reads as OT / a.u."""
    array = load_sample("ct-small").array[32:96, 32:96]
    volume = np.stack([array, array]).transpose(2, 1, 0)  # (x, y, z)
    nib.save(nib.Nifti1Image(volume.astype(np.int16), np.diag([0.66, 0.66, 2.0, 1.0])), path)
    return path


def test_a_ct_nifti_from_another_tool_declared_ct_in_hu(tmp_path: Path) -> None:
    source = _nifti_in_hu(tmp_path / "ct.nii.gz")
    assert (read(source).modality, read(source).unit) == ("OT", "a.u.")
    out = str(tmp_path / "out")
    refused = runner.invoke(app, ["enhance", str(source), "-o", out])
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "--modality CT --unit HU" in refused.stderr
    declared = ["--modality", "CT", "--unit", "HU", "--spacing", "2.5,0.5,0.5"]
    result = runner.invoke(app, ["enhance", str(source), "-o", out, *declared])
    assert result.exit_code == 0, result.output
    assert "model ct-ldct-x4 (auto): CT image, 64 x 64 px, 2 slices" in result.stdout
    enhanced = read(tmp_path / "out" / "ct_x4.nii.gz")
    assert enhanced.shape == (2, 256, 256)
    np.testing.assert_allclose(enhanced.spacing, (2.5, 0.125, 0.125))


def test_a_declaration_that_contradicts_a_dicom_file_is_refused(tmp_path: Path) -> None:
    source = str(Path(get_testdata_file("CT_small.dcm")))
    result = runner.invoke(app, ["enhance", source, "-o", str(tmp_path), "--modality", "CR"])
    assert result.exit_code == 2 and "records modality CT" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_png_given_its_pixel_size(tmp_path: Path, xray_model: Path) -> None:
    from PIL import Image

    Image.fromarray(np.full((10, 8), 300, np.uint16)).save(tmp_path / "p.png")
    command = ["enhance", str(tmp_path / "p.png"), "-o", str(tmp_path / "out")]
    result = runner.invoke(app, [*command, "--model", str(xray_model), "--spacing", "0.2"])
    assert result.exit_code == 0, result.output
    assert read(tmp_path / "out" / "p_x4.png").spacing == (0.05, 0.05)


def test_warnings_are_one_formatted_line(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del dataset.PixelSpacing
    dataset.save_as(tmp_path / "nospacing.dcm")
    command = ["enhance", str(tmp_path / "nospacing.dcm"), "-o", str(tmp_path / "out")]
    result = runner.invoke(app, [*command, "--model", "ct-ldct-x4"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "PixelSpacing" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: "), result.stderr
    assert "UserWarning" not in result.stderr and ".py:" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "cuda"], "CPU-only build"),
        (["--device", "tpu:x"], "not a device name"),
        (["--modality", "XX"], "--modality 'XX'"),
        (["--spacing", "a,b"], "--spacing 'a,b'"),
        (["--model", "xray-x4", "--dose", "0.2"], "non-blind"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    if "cuda" in extra and torch.version.cuda is not None:
        pytest.skip("this PyTorch has CUDA")
    source = radiograph(tmp_path / "in.png", (16, 16))
    result = runner.invoke(app, ["enhance", str(source), "-o", str(tmp_path / "out"), *extra])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_an_output_naming_an_existing_file(tmp_path: Path, xray_model: Path) -> None:
    source = radiograph(tmp_path / "in.png", (16, 16))
    (tmp_path / "taken").write_text("mine")
    for output in ("taken", "taken/sub"):
        command = ["enhance", str(source), "-o", str(tmp_path / output)]
        result = runner.invoke(app, [*command, "--model", str(xray_model)])
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and "is an existing file" in result.stderr
        assert "Errno" not in result.stderr
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize(
    "command",
    [["enhance", "--bogus"], ["enhance"], ["enhance", "x", "--tile", "abc"], ["nosuch"]],
)
def test_usage_errors_are_one_line_with_exit_code_2(command: list[str]) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "--help" in result.stderr and "Usage" not in result.output
