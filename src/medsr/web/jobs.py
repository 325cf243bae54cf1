"""Enhancement as jobs: progress, an estimate of the time left, and a cancel that stops the work.

A `Job` is created by the request that starts the work and updated by the worker thread
that does it: the phase (reading, enhancing, checking, packaging), the tiles done out of the
tiles to do (from the Predictor's `on_tile` hook, called after each batch of tiles), the
model chosen. `Job.check()` raises `Cancelled` once the client asked to stop, or `TimedOut`
past the deadline; the worker calls it between phases and from `on_tile`, so a cancel or a
timeout ends the model run at its next batch of tiles and frees the worker. A CT+PET job
runs whole slices (no tiles): it stops between slices' phases only.

The page polls `GET /api/jobs/{id}` (`Job.status()`); the time left is extrapolated from the
tiles done so far, so it is None until the first batch of tiles has finished.

Warnings: what medsr warns while a job runs (a missing pixel spacing, a model outside its
training range, ...) belongs to that job's client, not to the server log alone.
`collecting_warnings(job)` routes the warnings of the worker thread that runs the job to
`job.warnings` (one line each, once per message); `warnings.catch_warnings` cannot do it, it
swaps process-wide state that other workers share. Other threads' warnings are shown as
before.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from medsr.io.errors import one_line
from medsr.web.limits import TimedOut, scrub

MAX_WARNINGS = 20

STATES = ("queued", "running", "done", "failed", "cancelled")
PHASES = {
    "queued": "waiting for a worker",
    "reading": "reading the upload",
    "choosing": "choosing the model",
    "enhancing": "running the model",
    "checking": "computing the consistency map",
    "packaging": "writing the downloads",
    "done": "done",
}


class Cancelled(Exception):
    """The client cancelled the job; raised in the worker thread to stop the work."""


@dataclass
class Job:
    """One piece of work of one client (`owner`, the client cookie); see the module doc.

    Attributes:
        id: random hex id; owner: the client that may see it.
        kind: "enhance" or "fuse"; timeout_s: seconds from creation to TimedOut.
        state: one of STATES; phase: a key of PHASES.
        tiles_done, tiles_total: the model run's progress (0, 0 before it starts).
        model: the chosen model's id and why (`{"id", "reason", "auto"}`), once known.
        result_id: the result of a finished job; error: `(status, message)` of a failed one.
        warnings: what medsr warned while the job ran (module doc), one line each.
    """

    id: str
    owner: str
    kind: str
    timeout_s: float = 600.0
    state: str = "queued"
    phase: str = "queued"
    tiles_done: int = 0
    tiles_total: int = 0
    model: dict[str, Any] | None = None
    result_id: str | None = None
    error: tuple[int, str] | None = None
    warnings: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    enhancing_since: float | None = None
    future: Future[None] | None = field(default=None, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished_state(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def cancel(self) -> bool:
        """Ask the work to stop; True when the job was still queued or running. A queued job
        is cancelled at once; a running one at its next `check()`."""
        if self.finished_state:
            return False
        self._cancel.set()
        if self.future is not None and self.future.cancel():  # never started
            self.end("cancelled")
        return True

    def check(self) -> None:
        """Cancelled once cancel() was called, TimedOut past the deadline."""
        if self._cancel.is_set():
            raise Cancelled(f"job {self.id[:8]} cancelled")
        if time.monotonic() - self.created > self.timeout_s:
            raise TimedOut(
                f"processing took longer than {self.timeout_s:g} s (medsr serve --timeout)"
            )

    def start(self) -> None:
        self.check()
        self.state, self.started = "running", time.monotonic()

    def enter(self, phase: str) -> None:
        """Check for a cancel, then record the phase the work is entering."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {list(PHASES)}, got {phase!r}")
        self.check()
        self.phase = phase
        if phase == "enhancing":
            self.enhancing_since = time.monotonic()

    def on_tile(self, done: int, total: int) -> None:
        """The Predictor's hook after each batch of tiles (counted over the whole volume):
        record the progress, and stop the work when asked to."""
        self.tiles_done, self.tiles_total = done, total
        self.check()

    def warn(self, message: Warning | str) -> None:
        """Record a warning as one line without server paths (`scrub`), once per message
        (at most MAX_WARNINGS)."""
        line = scrub(one_line(str(message)))
        if line not in self.warnings and len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(line)

    def end(
        self, state: str, result_id: str | None = None, error: tuple[int, str] | None = None
    ) -> None:
        if state not in STATES[2:]:
            raise ValueError(f"a job ends done, failed or cancelled, not {state!r}")
        self.state, self.result_id, self.error = state, result_id, error
        if state == "done":
            self.phase = "done"
        self.finished = time.monotonic()

    def status(self) -> dict[str, Any]:
        """What `GET /api/jobs/{id}` answers: state, phase, fraction done, elapsed and
        estimated remaining seconds (None when unknown), the model, the result or error."""
        now = self.finished or time.monotonic()
        elapsed = now - (self.started or now)
        fraction = self.tiles_done / self.tiles_total if self.tiles_total else 0.0
        remaining = None
        if self.state == "running" and self.enhancing_since is not None and 0 < fraction < 1:
            spent = now - self.enhancing_since
            remaining = spent * (1 - fraction) / fraction
        if self.state == "done":
            fraction = 1.0
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "phase": self.phase,
            "phase_text": PHASES[self.phase],
            "tiles_done": self.tiles_done,
            "tiles_total": self.tiles_total,
            "fraction": round(fraction, 4),
            "elapsed_s": round(elapsed, 2),
            "remaining_s": None if remaining is None else round(remaining, 1),
            "model": self.model,
            "warnings": list(self.warnings),
            "result": None if self.result_id is None else f"/api/results/{self.result_id}",
            "error": None
            if self.error is None
            else {"status": self.error[0], "detail": self.error[1]},
            "research_use_only": True,
        }


_running = threading.local()  # .job: the job of this worker thread, if any
_hook_lock = threading.Lock()


def _install_warning_hook() -> None:
    """`warnings.showwarning` sends a warning to the job of the thread that raised it, if
    that thread runs one, else to the handler it replaced; medsr's warnings are shown every
    time (not once per code location), so each job sees its own. Installed again if
    something (a test harness) put its own handler back."""
    with _hook_lock:
        warnings.filterwarnings("always", module=r"medsr(\.|$)")
        if getattr(warnings.showwarning, "routes_to_jobs", False):
            return
        previous = warnings.showwarning

        def show(message: Warning | str, *args: Any, **kwargs: Any) -> None:
            job = getattr(_running, "job", None)
            if job is None:
                previous(message, *args, **kwargs)
            else:
                job.warn(message)

        show.routes_to_jobs = True  # type: ignore[attr-defined]
        warnings.showwarning = show


@contextmanager
def collecting_warnings(job: Job) -> Iterator[None]:
    """Inside (in the worker thread running `job`): this thread's warnings go to
    `job.warnings` (module doc)."""
    _install_warning_hook()
    _running.job = job
    try:
        yield
    finally:
        _running.job = None


class JobStore:
    """The jobs of all clients, by id: at most `capacity` (finished ones dropped first,
    oldest first) and finished ones for `ttl_s` seconds."""

    def __init__(self, capacity: int = 64, ttl_s: float = 900.0) -> None:
        self.capacity, self.ttl_s = capacity, ttl_s
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [
            k
            for k, j in self._jobs.items()
            if j.finished is not None and now - j.finished > self.ttl_s
        ]:
            del self._jobs[key]
        finished = [k for k, j in self._jobs.items() if j.finished_state]
        while len(self._jobs) > self.capacity and finished:
            del self._jobs[finished.pop(0)]

    def put(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._expire()

    def get(self, key: str) -> Job:
        """The job `key`; KeyError when unknown or expired."""
        with self._lock:
            self._expire()
            return self._jobs[key]
