"""Write an enhanced image as a derived DICOM object (one file per slice).

Following the DICOM derived-image conventions (as highdicom does for its derived objects,
written here with pydicom because highdicom has no single-frame CT Image Storage writer
and its Secondary Capture class carries no HU rescale or patient geometry):

* CT of known pixel spacing is written as CT Image Storage (integer HU: RescaleSlope 1,
  RescaleIntercept -1024, values clipped to the physically possible -1024 .. max(3071, the
  source's largest) HU, the clipping stated; padding outside the field of view, below -1500
  HU as a scanner wrote it and `Predictor` keeps it, stays as it was: RescaleIntercept at
  the padding and PixelPaddingValue); every other image as Secondary Capture Image
  Storage keeping the source's Modality (one slope/intercept for the series, `raster.encode`).
* Same StudyInstanceUID, patient and study attributes and FrameOfReferenceUID as the source;
  new SeriesInstanceUID (one per written series) and SOPInstanceUIDs. Empty Type 1 UIDs of a
  source are never copied: the series gets new ones; Type 2 attributes (PatientID, ...)
  are present, empty when unknown.
* ImageType `DERIVED\\SECONDARY` (plus the source's third value, e.g. AXIAL), updated Rows,
  Columns and PixelSpacing (omitted, with the image position and orientation, when the
  spacing is unknown: `metadata["spacing_known"] is False`), DerivationDescription naming
  the model, its version and checkpoint sha256 (first 12 hex) followed by
  `metadata["derivation_notes"]` (gantry tilt, uneven spacing, unit conversion, clipping;
  also in ImageComments), SeriesDescription starting "medsr RESEARCH USE ONLY",
  BurnedInAnnotation NO.
* Each output slice of a DICOM series carries its own source slice's Image Position and
  Orientation (Patient) (moved only by the in-plane shift of a refined grid) and references
  that slice in SourceImageSequence (purpose: DCM 121322), from the reader's per-slice
  records `metadata["slices"]`: a tilted or unevenly spaced series keeps its geometry.

The source headers come from the files `read_dicom` read. Non-DICOM inputs get a new
StudyInstanceUID and FrameOfReferenceUID (unless their metadata holds valid ones), anonymous
placeholders (PatientName "ANONYMOUS^MEDSR", PatientID "MEDSR-ANONYMOUS" unless the metadata
holds a PatientID) and no source reference.
"""

from __future__ import annotations

import datetime
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medsr._version import __version__
from medsr.image import Provenance, Volume
from medsr.io.atomic import atomic_write, staged_folder
from medsr.io.dicom import HEADERS_KEY, image_type_kind
from medsr.io.errors import MedsrIOError, check_can_write
from medsr.io.raster import CT_RANGE_HU, encode, map_blocks
from medsr.metrics.ct import PADDING_HU

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
PET_UNITS_WRITTEN = {"SUV": "GML", "BQML": "BQML", "counts": "CNTS"}
"""medsr PET unit -> DICOM Units (0054,1001); SUV (body weight) is g/ml, GML."""
ANONYMOUS_NAME, ANONYMOUS_ID = "ANONYMOUS^MEDSR", "MEDSR-ANONYMOUS"
_TYPE_1 = ("StudyInstanceUID", "FrameOfReferenceUID")
_COPIED = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "Manufacturer",
    "InstitutionName",
    "BodyPartExamined",
    "Laterality",
    "PatientPosition",
    "KVP",
    "SliceThickness",
    "ConvolutionKernel",
    "AcquisitionNumber",
)


_DATE_TIME = {
    # VR: (a valid value, the ACR-NEMA form some old files carry: 1993.04.30, 11:27:24)
    "DA": (re.compile(r"\d{8}"), re.compile(r"(\d{4})\.(\d{2})\.(\d{2})")),
    "TM": (
        re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?"),
        re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?"),
    ),
}


def _date_or_time(keyword: str, vr: str, value: Any) -> str:
    """A source's date (DA) or time (TM) as DICOM writes it: a valid value as it is, the
    ACR-NEMA form (`1993.04.30`, `11:27:24`) rewritten (`19930430`, `112724`), anything else
    left empty with a warning (all copied ones are Type 2 or 3: empty is valid)."""
    text = "" if value is None else str(value).strip()
    valid, legacy = _DATE_TIME[vr]
    if not text or valid.fullmatch(text):
        return text
    if match := legacy.fullmatch(text):
        return "".join(part for part in match.groups() if part)
    warnings.warn(f"source {keyword} {text!r} is not a DICOM {vr}; left empty", stacklevel=5)
    return ""


def _header(path: str, cache: dict[str, Dataset | None]) -> Dataset | None:
    """The header of source file `path` (read once per write), None when it is unreadable."""
    if path not in cache:
        try:
            cache[path] = pydicom.dcmread(path, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError) as error:
            warnings.warn(f"source {path} unreadable ({error}); not referenced", stacklevel=4)
            cache[path] = None
    return cache[path]


def _sources(volume: Volume, cache: dict[str, Dataset | None]) -> list[Dataset]:
    """Headers of the source DICOM files, or [] when there are none (or they are gone)."""
    if volume.metadata.get("source") != "dicom":
        return []
    headers = [_header(str(path), cache) for path in volume.metadata.get("paths", [])]
    return [ds for ds in headers if ds is not None]


def _slice_records(volume: Volume) -> list[dict[str, Any]] | None:
    """The reader's per-slice records (`metadata["slices"]`: file, frame, SOP identifiers,
    position, orientation) for each slice of `volume`, when they describe its slices: as
    many records as slices and the origin moved only in-plane (the in-plane grid may be
    refined); else None, and sources are matched by position."""
    records = volume.metadata.get("slices")
    if volume.metadata.get("source") != "dicom" or not records:
        return None
    if not volume.is_volume:
        index = volume.metadata.get("slice_index", 0 if len(records) == 1 else None)
        return None if index is None or index >= len(records) else [records[index]]
    if len(records) != volume.num_slices:
        return None
    first = records[0].get("position")
    if first is not None:
        shift = np.asarray(volume.origin) - np.asarray(first)
        if abs(float(shift @ volume.direction[:, 2])) > 0.01:
            return None
    return list(records)


def _slice_position(volume: Volume, record: dict[str, Any] | None, k: int) -> np.ndarray | None:
    """Image Position (Patient) of output slice `k`: its source slice's own position moved
    by the in-plane shift of the output grid, else the position on `volume`'s grid."""
    if record is None:
        image = volume.slice(k) if volume.is_volume else volume
        return np.asarray(image.origin)
    if record.get("position") is None:
        return None
    if not volume.is_volume:  # a 2-D image: its origin is its own slice's, shifted in-plane
        shift = np.asarray(volume.origin) - np.asarray(record["position"])
        normal = volume.direction[:, 2]
        return np.asarray(record["position"]) + shift - (shift @ normal) * normal
    records = volume.metadata["slices"]
    shift = np.asarray(volume.origin) - np.asarray(records[0]["position"])
    return np.asarray(record["position"]) + shift


def _match(sources: list[Dataset], position: np.ndarray, normal: np.ndarray) -> Dataset | None:
    """The source whose Image Position (Patient) lies closest to `position` along `normal`."""
    if not sources:
        return None
    if len(sources) == 1:
        return sources[0]

    def distance(ds: Dataset) -> float:
        where = ds.get("ImagePositionPatient")
        return abs(float(np.dot(np.asarray(where, float) - position, normal))) if where else 1e9

    return min(sources, key=distance)


def describe_derivation(metadata: dict[str, Any]) -> tuple[str, str]:
    """(DerivationDescription, SeriesDescription) from the image's `Provenance` (the
    defaults of an image of unknown origin when it has none)."""
    made = Provenance.from_metadata(metadata) or Provenance()
    digest = str(made.checkpoint_sha256)[:12]
    derivation = (
        f"medsr {__version__}: {made.task} x{made.scale} by model {made.model} "
        f"({made.architecture}, trained with medsr {made.model_medsr_version}, "
        f"checkpoint sha256 {digest}); RESEARCH USE ONLY, not for diagnosis"
    )
    series = f"medsr RESEARCH USE ONLY x{made.scale} {made.model}"[:64]  # LO: 64 characters
    return derivation[:1024], series


def _base(volume: Volume, source: Dataset | None, sop_class: str) -> Dataset:
    ds = Dataset()
    for keyword in _COPIED:
        if source is None or keyword not in source:
            continue
        if keyword in _TYPE_1 and not str(source[keyword].value or "").strip():
            continue  # an empty Type 1 value is never copied: the series gets a new one
        value = source[keyword].value
        if source[keyword].VR in _DATE_TIME:
            value = _date_or_time(keyword, source[keyword].VR, value)
        setattr(ds, keyword, value)
    if source is None:  # a PatientID kept in the metadata (e.g. NIfTI from DICOM) stays
        ds.PatientName = ANONYMOUS_NAME
        ds.PatientID = str(volume.metadata.get("PatientID") or ANONYMOUS_ID)
    if "Laterality" not in ds and not str(ds.get("BodyPartExamined", "")).strip():
        ds.Laterality = ""  # type 2C, required when the body part is unknown
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
        "PositionReferenceIndicator",
        "Manufacturer",
        "KVP",
        "AcquisitionNumber",
    ):
        if keyword not in ds:  # type 2: present, may be empty
            setattr(ds, keyword, "" if keyword != "AcquisitionNumber" else None)
    ds.SOPClassUID = sop_class
    ds.Modality = volume.modality
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SoftwareVersions = f"medsr {__version__}"
    ds.BurnedInAnnotation = "NO"
    ds.ImageComments = "RESEARCH USE ONLY - not for diagnostic use (medsr)"
    if sop_class == SECONDARY_CAPTURE_STORAGE:
        ds.ConversionType = "WSD"
        ds.PatientOrientation = ""
    else:
        for keyword in ("PatientPosition", "SliceThickness"):  # type 2C and 2 for CT
            if keyword not in ds:
                setattr(ds, keyword, None)
    return ds


def _image_type(source: Dataset | None, sop_class: str) -> list[str]:
    """`DERIVED\\SECONDARY` plus the source's third value (`image_type_kind`, e.g. AXIAL;
    AXIAL for a CT Image without one)."""
    kind = image_type_kind(source) or ("AXIAL" if sop_class == CT_IMAGE_STORAGE else "")
    return ["DERIVED", "SECONDARY", *([kind] if kind else [])]


def _uid(value: Any) -> str | None:
    """A usable UID from metadata or a header, or None (missing, empty or malformed)."""
    text = "" if value is None else str(value).strip()
    return text if text and pydicom.uid.UID(text).is_valid else None


def _stored_values(volume: Volume) -> tuple[np.ndarray, float, float, list[str], int | None]:
    """(stored uint16, intercept, slope, notes, stored padding value or None). CT in HU:
    integer HU, RescaleSlope 1 and RescaleIntercept -1024, clipped to the physically
    possible -1024 .. max(3071, the source's largest value) HU, the clipping stated in the
    notes and a warning; padding outside the field of view (below `PADDING_HU`, which
    `Predictor` keeps from the input) is kept as it was, not clipped: the intercept moves
    down to it, and one padding value is declared as PixelPaddingValue. Anything else:
    `raster.encode` (one slope and intercept for the whole series)."""
    if not (volume.modality == "CT" and volume.unit == "HU"):
        stored, intercept, slope = encode(volume)
        return stored.astype(np.uint16), intercept, slope, [], None
    source_range = volume.metadata.get("source_value_range") or [CT_RANGE_HU[0], CT_RANGE_HU[1]]
    array = volume.array
    lowest, highest = float(array.min()), float(array.max())
    if not (np.isfinite(lowest) and np.isfinite(highest)):
        raise ValueError("image holds NaN or infinite values; they cannot be stored as integers")
    physical_low = CT_RANGE_HU[0]
    padded = lowest < PADDING_HU
    low = float(np.rint(lowest)) if padded else physical_low  # the intercept
    high = min(max(CT_RANGE_HU[1], float(np.ceil(source_range[1]))), low + 65535)
    padding = array < PADDING_HU
    padding_value = None
    if padded and float(array[padding].max()) == lowest and lowest == np.rint(lowest):
        padding_value = 0  # one integer padding value, stored as the intercept
    below = int(np.count_nonzero(~padding & (array < physical_low - 0.5)))  # rounds below
    above = int(np.count_nonzero(array > high + 0.5))
    notes = []
    if below or above:
        notes.append(
            f"{below + above} pixel(s) outside the physically possible {physical_low:g}..{high:g}"
            f" HU clipped ({below} below, {above} above; stored as integer HU)"
        )
        warnings.warn(f"derived CT: {notes[0]}", stacklevel=4)

    def to_stored(block: np.ndarray) -> np.ndarray:
        rounded = np.rint(block)
        kept = np.where(block < PADDING_HU, rounded, np.clip(rounded, physical_low, high))
        return np.clip(kept, low, high) - low

    # in float64 blocks (`raster.map_blocks`): no float64 copy of a whole large output
    return map_blocks(array, to_stored, np.uint16), low, 1.0, notes, padding_value


def write_dicom_series(
    volume: Volume, folder: str | Path, prefix: str = "IM", overwrite: bool = False
) -> list[Path]:
    """Write a 2-D image or every slice of a 3-D volume as `folder/PREFIX_0001.dcm`, ...

    One new SeriesInstanceUID for all files; see the module doc for the attributes.
    Raises FileExistsError before writing anything if one of the files exists. A new
    `folder` is staged under a hidden name and renamed when every file is written, so it
    never appears with part of the series (`atomic.staged_folder`); into an existing
    folder, each file appears whole or not at all.
    """
    folder = Path(folder)
    names = [f"{prefix}_{k + 1:04d}.dcm" for k in range(volume.num_slices)]
    if folder.exists():
        return _write(volume, [folder / name for name in names], overwrite)
    with staged_folder(folder) as stage:
        _write(volume, [stage / name for name in names], overwrite)
    return [folder / name for name in names]


def write_dicom(volume: Volume, path: str | Path, overwrite: bool = False) -> Path:
    """Write a 2-D image as one derived DICOM file at `path` (see the module doc).

    A 3-D volume is a series of files: use `write_dicom_series(volume, folder)`.
    """
    path = Path(path)
    if volume.is_volume:
        hint = "use medsr.io.dicom_write.write_dicom_series(volume, folder)"
        raise MedsrIOError(path, f"a 3-D volume is written as a series of files: {hint}")
    return _write(volume, [path], overwrite)[0]


def _reference(record: dict[str, Any] | None, source: Dataset | None) -> Dataset | None:
    """A SourceImageSequence item for the output slice's own source (SOP Class and Instance
    UIDs, frame number of a multi-frame source), or None when they are not known."""
    if record is not None:
        sop_class, sop_instance = record.get("SOPClassUID"), record.get("SOPInstanceUID")
    elif source is not None:
        sop_class, sop_instance = source.get("SOPClassUID"), source.get("SOPInstanceUID")
    else:
        return None
    if _uid(sop_class) is None or _uid(sop_instance) is None:
        return None
    reference = Dataset()
    reference.ReferencedSOPClassUID = str(sop_class)
    reference.ReferencedSOPInstanceUID = str(sop_instance)
    if record is not None and record.get("frame"):
        reference.ReferencedFrameNumber = int(record["frame"])
    purpose = Dataset()
    purpose.CodeValue, purpose.CodingSchemeDesignator = "121322", "DCM"
    purpose.CodeMeaning = "Source image for image processing operation"
    reference.PurposeOfReferenceCodeSequence = Sequence([purpose])
    return reference


def _write(volume: Volume, paths: list[Path], overwrite: bool) -> list[Path]:
    if not overwrite and (existing := [str(p) for p in paths if p.exists()]):
        raise FileExistsError(f"will not overwrite {', '.join(existing[:3])}")
    stored, intercept, slope, value_notes, padding_value = _stored_values(volume)
    cache: dict[str, Dataset | None] = dict(volume.metadata.get(HEADERS_KEY) or {})  # as read
    sources = _sources(volume, cache)
    records = _slice_records(volume)
    derivation, series_description = describe_derivation(volume.metadata)
    notes = [*volume.metadata.get("derivation_notes", []), *value_notes]
    if notes:
        derivation = f"{derivation}; {'; '.join(notes)}"[:1024]
    series_uid, now = generate_uid(), datetime.datetime.now()
    # Type 1 UIDs the sources lack (or non-DICOM inputs) are made once for the whole series.
    meta = volume.metadata if not sources else {}
    study_uid = _uid(meta.get("StudyInstanceUID")) or generate_uid()
    frame_uid = _uid(meta.get("FrameOfReferenceUID")) or generate_uid()
    spacing_known = volume.metadata.get("spacing_known") is not False
    sop_class = SECONDARY_CAPTURE_STORAGE
    if volume.modality == "CT" and spacing_known:  # CT Image Storage needs the image plane
        sop_class = CT_IMAGE_STORAGE
    normal = volume.direction[:, 2]
    for k, path in enumerate(paths):
        record = None if records is None else records[k]
        position = _slice_position(volume, record, k)
        if record is not None:
            source = _header(str(record["path"]), cache)
        else:
            source = _match(sources, position if position is not None else np.zeros(3), normal)
        ds = _base(volume, source, sop_class)
        if not sources:
            ds.StudyDate, ds.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
        if "StudyInstanceUID" not in ds:
            ds.StudyInstanceUID = study_uid
        if position is not None and not spacing_known:
            position = None  # no geometry is made up for an image of unknown spacing
        if "FrameOfReferenceUID" not in ds and position is not None:
            ds.FrameOfReferenceUID = frame_uid
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, generate_uid()
        source_number = int(source.get("SeriesNumber") or 0) if source is not None else 0
        ds.SeriesNumber = source_number + 1000
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = series_description
        ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = now.strftime("%Y%m%d")
        ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = now.strftime("%H%M%S")
        ds.ImageType = _image_type(source, sop_class)
        ds.DerivationDescription = derivation
        if notes:
            ds.ImageComments = f"{ds.ImageComments}; {'; '.join(notes)}"
        if (reference := _reference(record, source)) is not None:
            ds.SourceImageSequence = Sequence([reference])
        ds.Rows, ds.Columns = volume.array.shape[-2:]
        if spacing_known:  # unknown spacing stays unknown: no PixelSpacing is made up
            ds.PixelSpacing = [f"{volume.spacing[-2]:.6g}", f"{volume.spacing[-1]:.6g}"]
        if position is not None:
            cosines = (*volume.direction[:, 0], *volume.direction[:, 1])
            if record is not None and record.get("orientation") is not None:
                cosines = tuple(record["orientation"])
            ds.ImageOrientationPatient = [f"{v:.6f}" for v in cosines]
            ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = f"{intercept:.8g}", f"{slope:.8g}"
        if padding_value is not None:  # the input's padding outside the field of view, kept
            ds.add_new("PixelPaddingValue", "US", padding_value)
        ds.RescaleType = "HU" if volume.unit == "HU" else "US"
        if volume.modality == "PT" and volume.unit in PET_UNITS_WRITTEN:
            ds.Units = PET_UNITS_WRITTEN[volume.unit]  # read back as the same unit
        if volume.window is not None:
            ds.WindowCenter, ds.WindowWidth = (
                f"{volume.window.center:g}",
                f"{volume.window.width:g}",
            )
        ds.PixelData = np.ascontiguousarray(stored[k] if volume.is_volume else stored).tobytes()
        meta_info = FileMetaDataset()
        meta_info.MediaStorageSOPClassUID = pydicom.uid.UID(sop_class)
        meta_info.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta_info.TransferSyntaxUID = pydicom.uid.UID(ExplicitVRLittleEndian)
        meta_info.ImplementationVersionName = f"MEDSR_{__version__}"[:16]
        ds.file_meta = meta_info
        ds.preamble = b"\0" * 128
        check_can_write(path, overwrite)
        try:
            with atomic_write(path, overwrite) as temp:
                ds.save_as(temp, enforce_file_format=True)
        except FileExistsError:
            raise
        except Exception as error:  # pydicom raises several types on invalid values
            raise MedsrIOError(path, f"cannot write DICOM ({error})") from error
    return paths
