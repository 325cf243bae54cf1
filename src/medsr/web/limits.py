"""Limits of `medsr serve` and the errors that map onto HTTP status codes.

Every refusal is a `WebError` carrying its status code and a message that says what was
wrong and what the limit is, so the API (`{"detail": ...}`) and the page show the same
words. Sizes are checked before any pixel is decoded.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from medsr.inference.predictor import TileSize

T = TypeVar("T")


class WebError(Exception):
    """A request the app refuses; `status_code` is the HTTP status, `message` the reason."""

    status_code = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class UploadTooLarge(WebError):
    status_code = 413


class UnsupportedType(WebError):
    status_code = 415


class Unprocessable(WebError):
    """Malformed file, too many pixels, an image the model cannot take (422)."""

    status_code = 422


class Busy(WebError):
    status_code = 503


class TimedOut(WebError):
    status_code = 504


@dataclass(frozen=True)
class Settings:
    """What `medsr serve` can be told (CLI options of the same names).

    Attributes:
        max_upload_bytes: whole request body, all files together (413 above).
        max_pixels: input pixels of one request, all slices together (422 above).
        max_output_pixels: output pixels of one request: a model's input cap is this over
            its scale squared (at x4, 2**26 output pixels admit a 2048 x 2048 input), so the
            memory a request takes is bounded by what it produces, not by what it sends.
        max_files: files in one request (a DICOM series is one file per slice).
        workers: threads that run models; requests beyond `workers + queue` get 503.
        queue: requests allowed to wait for a worker.
        timeout_s: seconds a request may wait and run before 504; the model run stops at
            its next batch of tiles (`jobs.Job.check`) and frees its worker.
        keep_results: enhanced results kept in memory for viewing and download.
        max_result_bytes: memory the kept results may take together (arrays and downloads;
            the oldest are dropped first, the newest is always kept).
        result_ttl_s: seconds a result stays in memory.
        store_dir: when set, every download is also written under `store_dir/<result id>/`;
            otherwise nothing outlives the request on disk.
        device, tile_size, overlap: passed to the `Predictor`; `tile_size` "auto" (the
            default, fastest) runs an image in one call when it fits the model's memory
            budget and in the largest tiles that fit otherwise, a side in input pixels
            tiles it so, None runs it whole.
        allowed_hosts: Host header values served (port ignored); others get 400, which
            defeats DNS rebinding. Loopback names by default; "*" serves any (behind a
            proxy that checks it).
        parse_seconds: time budget to parse one uploaded DICOM header (`io.limits`).
        header_timeout_s, body_timeout_s: seconds a client may take to send its request
            headers (the connection is closed) and between two parts of its body (408).
        max_connections: connections served at once (`medsr serve`); more get 503.
        progress_steps: model calls an image is split into at least (tiles per call are
            lowered from the model's memory budget when needed): each call ends with a
            progress report and a chance to cancel (`service.in_steps`).
    """

    max_upload_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_output_pixels: int = 2**26
    max_files: int = 1000
    workers: int = 1
    queue: int = 4
    timeout_s: float = 600.0
    keep_results: int = 8
    max_result_bytes: int = 2**30
    result_ttl_s: float = 900.0
    store_dir: Path | None = None
    device: str = "cpu"
    tile_size: TileSize = "auto"
    overlap: int = 32
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    parse_seconds: float = 5.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 64
    progress_steps: int = 20

    def __post_init__(self) -> None:
        for name in (
            *("max_upload_bytes", "max_pixels", "max_output_pixels", "max_files"),
            *("workers", "keep_results", "max_result_bytes", "max_connections"),
            "progress_steps",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.queue < 0:
            raise ValueError(f"queue must be >= 0, got {self.queue}")
        seconds = ("timeout_s", "result_ttl_s", "parse_seconds")
        for name in (*seconds, "header_timeout_s", "body_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        tile = self.tile_size
        if tile != "auto" and tile is not None and (isinstance(tile, str) or tile <= self.overlap):
            raise ValueError(
                f'tile_size must be "auto", None or a side larger than the overlap '
                f"({self.overlap}), got {tile!r}"
            )
        if not self.allowed_hosts:
            raise ValueError('allowed_hosts must name at least one host (or "*")')

    def input_pixels(self, scale: int) -> int:
        """The input cap of a model of `scale`: `max_pixels`, or less where its output
        would pass `max_output_pixels`."""
        return max(1, min(self.max_pixels, self.max_output_pixels // max(scale, 1) ** 2))


def check_upload_size(size: int, limit: int) -> None:
    """UploadTooLarge (413) when `size` bytes exceed `limit`."""
    if size > limit:
        raise UploadTooLarge(
            f"upload of {_size(size)} exceeds the limit of {_size(limit)} "
            "(medsr serve --max-upload-mb)"
        )


def _size(count: int) -> str:
    return f"{count / 2**20:.4g} MB" if count >= 2**20 else f"{count:,} bytes"


def check_pixels(pixels: int, limit: int, what: str = "input") -> None:
    """Unprocessable (422) when an image of `pixels` pixels exceeds `limit`."""
    if pixels > limit:
        raise Unprocessable(
            f"{what} has {pixels:,} pixels, more than the limit of {limit:,} pixels for this "
            "model (medsr serve --max-megapixels; at x2-x4 the output cap "
            "--max-output-megapixels over the scale squared)"
        )


_PATH = re.compile(r"(?<![\w.:])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")


def scrub(message: str) -> str:
    """`message` without server paths: `/tmp/medsr-web-x/input/input_0000.dcm` becomes
    `input_0000.dcm` (what a client may see of a file is its own name); the API's own
    routes (`/api/...`, `/static/...`) stay."""

    def name(match: re.Match[str]) -> str:
        if match.group(0).startswith(("/api/", "/static/")):
            return match.group(0)
        return match.group(1) or "<folder>"

    return _PATH.sub(name, message)


class WorkerPool:
    """Runs blocking model work off the event loop: `workers` threads, `queue` waiting, a timeout.

    A request beyond `workers + queue` in flight is refused at once (Busy, 503) rather than
    queued without bound; one that does not finish within `timeout_s` gets TimedOut (504).
    A timed-out run keeps its slot until its thread returns, so the bound stays true.
    """

    def __init__(self, workers: int, queue: int, timeout_s: float) -> None:
        self.capacity = workers + queue
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medsr-web")
        self._lock = threading.Lock()
        self.in_flight = 0

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self.in_flight -= 1

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        """Start `function(*args)` on a worker (or queue it); Busy (503) when full."""
        with self._lock:
            if self.in_flight >= self.capacity:
                raise Busy(
                    f"server busy: {self.in_flight} requests in progress (limit "
                    f"{self.capacity}, medsr serve --workers/--queue); retry shortly"
                )
            self.in_flight += 1
        future = self._executor.submit(function, *args)
        future.add_done_callback(self._release)
        return future

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on a worker, awaited; Busy (503) when full, TimedOut (504)
        after `timeout_s` (the thread runs on: only a job's own checks can stop it)."""
        future = self.submit(function, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except asyncio.TimeoutError:
            raise TimedOut(
                f"processing took longer than {self.timeout_s:g} s (medsr serve --timeout)"
            ) from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class ResultStore(Generic[T]):
    """At most `capacity` results and `max_bytes` bytes in memory, each for `ttl_s` seconds
    (oldest dropped first; the newest is kept even when it alone passes `max_bytes`)."""

    def __init__(self, capacity: int, ttl_s: float, max_bytes: int | None = None) -> None:
        self.capacity, self.ttl_s, self.max_bytes = capacity, ttl_s, max_bytes
        self._items: OrderedDict[str, tuple[float, T, int]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of the results kept, as `put` was told."""
        return sum(size for _, _, size in self._items.values())

    def _expire(self, now: float) -> None:
        for key in [k for k, (t, _, _) in self._items.items() if now - t > self.ttl_s]:
            del self._items[key]
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        while self.max_bytes is not None and len(self._items) > 1 and self.nbytes > self.max_bytes:
            self._items.popitem(last=False)

    def put(self, key: str, value: T, nbytes: int = 0) -> None:
        """Keep `value` (of `nbytes` bytes) under `key`, dropping the oldest as needed."""
        with self._lock:
            self._items[key] = (time.monotonic(), value, nbytes)
            self._expire(time.monotonic())

    def get(self, key: str) -> T:
        """The result stored under `key`; KeyError when unknown or expired."""
        with self._lock:
            self._expire(time.monotonic())
            return self._items[key][1]

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._items.pop(key, None) is not None
