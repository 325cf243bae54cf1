"""Errors raised by medsr readers and writers, and the shared overwrite guard."""

from __future__ import annotations

from pathlib import Path


class MedsrIOError(ValueError):
    """A file or folder could not be read or written; the message names it and the problem.

    Attributes:
        path: the offending file or folder.
        problem: what is wrong with it, in words.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


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
