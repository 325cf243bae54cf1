"""Read and write NIfTI (.nii, .nii.gz) through nibabel, keeping the affine.

nibabel's array is indexed `(i, j, k)` = (x, y, z) and its affine maps indices to RAS
millimetres. A Volume is `(D, H, W)` = (z, y, x) with an LPS affine (`Volume.affine`, which
maps (column, row, slice) = (i, j, k) to LPS). So the array is transposed and the affine's
first two rows are negated: `volume.affine == diag(-1, -1, 1, 1) @ nifti_affine`.

The NIfTI-1 header stores the affine as float32; medsr also writes the float64 affine and
the modality, unit and window into a JSON header extension (code 6, "comment"), so a file
written here reads back with the identical affine. Other tools ignore the extension.

The extension also keeps the image's metadata, less anything that identifies the patient,
the study or the scanner (`strip_identifiers`: PatientID, Study/Series/SOP/Frame of
Reference UIDs, scanner model, dates, file paths) unless the writer is told
`keep_identifiers=True` (`medsr enhance/degrade --keep-identifiers`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from medsr.image import MODALITIES, Volume, Window
from medsr.io.atomic import atomic_write
from medsr.io.errors import MedsrIOError, check_can_write, reader
from medsr.io.header import json_object, matrix, parse_header
from medsr.io.limits import check_bytes, check_pixels
from medsr.io.slice_geometry import check_regular_grid

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_EXTENSION_KEY = "medsr"
_UNIT_SCALE = {"mm": 1.0, "meter": 1000.0, "micron": 0.001, "unknown": 1.0}


def _geometry(affine_lps: np.ndarray) -> tuple[tuple[float, float, float], np.ndarray, np.ndarray]:
    """Split a 4x4 LPS affine into (spacing x, y, z), direction (columns) and origin."""
    linear = affine_lps[:3, :3]
    spacing_xyz = np.linalg.norm(linear, axis=0)
    if np.any(spacing_xyz <= 0):
        raise ValueError(f"affine has a zero-length axis: {affine_lps.tolist()}")
    return tuple(float(s) for s in spacing_xyz), linear / spacing_xyz, affine_lps[:3, 3]  # type: ignore[return-value]


EXTENSION_FIELDS = {"affine_lps": matrix(4), "metadata": json_object}
"""The extension's own fields, checked besides `header.FIELDS`."""
_READER_KEYS = ("source", "paths", "slices", "dicom_headers")
MAX_EXTENSION_BYTES = 64 * 2**20


def _medsr_extension(header: Any, path: Path) -> dict[str, Any]:
    for extension in header.extensions:
        if extension.get_code() != 6:
            continue
        fields = parse_header(extension.get_content(), path, EXTENSION_FIELDS)
        if fields:
            return fields
    return {}


def _check_header(path: Path) -> None:
    """Refuse, from the first bytes alone, a file whose data or extensions would be too
    large to read (a few compressed megabytes can declare gigabytes)."""
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path), "rb") as stream:
        block = stream.read(540)
    sizes = {int.from_bytes(block[:4], order) for order in ("little", "big")}
    if not sizes & {348, 540}:
        raise MedsrIOError(path, "not a NIfTI file (header size is neither 348 nor 540)")
    kind = nib.Nifti1Header if 348 in sizes else nib.Nifti2Header
    header = kind(binaryblock=block[: kind.template_dtype.itemsize], check=False)
    shape = list(header.get_data_shape())
    while len(shape) > 3 and shape[-1] == 1:
        shape.pop()
    if len(shape) > 3:
        raise MedsrIOError(path, f"expected a 2-D or 3-D image, got shape {tuple(shape)}")
    check_pixels(path, shape, max(header.get_data_dtype().itemsize, 4))
    offset = float(header["vox_offset"])
    if not 0 <= offset <= MAX_EXTENSION_BYTES:
        check_bytes(path, int(offset) if offset > 0 else 2**63, "header extensions")


@reader
def read_nifti(path: str | Path) -> Volume:
    """Read a 2-D or 3-D NIfTI image as a Volume `(D, H, W)` (or `(H, W)` for one slice).

    Spacing comes from the affine's column norms (in mm; metre and micron units are
    converted). A single-slice file reads as a 2-D image; its slice thickness is kept in
    `metadata["slice_thickness"]`.
    """
    path = Path(path)
    try:
        _check_header(path)
        image: Any = nib.load(str(path))
        data = np.asarray(image.get_fdata(dtype=np.float32))
    except MedsrIOError:
        raise
    except Exception as error:  # nibabel raises several types on bad files
        raise MedsrIOError(path, f"cannot read NIfTI ({error})") from error
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise MedsrIOError(path, f"expected a 2-D or 3-D image, got shape {data.shape}")
    header: Any = image.header
    extra = _medsr_extension(header, path)
    affine_lps = RAS_FROM_LPS @ np.asarray(image.affine, dtype=np.float64)
    stored = np.asarray(extra.get("affine_lps", np.full((4, 4), np.nan)), dtype=np.float64)
    if stored.shape == (4, 4) and np.allclose(stored, affine_lps, rtol=1e-5, atol=1e-4):
        affine_lps = stored  # the exact float64 affine medsr wrote
    scale = _UNIT_SCALE.get(str(header.get_xyzt_units()[0]), 1.0)
    affine_lps[:3, :] *= np.array([[scale], [scale], [scale]])
    try:
        spacing_xyz, direction, origin = _geometry(affine_lps)
    except ValueError as error:
        raise MedsrIOError(path, str(error)) from error
    window = extra.get("window")
    modality = str(extra.get("modality", "OT"))
    metadata = {k: v for k, v in extra.get("metadata", {}).items() if k not in _READER_KEYS}
    metadata.update(source="nifti", paths=[str(path)])
    array = np.ascontiguousarray(data.transpose(2, 1, 0))
    spacing: tuple[float, ...] = spacing_xyz[::-1]
    if array.shape[0] == 1:
        array, spacing = array[0], spacing[1:]
        metadata["slice_thickness"] = spacing_xyz[2]
    return Volume(
        array=array,
        spacing=spacing,
        modality=modality if modality in MODALITIES else "OT",
        unit=str(extra.get("unit", "a.u.")),
        window=None if window is None else Window(float(window[0]), float(window[1])),
        origin=tuple(origin),
        direction=direction,
        metadata=metadata,
    )


_IDENTIFYING = {
    "paths",
    "slices",
    "name",
    "date",
    "sample_path",
    "pet_suv_tags",  # acquisition dates and times, patient weight
    "SeriesDescription",
    "StudyDescription",
    "AccessionNumber",
}
_IDENTIFYING_PREFIXES = (
    "Patient",
    "Institution",
    "Station",
    "DeviceSerial",
    "Manufacturer",
    "Operator",
    "Physician",
    "Referring",
    "Performing",
    "Acquisition",
    "Study",
    "Series",
)


def strip_identifiers(metadata: dict[str, Any]) -> dict[str, Any]:
    """`metadata` without what identifies a patient, study or scanner: the keys of
    `_IDENTIFYING`, those starting with a prefix of `_IDENTIFYING_PREFIXES` and every UID but
    the transfer syntax's."""
    return {
        key: value
        for key, value in metadata.items()
        if key not in _IDENTIFYING
        and not key.startswith(_IDENTIFYING_PREFIXES)
        and ("UID" not in key or key == "TransferSyntaxUID")
    }


def _json_safe(metadata: dict[str, Any]) -> dict[str, Any]:
    safe = {}
    for key, value in metadata.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        safe[key] = value
    return safe


def write_nifti(
    volume: Volume, path: str | Path, overwrite: bool = False, keep_identifiers: bool = False
) -> Path:
    """Write `volume` as float32 NIfTI-1 (gzip'd for .nii.gz); 2-D images as one slice.

    The header extension keeps the metadata without patient, study and scanner identifiers
    (`strip_identifiers`) unless `keep_identifiers`. Raises FileExistsError when `path`
    exists and `overwrite` is False, ValueError for a tilted or unevenly spaced DICOM series
    (one affine cannot place its slices; see `slice_geometry.check_regular_grid`). Returns
    the path.
    """
    check_regular_grid(volume.metadata, "NIfTI output")
    path = check_can_write(path, overwrite)
    affine_lps = volume.affine
    data = volume.array if volume.is_volume else volume.array[None]
    image = nib.Nifti1Image(
        np.ascontiguousarray(data.transpose(2, 1, 0)), RAS_FROM_LPS @ affine_lps
    )
    image.header.set_xyzt_units("mm")
    window = None if volume.window is None else [volume.window.center, volume.window.width]
    extra = {
        _EXTENSION_KEY: {
            "affine_lps": affine_lps.tolist(),
            "modality": volume.modality,
            "unit": volume.unit,
            "window": window,
            "metadata": _json_safe(
                {k: v for k, v in volume.metadata.items() if k not in ("paths", "slices")}
                if keep_identifiers
                else {**strip_identifiers(volume.metadata), "identifiers_removed": True}
            ),
        }
    }
    header: Any = image.header
    header.extensions.append(nib.nifti1.Nifti1Extension(6, json.dumps(extra).encode("utf-8")))
    try:
        with atomic_write(path, overwrite) as temp:
            nib.save(image, str(temp))
    except FileExistsError:
        raise
    except Exception as error:
        raise MedsrIOError(path, f"cannot write NIfTI ({error})") from error
    return path
