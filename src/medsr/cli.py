"""The `medsr` command line. Thin: each command parses arguments and calls the library."""

from __future__ import annotations

from typing import Annotated

import typer

from medsr._version import __version__

app = typer.Typer(
    name="medsr",
    help="Restore medical images (CT, low-dose CT, PET/CT, radiographs). Research use only.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Real sample images that install offline.", no_args_is_help=True)
app.add_typer(data_app, name="data")


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

    from medsr.data.samples import SampleNotAvailable, read_source

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            volume = read_source(path)
    except (ValueError, OSError, SampleNotAvailable) as error:  # MedsrIOError: a ValueError
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    summary = volume.describe()
    window = volume.window
    meta = volume.metadata
    lines = {
        "modality": summary["modality"],
        "shape": " x ".join(str(n) for n in summary["shape"]),
        "spacing_mm": " x ".join(f"{s:g}" for s in summary["spacing_mm"])
        + ("" if meta.get("spacing_known", True) else " (unknown, assumed)"),
        "unit": summary["unit"],
        "value_range": "{:g} .. {:g}".format(*summary["value_range"]),
        "window": "none" if window is None else f"center {window.center:g}, width {window.width:g}",
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
    from medsr.data.samples import is_available, list_samples

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
    task: str = typer.Option("ldct-x4", help="x2 x4 x8 ldct ldct-x2/x4 ldct-legacy-x4 xray-x4"),
    format: str = typer.Option("nifti", "--format", help="png (16-bit), nifti or npy."),
    seed: int = typer.Option(0, help="Seed; slice k uses slice_seed(seed, k)."),
    slice_index: int | None = typer.Option(None, "--slice", help="Only this slice of a volume."),
    dose: float | None = typer.Option(None, help="Dose fraction for ldct tasks, e.g. 0.25."),
    scale: int | None = typer.Option(None, help="Downsampling factor (2, 3, 4, 8)."),
    incident_photons: float | None = typer.Option(None, help="I0 per ray (CT) or pixel (x-ray)."),
) -> None:
    """Make a (low, high) training pair: writes <stem>_hr, <stem>_lr, _params.json, _strip.png."""
    import json
    from pathlib import Path

    from tqdm import tqdm

    from medsr.data.samples import SampleNotAvailable, read_source
    from medsr.io import write
    from medsr.physics.strip import pair_strip
    from medsr.physics.tasks import degrade_volume

    suffix = {"png": ".png", "nifti": ".nii.gz", "npy": ".npy"}.get(format)
    overrides = {"dose_fraction": dose, "scale": scale, "incident_photons": incident_photons}
    try:
        if suffix is None:
            raise ValueError(f"--format must be png, nifti or npy, got {format!r}")
        sample = source.removeprefix("sample:") if source.startswith("sample:") else None
        volume = read_source(source)
        stem = sample or Path(source).name.removesuffix(".gz").rsplit(".", 1)[0]
        stem += f"_z{slice_index:04d}" if slice_index is not None and volume.is_volume else ""
        split = volume.is_volume and slice_index is None and format == "png"
        count = volume.num_slices if split else 1
        names = [f"{stem}_z{k:04d}" if split else stem for k in range(count)]
        out = Path(output)
        planned = [out / f"{n}_{kind}{suffix}" for n in names for kind in ("hr", "lr")]
        planned += [out / f"{stem}_params.json", out / f"{stem}_strip.png"]
        planned += [p.with_suffix(".json") for p in planned if p.suffix == ".npy"]  # sidecars
        if existing := [str(p) for p in planned if p.exists()]:
            raise FileExistsError(f"will not overwrite {', '.join(existing)}")
        n_slices = volume.num_slices if slice_index is None else 1
        high, low, params, noisy = degrade_volume(
            volume, task, seed=seed, slice_index=slice_index,
            progress=(lambda r: tqdm(r, desc=task, unit="slice")) if n_slices > 1 else None,
            **{k: v for k, v in overrides.items() if v is not None},
        )  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for k, name in enumerate(names):
            for kind, vol in (("hr", high), ("lr", low)):
                path = out / f"{name}_{kind}{suffix}"
                written.append(write(vol.slice(k) if split else vol, path))
        params.update(input=source if sample else str(Path(source).resolve()), format=format)
        params["files"] = [str(p) for p in written]
        written.append(out / f"{stem}_params.json")
        written[-1].write_text(json.dumps(params, indent=1, default=str), encoding="utf-8")
        middle = high.num_slices // 2
        hr = high.array[middle] if high.is_volume else high.array
        lr = low.array[middle] if low.is_volume else low.array
        full = None if noisy is None else (noisy.array[middle] if noisy.is_volume else noisy.array)
        strip = out / f"{stem}_strip.png"
        written.append(
            pair_strip(hr, lr, strip, volume.window, unit=volume.unit, label=task,
                       spacing_mm=high.spacing[-1], noisy=full)
        )  # fmt: skip
    except (ValueError, FileExistsError, OSError, SampleNotAvailable) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
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
    from medsr.data.samples import SampleNotAvailable
    from medsr.training import load_config
    from medsr.training import train as run_training

    try:
        settings = load_config(config, list(overrides or []))
        result = run_training(settings, output, resume)
    except (ValueError, FileNotFoundError, SampleNotAvailable) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if result["checkpoint"] is not None:
        typer.echo(f"last checkpoint: {result['checkpoint']}")


if __name__ == "__main__":
    app()
