"""Budgets every reader keeps to, so a hostile or damaged file cannot take unbounded memory
or time: pixels and decoded bytes checked from the header before anything is decoded, a
parse-time budget for DICOM headers, and bounds on folder depth and file count.

The defaults suit the command line (a 512 x 512 x 1024 CT, 1 GiB as float32, fits); a user
with larger images raises them with the environment variables below. `medsr serve` and the
fuzz tests lower them around a read with `read_limits(...)` (a context variable: each web
worker thread has its own).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from medsr.io.errors import MedsrIOError

PIXELS_ENV = "MEDSR_MAX_MEGAPIXELS"
SECONDS_ENV = "MEDSR_PARSE_SECONDS"


@dataclass(frozen=True)
class ReadLimits:
    """What one read may cost.

    Attributes:
        max_pixels: pixels of one image or series, all slices and frames together.
        max_bytes: decoded bytes of one file (its pixel data, an inflated DICOM data set,
            an `.inv3` member).
        parse_seconds: wall-clock seconds to parse one DICOM file's data elements.
        max_reads: reads of a DICOM parse (about one per data element, ~3 us each): a file
            of millions of empty elements is refused early instead of filling memory.
        max_depth: folder levels searched for DICOM files under a series folder.
        max_files: files looked at under a series folder.
    """

    max_pixels: int = 2**28
    max_bytes: int = 2**31
    parse_seconds: float = 30.0
    max_reads: int = 1_000_000
    max_depth: int = 32
    max_files: int = 200_000

    @classmethod
    def from_environment(cls) -> ReadLimits:
        """The defaults, with MEDSR_MAX_MEGAPIXELS and MEDSR_PARSE_SECONDS applied."""
        limits = cls()
        if pixels := os.environ.get(PIXELS_ENV):
            count = int(float(pixels) * 1e6)
            limits = replace(limits, max_pixels=count, max_bytes=max(limits.max_bytes, count * 8))
        if seconds := os.environ.get(SECONDS_ENV):
            limits = replace(limits, parse_seconds=float(seconds))
        return limits


_LIMITS: ContextVar[ReadLimits | None] = ContextVar("medsr_read_limits", default=None)


def current_limits() -> ReadLimits:
    """The limits in force here (`read_limits` blocks, else the environment's defaults)."""
    return _LIMITS.get() or ReadLimits.from_environment()


@contextmanager
def read_limits(**changes: Any) -> Iterator[ReadLimits]:
    """Reads inside the block keep to the current limits with `changes` applied."""
    token = _LIMITS.set(replace(current_limits(), **changes))
    try:
        yield current_limits()
    finally:
        _LIMITS.reset(token)


def check_pixels(path: str | Path, shape: Any, itemsize: int = 4, what: str = "image") -> None:
    """MedsrIOError when an image of `shape` (from a header, nothing decoded yet) holds more
    pixels or decoded bytes than the limits allow, or a negative dimension."""
    dims = [int(n) for n in shape]
    if any(n < 0 for n in dims):
        raise MedsrIOError(path, f"{what} header declares a negative size {tuple(dims)}")
    pixels = math.prod(dims)
    limits = current_limits()
    if pixels > limits.max_pixels:
        raise MedsrIOError(
            path,
            f"{what} of {' x '.join(map(str, dims))} = {pixels:,} pixels exceeds the limit of "
            f"{limits.max_pixels:,} (set {PIXELS_ENV} to read larger images)",
        )
    check_bytes(path, pixels * max(int(itemsize), 1), what)


def check_bytes(path: str | Path, count: int, what: str = "data") -> None:
    """MedsrIOError when `count` decoded bytes exceed the limit."""
    limit = current_limits().max_bytes
    if count > limit:
        raise MedsrIOError(
            path, f"{what} would decode to {count:,} bytes, more than the limit of {limit:,}"
        )


class BudgetedFile:
    """A binary file for a parser: reading past the parse-time budget or `max_reads` reads
    raises MedsrIOError, so a file of millions of tiny elements stops within seconds."""

    def __init__(self, stream: BinaryIO, path: str | Path) -> None:
        limits = current_limits()
        self._stream, self.path, self.name = stream, Path(path), str(path)
        self._deadline = time.monotonic() + limits.parse_seconds
        self._seconds, self._max_reads, self._reads = limits.parse_seconds, limits.max_reads, 0

    def read(self, size: int | None = -1) -> bytes:
        self._reads += 1
        if self._reads > self._max_reads:
            raise MedsrIOError(
                self.path,
                f"more than {self._max_reads:,} data elements: not a plausible image file",
            )
        if self._reads % 1024 == 0 and time.monotonic() > self._deadline:
            raise MedsrIOError(
                self.path,
                f"parsing took longer than {self._seconds:g} s (a damaged or hostile file? "
                f"{SECONDS_ENV} raises the budget)",
            )
        return self._stream.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_stream":  # copy/pickle probe a bare instance
            raise AttributeError(name)
        return getattr(self._stream, name)
