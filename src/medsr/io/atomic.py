"""Atomic outputs: a file or a folder appears under its final name complete, or not at all.

Every writer writes to a hidden temporary name in the destination folder (`PARTIAL_PREFIX`,
so `medsr enhance` never takes it for an input), flushes it to disk (fsync) and then moves
it onto the final name in one step: `os.replace` where overwriting is allowed, else a hard
link, which fails when the name exists (an exclusive create: two writers cannot both win).
A crash or `kill -9` can leave a hidden partial file, never a truncated one under the final
name; a partial DICOM series is staged in a hidden folder that is renamed when complete.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_PREFIX = ".medsr-partial-"


def partial_name(path: Path) -> Path:
    """A hidden, unique name next to `path` that keeps its suffixes (nibabel compresses
    by `.gz`, numpy appends `.npy` to other names)."""
    return path.with_name(f"{PARTIAL_PREFIX}{secrets.token_hex(4)}-{path.name}")


def fsync_path(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:  # some file systems cannot fsync a folder
        if error.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def commit(temp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished `temp` onto `path`: replacing it when `overwrite`, else only if
    `path` does not exist (FileExistsError otherwise, `temp` left for the caller)."""
    if overwrite:
        os.replace(temp, path)
    else:
        try:
            os.link(temp, path)
        except FileExistsError:
            raise FileExistsError(
                f"{path} already exists; pass overwrite=True to replace it"
            ) from None
        except OSError:  # no hard links here (some network or FUSE file systems)
            if path.exists():
                raise FileExistsError(f"{path} already exists") from None
            os.replace(temp, path)
        else:
            temp.unlink()
    fsync_path(path.parent)


@contextmanager
def atomic_write(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield the temporary name a writer should write `path` to; when the block ends
    normally the file is fsynced and committed (`commit`), else removed."""
    path = Path(path)
    temp = partial_name(path)
    try:
        yield temp
        fsync_path(temp)
        commit(temp, path, overwrite)
    finally:
        temp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes, overwrite: bool = False) -> Path:
    """`path.write_bytes(data)`, atomically (module doc)."""
    with atomic_write(path, overwrite) as temp:
        temp.write_bytes(data)
    return Path(path)


@contextmanager
def staged_folder(folder: str | Path) -> Iterator[Path]:
    """Yield a hidden staging folder next to `folder`; when the block ends normally its
    files are fsynced and it is renamed to `folder` (which must not exist), else removed."""
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"will not overwrite {folder}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = partial_name(folder)
    stage.mkdir()
    try:
        yield stage
        for entry in stage.iterdir():
            fsync_path(entry)
        fsync_path(stage)
        if folder.exists():  # appeared meanwhile: rename would merge into an empty one
            raise FileExistsError(f"will not overwrite {folder}")
        os.rename(stage, folder)
        fsync_path(folder.parent)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def move_into(entries: list[Path], folder: Path, last: Path | None = None) -> list[Path]:
    """Move finished files or folders into `folder`, never replacing anything; `last` (one
    of `entries`) goes last, so its presence means the others are there. Returns the new
    paths in the order of `entries`."""
    order = [e for e in entries if e != last] + ([last] if last in entries else [])
    moved: dict[Path, Path] = {}
    for entry in order:
        target = folder / entry.name
        if entry.is_dir():
            if target.exists():
                raise FileExistsError(f"will not overwrite {target}")
            os.rename(entry, target)
        else:
            commit(entry, target, overwrite=False)
        moved[entry] = target
    fsync_path(folder)
    return [moved[e] for e in entries]


@contextmanager
def staging(folder: str | Path) -> Iterator[Path]:
    """A hidden, empty folder inside `folder` (created) for outputs still being written;
    removed with whatever is left in it when the block ends (`move_into` takes the
    finished entries out first)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stage = partial_name(folder / "stage")
    stage.mkdir()
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
