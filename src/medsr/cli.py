"""The `medsr` command line. Thin: each command parses arguments and calls the library."""

from __future__ import annotations

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


if __name__ == "__main__":
    app()
