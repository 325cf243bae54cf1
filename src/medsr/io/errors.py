"""Errors raised by medsr readers and writers, the one error boundary of the readers, and
the shared overwrite guard."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
MAX_PROBLEM_CHARS = 400


class MedsrIOError(ValueError):
    """A file or folder could not be read or written; the message names it and the problem.

    Attributes:
        path: the offending file or folder.
        problem: what is wrong with it, in words.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = one_line(problem)
        super().__init__(f"{self.path}: {self.problem}")


def one_line(text: str) -> str:
    """The first non-empty line of `text`, at most MAX_PROBLEM_CHARS characters: a decoder's
    293-line traceback or a multi-line message reads as one line."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= MAX_PROBLEM_CHARS else line[: MAX_PROBLEM_CHARS - 3] + "..."


def describe_error(error: BaseException) -> str:
    """`Type: first line` of an exception, for a one-line problem."""
    text = one_line(str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def is_control_flow(error: BaseException) -> bool:
    """True for what a reader must let through: Ctrl-C, exit, generator close, task cancel."""
    import asyncio

    return isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError))


@contextmanager
def reading(path: str | Path, what: str = "cannot read") -> Iterator[None]:
    """The readers' error boundary: inside it every failure but control flow (Ctrl-C, exit,
    cancel) leaves as one MedsrIOError naming `path`. That includes BaseException subclasses
    a decoder may raise (the Rust `PanicException` of the RLE decoder), RecursionError and
    MemoryError; a MedsrIOError passes through unchanged."""
    try:
        yield
    except MedsrIOError:
        raise
    except MemoryError:
        raise MedsrIOError(path, f"{what}: not enough memory") from None
    except BaseException as error:
        if is_control_flow(error):
            raise
        raise MedsrIOError(path, f"{what} ({describe_error(error)})") from error


def reader(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate a reader whose first argument is the path: its failures become MedsrIOError
    (`reading`), and a Volume it returns must hold pixels on a finite, positive spacing."""

    @functools.wraps(function)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        path = args[0] if args else next(iter(kwargs.values()), "?")
        with reading(path):  # type: ignore[arg-type]
            result = function(*args, **kwargs)
            _check_read(result, path)  # type: ignore[arg-type]
        return result

    return guarded


def _check_read(result: Any, path: str | Path) -> None:
    import math

    shape = getattr(getattr(result, "array", None), "shape", None)
    spacing = getattr(result, "spacing", None)
    if shape is None or spacing is None:
        return
    if 0 in shape:
        raise MedsrIOError(path, f"image holds no pixels (shape {tuple(shape)})")
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise MedsrIOError(path, f"pixel spacing {tuple(spacing)} is not finite and positive")


def check_can_write(path: str | Path, overwrite: bool) -> Path:
    """Return `path` as a Path after making sure writing it will not clobber a file.

    Creates missing parent folders. Raises FileExistsError naming the path when it exists
    and `overwrite` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise MedsrIOError(path, "is a folder, expected a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
