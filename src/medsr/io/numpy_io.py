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

from medsr.data.volume import MODALITIES, Volume, Window
from medsr.io.errors import MedsrIOError, check_can_write

_KEY = "medsr"


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
    return dict(content.get(_KEY, {})) if isinstance(content, dict) else {}


def read_npy(path: str | Path) -> Volume:
    """Read a 2-D or 3-D `.npy` array (no pickles) into a Volume."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # ValueError, OSError, EOFError on bad files
        raise MedsrIOError(path, f"cannot read .npy ({error})") from error
    if array.ndim not in (2, 3) or not np.issubdtype(array.dtype, np.number):
        raise MedsrIOError(path, f"expected a 2-D or 3-D numeric array, got {array.dtype} "
                                 f"{array.shape}")  # fmt: skip
    header = _read_sidecar(path)
    spacing = list(header.get("spacing") or [])
    known = len(spacing) == array.ndim
    window = header.get("window")
    modality = str(header.get("modality", "OT"))
    return Volume(
        array=array,
        spacing=tuple(spacing) if known else (1.0,) * array.ndim,
        modality=modality if modality in MODALITIES else "OT",
        unit=str(header.get("unit", "a.u.")),
        window=None if window is None else Window(float(window[0]), float(window[1])),
        origin=tuple(header.get("origin", (0.0, 0.0, 0.0))),
        direction=np.asarray(header.get("direction", np.eye(3)), dtype=np.float64),
        metadata={"source": "npy", "paths": [str(path)], "spacing_known": known},
    )


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
        window = None if volume.window is None else [volume.window.center, volume.window.width]
        fields = {
            "spacing": list(volume.spacing),
            "modality": volume.modality,
            "unit": volume.unit,
            "window": window,
            "origin": list(volume.origin),
            "direction": volume.direction.tolist(),
        }
        sidecar_path(path).write_text(json.dumps({_KEY: fields}, indent=1), encoding="utf-8")
    return path
