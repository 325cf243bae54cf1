"""Write an enhanced image as a derived DICOM object (one file per slice).

Following the DICOM derived-image conventions (as highdicom does for its derived objects,
written here with pydicom because highdicom has no single-frame CT Image Storage writer
and its Secondary Capture class carries no HU rescale or patient geometry):

* CT is written as CT Image Storage (HU through Rescale Slope/Intercept, RescaleType HU);
  every other modality as Secondary Capture Image Storage keeping the source's Modality.
* Same StudyInstanceUID, patient and study attributes and FrameOfReferenceUID as the source;
  new SeriesInstanceUID (one per written series) and SOPInstanceUIDs.
* ImageType `DERIVED\\SECONDARY` (plus the source's third value, e.g. AXIAL), updated Rows,
  Columns, PixelSpacing and Image Position/Orientation (Patient), DerivationDescription
  naming the model, its version and checkpoint sha256 (first 12 hex), SeriesDescription
  starting "medsr RESEARCH USE ONLY", BurnedInAnnotation NO, and a SourceImageSequence
  referencing the source instance (purpose: DCM 121322, source image for processing).

The source attributes come from `volume.metadata["paths"]` (the files `read_dicom` read).
Non-DICOM inputs get a new StudyInstanceUID and FrameOfReferenceUID and anonymous
placeholders: PatientName "ANONYMOUS^MEDSR", PatientID "MEDSR-ANONYMOUS"; no source reference.
Stored values: unsigned 16-bit through `raster.encode` for the whole series (one
slope/intercept; integer data exact; CT within -1024..3071 HU at 1/16 HU steps).
"""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medsr._version import __version__
from medsr.image import Volume
from medsr.io.errors import MedsrIOError, check_can_write
from medsr.io.raster import encode

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
PET_UNITS_WRITTEN = {"SUV": "GML", "BQML": "BQML", "counts": "CNTS"}
"""medsr PET unit -> DICOM Units (0054,1001); SUV (body weight) is g/ml, GML."""
ANONYMOUS_NAME, ANONYMOUS_ID = "ANONYMOUS^MEDSR", "MEDSR-ANONYMOUS"
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
    "PatientPosition",
    "KVP",
    "SliceThickness",
    "ConvolutionKernel",
    "AcquisitionNumber",
)


def _sources(volume: Volume) -> list[Dataset]:
    """Headers of the source DICOM files, or [] when there are none (or they are gone)."""
    if volume.metadata.get("source") != "dicom":
        return []
    headers: list[Dataset] = []
    for path in volume.metadata.get("paths", []):
        try:
            headers.append(pydicom.dcmread(path, stop_before_pixels=True))
        except (OSError, pydicom.errors.InvalidDicomError) as error:
            warnings.warn(f"source {path} unreadable ({error}); not referenced", stacklevel=3)
    return headers


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
    """(DerivationDescription, SeriesDescription) from `metadata["inference"]` if present."""
    info = metadata.get("inference") or {}
    model = info.get("model", "unknown model")
    scale = info.get("scale", "?")
    digest = str(info.get("checkpoint_sha256", "unknown"))[:12]
    derivation = (
        f"medsr {__version__}: {info.get('task', 'enhancement')} x{scale} by model {model} "
        f"({info.get('architecture', '?')}, trained with medsr "
        f"{info.get('model_medsr_version', '?')}, checkpoint sha256 {digest}); "
        "RESEARCH USE ONLY, not for diagnosis"
    )
    series = f"medsr RESEARCH USE ONLY x{scale} {model}"[:64]  # LO: 64 characters
    return derivation[:1024], series


def _base(volume: Volume, source: Dataset | None, sop_class: str) -> Dataset:
    ds = Dataset()
    for keyword in _COPIED:
        if source is not None and keyword in source:
            setattr(ds, keyword, source[keyword].value)
    if source is None:
        ds.PatientName, ds.PatientID = ANONYMOUS_NAME, ANONYMOUS_ID
    for keyword in (
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
    return ds


def write_dicom_series(
    volume: Volume, folder: str | Path, prefix: str = "IM", overwrite: bool = False
) -> list[Path]:
    """Write a 2-D image or every slice of a 3-D volume as `folder/PREFIX_0001.dcm`, ...

    One new SeriesInstanceUID for all files; see the module doc for the attributes.
    Raises FileExistsError before writing anything if one of the files exists.
    """
    folder = Path(folder)
    paths = [folder / f"{prefix}_{k + 1:04d}.dcm" for k in range(volume.num_slices)]
    return _write(volume, paths, overwrite)


def write_dicom(volume: Volume, path: str | Path, overwrite: bool = False) -> Path:
    """Write a 2-D image as one derived DICOM file at `path` (see the module doc).

    A 3-D volume is a series of files: use `write_dicom_series(volume, folder)`.
    """
    path = Path(path)
    if volume.is_volume:
        hint = "use medsr.io.dicom_write.write_dicom_series(volume, folder)"
        raise MedsrIOError(path, f"a 3-D volume is written as a series of files: {hint}")
    return _write(volume, [path], overwrite)[0]


def _write(volume: Volume, paths: list[Path], overwrite: bool) -> list[Path]:
    if not overwrite and (existing := [str(p) for p in paths if p.exists()]):
        raise FileExistsError(f"will not overwrite {', '.join(existing[:3])}")
    stored, intercept, slope = encode(volume)
    stored = stored.astype(np.uint16)
    sources = _sources(volume)
    derivation, series_description = describe_derivation(volume.metadata)
    series_uid, now = generate_uid(), datetime.datetime.now()
    study_uid = frame_uid = None
    if not sources:
        study_uid, frame_uid = generate_uid(), generate_uid()
    sop_class = CT_IMAGE_STORAGE if volume.modality == "CT" else SECONDARY_CAPTURE_STORAGE
    normal = volume.direction[:, 2]
    for k, path in enumerate(paths):
        image = volume.slice(k) if volume.is_volume else volume
        position = np.asarray(image.origin)
        source = _match(sources, position, normal)
        ds = _base(volume, source, sop_class)
        if study_uid is not None:
            ds.StudyInstanceUID, ds.FrameOfReferenceUID = study_uid, frame_uid
            ds.StudyDate, ds.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series_uid, generate_uid()
        source_number = int(source.get("SeriesNumber") or 0) if source is not None else 0
        ds.SeriesNumber = source_number + 1000
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = series_description
        ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = now.strftime("%Y%m%d")
        ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = now.strftime("%H%M%S")
        kind = list(source.get("ImageType", []))[2:3] if source is not None else []
        ds.ImageType = [
            "DERIVED",
            "SECONDARY",
            *(kind or (["AXIAL"] if sop_class == CT_IMAGE_STORAGE else [])),
        ]
        ds.DerivationDescription = derivation
        if source is not None and "SOPInstanceUID" in source:
            reference = Dataset()
            reference.ReferencedSOPClassUID = source.SOPClassUID
            reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
            purpose = Dataset()
            purpose.CodeValue, purpose.CodingSchemeDesignator = "121322", "DCM"
            purpose.CodeMeaning = "Source image for image processing operation"
            reference.PurposeOfReferenceCodeSequence = Sequence([purpose])
            ds.SourceImageSequence = Sequence([reference])
        ds.Rows, ds.Columns = image.array.shape
        ds.PixelSpacing = [f"{image.spacing[0]:.6g}", f"{image.spacing[1]:.6g}"]
        ds.ImageOrientationPatient = [
            f"{v:.6f}" for v in (*volume.direction[:, 0], *volume.direction[:, 1])
        ]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = f"{intercept:.8g}", f"{slope:.8g}"
        ds.RescaleType = "HU" if volume.unit == "HU" else "US"
        if volume.modality == "PT" and volume.unit in PET_UNITS_WRITTEN:
            ds.Units = PET_UNITS_WRITTEN[volume.unit]  # read back as the same unit
        if volume.window is not None:
            ds.WindowCenter, ds.WindowWidth = (
                f"{volume.window.center:g}",
                f"{volume.window.width:g}",
            )
        ds.PixelData = np.ascontiguousarray(stored[k] if volume.is_volume else stored).tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = pydicom.uid.UID(sop_class)
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = pydicom.uid.UID(ExplicitVRLittleEndian)
        meta.ImplementationVersionName = f"MEDSR_{__version__}"[:16]
        ds.file_meta = meta
        ds.preamble = b"\0" * 128
        check_can_write(path, overwrite)
        try:
            ds.save_as(path, enforce_file_format=True)
        except Exception as error:  # pydicom raises several types on invalid values
            raise MedsrIOError(path, f"cannot write DICOM ({error})") from error
    return paths
