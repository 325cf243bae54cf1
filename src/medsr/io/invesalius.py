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
from medsr.io.errors import MedsrIOError

AXIAL = 1  # InVesalius constants.AXIAL


def _member(archive: tarfile.TarFile, name: str, path: Path) -> bytes:
    for member in archive.getmembers():
        if member.isfile() and Path(member.name).name == name:
            handle = archive.extractfile(member)
            if handle is not None:
                return handle.read()
    raise MedsrIOError(path, f"InVesalius project holds no {name!r}")


def read_invesalius(path: str | Path) -> Volume:
    """Read the image volume of an InVesalius .inv3 project as `(D, H, W)` in HU.

    Spacing is returned in array order (z, y, x), e.g. (1.5, 0.957, 0.957) for Cranium.inv3.
    """
    path = Path(path)
    try:
        with tarfile.open(path, "r:*") as archive:
            plist: dict[str, Any] = plistlib.loads(_member(archive, "main.plist", path))
            matrix = plist.get("matrix", {})
            raw = _member(archive, str(matrix.get("filename", "matrix.dat")), path)
    except MedsrIOError:
        raise
    except Exception as error:  # tarfile, gzip, plistlib errors on damaged files
        raise MedsrIOError(path, f"not a readable InVesalius project ({error})") from error
    orientation = plist.get("orientation", AXIAL)
    if orientation not in (AXIAL, "AXIAL"):
        raise MedsrIOError(path, f"only axial projects are supported, orientation={orientation}")
    shape = tuple(int(n) for n in matrix.get("shape", ()))
    dtype = np.dtype(str(matrix.get("dtype", "int16"))).newbyteorder("<")
    if len(shape) != 3 or len(raw) != int(np.prod(shape)) * dtype.itemsize:
        raise MedsrIOError(
            path, f"matrix holds {len(raw)} bytes, expected shape {shape} of {dtype.name}"
        )
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)[:, ::-1, :]
    spacing_x, spacing_y, spacing_z = (float(s) for s in plist["spacing"])
    modality = str(plist.get("modality", "CT"))
    width = float(plist.get("window_width", 0.0))
    window = Window(float(plist["window_level"]), width) if width > 0 else None
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
