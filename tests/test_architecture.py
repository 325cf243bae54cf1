"""The layers of docs/ARCHITECTURE.md hold: `lint-imports` keeps every contract in
pyproject.toml, and `import medsr.inference` loads no matplotlib, web stack or PET code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.is_file(), "import-linter is missing: pip install -e '.[dev]'"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_import_medsr_inference_loads_no_plotting_web_or_pet_code() -> None:
    code = "import sys, json, medsr.inference; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.splitlines()[-1])
    heavy = ("matplotlib", "fastapi", "uvicorn", "starlette", "medsr.web", "medsr.viz")
    pet = ("medsr.physics.pet", "medsr.data.pet_bank", "medsr.inference.fusion")
    unwanted = [m for m in loaded if m.startswith(heavy + pet)]
    assert not unwanted, f"import medsr.inference loaded {unwanted}"
    assert "medsr.inference.predictor" in loaded  # the check itself ran
