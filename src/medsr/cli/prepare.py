"""`medsr degrade`, `medsr train`, `medsr evaluate`: pairs, models and their reports."""

from __future__ import annotations

from typing import Annotated

import typer

from medsr.cli.base import app, check_options, user_errors


@app.command("degrade")
def degrade(
    source: str = typer.Argument(..., help="Image/volume file, DICOM folder or sample:NAME."),
    output: str = typer.Option(..., "-o", "--output", help="Output folder (files never replaced)."),
    task: str = typer.Option("ldct-x4", help="x2 x4 x8 ldct(-x2/4) ldct-legacy-x4 xray-x4 petct"),
    format: str = typer.Option("nifti", "--format", help="png (16-bit), nifti or npy."),
    seed: int = typer.Option(0, help="Seed; slice k uses slice_seed(seed, k)."),
    slice_index: int | None = typer.Option(None, "--slice", help="Only this slice of a volume."),
    dose: float | None = typer.Option(None, help="Dose (ldct) / count (petct) fraction."),
    scale: int | None = typer.Option(None, help="Downsampling factor (2, 3, 4, 8)."),
    incident_photons: float | None = typer.Option(None, help="I0 per ray (CT) or pixel (x-ray)."),
    counts: float | None = typer.Option(None, help="petct prompts/slice: 5e5 body, 2e6 brain."),
    keep_identifiers: bool = typer.Option(
        False,
        "--keep-identifiers",
        help="NIfTI output: keep PatientID, UIDs, scanner model in its header extension.",
    ),
) -> None:
    """Make a (low, high) training pair: STEM_hr, STEM_lr, STEM_params.json, STEM_strip.png."""
    from tqdm import tqdm

    from medsr.apps.degrade import degrade_files

    overrides = {
        "dose_fraction": dose,
        "scale": scale,
        "incident_photons": incident_photons,
        "counts": counts,
    }
    progress = lambda r: tqdm(r, desc=task, unit="slice")  # noqa: E731
    with user_errors():
        check_options(output=output)
        written = degrade_files(
            source, output, task, format, seed, slice_index, overrides, progress, keep_identifiers
        )
    for path in written:
        typer.echo(f"wrote {path}")


@app.command("train")
def train(
    config: str = typer.Option(..., "--config", help="YAML config, e.g. configs/NAME.yaml."),
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="key=value overrides, e.g. training.max_steps=10 phase=gan."),
    ] = None,
    resume: str | None = typer.Option(None, help="Checkpoint to resume from, or 'auto'."),
    output: str | None = typer.Option(None, help="Output folder (default runs/NAME-PHASE)."),
) -> None:
    """Train a generator (pixel pretraining or GAN fine-tuning); works under torchrun."""
    from medsr.training import load_config
    from medsr.training import train as run_training

    with user_errors():
        settings = load_config(config, list(overrides or []))
        result = run_training(settings, output, resume)
    if result["checkpoint"] is not None:
        typer.echo(f"last checkpoint: {result['checkpoint']}")


@app.command("evaluate")
def evaluate(
    sources: Annotated[list[str] | None, typer.Argument(help="More --data inputs.")] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", help="Image, folder or sample:NAME (repeat, or list them after it)."
        ),
    ] = None,
    model: str | None = typer.Option(None, "--model", help="Registered name or checkpoint .pt."),
    no_model: bool = typer.Option(False, "--no-model", help="Evaluate the baselines only."),
    pairs: str | None = typer.Option(None, "--pairs", help="Folder written by medsr degrade."),
    low: str | None = typer.Option(
        None, "--low", help="Your real low images (file or folder), e.g. quarter dose."
    ),
    high: str | None = typer.Option(
        None, "--high", help="Their real targets (matched by name or DICOM position)."
    ),
    task: str | None = typer.Option(None, help="Degradation task (default: the model's)."),
    seed: int = typer.Option(0, help="Seed; input k uses slice_seed(seed, k)."),
    window: str = typer.Option("auto", help="neuro, abdomen, chest or auto (from body part)."),
    baselines: str = typer.Option("nearest,bicubic,lanczos,denoise-lanczos", help="Comma list."),
    output: str = typer.Option("evaluation-report", "-o", "--output", help="Report folder."),
    border: int | None = typer.Option(None, help="Border pixels excluded (default 4 x scale)."),
    crop: int | None = typer.Option(None, help="Measure only a central square of this size."),
    interval: str = typer.Option("t", help="95 % interval: t or bootstrap."),
    slice_index: int | None = typer.Option(None, "--slice", help="Slice of 3-D inputs (middle)."),
    input_crop: int | None = typer.Option(None, help="Central square of each input first."),
    dose: float | None = typer.Option(None, help="Dose fraction for ldct tasks."),
    task_arg: Annotated[
        list[str] | None,
        typer.Option("--task-arg", help="Task parameter key=value, e.g. num_views=180 (repeat)."),
    ] = None,
    device: str = typer.Option("cpu", help="Model device: cpu, cuda, auto."),
    precision: str = typer.Option(
        "auto", help="Model precision: auto (bf16 where computed natively), fp32 or bf16."
    ),
) -> None:
    """Compare a model with nearest/bicubic/Lanczos/denoise+Lanczos on the same pairs."""
    from medsr.evaluation import parse_task_args, run_evaluation

    with user_errors():
        check_options(output=output, device=device)
        if (model is None) == (not no_model):
            raise ValueError("give --model NAME_OR_PATH or --no-model")
        overrides = parse_task_args(task_arg or [])
        if dose is not None:
            overrides["dose_fraction"] = dose
        written = run_evaluation(
            output,
            model=model,
            data=[*(data or []), *(sources or [])],
            pairs_dir=pairs,
            low_dir=low,
            high_dir=high,
            task=task,
            seed=seed,
            window=window,
            baselines=baselines.split(","),
            border=border,
            crop=crop,
            interval=interval,
            slice_index=slice_index,
            input_crop=input_crop,
            task_overrides=overrides,
            device=device,
            progress=lambda n: typer.echo(f"... {n}"),
            precision=precision,
        )
    for path in written:
        typer.echo(f"wrote {path}")
