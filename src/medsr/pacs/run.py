"""`medsr pacs`: find series (QIDO-RS), retrieve (WADO-RS), enhance, store back (STOW-RS).

Each selected series goes through the code `medsr enhance` runs on a DICOM folder: the
retrieved instances are written to a work folder, `apps.enhance.enhance_job` reads them
as one series and writes a derived DICOM series (same study and frame of reference, new
Series and SOP Instance UIDs, DERIVED, research-use marking, each slice referencing its
source instance), and those files are sent into the source study. Nothing of the source
study is changed or deleted.

Exactly once: `state.State` records a series as `written` once its derived files are
complete on disk (`<work>/<series>/derived`, made by one rename) and `done` once the PACS
holds every derived instance; a restarted run skips `done` series, sends only the missing
instances of a `written` one, and starts the others afresh (nothing of theirs reached the
PACS). Under torchrun, rank 0 queries the PACS, every rank takes its share of the series
(`inference.shard`), and the counts are gathered for one summary.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
from pydicom.uid import ExplicitVRLittleEndian

from medsr.apps.enhance import enhance_job, plan_jobs
from medsr.inference import Predictor, resolve_model, sha256_file
from medsr.inference.predictor import TileSize
from medsr.inference.shard import Shard
from medsr.pacs.query import Selection, SeriesRef, find_series, instance_uids
from medsr.pacs.state import State

if TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient

EXIT_AFTER_STOW_ENV = "MEDSR_PACS_TEST_EXIT_AFTER_STOW"
"""Tests only: end the process abruptly after this many STOW-RS requests (a kill at the
worst moment: part of a derived series on the PACS, the state not yet `done`)."""
_stow_requests = 0


@dataclass(frozen=True)
class PacsOptions:
    """How to enhance and where to keep the state; `work_dir` defaults to `<state>.work`;
    `tile` as `Predictor.enhance` takes it ("auto": whole slices when they fit the memory
    budget, else tiles)."""

    model: str
    state_path: Path = Path("medsr-pacs-state.sqlite")
    work_dir: Path | None = None
    backend: str = "torch"
    device: str = "cpu"
    tile: TileSize = "auto"
    overlap: int = 32
    stow_batch: int = 50

    def __post_init__(self) -> None:
        if self.stow_batch < 1:
            raise ValueError(f"--stow-batch must be at least 1, got {self.stow_batch}")

    @property
    def work(self) -> Path:
        return self.work_dir or self.state_path.with_name(self.state_path.name + ".work")


@dataclass
class Counts:
    """One process's work in one pass (or a whole run)."""

    enhanced: list[str] = field(default_factory=list)  # source series UIDs, in order
    instances: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        self.enhanced += other.enhanced
        self.instances += other.instances
        self.failed += other.failed


def model_key(model: str) -> str:
    """The state's model column: file name and sha256 prefix, so a retrained checkpoint at
    the same path counts as a new model and a renamed copy as the same one."""
    path = resolve_model(model)
    return f"{path.name}:{sha256_file(path)[:16]}"


def plan(
    client: DICOMwebClient, selection: Selection, state: State, key: str
) -> tuple[list[SeriesRef], list[SeriesRef]]:
    """(series to process, series matching but already done)."""
    derived = state.derived_series()
    found = [ref for ref in find_series(client, selection) if ref.series_uid not in derived]
    todo = [ref for ref in found if state.todo(ref.series_uid, key)]
    return todo, [ref for ref in found if ref not in todo]


def describe(ref: SeriesRef, state: State, key: str) -> str:
    """One dry-run line: state, modality, patient, study, series, instances, description."""
    record = state.get(ref.series_uid, key)
    status = "new"
    if record is not None:
        status = {"done": "done", "written": "store-pending"}.get(
            record.status, f"failed({record.attempts})"
        )
    count = "?" if ref.instances is None else str(ref.instances)
    return (
        f"{status:13} {ref.modality or '?':3} patient {ref.patient_id or '?'} "
        f"date {ref.study_date or '?'} study {ref.study_uid} series {ref.series_uid} "
        f"({count} instances) {ref.description}"
    ).rstrip()


def retrieve(client: DICOMwebClient, ref: SeriesRef, folder: Path) -> int:
    """WADO-RS the series' instances into `folder` (one Part-10 file each)."""
    folder.mkdir(parents=True)
    count = 0
    for count, ds in enumerate(client.iter_series(ref.study_uid, ref.series_uid), start=1):
        meta = getattr(ds, "file_meta", None)
        if meta is None or "TransferSyntaxUID" not in meta:
            ds.file_meta = pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"{count:05d}.dcm", enforce_file_format=True)
    if count == 0:
        raise OSError(f"the PACS returned no instances for series {ref.series_uid}")
    return count


def enhance_series(predictor: Predictor, source: Path, out: Path, options: PacsOptions) -> None:
    """Derived DICOM files of the series in `source`, written under `out` (as enhance does)."""
    (job,) = plan_jobs([str(source)])
    enhance_job(predictor, job, out, "dicom", options.tile, options.overlap, consistency=False)


def store_missing(
    client: DICOMwebClient, study_uid: str, series_uid: str, files: list[Path], batch: int
) -> int:
    """STOW-RS the files whose SOP Instance UID the PACS lacks; returns how many were sent.
    Raises OSError when the PACS refuses one or does not list every instance afterwards."""
    global _stow_requests
    wanted = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in files}
    held = instance_uids(client, study_uid, series_uid)
    todo = [path for uid, path in wanted.items() if uid not in held]
    for start in range(0, len(todo), batch):
        datasets = [pydicom.dcmread(path) for path in todo[start : start + batch]]
        response = client.store_instances(datasets, study_instance_uid=study_uid)
        if failed := list(response.get("FailedSOPSequence", [])):
            reasons = sorted({str(item.get("FailureReason", "?")) for item in failed})
            raise OSError(f"the PACS refused {len(failed)} instances (reasons {reasons})")
        _stow_requests += 1
        if str(_stow_requests) == os.environ.get(EXIT_AFTER_STOW_ENV):
            os._exit(70)
    if missing := set(wanted) - instance_uids(client, study_uid, series_uid):
        raise OSError(f"the PACS does not list {len(missing)} of the stored instances")
    return len(todo)


def process_series(
    client: DICOMwebClient,
    predictor: Predictor,
    ref: SeriesRef,
    state: State,
    key: str,
    options: PacsOptions,
) -> tuple[str, int]:
    """Enhance one series and store it (see the module doc); (derived UID, instances sent)."""
    record = state.get(ref.series_uid, key)
    folder = options.work / ref.series_uid
    derived = folder / "derived"
    derived_uid = record.derived_series_uid if record else None
    if derived_uid is None or not derived.is_dir():
        if derived_uid is not None and instance_uids(client, ref.study_uid, derived_uid):
            raise OSError(
                f"derived series {derived_uid} is partly on the PACS but its files are gone "
                f"from {derived}; delete that series from the PACS, then its row from "
                f"{state.path}"
            )
        shutil.rmtree(folder, ignore_errors=True)
        retrieve(client, ref, folder / "source")
        enhance_series(predictor, folder / "source", folder / "partial", options)
        (folder / "partial").rename(derived)  # complete or absent, never half-written
        first = next(iter(sorted(derived.rglob("*.dcm"))))
        derived_uid = str(pydicom.dcmread(first, stop_before_pixels=True).SeriesInstanceUID)
        count = len(list(derived.rglob("*.dcm")))
        state.written(ref.series_uid, key, ref.study_uid, derived_uid, count)
    files = sorted(derived.rglob("*.dcm"))
    sent = store_missing(client, ref.study_uid, derived_uid, files, options.stow_batch)
    state.done(ref.series_uid, key)
    shutil.rmtree(folder, ignore_errors=True)
    return derived_uid, sent


def run_pass(
    client: DICOMwebClient,
    selection: Selection,
    predictor: Predictor,
    state: State,
    key: str,
    options: PacsOptions,
    shard: Shard,
    report: Callable[[str], None],
) -> tuple[Counts, int]:
    """One query and this rank's share of the series; (counts, series already done)."""
    found = plan(client, selection, state, key) if shard.is_main else ([], [])
    todo, done = shard.broadcast(found)
    counts = Counts()
    for ref in shard.take(todo):
        try:
            derived_uid, sent = process_series(client, predictor, ref, state, key, options)
        except Exception as error:  # one bad series must not stop the others
            state.failed(ref.series_uid, key, ref.study_uid, f"{type(error).__name__}: {error}")
            counts.failed.append(ref.series_uid)
            report(f"failed series {ref.series_uid}: {str(error).splitlines()[0]}")
            continue
        counts.enhanced.append(ref.series_uid)
        counts.instances += sent
        report(
            f"stored series {derived_uid} ({sent} instances sent) in study {ref.study_uid} "
            f"from series {ref.series_uid}"
        )
    return counts, len(done)


def summary(per_rank: list[Counts], already_done: int) -> str:
    """One line for the whole job (every rank's counts)."""
    total = Counts()
    for counts in per_rank:
        total.add(counts)
    line = (
        f"medsr pacs: {len(total.enhanced)} series enhanced and stored "
        f"({total.instances} instances sent), {already_done} already done, "
        f"{len(total.failed)} failed"
    )
    if len(per_rank) > 1:
        shares = ", ".join(f"rank {k}: {len(c.enhanced)}" for k, c in enumerate(per_rank))
        line += f"; {len(per_rank)} processes ({shares})"
    return line


def run_pacs(
    client: DICOMwebClient,
    selection: Selection,
    options: PacsOptions,
    shard: Shard | None = None,
    watch: bool = False,
    interval_s: float = 60.0,
    max_polls: int = 0,
    report: Callable[[str], None] = print,
) -> list[Counts]:
    """Process the selection once, or poll every `interval_s` seconds when `watch` (for
    `max_polls` polls; 0: until interrupted). Rank 0 reports a summary after each pass
    that found work; returns every rank's totals (rank order)."""
    shard = shard or Shard()
    key = model_key(options.model)
    predictor = Predictor.load(
        options.model, device=shard.device(options.device), backend=options.backend
    )
    totals = Counts()
    poll = 0
    with State(options.state_path) as state:
        while True:
            poll += 1
            counts, done = run_pass(
                client, selection, predictor, state, key, options, shard, report
            )
            totals.add(counts)
            per_rank = shard.gather(counts)
            if shard.is_main and (not watch or any(c.enhanced or c.failed for c in per_rank)):
                report(summary(per_rank, done))
            if not watch or poll == max_polls:
                break
            time.sleep(interval_s)
    if shard.is_main and options.work.is_dir() and not any(options.work.iterdir()):
        options.work.rmdir()  # every rank is past its last series (the gather above)
    return shard.gather(totals)


def list_series(
    client: DICOMwebClient,
    selection: Selection,
    options: PacsOptions,
    report: Callable[[str], None] = print,
) -> list[SeriesRef]:
    """List the matching series with their state; retrieves, enhances and stores nothing."""
    key = model_key(options.model)
    with State(options.state_path, read_only=True) as state:
        todo, done = plan(client, selection, state, key)
        for ref in sorted(todo + done, key=lambda r: (r.study_uid, r.series_uid)):
            report(describe(ref, state, key))
    report(f"medsr pacs --dry-run: {len(todo)} series to process, {len(done)} already done")
    return todo
