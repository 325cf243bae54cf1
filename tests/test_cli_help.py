"""`medsr ... --help`: every command's text reaches the terminal whole (the help is rendered as
Markdown, which reflows docstring paragraphs but would drop an HTML-like `<name>`)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from medsr.cli import app

runner = CliRunner()


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in getattr(group, "commands", {}).items():  # typer's own click
        found += _commands(command, (*path, name))
    return found


def _words(text: str) -> list[str]:
    return re.sub(r"[`*]", "", text).split()


COMMANDS = _commands(typer.main.get_command(app))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "medsr")
def test_help_shows_every_word_of_the_command_and_option_texts(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    shown = " ".join(_words(result.output.replace("│", " ")))
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    texts = [command.help or ""] + [
        str(p.help) for p in command.params if p.param_type_name == "option" and p.help
    ]
    for text in texts:
        for word in _words(text):
            assert word in shown, f"{word!r} of {' '.join(path)} --help is not shown"
