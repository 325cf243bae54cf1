"""Read DICOM images: one file, a multi-frame file, or a folder holding one series.

Stored values go through pydicom's modality LUT (Rescale Slope/Intercept), so CT comes out
in HU. MONOCHROME1 images (radiographs where low values are white) are inverted within their
stored range so that higher is brighter, as in MONOCHROME2; the window centre is inverted
with them and `metadata["inverted"]` says so. Slices are ordered by Image Position (Patient)
projected on the slice normal (fallback: Instance Number) and the slice spacing comes from
those positions. Compressed transfer syntaxes decode through the pylibjpeg plugins.
"""

from __future__ import annotations

import io
import math
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut
from pydicom.uid import DeflatedExplicitVRLittleEndian

from medsr.image import MODALITIES, Volume, Window
from medsr.io.errors import MedsrIOError, describe_error, is_control_flow, reader
from medsr.io.limits import BudgetedFile, check_bytes, check_pixels, current_limits
from medsr.io.slice_geometry import describe_stack, stack_metadata

# SOP classes that carry no displayable image even when they hold pixel-like data.
PET_UNITS_READ = {"GML": "SUV", "CNTS": "counts"}
"""DICOM PET Units (0054,1001) -> medsr unit: GML (g/ml) is the body-weight SUV."""

DICOMDIR_SOP_PREFIX = "1.2.840.10008.1.3.10"
NON_IMAGE_SOP_PREFIXES = {
    "1.2.840.10008.5.1.4.1.1.88.": "structured report",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT structure set",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT plan",
    "1.2.840.10008.5.1.4.1.1.66": "segmentation / registration / fiducials object",
    "1.2.840.10008.5.1.4.1.1.11.": "presentation state",
    "1.2.840.10008.5.1.4.1.1.104.": "encapsulated document",
    DICOMDIR_SOP_PREFIX: "media storage directory (DICOMDIR)",
}
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
FIRST_PIXEL_TAG = 0x7FE00008  # FloatPixelData; PixelData is (7FE0,0010)
HEADERS_KEY = "dicom_headers"
"""`Volume.metadata[HEADERS_KEY]`: `{path: header}` of the files read, pixel data left out,
so a derived DICOM is written from them without parsing its sources a second time."""
_META_KEYWORDS = (
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "SeriesDescription",
    "Manufacturer",
    "ManufacturerModelName",
    "BodyPartExamined",
    "PhotometricInterpretation",
)


def is_dicom_file(path: str | Path) -> bool:
    """True when the file carries the DICOM Part 10 preamble ('DICM' at byte 128)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


@dataclass
class _Frame:
    """One decoded 2-D frame with the geometry needed to stack it."""

    pixels: np.ndarray  # float32 (H, W), modality LUT applied, MONOCHROME1 inverted
    position: np.ndarray | None  # Image Position (Patient), LPS mm
    orientation: np.ndarray | None  # Image Orientation (Patient), 6 cosines
    instance: int
    pixel_spacing: tuple[float, float] | None
    window: Window | None
    source: dict[str, Any]  # file, frame and SOP identifiers: the output slice's reference


# First groups of a data set without the Part 10 preamble: file meta (0002), identifying
# (0008); anything else (a file of zeros starts with group 0000) is not tried as DICOM.
_BARE_FIRST_GROUPS = range(0x0002, 0x0011)


_PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)


def _read_deflated(stream: BinaryIO, path: Path, stop_before_pixels: bool) -> Dataset | None:
    """A Deflated Explicit VR Little Endian file, inflated only up to the byte limit
    (pydicom would inflate it all at once, unbounded) and parsed within the budget; None
    for every other file."""
    from pydicom.dataset import FileDataset
    from pydicom.filereader import _read_file_meta_info, read_preamble
    from pydicom.filereader import read_dataset as read_elements

    stream.seek(0)
    if stream.read(132)[128:132] != b"DICM":
        return None
    stream.seek(0)
    preamble = read_preamble(stream, False)
    meta = _read_file_meta_info(stream)
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return None
    limit = current_limits().max_bytes
    body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(stream.read(), limit + 1)
    check_bytes(path, len(body), "deflated data set")
    budget: Any = BudgetedFile(io.BytesIO(body), path)  # BytesIO shares `body`, no copy
    stop = (lambda tag, vr, length: tag in _PIXEL_TAGS) if stop_before_pixels else None
    elements = read_elements(budget, False, True, stop_when=stop)
    ds = FileDataset(str(path), elements, preamble, meta, False, True)
    ds.set_original_encoding(False, True, elements._character_set)
    return ds


def _parse(stream: BinaryIO, path: Path, stop_before_pixels: bool, force: bool) -> Dataset:
    stream.seek(0)
    budget: Any = BudgetedFile(stream, path)
    return pydicom.dcmread(budget, stop_before_pixels=stop_before_pixels, force=force)


@reader
def read_dataset(path: str | Path, stop_before_pixels: bool = False) -> Dataset:
    """Parse one DICOM file, retrying without the Part 10 header; MedsrIOError if not DICOM.

    The parse keeps to the read limits (`limits.ReadLimits`): a time budget and a read
    count, and a deflated data set is inflated only up to the byte limit."""
    path = Path(path)
    with open(path, "rb") as stream:
        try:
            ds = _read_deflated(stream, path, stop_before_pixels)
            ds = ds or _parse(stream, path, stop_before_pixels, force=False)
        except InvalidDicomError:
            ds = None
        except MedsrIOError:
            raise
        except Exception as error:  # pydicom raises many types on corrupt input
            raise MedsrIOError(path, f"cannot parse DICOM file ({error})") from error
        if ds is None:
            stream.seek(0)
            group = int.from_bytes(stream.read(2), "little")
            if group not in _BARE_FIRST_GROUPS:
                raise MedsrIOError(path, "not a DICOM file (no DICM preamble, no DICOM header)")
            try:
                ds = _parse(stream, path, stop_before_pixels, force=True)
            except MedsrIOError:
                raise
            except Exception as error:
                raise MedsrIOError(path, f"not a DICOM file ({error})") from error
            if "SOPClassUID" not in ds and "Rows" not in ds:
                raise MedsrIOError(path, "not a DICOM file (no DICM preamble and no DICOM header)")
    return ds


def check_image(ds: Dataset, path: str | Path) -> None:
    """Raise MedsrIOError unless `ds` is an image object holding pixel data."""
    sop = str(ds.get("SOPClassUID", ""))
    for prefix, kind in NON_IMAGE_SOP_PREFIXES.items():
        if sop.startswith(prefix):
            name = getattr(ds.SOPClassUID, "name", sop)
            raise MedsrIOError(path, f"is not an image but a {kind} ({name}, {sop})")
    if not any(keyword in ds for keyword in PIXEL_KEYWORDS):
        raise MedsrIOError(path, "has no pixel data (not an image, or the file is truncated)")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise MedsrIOError(path, f"colour images are not supported ({ds.SamplesPerPixel} samples)")


def _group_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The functional-group item `sequence` for `frame`: per-frame first, then shared."""
    for groups, index in (
        ("PerFrameFunctionalGroupsSequence", frame),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        items = ds.get(groups)
        if items and len(items) > index and items[index].get(sequence):
            return items[index].get(sequence)[0]
    return None


def _lookup(ds: Dataset, frame: int, keyword: str, sequence: str) -> Any:
    """A top-level attribute, else the one inside an enhanced functional group."""
    if keyword in ds:
        return ds.get(keyword)
    item = _group_item(ds, frame, sequence)
    return None if item is None else item.get(keyword)


def _float(value: Any) -> float | None:
    """A finite number from a DICOM value (DS strings included), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        return _float(value[0]) if len(value) else None
    return _float(value)


def _positive_pair(value: Any) -> tuple[float, float] | None:
    """(row, column) spacing from a 2-valued attribute, or None if missing or not positive."""
    if not isinstance(value, (list, pydicom.multival.MultiValue)) or len(value) != 2:
        return None
    row, column = _float(value[0]), _float(value[1])
    if row is None or column is None or row <= 0 or column <= 0:
        return None
    return row, column


def _stored_range(ds: Dataset) -> tuple[int, int]:
    bits = min(max(int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16), 1), 64)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _rescale_number(item: Dataset, keyword: str, default: float, path: Path | None) -> float:
    """RescaleSlope / RescaleIntercept as a finite number (default when absent or empty);
    MedsrIOError naming the attribute when it holds something else ('abc', NaN, 2 values)."""
    element = item.get(keyword)
    raw = getattr(element, "value", element)
    if raw is None or raw == "":
        return default
    number = _float(raw)
    if number is None or (keyword == "RescaleSlope" and number == 0):
        raise MedsrIOError(path or "?", f"{keyword} {str(raw)[:40]!r} is not a usable number")
    return number


def _rescale(
    arr: np.ndarray, ds: Dataset, frame: int, path: Path | None = None
) -> tuple[np.ndarray, bool]:
    """Apply the modality LUT to one frame; True when a rescale/LUT was present."""
    if "ModalityLUTSequence" in ds:
        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float64), True
    item = ds
    if "RescaleSlope" not in ds and "RescaleIntercept" not in ds:
        group = _group_item(ds, frame, "PixelValueTransformationSequence")
        if group is None or "RescaleSlope" not in group:
            return arr.astype(np.float64), False
        item = group
    slope = _rescale_number(item, "RescaleSlope", 1.0, path)
    intercept = _rescale_number(item, "RescaleIntercept", 0.0, path)
    return arr.astype(np.float64) * slope + intercept, True


def _frames(ds: Dataset, path: Path) -> tuple[list[_Frame], bool, bool]:
    """Decode every frame of `ds`. Returns (frames, rescaled, inverted)."""
    try:
        pixels = ds.pixel_array
    except BaseException as error:  # decoders raise anything, even a Rust PanicException
        if is_control_flow(error):
            raise
        meta = getattr(ds, "file_meta", Dataset())
        syntax = meta.get("TransferSyntaxUID", "unknown transfer syntax")
        syntax_name = getattr(syntax, "name", syntax)
        problem = f"cannot decode pixel data ({syntax_name}): {describe_error(error)}"
        raise MedsrIOError(path, problem) from None
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if count < 1 or pixels.size != count * pixels.shape[-1] * pixels.shape[-2]:
        raise MedsrIOError(path, f"{count} frame(s) declared, pixel data of shape {pixels.shape}")
    pixels = pixels.reshape(count, *pixels.shape[-2:])
    inverted = ds.get("PhotometricInterpretation", "") == "MONOCHROME1"
    frames, rescaled = [], False
    for index in range(count):
        values, rescaled = _rescale(pixels[index], ds, index, path)
        center = _first(_lookup(ds, index, "WindowCenter", "FrameVOILUTSequence"))
        width = _first(_lookup(ds, index, "WindowWidth", "FrameVOILUTSequence"))
        if inverted:
            low, high = _rescale(np.array(_stored_range(ds)), ds, index, path)[0]
            values = (low + high) - values
            center = None if center is None else float(low + high) - center
        position = _lookup(ds, index, "ImagePositionPatient", "PlanePositionSequence")
        orientation = _lookup(ds, index, "ImageOrientationPatient", "PlaneOrientationSequence")
        spacing = _positive_pair(_lookup(ds, index, "PixelSpacing", "PixelMeasuresSequence"))
        frames.append(
            _Frame(
                pixels=values.astype(np.float32),
                position=None if position is None else np.array(position, dtype=np.float64),
                orientation=None if orientation is None else np.array(orientation, dtype=float),
                instance=int(ds.get("InstanceNumber", 0) or 0) * 100000 + index,
                pixel_spacing=spacing or _positive_pair(ds.get("ImagerPixelSpacing")),
                window=None
                if center is None or width is None or width <= 0
                else Window(center, width),
                source={
                    "path": str(path),
                    "frame": index + 1 if count > 1 else None,
                    "SOPInstanceUID": str(ds.get("SOPInstanceUID", "")),
                    "SOPClassUID": str(ds.get("SOPClassUID", "")),
                },
            )
        )
    return frames, rescaled, inverted


def _slice_geometry(
    frames: list[_Frame], ds: Dataset, where: Path
) -> tuple[list[_Frame], float, bool, dict[str, Any]]:
    """Sort frames along the slice normal. Returns (sorted frames, slice spacing, known,
    metadata on tilt and uneven spacing: `slice_geometry.stack_metadata`)."""
    first = frames[0].orientation
    positions = [f.position for f in frames]
    if first is not None and all(p is not None for p in positions):
        for frame in frames:
            if frame.orientation is None or not np.allclose(frame.orientation, first, atol=1e-4):
                raise MedsrIOError(where, "slices have different Image Orientation (Patient)")
        normal = np.cross(first[:3], first[3:])
        distances = [float(np.dot(p, normal)) for p in positions]  # type: ignore[arg-type]
        order = sorted(range(len(frames)), key=lambda i: (distances[i], frames[i].instance))
        frames = [frames[i] for i in order]
        steps = np.diff([distances[i] for i in order])
        if np.any(steps < 1e-3):
            raise MedsrIOError(
                where, "several slices share one position (repeated acquisitions or duplicates?)"
            )
        geometry = describe_stack(np.array([f.position for f in frames]), normal)
        if not geometry.regular:
            notes = stack_metadata(geometry)["derivation_notes"]
            warnings.warn(
                f"{where}: {'; '.join(notes)} (3-D operations that need a regular grid, "
                f"such as fusion or NIfTI output, refuse it; the median {geometry.spacing:.3f} "
                "mm stands for the slice spacing)",
                stacklevel=3,
            )
        return frames, geometry.spacing, True, stack_metadata(geometry)
    frames = sorted(frames, key=lambda f: f.instance)
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _first(_lookup(ds, 0, keyword, "PixelMeasuresSequence"))
        if value and value > 0:
            return frames, value, True, {}
    return frames, 1.0, False, {}


def _text(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def pet_suv_tags(datasets: list[Dataset]) -> dict[str, Any]:
    """The PET attributes a body-weight SUV needs, as plain values (None when absent):
    Units, DecayCorrection, PatientWeight (kg), the first Radiopharmaceutical Information
    item's RadionuclideTotalDose (Bq), RadionuclideHalfLife (s), RadiopharmaceuticalStartTime
    and -DateTime, SeriesDate/Time and the earliest AcquisitionDate/Time of the series."""
    first = datasets[0]
    info = first.get("RadiopharmaceuticalInformationSequence")
    item = info[0] if info else Dataset()
    acquisitions = sorted(
        (_text(ds.get("AcquisitionDate")) or "", _text(ds.get("AcquisitionTime")) or "")
        for ds in datasets
        if _text(ds.get("AcquisitionTime"))
    )

    def number(value: Any) -> float | None:
        return None if _text(value) is None else float(value)

    return {
        "Units": _text(first.get("Units")),
        "DecayCorrection": _text(first.get("DecayCorrection")),
        "PatientWeight": number(first.get("PatientWeight")),
        "RadionuclideTotalDose": number(item.get("RadionuclideTotalDose")),
        "RadionuclideHalfLife": number(item.get("RadionuclideHalfLife")),
        "RadiopharmaceuticalStartTime": _text(item.get("RadiopharmaceuticalStartTime")),
        "RadiopharmaceuticalStartDateTime": _text(item.get("RadiopharmaceuticalStartDateTime")),
        "SeriesDate": _text(first.get("SeriesDate")),
        "SeriesTime": _text(first.get("SeriesTime")),
        "AcquisitionDate": (acquisitions[0][0] or None) if acquisitions else None,
        "AcquisitionTime": acquisitions[0][1] if acquisitions else None,
    }


def header_of(ds: Dataset) -> Dataset:
    """A copy of `ds` up to its pixel data, as `dcmread(..., stop_before_pixels=True)` reads
    it (file meta kept); the decoded pixels stay with `ds`."""
    header = Dataset({tag: element for tag, element in ds.items() if tag < FIRST_PIXEL_TAG})
    if hasattr(ds, "file_meta"):
        header.file_meta = ds.file_meta
    return header


def _metadata(datasets: list[Dataset], paths: list[Path]) -> dict[str, Any]:
    first = datasets[0]
    meta: dict[str, Any] = {"source": "dicom", "paths": [str(p) for p in paths]}
    meta[HEADERS_KEY] = {str(p): header_of(ds) for ds, p in zip(datasets, paths, strict=True)}
    for keyword in _META_KEYWORDS:
        if keyword in first and first.get(keyword) not in (None, ""):
            meta[keyword] = str(first.get(keyword))
    meta["SOPInstanceUIDs"] = [str(ds.get("SOPInstanceUID", "")) for ds in datasets]
    meta["dicom_modality"] = str(first.get("Modality", ""))
    if meta["dicom_modality"] == "PT":
        meta["pet_suv_tags"] = pet_suv_tags(datasets)
    syntax = first.file_meta.get("TransferSyntaxUID") if hasattr(first, "file_meta") else None
    meta["TransferSyntaxUID"] = str(syntax or "")
    return meta


def _volume(datasets: list[Dataset], paths: list[Path], where: Path) -> Volume:
    """Decode, sort and stack the images of `datasets` into one Volume."""
    frames: list[_Frame] = []
    rescaled = inverted = False
    total = 0
    for ds, path in zip(datasets, paths, strict=True):  # sizes from the headers, first
        total += _declared_pixels(ds, path)
        check_pixels(where, (total,), 4, "image" if len(paths) == 1 else "series")
    for ds, path in zip(datasets, paths, strict=True):
        new, rescaled, inverted = _frames(ds, path)
        frames += new
    first = datasets[0]
    meta = _metadata(datasets, paths)
    pixel_spacing = frames[0].pixel_spacing
    meta["spacing_known"] = pixel_spacing is not None
    if pixel_spacing is None:
        warnings.warn(
            f"{where}: no usable PixelSpacing or ImagerPixelSpacing; spacing unknown "
            "(1.0 mm used for computing, never written to outputs)",
            stacklevel=3,
        )
        pixel_spacing = (1.0, 1.0)
    slice_spacing = 0.0
    if len(frames) > 1:
        frames, slice_spacing, known, stack = _slice_geometry(frames, first, where)
        meta["slice_spacing_known"] = known
        meta.update(stack)
    meta["slices"] = [
        {
            **f.source,
            "position": None if f.position is None else [float(v) for v in f.position],
            "orientation": None if f.orientation is None else [float(v) for v in f.orientation],
        }
        for f in frames
    ]
    orientation = frames[0].orientation
    direction = np.eye(3)
    if orientation is not None:
        row, col = orientation[:3], orientation[3:]
        direction = np.column_stack([row, col, np.cross(row, col)])
    origin = (0.0, 0.0, 0.0) if frames[0].position is None else tuple(frames[0].position)
    modality = str(first.get("Modality", "OT"))
    unit = "a.u."
    if modality == "CT" and rescaled:
        unit = "HU"
    elif modality in ("NM", "PT"):
        unit = str(first.get("Units", "counts")) if modality == "PT" else "counts"
        unit = PET_UNITS_READ.get(unit, unit)
    meta["inverted"] = inverted
    meta["source_value_range"] = [
        float(min(f.pixels.min() for f in frames)),
        float(max(f.pixels.max() for f in frames)),
    ]
    spacing: tuple[float, ...] = pixel_spacing
    if len(frames) == 1:
        array = frames[0].pixels
    else:
        array, spacing = np.stack([f.pixels for f in frames]), (slice_spacing, *pixel_spacing)
    return Volume(
        array=array,
        spacing=spacing,
        modality=modality if modality in MODALITIES else "OT",
        unit=unit,
        window=frames[0].window,
        origin=origin,
        direction=direction,
        metadata=meta,
    )


def _declared_pixels(ds: Dataset, path: Path) -> int:
    """Rows x Columns x frames x samples from the header, checked against the limits."""
    dims = [int(ds.get(k, 1) or 1) for k in ("NumberOfFrames", "Rows", "Columns")]
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 16) or 16)
    check_pixels(path, dims, max(samples * -(-bits // 8), 4))
    return math.prod(dims) * samples


def _walk(folder: Path) -> list[Path]:
    """Every non-hidden file under `folder`, without recursion (a folder 1000 levels deep
    cannot overflow the stack) or following symbolic links; at most `max_depth` levels and
    `max_files` files (read limits), else MedsrIOError."""
    limits = current_limits()
    found: list[Path] = []
    pending = [(folder, 0)]
    while pending:
        current, depth = pending.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 > limits.max_depth:
                        raise MedsrIOError(
                            folder, f"folders nest deeper than {limits.max_depth} levels"
                        )
                    pending.append((Path(entry.path), depth + 1))
                elif entry.is_file():
                    found.append(Path(entry.path))
                    if len(found) > limits.max_files:
                        raise MedsrIOError(folder, f"holds more than {limits.max_files:,} files")
    return sorted(found)


def _series_files(folder: Path) -> list[Path]:
    """Files of `folder` (recursive) that look like DICOM: a .dcm suffix or the preamble."""
    files = _walk(folder)
    return [p for p in files if p.suffix.lower() in (".dcm", ".dicom") or is_dicom_file(p)]


@dataclass(frozen=True)
class FolderSeries:
    """One series among the DICOM images of a folder (`series_in_folder`)."""

    uid: str
    number: int | None  # Series Number, when the files carry one
    description: str  # Series Description, else the reconstruction kernel, else ""
    images: int
    localizer: bool = False  # a scout / surview (Image Type LOCALIZER): a projection, no slice

    @property
    def label(self) -> str:
        """How a person finds it in a viewer: `series 3 (B30f, 7 images)`."""
        number = "?" if self.number is None else self.number
        about = f"{self.description}, " if self.description else ""
        images = f"{self.images} image{'' if self.images == 1 else 's'}"
        return f"series {number} ({about}{images})"


def series_in_folder(folder: str | Path) -> list[FolderSeries]:
    """The series of the DICOM images in `folder` (recursive), ordered by Series Number then
    UID, from their headers alone (pixels not read). Files that are not DICOM images
    (DICOMDIR, reports, unreadable files) are left out, as `read_dicom_series` leaves them."""
    by_uid: dict[str, list[Dataset]] = {}
    for path in _series_files(Path(folder)):
        try:
            ds = read_dataset(path, stop_before_pixels=True)
        except MedsrIOError:
            continue
        sop = str(ds.get("SOPClassUID", ""))
        if "Rows" not in ds or any(sop.startswith(prefix) for prefix in NON_IMAGE_SOP_PREFIXES):
            continue  # DICOMDIR, a report, a presentation state: no image
        by_uid.setdefault(str(ds.get("SeriesInstanceUID", "?")), []).append(ds)
    series = []
    for uid, datasets in by_uid.items():
        first = datasets[0]
        number = first.get("SeriesNumber")
        kernel = first.get("ConvolutionKernel", "")
        if isinstance(kernel, pydicom.multival.MultiValue):
            kernel = "/".join(str(k) for k in kernel)
        description = str(first.get("SeriesDescription", "") or kernel or "").strip()
        localizer = all(_is_localizer(ds) for ds in datasets)
        images = sum(slice_mask(datasets))
        series.append(FolderSeries(uid, _integer(number), description, images, localizer))
    return sorted(series, key=lambda s: (s.number is None, s.number or 0, s.uid))


def image_type_kind(ds: Dataset | None) -> str:
    """The third value of a header's Image Type (AXIAL, LOCALIZER, ...; PS3.3 C.8.2.1.1.1
    for CT), "" when absent; a single-valued Image Type is one value, not a string of
    characters."""
    value = None if ds is None else ds.get("ImageType")
    values = [] if value is None else [value] if isinstance(value, str) else list(value)
    return str(values[2]).strip() if len(values) > 2 else ""


def _is_localizer(ds: Dataset) -> bool:
    """Whether the image is a localizer (scout, topogram, surview)."""
    return image_type_kind(ds).upper() == "LOCALIZER"


def slice_mask(datasets: list[Dataset]) -> list[bool]:
    """Which images of one series are its slices: not its localizers when it also has
    slices (some scanners store the scout in the axial series); all of them when the series
    is localizers only (the user asked for those)."""
    mask = [not _is_localizer(ds) for ds in datasets]
    return mask if any(mask) else [True] * len(datasets)


def _integer(value: Any) -> int | None:
    """An IS value as an int; None when absent or malformed (a header is never fatal here)."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@reader
def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> Volume:
    """Read every image of the single series in `folder` as one Volume; with `series_uid`,
    the images of that series only (a folder holding several, `series_in_folder`)."""
    folder = Path(folder)
    files = _series_files(folder)
    if not files:
        raise MedsrIOError(folder, "folder holds no DICOM files")
    datasets, paths = [], []
    for path in files:
        if series_uid is not None:  # the other series' pixels are not read
            header = read_dataset(path, stop_before_pixels=True)
            if str(header.get("SeriesInstanceUID", "?")) != series_uid:
                continue
        ds = read_dataset(path)
        if str(ds.get("SOPClassUID", "")).startswith(DICOMDIR_SOP_PREFIX):
            continue  # DICOMDIR index
        try:
            check_image(ds, path)
        except MedsrIOError as error:
            warnings.warn(f"skipping {error}", stacklevel=2)
            continue
        datasets.append(ds)
        paths.append(path)
    if not datasets:
        which = "" if series_uid is None else f" of series {series_uid}"
        raise MedsrIOError(folder, f"folder holds no DICOM images{which}")
    series = sorted({str(ds.get("SeriesInstanceUID", "?")) for ds in datasets})
    if len(series) > 1:
        raise MedsrIOError(folder, f"folder mixes {len(series)} series: {', '.join(series)}")
    if skipped := (mask := slice_mask(datasets)).count(False):
        warnings.warn(
            f"{folder}: {skipped} localizer image(s) (scout) of the series skipped: a "
            "projection, not a slice of the volume",
            stacklevel=2,
        )
        datasets = [ds for ds, is_slice in zip(datasets, mask, strict=True) if is_slice]
        paths = [path for path, is_slice in zip(paths, mask, strict=True) if is_slice]
    sizes = sorted({(int(ds.Rows), int(ds.Columns)) for ds in datasets})
    if len(sizes) > 1:
        listed = ", ".join(f"{r}x{c}" for r, c in sizes)
        raise MedsrIOError(folder, f"folder mixes image sizes (rows x columns): {listed}")
    return _volume(datasets, paths, folder)


@reader
def read_dicom(path: str | Path) -> Volume:
    """Read a DICOM file (single- or multi-frame) or a series folder into a Volume.

    Returns a 2-D `(H, W)` Volume for a single frame and `(D, H, W)` otherwise, in HU for
    CT (unit "HU"), with spacing from Pixel Spacing (fallback Imager Pixel Spacing, else
    1.0 mm with `metadata["spacing_known"] = False` and a warning).
    """
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path)
    if not path.is_file():
        raise MedsrIOError(path, "no such file or folder")
    ds = read_dataset(path)
    check_image(ds, path)
    return _volume([ds], [path], path)
