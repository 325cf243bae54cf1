"""DICOM test files made by editing pydicom's CT_small: a tilted, unevenly spaced CT series
and a PET in Bq/mL with the tags a body-weight SUV needs."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

TILT_DEG = 18.5
GAPS_MM = (1.08, 2.5, 6.99, 2.5, 1.08, 5.0)  # along the table, between 7 slices
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
PET_TAGS = {
    "PatientWeight": 72.5,  # kg
    "RadionuclideTotalDose": 3.7e8,  # Bq
    "RadionuclideHalfLife": 6586.2,  # s, F-18
    "RadiopharmaceuticalStartTime": "091500.00",
    "SeriesDate": "20040119",
    "SeriesTime": "102230",  # 4050 s after the injection
    "AcquisitionTime": "102731",  # later than the series start: the series time counts
}
PET_SLOPE = 2.5  # Bq/mL per stored value


def tilted_series(template_path: Path, folder: Path) -> dict[str, Dataset]:
    """Seven CT_small copies with a gantry tilt (orientation tilted about x, positions moving
    along z only, as a tilted gantry over a moving table) and uneven gaps, written in shuffled
    file order. Slice k holds the constant value 100 + 37 k HU, so an output slice shows which
    source it came from. Returns the written datasets by SOPInstanceUID."""
    template = pydicom.dcmread(template_path)
    tilt = np.radians(TILT_DEG)
    template.ImageOrientationPatient = [1, 0, 0, 0, round(np.cos(tilt), 6), -round(np.sin(tilt), 6)]
    template.SeriesInstanceUID = generate_uid()
    slope, intercept = float(template.RescaleSlope), float(template.RescaleIntercept)
    x, y, z = (float(v) for v in template.ImagePositionPatient)
    folder.mkdir(parents=True)
    written = {}
    for k, offset in enumerate(np.concatenate([[0.0], np.cumsum(GAPS_MM)])):
        ds = copy.deepcopy(template)
        ds.SOPInstanceUID, ds.InstanceNumber = generate_uid(), k + 1
        ds.ImagePositionPatient = [x, y, round(z + offset, 4)]
        stored = round((100 + 37 * k - intercept) / slope)
        ds.PixelData = np.full((ds.Rows, ds.Columns), stored, np.int16).tobytes()
        ds.save_as(folder / f"slice_{(5 * k) % 7}.dcm")  # file order is not slice order
        written[ds.SOPInstanceUID] = ds
    return written


def pet_dicom(template_path: Path, path: Path, drop: tuple[str, ...] = ()) -> Path:
    """A PET Image Storage file in Bq/mL (Units BQML, DecayCorrection START, stored values
    0..4095 times PET_SLOPE) with `PET_TAGS`, less the attributes named in `drop`."""
    ds = pydicom.dcmread(template_path)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality, ds.Units, ds.DecayCorrection = "PT", "BQML", "START"
    ds.CorrectedImage = ["ATTN", "DECY"]
    ds.PatientWeight = PET_TAGS["PatientWeight"]
    ds.SeriesDate, ds.SeriesTime = PET_TAGS["SeriesDate"], PET_TAGS["SeriesTime"]
    ds.AcquisitionTime = PET_TAGS["AcquisitionTime"]
    item = Dataset()
    item.RadionuclideTotalDose = PET_TAGS["RadionuclideTotalDose"]
    item.RadionuclideHalfLife = PET_TAGS["RadionuclideHalfLife"]
    item.RadiopharmaceuticalStartTime = PET_TAGS["RadiopharmaceuticalStartTime"]
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    ds.PixelRepresentation, ds.RescaleIntercept, ds.RescaleSlope = 0, 0, PET_SLOPE
    ds.RescaleType = "BQML"
    stored = np.arange(ds.Rows * ds.Columns, dtype=np.uint16).reshape(ds.Rows, ds.Columns) % 4096
    ds.PixelData = stored.tobytes()
    for keyword in drop:
        if keyword in item:
            delattr(item, keyword)
        elif keyword in ds:
            delattr(ds, keyword)
    ds.save_as(path, enforce_file_format=True)
    return path
