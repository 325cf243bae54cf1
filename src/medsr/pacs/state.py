"""What a `medsr pacs` run has done, in a small SQLite file, so restarts repeat nothing.

One row per (source series, model): `written` once the derived files are on local disk
with their final UIDs (`derived_series_uid`), `done` once the PACS holds every derived
instance, `failed` after an error (retried up to `MAX_ATTEMPTS` times). A run killed
between `written` and `done` resumes by sending only the instances the PACS lacks, with
the same UIDs, so each source series gets exactly one derived series whatever the moment
of the kill. Processes of one torchrun job share the file (they work on different series;
SQLite's locking serialises the writes); on several nodes, put it on a shared filesystem
with working POSIX locks.
"""

from __future__ import annotations

import datetime
import sqlite3
from dataclasses import dataclass
from pathlib import Path

MAX_ATTEMPTS = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    series_uid TEXT NOT NULL,
    model TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('written', 'done', 'failed')),
    derived_series_uid TEXT,
    instances INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated TEXT NOT NULL,
    PRIMARY KEY (series_uid, model)
)
"""


@dataclass(frozen=True)
class Record:
    series_uid: str
    model: str
    study_uid: str
    status: str
    derived_series_uid: str | None
    instances: int | None
    attempts: int
    error: str | None

    @property
    def pending(self) -> bool:
        """Still to do: not done and not given up on."""
        return self.status == "written" or (
            self.status == "failed" and self.attempts < MAX_ATTEMPTS
        )


class State:
    """The state file; every change is committed at once (a kill loses nothing)."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        """`read_only` (a dry run): never creates nor changes the file."""
        self.path = Path(path)
        if read_only and not self.path.exists():
            self._db = sqlite3.connect(":memory:", isolation_level=None)
        elif read_only:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, timeout=300, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=300, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 300000")
        if not read_only or not self.path.exists():
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, series_uid: str, model: str) -> Record | None:
        row = self._db.execute(
            "SELECT series_uid, model, study_uid, status, derived_series_uid, instances, "
            "attempts, error FROM series WHERE series_uid = ? AND model = ?",
            (series_uid, model),
        ).fetchone()
        return None if row is None else Record(*row)

    def todo(self, series_uid: str, model: str) -> bool:
        record = self.get(series_uid, model)
        return record is None or record.pending

    def derived_series(self) -> set[str]:
        """Every series this state file has written (never a source, whatever it matches)."""
        rows = self._db.execute(
            "SELECT derived_series_uid FROM series WHERE derived_series_uid IS NOT NULL"
        )
        return {row[0] for row in rows}

    def written(
        self, series_uid: str, model: str, study_uid: str, derived_uid: str, instances: int
    ) -> None:
        self._upsert(series_uid, model, study_uid, "written", derived_uid, instances, None)

    def done(self, series_uid: str, model: str) -> None:
        self._db.execute(
            "UPDATE series SET status = 'done', error = NULL, updated = ? "
            "WHERE series_uid = ? AND model = ?",
            (_now(), series_uid, model),
        )

    def failed(self, series_uid: str, model: str, study_uid: str, error: str) -> None:
        """Count a failed attempt; a series already `written` keeps its derived UID."""
        record = self.get(series_uid, model)
        derived = record.derived_series_uid if record else None
        instances = record.instances if record else None
        self._upsert(series_uid, model, study_uid, "failed", derived, instances, error[:2000])
        self._db.execute(
            "UPDATE series SET attempts = attempts + 1 WHERE series_uid = ? AND model = ?",
            (series_uid, model),
        )

    def _upsert(
        self,
        series_uid: str,
        model: str,
        study_uid: str,
        status: str,
        derived_uid: str | None,
        instances: int | None,
        error: str | None,
    ) -> None:
        self._db.execute(
            "INSERT INTO series (series_uid, model, study_uid, status, derived_series_uid, "
            "instances, error, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (series_uid, model) DO UPDATE SET status = excluded.status, "
            "derived_series_uid = excluded.derived_series_uid, instances = excluded.instances, "
            "error = excluded.error, updated = excluded.updated",
            (series_uid, model, study_uid, status, derived_uid, instances, error, _now()),
        )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
