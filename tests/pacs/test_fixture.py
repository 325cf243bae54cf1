"""Without Orthanc the PACS tests skip, unless MEDSR_REQUIRE_PACS is set: then they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.parametrize("required", [False, True])
def test_missing_orthanc_fails_only_when_required(required: bool, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MEDSR_REQUIRE_PACS"}
    env["MEDSR_ORTHANC"] = str(tmp_path / "no-such-Orthanc")
    if required:
        env["MEDSR_REQUIRE_PACS"] = "1"
    test = f"{HERE / 'test_orthanc.py'}::test_end_to_end_ct_enhanced_into_its_study"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        env=env,
        cwd=HERE.parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if required:
        assert done.returncode == 1, done.stdout[-2000:]
        assert "1 error" in done.stdout and "MEDSR_REQUIRE_PACS is set" in done.stdout
    else:
        assert done.returncode == 0, done.stdout[-2000:]
        assert "1 skipped" in done.stdout
