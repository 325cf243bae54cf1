"""Read InVesalius 3 project files (.inv3) as a CT Volume, without extracting to disk.

An .inv3 file is a gzip'd tar. `main.plist` names the volume file (`matrix.dat`) with its
`shape` (z, y, x), `dtype` (int16), `spacing` (x, y, z, mm), `window_level`/`window_width`,
`modality`, `scalar_range` and `orientation` (InVesalius constants: 1 axial, 2 coronal,
3 sagittal). `matrix.dat` is the raw little-endian array in C order (z, y, x).

Orientation, checked by looking at the Debian `invesalius-examples` Cranium.inv3 head CT
(orientation 1, axial): InVesalius keeps its slices in VTK's bottom-up row order, so each
stored axial slice is upside down relative to the radiological convention (the teeth and nose
sit at the bottom of the image, the head-rest arc at the top). This reader flips the row
axis so that anterior is at the top of every axial slice, as a DICOM axial slice with
Image Orientation (Patient) (1, 0, 0, 0, 1, 0) would be (`metadata["rows_flipped"] = True`).
Slice 0 is the most inferior (the teeth are in the lowest slices, the vertex in the last), so
the slice axis points to the head (+S) and coronal/sagittal reformats show the head at the
top after the usual vertical flip. Patient position is not stored, so the origin is
(0, 0, 0) and the direction is the identity (LPS); left/right cannot be verified from the
image and follows the DICOM convention (patient's left on the image right).
Only axial projects are supported; other orientations raise MedsrIOError.
"""

from __future__ import annotations

import plistlib
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from medsr.image import MODALITIES, Volume, Window
from medsr.io.errors import MedsrIOError, reader
from medsr.io.limits import check_bytes, check_pixels, current_limits

AXIAL = 1  # InVesalius constants.AXIAL
MAX_PLIST_BYTES = 16 * 2**20
DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64")


def _members(archive: tarfile.TarFile, path: Path) -> tuple[dict[str, Any], bytes]:
    """`main.plist` and the volume it names, streaming the archive (InVesalius writes the
    plist first), each member's size checked before it is read."""
    limits, plist, scanned = current_limits(), None, 0
    for count, member in enumerate(archive, start=1):
        scanned = max(scanned, member.offset_data + member.size)
        if count > limits.max_files:
            raise MedsrIOError(path, f"archive holds more than {limits.max_files:,} members")
        check_bytes(path, scanned, "archive")
        if not member.isfile():
            continue
        name = Path(member.name).name
        if plist is None and name == "main.plist":
            if member.size > MAX_PLIST_BYTES:
                raise MedsrIOError(path, f"main.plist is {member.size:,} bytes, not a project")
            plist = plistlib.loads(_read(archive, member))
            if not isinstance(plist, dict):
                raise MedsrIOError(path, "main.plist is not a dictionary")
        elif plist is not None and name == _volume_name(plist):
            return plist, _volume_bytes(archive, member, plist, path)
    if plist is None:
        raise MedsrIOError(path, "InVesalius project holds no 'main.plist'")
    for member in archive.getmembers():  # the volume came before the plist
        if member.isfile() and Path(member.name).name == _volume_name(plist):
            return plist, _volume_bytes(archive, member, plist, path)
    raise MedsrIOError(path, f"InVesalius project holds no {_volume_name(plist)!r}")


def _volume_name(plist: dict[str, Any]) -> str:
    return str(_matrix(plist).get("filename", "matrix.dat"))


def _volume_bytes(
    archive: tarfile.TarFile, member: tarfile.TarInfo, plist: dict[str, Any], path: Path
) -> bytes:
    shape, dtype = _layout(plist, path)
    if member.size != int(np.prod(shape)) * dtype.itemsize:
        raise MedsrIOError(
            path, f"matrix holds {member.size} bytes, expected shape {shape} of {dtype.name}"
        )
    return _read(archive, member)


def _read(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    return b"" if handle is None else handle.read()


def _matrix(plist: dict[str, Any]) -> dict[str, Any]:
    matrix = plist.get("matrix", {})
    return matrix if isinstance(matrix, dict) else {}


def _layout(plist: dict[str, Any], path: Path) -> tuple[tuple[int, int, int], np.dtype[Any]]:
    """Shape `(z, y, x)` and little-endian dtype of the volume, checked against the limits."""
    matrix = _matrix(plist)
    try:
        shape = tuple(int(n) for n in matrix.get("shape", ()))
        dtype = np.dtype(str(matrix.get("dtype", "int16"))).newbyteorder("<")
    except (TypeError, ValueError) as error:
        raise MedsrIOError(path, f"main.plist has an unusable matrix ({error})") from None
    if len(shape) != 3 or dtype.name not in DTYPES:
        raise MedsrIOError(path, f"main.plist declares shape {shape} of {dtype}, not a volume")
    check_pixels(path, shape, max(dtype.itemsize, 4), "volume")
    return shape, dtype


def _number(plist: dict[str, Any], key: str) -> float | None:
    value = plist.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if np.isfinite(value) else None


def _spacing(plist: dict[str, Any], path: Path) -> tuple[float, float, float]:
    """(x, y, z) mm from main.plist; MedsrIOError when missing or not three positive numbers."""
    spacing = plist.get("spacing")
    if not isinstance(spacing, (list, tuple)) or len(spacing) != 3:
        raise MedsrIOError(path, f"main.plist has no usable spacing (got {spacing!r:.80})")
    values = [_number({"v": v}, "v") for v in spacing]
    if any(v is None or v <= 0 for v in values):
        raise MedsrIOError(
            path, f"main.plist spacing {spacing!r:.80} is not three positive numbers"
        )
    return values[0], values[1], values[2]  # type: ignore[return-value]


@reader
def read_invesalius(path: str | Path) -> Volume:
    """Read the image volume of an InVesalius .inv3 project as `(D, H, W)` in HU.

    Spacing is returned in array order (z, y, x), e.g. (1.5, 0.957, 0.957) for Cranium.inv3.
    """
    path = Path(path)
    try:
        with tarfile.open(path, "r:*") as archive:
            plist, raw = _members(archive, path)
    except MedsrIOError:
        raise
    except Exception as error:  # tarfile, gzip, plistlib errors on damaged files
        raise MedsrIOError(path, f"not a readable InVesalius project ({error})") from error
    orientation = plist.get("orientation", AXIAL)
    if orientation not in (AXIAL, "AXIAL"):
        raise MedsrIOError(path, f"only axial projects are supported, orientation={orientation}")
    shape, dtype = _layout(plist, path)
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)[:, ::-1, :]
    spacing_x, spacing_y, spacing_z = _spacing(plist, path)
    modality = str(plist.get("modality", "CT"))
    width, level = _number(plist, "window_width") or 0.0, _number(plist, "window_level")
    window = Window(level, width) if width > 0 and level is not None else None
    return Volume(
        array=array,
        spacing=(spacing_z, spacing_y, spacing_x),
        modality=modality if modality in MODALITIES else "OT",
        unit="HU" if modality == "CT" else "a.u.",
        window=window,
        metadata={
            "source": "invesalius",
            "paths": [str(path)],
            "name": str(plist.get("name", "")),
            "date": str(plist.get("date", "")),
            "invesalius_version": str(plist.get("invesalius_version", "")),
            "orientation": "axial",
            "rows_flipped": True,
            "spacing_known": True,
            "origin_known": False,
        },
    )
