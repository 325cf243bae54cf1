"""The `medsr` command line. Thin: each command parses arguments and calls the library."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from medsr._version import __version__

# Click's UsageError as Typer raises it (Typer may carry its own copy of Click): the base
# of its public BadParameter.
_UsageError: type[Exception] = typer.BadParameter.__base__  # type: ignore[assignment]


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """A usage error (unknown option, missing argument, bad value) as one `error: ...` line
    with exit code 2, like every other user error; a bare group still shows its help."""
    try:
        yield
    except _UsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            raise
        message = " ".join(error.format_message().split())  # type: ignore[attr-defined]
        ctx = getattr(error, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {message}{hint}", err=True)
        raise typer.Exit(2) from None


class _Commands(TyperGroup):
    """The `medsr` group: its subcommands' usage errors print as one line."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


app = typer.Typer(
    name="medsr",
    help="Restore medical images (CT, low-dose CT, PET/CT, radiographs). Research use only.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Commands,
)
data_app = typer.Typer(help="Real sample images that install offline.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input ends a command with exit code 2 and a one-line `error: ...`, no traceback;
    each warning prints as one `warning: ...` line (`medsr.apps.console`)."""
    from medsr.apps.console import printed_warnings, user_error_line

    with printed_warnings():
        try:
            yield
        except Exception as error:
            line = user_error_line(error)
            if line is None:
                raise
            typer.echo(line, err=True)
            raise typer.Exit(2) from None


def _check_options(output: str | None = None, device: str | None = None) -> None:
    """Refuse, before any work, an output folder `-o` that names a file and a `--device`
    this PyTorch cannot use (`medsr.apps.console`)."""
    from medsr.apps.console import check_device, check_output_folder

    if device is not None:
        check_device(device)
    if output is not None:
        check_output_folder(output)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"medsr {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """medsr: super-resolution and denoising of medical images. Research use only."""


@app.command("info")
def info(
    path: str = typer.Argument(..., help="Image file, DICOM series folder or sample:NAME."),
) -> None:
    """Print modality, shape, spacing, unit, value range, window and source of an image."""
    import warnings

    from medsr.io.samples import read_source

    with _user_errors(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volume = read_source(path)
        summary = volume.describe()
        window = volume.window
        meta = volume.metadata
        window_text = (
            "none" if window is None else f"center {window.center:g}, width {window.width:g}"
        )
        lines = {
            "modality": summary["modality"],
            "shape": " x ".join(str(n) for n in summary["shape"]),
            "spacing_mm": " x ".join(f"{s:g}" for s in summary["spacing_mm"])
            + ("" if meta.get("spacing_known", True) else " (unknown, assumed)"),
            "unit": summary["unit"],
            "value_range": "{:g} .. {:g}".format(*summary["value_range"]),
            "window": window_text,
            "source": f"{meta.get('source', '?')} ({path})",
        }
        for key in ("PatientID", "SeriesInstanceUID", "Manufacturer", "name", "sample"):
            if meta.get(key):
                lines[key] = str(meta[key])
    for key, value in lines.items():
        typer.echo(f"{key}: {value}")
    for warning in caught:
        typer.echo(f"warning: {warning.message}", err=True)


@data_app.command("list")
def data_list() -> None:
    """List the named real samples and whether each is installed."""
    from medsr.io.samples import is_available, list_samples

    rows = [("name", "modality", "shape", "installed")]
    for sample in list_samples():
        shape = " x ".join(str(n) for n in sample.shape)
        installed = "yes" if is_available(sample.name) else "no"
        rows.append((sample.name, sample.modality, shape, installed))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


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
    """Make a (low, high) training pair: writes <stem>_hr, <stem>_lr, _params.json, _strip.png."""
    from tqdm import tqdm

    from medsr.apps.degrade import degrade_files

    overrides = {
        "dose_fraction": dose,
        "scale": scale,
        "incident_photons": incident_photons,
        "counts": counts,
    }
    progress = lambda r: tqdm(r, desc=task, unit="slice")  # noqa: E731
    with _user_errors():
        _check_options(output=output)
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

    with _user_errors():
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
) -> None:
    """Compare a model with nearest/bicubic/Lanczos/denoise+Lanczos on the same pairs."""
    from medsr.evaluation import parse_task_args, run_evaluation

    with _user_errors():
        _check_options(output=output, device=device)
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
        )
    for path in written:
        typer.echo(f"wrote {path}")


@app.command("enhance")
def enhance(
    inputs: Annotated[list[str], typer.Argument(help="Images, folders, DICOM series, NIfTI.")],
    output: str = typer.Option(..., "-o", "--output", help="Output folder (files never replaced)."),
    model: str = typer.Option(
        "auto",
        "--model",
        help="Registered name, checkpoint .pt or .onnx; auto: picked per image from its "
        "modality, size and noise (printed with the reason).",
    ),
    backend: str = typer.Option("torch", help="torch or onnx (onnxruntime)."),
    format: str | None = typer.Option(
        None, "--format", help="png, tiff, nifti or dicom (default: like the input)."
    ),
    modality: str | None = typer.Option(
        None,
        "--modality",
        help="Modality of inputs that do not record one (NIfTI, PNG, TIFF, .npy), e.g. CT.",
    ),
    unit: str | None = typer.Option(
        None, "--unit", help="Their intensity unit, e.g. HU (with --modality CT)."
    ),
    spacing: str | None = typer.Option(
        None, "--spacing", help="Their pixel size in mm: 0.7, ROW,COL or SLICE,ROW,COL."
    ),
    tile: int = typer.Option(256, help="Tile size in input pixels (0: whole image)."),
    overlap: int = typer.Option(32, help="Tile overlap in input pixels."),
    consistency: bool = typer.Option(False, "--consistency", help="Write a consistency map."),
    into_input_folder: bool = typer.Option(
        False,
        "--overwrite-into-input-folder",
        help="Allow writing into an input's folder (existing files are still never replaced).",
    ),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, mps or auto."),
    skip_existing: bool = typer.Option(
        False,
        "--skip-existing",
        help="Skip inputs whose output exists (re-run a batch that stopped half-way).",
    ),
    keep_identifiers: bool = typer.Option(
        False,
        "--keep-identifiers",
        help="NIfTI output: keep PatientID, UIDs, scanner model in its header extension.",
    ),
    dose: float | None = typer.Option(
        None,
        "--dose",
        help="Non-blind CT denoisers (ct-ldct): the input's dose as a fraction of a normal "
        "dose (0.25 = quarter dose). Default: the model's training dose; the noise to remove "
        "is the measured input noise x sqrt(1 - dose).",
    ),
    strength: float = typer.Option(
        1.0, "--strength", help="Non-blind denoisers: noise level x this (>1 smoother)."
    ),
) -> None:
    """Super-resolve / denoise images with a trained model. Research use only.

    Prints the model picked for each image (--model auto) and why, a tile bar for a single
    2-D image, a line per image with the seconds it took and a summary.

    Under `torchrun --nproc-per-node N -m medsr.cli enhance ...` each process enhances its
    share of the inputs and rank 0 prints one summary."""
    from medsr.apps.console import say
    from medsr.apps.declare import Declared, parse_spacing
    from medsr.apps.enhance import enhance_paths
    from medsr.apps.progress import RunLog
    from medsr.inference.shard import join_shard, leave_shard

    log = RunLog(say)
    with _user_errors():
        _check_options(output=output, device=device)
        declared = Declared(
            modality.upper() if modality else None,
            unit,
            parse_spacing(spacing) if spacing else None,
        )
        shard = join_shard()
        written = enhance_paths(
            inputs,
            output,
            model,
            backend=backend,
            fmt=format,
            tile=tile or None,
            overlap=overlap,
            consistency=consistency,
            allow_input_folder=into_input_folder,
            device=device,
            report=log.wrote,
            shard=shard,
            skip_existing=skip_existing,
            skipped=lambda job: log.skipped(job.source),
            keep_identifiers=keep_identifiers,
            dose=dose,
            strength=strength,
            declared=declared,
            chosen=lambda job, choice: log.chosen(job.source, choice),
            done=log.done,
        )
    if shard.enabled:
        counts = shard.gather(len(written))
        if shard.is_main:
            shares = ", ".join(f"rank {k}: {n}" for k, n in enumerate(counts))
            typer.echo(
                f"medsr enhance: {sum(counts)} files written by {len(counts)} processes ({shares})"
            )
        leave_shard()
    elif (summary := log.summary()) is not None:
        say(summary)


@app.command("pacs")
def pacs(
    url: str = typer.Argument(..., help="DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web"),
    model: str = typer.Option(..., "--model", help="Registered name, checkpoint .pt or .onnx."),
    patient_id: str | None = typer.Option(None, "--patient-id", help="PatientID to match."),
    study: str | None = typer.Option(None, "--study", help="StudyInstanceUID to match."),
    series: str | None = typer.Option(None, "--series", help="SeriesInstanceUID to match."),
    modality: str | None = typer.Option(None, "--modality", help="Modality, e.g. CT or CR."),
    date: str | None = typer.Option(None, "--date", help="StudyDate YYYYMMDD[-YYYYMMDD]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be processed."),
    watch: bool = typer.Option(False, "--watch", help="Poll for new matching series."),
    interval: float = typer.Option(60.0, help="Seconds between polls with --watch."),
    max_polls: int = typer.Option(0, help="Stop --watch after this many polls (0: never)."),
    state: str = typer.Option(
        "medsr-pacs-state.sqlite", help="State file: each series is processed once."
    ),
    work_dir: str | None = typer.Option(None, help="Work folder (default: <state>.work)."),
    credentials: str | None = typer.Option(
        None,
        help="JSON file with username/password or token (else $MEDSR_PACS_USERNAME and "
        "$MEDSR_PACS_PASSWORD, or $MEDSR_PACS_TOKEN).",
    ),
    ca_bundle: str | None = typer.Option(None, help="PEM file of trusted CAs for https."),
    client_cert: str | None = typer.Option(None, help="PEM client certificate (mutual TLS)."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Skip TLS verification (test servers only)."
    ),
    timeout: float = typer.Option(120.0, help="Seconds per HTTP request."),
    stow_batch: int = typer.Option(50, help="Instances per STOW-RS request."),
    backend: str = typer.Option("torch", help="torch or onnx (onnxruntime)."),
    device: str = typer.Option("cpu", help="cpu, cuda (cuda:LOCAL_RANK under torchrun), auto."),
    tile: int = typer.Option(256, help="Tile size in input pixels (0: whole image)."),
    overlap: int = typer.Option(32, help="Tile overlap in input pixels."),
) -> None:
    """Enhance series from a DICOMweb PACS and store the derived series back into their
    study (QIDO-RS, WADO-RS, STOW-RS). Research use only.

    Works under `torchrun --nproc-per-node N -m medsr.cli pacs ...`: the series are shared
    out over the processes, rank 0 prints one summary."""
    from pathlib import Path

    from medsr.inference.shard import join_shard, leave_shard
    from medsr.pacs import (
        PacsOptions,
        Selection,
        TlsOptions,
        connect,
        list_series,
        load_credentials,
        run_pacs,
    )

    with _user_errors():
        _check_options(device=device)
        selection = Selection(patient_id, study, series, modality, date)
        options = PacsOptions(
            model=model,
            state_path=Path(state),
            work_dir=Path(work_dir) if work_dir else None,
            backend=backend,
            device=device,
            tile=tile or None,
            overlap=overlap,
            stow_batch=stow_batch,
        )
        tls = TlsOptions(ca_bundle=ca_bundle, verify=not insecure, client_cert=client_cert)
        client = connect(url, load_credentials(credentials), tls, timeout_s=timeout)
        shard = join_shard()
        if shard.is_main:
            typer.echo(
                "medsr pacs: research use only; derived series are marked so and are "
                "not for diagnosis",
                err=True,
            )
        if dry_run:
            if shard.is_main:
                list_series(client, selection, options, report=typer.echo)
            leave_shard()
            return
        try:
            per_rank = run_pacs(
                client,
                selection,
                options,
                shard=shard,
                watch=watch,
                interval_s=interval,
                max_polls=max_polls,
                report=typer.echo,
            )
        except KeyboardInterrupt:
            typer.echo(f"medsr pacs: interrupted; {state} keeps what is done", err=True)
            raise typer.Exit(130) from None
        leave_shard()
    if any(counts.failed for counts in per_rank):
        raise typer.Exit(1)


@app.command("fuse")
def fuse(
    ct: str = typer.Option(..., "--ct", help="CT (HU): DICOM series folder, NIfTI or image."),
    pet: str = typer.Option(..., "--pet", help="PET (SUV): DICOM series folder, NIfTI or image."),
    output: str = typer.Option(..., "-o", "--output", help="Output folder (files never replaced)."),
    model: str = typer.Option("fusion-petct-x4", "--model", help="Registered name or .pt."),
    format: str | None = typer.Option(
        None, "--format", help="png, tiff, nifti or dicom (default: like the PET input)."
    ),
    alpha: float = typer.Option(0.5, help="Weight of the PET colour map over the CT (0..1)."),
    suv_max: float | None = typer.Option(None, help="SUV at the top of the colour map."),
    device: str = typer.Option("cpu", help="cpu, cuda, mps or auto."),
    allow_mismatch: bool = typer.Option(
        False,
        "--allow-mismatch",
        help="Fuse even if PatientID or FrameOfReferenceUID differ (written into the output).",
    ),
) -> None:
    """Enhance a PET onto its CT's grid (CT-guided x4) and write a fused PET/CT image.

    CT and PET must have the same PatientID and FrameOfReferenceUID; a PET in Bq/mL is
    converted to SUVbw (decay-corrected) from its DICOM tags."""
    from medsr.apps.fuse import fuse_paths

    with _user_errors():
        _check_options(output=output, device=device)
        fuse_paths(
            ct,
            pet,
            output,
            model,
            fmt=format,
            alpha=alpha,
            suv_max=suv_max,
            device=device,
            report=lambda path: typer.echo(f"wrote {path}"),
            allow_mismatch=allow_mismatch,
        )


@app.command("export-onnx")
def export_onnx(
    checkpoint: str = typer.Argument(..., help="Training checkpoint (.pt)."),
    output: str = typer.Option(..., "-o", "--output", help="ONNX file to write (never replaced)."),
    opset: int = typer.Option(17, help="ONNX opset (>= 17)."),
    no_ema: bool = typer.Option(False, "--no-ema", help="Export the raw weights, not the EMA."),
) -> None:
    """Export a checkpoint's generator to ONNX (dynamic batch, height and width)."""
    import errno
    import os

    from medsr.inference.onnx import export_onnx as export

    with _user_errors():
        if os.path.lexists(output):
            raise FileExistsError(errno.EEXIST, "exists", output)
        path = export(checkpoint, output, use_ema=not no_ema, opset=opset)
    typer.echo(f"wrote {path}")


@app.command("demo")
def demo(
    output: str = typer.Option("demo-output", "-o", "--output", help="Report folder (new)."),
) -> None:
    """Degrade real samples, enhance them with the shipped models, write a report."""
    from medsr.apps.demo import RESEARCH_USE, run_demo

    with _user_errors():
        _check_options(output=output)
        index = run_demo(output, progress=lambda text: typer.echo(text, err=True))
    typer.echo(RESEARCH_USE)
    typer.echo(f"demo report: {index} (open the report.html of each model next to it)")


@app.command("serve")
def serve(
    model_args: Annotated[
        list[str] | None,
        typer.Argument(help="More models (so `--models a.pt b.pt` works).", show_default=False),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            help="Registered names or checkpoints (default: every installed model).",
            show_default=False,
        ),
    ] = None,
    host: str = typer.Option("127.0.0.1", help="Interface (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Threads running models at once."),
    queue: int = typer.Option(4, help="Requests waiting for a worker before 503."),
    timeout: float = typer.Option(600.0, help="Seconds per request before 504."),
    max_upload_mb: float = typer.Option(64.0, help="Largest request body (413 above)."),
    max_megapixels: float = typer.Option(40.0, help="Largest input, all slices (422 above)."),
    max_output_megapixels: float = typer.Option(
        67.2, help="Largest output (8192^2): a model's input cap is this over its scale squared."
    ),
    keep_results: int = typer.Option(8, help="Results kept in memory for viewing/download."),
    max_result_mb: float = typer.Option(1024.0, help="Memory for kept results (oldest dropped)."),
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="Host header value to serve besides 127.0.0.1/localhost/::1 (repeat; '*': any).",
        ),
    ] = None,
    max_connections: int = typer.Option(64, help="Connections at once (503 above)."),
    header_timeout: float = typer.Option(10.0, help="Seconds to send request headers."),
    body_timeout: float = typer.Option(30.0, help="Seconds a request body may stall (408)."),
    store_dir: str | None = typer.Option(
        None, help="Also save every result here (default: nothing is written to disk)."
    ),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1, mps or auto."),
) -> None:
    """Serve the web page and JSON API (FastAPI + uvicorn). Research use only."""
    from pathlib import Path

    try:
        _check_options(device=device)
        import uvicorn

        from medsr.web.app import create_app
        from medsr.web.limits import Settings
        from medsr.web.server import uvicorn_options

        settings = Settings(
            max_upload_bytes=int(max_upload_mb * 2**20),
            max_pixels=int(max_megapixels * 1e6),
            max_output_pixels=int(max_output_megapixels * 1e6),
            max_result_bytes=int(max_result_mb * 2**20),
            allowed_hosts=("127.0.0.1", "localhost", "::1", *(allow_host or [])),
            max_connections=max_connections,
            header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
            workers=workers,
            queue=queue,
            timeout_s=timeout,
            keep_results=keep_results,
            store_dir=Path(store_dir) if store_dir else None,
            device=device,
        )
        web_app = create_app([*(models or []), *(model_args or [])], settings)
    except ImportError as error:
        typer.echo(f"error: {error}; install the web extra: pip install 'medsr[web]'", err=True)
        raise typer.Exit(2) from None
    except (ValueError, OSError) as error:
        typer.echo(f"error: {str(error).splitlines()[0]}", err=True)
        raise typer.Exit(2) from None
    import logging

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("medsr.web").setLevel(logging.INFO)  # request ids and sizes, no names
    typer.echo(f"medsr: http://{host}:{port}/ (research use only)")
    if host not in settings.allowed_hosts and "*" not in settings.allowed_hosts:
        typer.echo(
            f"medsr: only Host values {', '.join(settings.allowed_hosts)} are answered; "
            "add the name clients use with --allow-host NAME",
            err=True,
        )
    uvicorn.run(web_app, host=host, port=port, log_level="info", **uvicorn_options(settings))


if __name__ == "__main__":
    app()
