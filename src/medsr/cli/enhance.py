"""`medsr enhance`, `medsr fuse`, `medsr export-onnx`, `medsr demo`: models applied to files."""

from __future__ import annotations

from typing import Annotated

import typer

from medsr.cli.base import app, check_options, user_errors


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
    tile: str = typer.Option(
        "auto",
        help="auto: the whole image in one pass when it fits the memory budget, else the "
        "largest tiles that fit (fastest); a tile side in input pixels; 0: whole image.",
    ),
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
    ensemble: bool = typer.Option(
        False,
        "--ensemble",
        help="Average the model over the 8 flips / rotations of the image (self-ensemble): "
        "8x the time; ct-ldct +0.1 dB on real quarter-dose CT.",
    ),
    precision: str = typer.Option(
        "auto",
        "--precision",
        help="auto (bf16 autocast where the CPU or GPU computes bf16 natively, else float32), "
        "fp32 or bf16.",
    ),
) -> None:
    """Super-resolve / denoise images with a trained model. Research use only.

    Prints the model picked for each image (--model auto) and why, a tile bar for a single
    2-D image, a line per image with the seconds it took and a summary.

    Under `torchrun --nproc-per-node N -m medsr.cli enhance ...` each process enhances its
    share of the inputs and rank 0 prints one summary."""
    from medsr.apps.console import say
    from medsr.apps.declare import Declared, parse_spacing
    from medsr.apps.enhance import enhance_paths, parse_tile
    from medsr.apps.progress import RunLog
    from medsr.inference.shard import join_shard, leave_shard

    log = RunLog(say)
    with user_errors():
        check_options(output=output, device=device)
        tile_size = parse_tile(tile, overlap)
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
            tile=tile_size,
            overlap=overlap,
            consistency=consistency,
            allow_input_folder=into_input_folder,
            device=device,
            report=log.wrote,
            shard=shard,
            skip_existing=skip_existing,
            skipped=lambda job: log.skipped(job.label),
            keep_identifiers=keep_identifiers,
            dose=dose,
            strength=strength,
            ensemble=ensemble,
            precision=precision,
            declared=declared,
            chosen=lambda job, choice: log.chosen(job.label, choice),
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

    with user_errors():
        check_options(output=output, device=device)
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

    with user_errors():
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

    with user_errors():
        check_options(output=output)
        index = run_demo(output, progress=lambda text: typer.echo(text, err=True))
    typer.echo(RESEARCH_USE)
    typer.echo(f"demo report: {index} (open the report.html of each model next to it)")
