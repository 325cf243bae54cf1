"""The `medsr` Typer app, its options shared by every command, and the one style of user
errors (one `error:` line, exit 2) and warnings (one `warning:` line, `medsr.apps.console`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
    rich_markup_mode="markdown",  # docstring paragraphs reflow to the terminal's width
)
data_app = typer.Typer(help="Real sample images that install offline.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@contextmanager
def user_errors() -> Iterator[None]:
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


def check_options(output: str | None = None, device: str | None = None) -> None:
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
