from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from medsr.cli import app
from medsr.inference import sha256_file
from medsr.io.samples import is_available

pytest.importorskip("pydicom.data")
runner = CliRunner()


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 2-step x2 SRResNet trained on the InVesalius slab split (seconds)."""
    if not is_available("invesalius-head-ct"):
        pytest.skip("needs the InVesalius sample (apt-get install -y invesalius-examples)")
    from medsr.training import load_config, train

    threads = torch.get_num_threads()
    overrides = [
        "name=tiny-x2",
        "data.task=x2",
        "data.task_overrides={}",
        "data.folders=[]",  # the config's ../shared/data body slices: not on a user's machine
        "data.scale=2",
        "model.scale=2",
        "model.num_features=8",
        "model.num_blocks=1",
        "training.max_steps=2",
        "training.batch_size=2",
        "training.warmup_steps=0",
        "data.patch_size=32",
        "data.num_validation=2",
        "data.cache_dir=null",
        "intervals.validate_every=2",
        "intervals.checkpoint_every=2",
        "intervals.sample_every=2",
        "intervals.log_every=1",
        "num_threads=1",
    ]
    folder = tmp_path_factory.mktemp("tiny-run")
    result = train(load_config("configs/srgan-ct-ldct-x4.yaml", overrides), folder)
    torch.set_num_threads(threads)
    yield Path(result["checkpoint"])


def test_no_model_on_ct_small_x2(tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["evaluate", "--no-model", "--data", "sample:ct-small", "--task", "x2", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = read_rows(out / "per_image.csv")
    assert [r["method"] for r in rows] == ["nearest", "bicubic", "lanczos", "target"]
    assert float(rows[2]["psnr"]) > float(rows[0]["psnr"])
    text = (out / "report.md").read_text()
    assert "none: baselines only (--no-model)" in text and "| task | x2" in text
    assert f"wrote {out / 'report.html'}" in result.output
    again = runner.invoke(app, args)  # never replaces a report
    assert again.exit_code == 2 and "already holds a report" in again.output


def test_needs_a_model_or_no_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--data", "sample:ct-small", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--model NAME_OR_PATH or --no-model" in result.output
    result = runner.invoke(app, ["evaluate", "--no-model", "sample:ct-small", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "--task is needed" in result.output


def test_ldct_with_task_args_runs_a_denoiser(tmp_path: Path) -> None:
    out = tmp_path / "ldct"
    args = [
        "evaluate",
        "--no-model",
        "sample:ct-small",
        "--task",
        "ldct-x2",
        "--task-arg",
        "num_views=180",
        "--dose",
        "0.5",
        "--baselines",
        "lanczos,nlm-lanczos",
        "--window",
        "neuro",
        "-o",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in read_rows(out / "per_image.csv")}
    assert set(rows) == {"lanczos", "nlm-lanczos", "target"}
    # the denoiser lowers the noise SD in the target's uniform ROIs
    assert float(rows["nlm-lanczos"]["noise_sd"]) < float(rows["lanczos"]["noise_sd"])
    text = (out / "report.md").read_text()
    assert "| dose | 0.5 of the input's dose |" in text and "num_views 180" in text
    assert "ct-small: neuro (chosen with --window)" in text


def test_model_checkpoint_end_to_end(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "evaluate",
            *("--model", str(tiny_checkpoint), "--data", "sample:ct-small", "-o", str(out)),
            *("--precision", "fp32"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in read_rows(out / "per_image.csv")}
    assert set(rows) == {"nearest", "bicubic", "lanczos", "tiny-x2", "target"}
    assert float(rows["tiny-x2"]["seconds"]) > 0 and rows["tiny-x2"]["consistency"] != ""
    text = (out / "report.md").read_text()
    assert f"checkpoint sha256 {sha256_file(tiny_checkpoint)}" in text
    assert "model trained on sample:invesalius-head-ct" in text
    assert "no evaluation image comes from a training source" in text
    assert "model: torch on cpu, float32," in text  # --precision fp32, whatever the CPU
    assert (out / "grid_ct-small.png").stat().st_size > 50_000


def test_pairs_from_medsr_degrade(tmp_path: Path) -> None:
    degrade = ["degrade", "sample:ct-small", "--task", "x2", "--format", "npy", "--seed", "4"]
    assert runner.invoke(app, [*degrade, "-o", str(tmp_path / "pairs")]).exit_code == 0
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--no-model",
            "--pairs",
            str(tmp_path / "pairs"),
            "--baselines",
            "bicubic",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert [r["method"] for r in read_rows(out / "per_image.csv")] == ["bicubic", "target"]
    assert "per image (medsr degrade --seed): ct-small 4" in (out / "report.md").read_text()


@pytest.mark.usefixtures("one_thread")
def test_real_pairs_with_a_model(tmp_path: Path) -> None:
    """`--low/--high` on fabricated real low-dose pairs (a CT slice and a noisier copy, same
    grid) with the shipped x1 denoiser: the model's row next to the baselines', and the
    one-line refusals (one folder only, a model of another scale)."""
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file

    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    rng = np.random.default_rng(0)
    for k in range(2):
        source.SOPInstanceUID = pydicom.uid.generate_uid()
        (tmp_path / "high").mkdir(exist_ok=True)
        (tmp_path / "low").mkdir(exist_ok=True)
        source.save_as(tmp_path / "high" / f"slice{k}.dcm")
        noisy = source.copy()
        pixels = source.pixel_array.astype(np.int32) + rng.normal(0, 25, source.pixel_array.shape)
        noisy.PixelData = pixels.astype(source.pixel_array.dtype).tobytes()
        noisy.save_as(tmp_path / "low" / f"slice{k}.dcm")
    pairs = ["--low", str(tmp_path / "low"), "--high", str(tmp_path / "high")]
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", *pairs, "--model", "ct-ldct", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_rows(out / "per_image.csv")
    assert {r["image"] for r in rows} == {"slice0", "slice1"}
    psnr = {r["method"]: float(r["psnr"]) for r in rows if r["image"] == "slice0" and r["psnr"]}
    assert {"ct-ldct", "input"} <= set(psnr) and all(np.isfinite(list(psnr.values())))
    # the pairs are what they claim: a classical denoiser brings the low image nearer
    denoiser = next(m for m in psnr if m.endswith("-lanczos"))
    assert psnr[denoiser] > psnr["input"]
    for args, message in (
        ([*pairs[:2], "--no-model"], "give both --low and --high"),
        ([*pairs, "--model", "ct-ldct-x4"], "the model is x4"),
    ):
        refused = runner.invoke(app, ["evaluate", *args, "-o", str(tmp_path / "no")])
        assert refused.exit_code == 2 and message in refused.stderr, refused.output
        assert refused.stderr.count("\n") == 1


def test_precision_is_checked_before_any_work(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    command = ["evaluate", "--model", str(tiny_checkpoint), "sample:ct-small", "-o", str(out)]
    result = runner.invoke(app, [*command, "--precision", "fp8"])
    assert result.exit_code == 2 and "precision must be one of" in result.output
    assert len(result.output.splitlines()) == 1 and not out.exists()


def test_a_file_input_names_its_grid_by_its_stem(tmp_path: Path) -> None:
    import numpy as np

    from medsr.image import Volume
    from medsr.io import write

    image = np.random.default_rng(0).random((64, 64)) * 4000
    write(Volume(image, spacing=(0.2, 0.2), modality="CR"), tmp_path / "chest.png")
    out = tmp_path / "report"
    args = ["evaluate", "--no-model", "--data", str(tmp_path / "chest.png"), "--task", "x2"]
    result = runner.invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "grid_chest.png").is_file() and not (out / "grid_chest.png.png").exists()
