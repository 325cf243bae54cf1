"""The state file: written -> done, failures counted, dry runs leave no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsr.pacs.query import Selection
from medsr.pacs.state import MAX_ATTEMPTS, State


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with State(path) as state:
        assert state.todo("1.2.3", "m:abc")
        state.written("1.2.3", "m:abc", "1.2", "9.9.9", 3)
        assert state.todo("1.2.3", "m:abc")  # written is not done
    with State(path) as state:
        record = state.get("1.2.3", "m:abc")
        assert record is not None and record.status == "written"
        assert (record.derived_series_uid, record.instances) == ("9.9.9", 3)
        state.done("1.2.3", "m:abc")
        assert not state.todo("1.2.3", "m:abc")
        assert state.todo("1.2.3", "other-model:def")  # once per model
        assert state.derived_series() == {"9.9.9"}


def test_failures_are_retried_then_given_up(tmp_path: Path) -> None:
    with State(tmp_path / "state.sqlite") as state:
        state.written("s", "m", "st", "d", 1)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert state.todo("s", "m")
            state.failed("s", "m", "st", f"error {attempt}")
        record = state.get("s", "m")
        assert record is not None and record.attempts == MAX_ATTEMPTS
        assert record.derived_series_uid == "d"  # kept, so a retry resumes the store
        assert record.error == f"error {MAX_ATTEMPTS}" and not state.todo("s", "m")


def test_read_only_state_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.sqlite"
    with State(path, read_only=True) as state:
        assert state.todo("s", "m")
    assert not path.parent.exists()
    with State(path) as state:
        state.written("s", "m", "st", "d", 1)
    with State(path, read_only=True) as state:
        assert state.get("s", "m") is not None


def test_selection_checks() -> None:
    with pytest.raises(ValueError, match="select what"):
        Selection()
    with pytest.raises(ValueError, match="YYYYMMDD"):
        Selection(date="2024-01-01")
    assert Selection(date="20240101-").filters() == {"StudyDate": "20240101-"}
    assert Selection(patient_id="*", modality="CT").filters() == {"Modality": "CT"}
    assert Selection(study_uid="1.2").filters() == {}
