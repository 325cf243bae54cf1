"""Read and write plain NumPy `.npy` arrays, with an optional medsr sidecar JSON.

A `.npy` file holds only the array, so spacing is 1.0 mm (`metadata["spacing_known"] =
False`) unless a sidecar `<stem>.json` written by medsr (a JSON object with a "medsr" key
holding spacing, modality, unit, window, origin and direction) lies next to it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medsr.image import Volume
from medsr.io.atomic import atomic_write, write_bytes_atomic
from medsr.io.errors import MedsrIOError, check_can_write, reader
from medsr.io.header import HEADER_KEY, header_fields, parse_header, volume_from_header
from medsr.io.limits import check_pixels

MAX_SIDECAR_BYTES = 1_000_000


def sidecar_path(path: str | Path) -> Path:
    """The sidecar JSON of an `.npy` file: same folder and stem, suffix `.json`."""
    return Path(path).with_suffix(".json")


def _read_sidecar(path: Path) -> dict[str, Any]:
    """The checked medsr fields of the sidecar; `{}` (with a warning when it is ours but
    malformed: `header.parse_header`) when there is none."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        return {}
    try:
        if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            raise ValueError(f"larger than {MAX_SIDECAR_BYTES:,} bytes")
        text = sidecar.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        warnings.warn(f"{sidecar}: sidecar ignored ({error})", stacklevel=3)
        return {}
    return parse_header(text, sidecar)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype from the `.npy` header, before any data is read."""
    with open(path, "rb") as stream:
        magic = stream.read(6)
        if magic != np.lib.format.MAGIC_PREFIX:
            kind = "a zip archive (.npz?)" if magic[:2] == b"PK" else "another file"
            raise MedsrIOError(path, f"not a .npy array but {kind}")
        stream.seek(0)
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:  # 3.0 only serves structured arrays, which medsr does not read
            raise MedsrIOError(path, f".npy format version {version} is not supported")
    return shape, dtype


@reader
def read_npy(path: str | Path) -> Volume:
    """Read a 2-D or 3-D real-valued `.npy` array (no pickles) into a Volume."""
    path = Path(path)
    shape, dtype = _npy_header(path)
    real = np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    if len(shape) not in (2, 3) or not (real or dtype == np.bool_):
        raise MedsrIOError(path, f"expected a 2-D or 3-D real-valued array, got {dtype} {shape}")
    check_pixels(path, shape, max(dtype.itemsize, 4))
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # ValueError, OSError, EOFError on bad files
        raise MedsrIOError(path, f"cannot read .npy ({error})") from error
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
    if sidecar:  # first: an .npy under its final name has its sidecar
        content = json.dumps({HEADER_KEY: header_fields(volume)}, indent=1)
        write_bytes_atomic(sidecar_path(path), content.encode("utf-8"), overwrite)
    with atomic_write(path, overwrite) as temp, open(temp, "wb") as stream:
        np.save(stream, volume.array, allow_pickle=False)
    return path
