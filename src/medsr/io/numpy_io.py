"""Read and write plain NumPy `.npy` arrays, with an optional medsr sidecar JSON.

A `.npy` file holds only the array, so spacing is 1.0 mm (`metadata["spacing_known"] =
False`) unless a sidecar `<stem>.json` written by medsr (a JSON object with a "medsr" key
holding spacing, modality, unit, window, origin and direction) lies next to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medsr.image import Volume
from medsr.io.errors import MedsrIOError, check_can_write
from medsr.io.header import HEADER_KEY, header_fields, volume_from_header


def sidecar_path(path: str | Path) -> Path:
    """The sidecar JSON of an `.npy` file: same folder and stem, suffix `.json`."""
    return Path(path).with_suffix(".json")


def _read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return {}
    try:
        content = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MedsrIOError(sidecar, f"sidecar JSON is unreadable ({error})") from error
    return dict(content.get(HEADER_KEY, {})) if isinstance(content, dict) else {}


def read_npy(path: str | Path) -> Volume:
    """Read a 2-D or 3-D `.npy` array (no pickles) into a Volume."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # ValueError, OSError, EOFError on bad files
        raise MedsrIOError(path, f"cannot read .npy ({error})") from error
    if array.ndim not in (2, 3) or not np.issubdtype(array.dtype, np.number):
        raise MedsrIOError(
            path, f"expected a 2-D or 3-D numeric array, got {array.dtype} {array.shape}"
        )
    header = _read_sidecar(path)
    return volume_from_header(array, header, {"source": "npy", "paths": [str(path)]})


def write_npy(
    volume: Volume, path: str | Path, sidecar: bool = True, overwrite: bool = False
) -> Path:
    """Write the float32 array to `path` and, unless `sidecar=False`, its sidecar JSON.

    Raises FileExistsError when either file exists and `overwrite` is False.
    """
    path = Path(path)
    if sidecar:
        check_can_write(sidecar_path(path), overwrite)
    path = check_can_write(path, overwrite)
    np.save(path, volume.array, allow_pickle=False)
    if sidecar:
        content = {HEADER_KEY: header_fields(volume)}
        sidecar_path(path).write_text(json.dumps(content, indent=1), encoding="utf-8")
    return path
