"""`medsr info` and `medsr data list`: what an image or a sample holds."""

from __future__ import annotations

import typer

from medsr.cli.base import app, data_app, user_errors


@app.command("info")
def info(
    path: str = typer.Argument(..., help="Image file, DICOM series folder or sample:NAME."),
) -> None:
    """Print modality, shape, spacing, unit, value range, window and source of an image."""
    import warnings

    from medsr.io.samples import read_source

    with user_errors(), warnings.catch_warnings(record=True) as caught:
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
