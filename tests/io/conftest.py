"""Shared fixtures for the I/O tests: real DICOM test files, skipped when not installed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def find_testdata(name: str) -> Path:
    """Path of a pydicom / pydicom-data test file, or skip the test when it is missing."""
    from pydicom.data import get_testdata_file

    found = get_testdata_file(name, download=False)
    if not isinstance(found, str):
        pytest.skip(f"{name} not installed (pip install pydicom-data)")
    return Path(found)


@pytest.fixture(scope="session")
def testdata() -> Callable[[str], Path]:
    return find_testdata
