"""Atomic outputs: `medsr enhance` killed while writing leaves no file under a final name,
and `--skip-existing` finishes the batch; the writers commit whole files or nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medsr.cli import app
from medsr.image import Volume
from medsr.io import read, write
from medsr.io.atomic import PARTIAL_PREFIX, atomic_write, staged_folder

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))
from conftest import PERCENTILE, save_checkpoint  # noqa: E402

runner = CliRunner()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "xray.pt", task="xray-x4", normalization=PERCENTILE)


def _inputs(folder: Path, count: int = 3) -> list[Path]:
    rng = np.random.default_rng(0)
    volume = lambda: Volume(rng.random((12, 10)) * 4000, (0.5, 0.5), "CR")  # noqa: E731
    return [write(volume(), folder / f"img{k}.png") for k in range(count)]


# Runs `medsr enhance` in a child whose PNG writer dies (os._exit, as kill -9: no cleanup
# runs) after writing half of the second output's bytes.
_KILLED_CHILD = textwrap.dedent(
    """
    import os, sys
    from PIL import Image
    calls = []
    real_save = Image.Image.save

    def dying_save(self, fp, *args, **kwargs):
        calls.append(fp)
        real_save(self, fp, *args, **kwargs)
        if len(calls) == 2:
            data = open(fp, "rb").read()
            open(fp, "wb").write(data[: len(data) // 2])
            os._exit(9)

    Image.Image.save = dying_save
    from medsr.cli import app
    sys.argv = ["medsr", *sys.argv[1:]]
    app()
    """
)


def test_killed_enhance_leaves_no_file_under_the_final_name(tmp_path: Path, model: Path) -> None:
    _inputs(tmp_path / "in")
    out = tmp_path / "out"
    command = ["enhance", str(tmp_path / "in"), "-o", str(out), "--model", str(model)]
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, *command],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert child.returncode == 9, child.stderr
    finals = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert finals == ["img0_x4.png"]  # the first output whole, nothing of the second
    assert read(out / "img0_x4.png").shape == (48, 40)
    refused = runner.invoke(app, command)
    assert refused.exit_code == 2 and "will not overwrite" in refused.output
    again = runner.invoke(app, [*command, "--skip-existing"])
    assert again.exit_code == 0, again.output
    assert "skipped" in again.output and again.output.count("wrote") == 2
    finals = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert finals == ["img0_x4.png", "img1_x4.png", "img2_x4.png"]
    assert all(read(out / name).shape == (48, 40) for name in finals)


def test_failed_write_leaves_nothing(tmp_path: Path, model: Path, monkeypatch) -> None:
    """A writer that fails half-way through a DICOM series: no series folder appears, no
    staging folder is left behind."""
    import pydicom

    _inputs(tmp_path / "in", 1)
    calls = []
    real = pydicom.dataset.Dataset.save_as

    def failing(self, filename, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(filename)
        real(self, filename, *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", failing)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "enhance",
            str(tmp_path / "in"),
            "-o",
            str(out),
            "--model",
            str(model),
            "--format",
            "dicom",
        ],
    )
    assert result.exit_code == 2 and "disk full" in result.output and calls
    assert list(out.iterdir()) == []


def test_atomic_write_is_exclusive_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    with pytest.raises(RuntimeError), atomic_write(target) as temp:
        temp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileExistsError), atomic_write(target) as temp:
        temp.write_bytes(b"whole")
        target.write_bytes(b"someone else")  # appears while we write: never replaced
    assert target.read_bytes() == b"someone else"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(PARTIAL_PREFIX)] == []


def test_staged_folder_appears_whole(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    with pytest.raises(RuntimeError), staged_folder(folder) as stage:
        (stage / "IM_0001.dcm").write_bytes(b"x")
        raise RuntimeError("killed")
    assert not folder.exists() and list(tmp_path.iterdir()) == []
    with staged_folder(folder) as stage:
        (stage / "IM_0001.dcm").write_bytes(b"x")
        assert not folder.exists()
    assert [p.name for p in folder.iterdir()] == ["IM_0001.dcm"]
