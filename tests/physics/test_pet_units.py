"""Bq/mL -> SUVbw with decay correction, checked against a hand computation from the tags."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medsr.image import Volume
from medsr.io import read
from medsr.physics.pet_units import suv_bw_factor, to_suv_bw
from tests.io.dicom_builders import PET_SLOPE, PET_TAGS, pet_dicom

# By hand: injection 09:15:00, series start 10:22:30 -> dt = 4050 s; F-18 half-life 6586.2 s;
# decayed dose = 3.7e8 Bq * 2^(-4050 / 6586.2) = 241 597 103.9 Bq;
# SUVbw per Bq/mL = 72.5 kg * 1000 g/kg / 241 597 103.9 Bq = 3.000864e-4 g/mL per Bq/mL.
HAND_DECAYED_DOSE = 241_597_103.9
HAND_FACTOR = 3.000864e-4
CT_SMALL = Path(get_testdata_file("CT_small.dcm"))  # ships with pydicom


def test_factor_matches_the_hand_computation() -> None:
    suv = suv_bw_factor(dict(PET_TAGS))
    assert suv.dt_s == pytest.approx(4050.0)
    assert suv.decayed_dose_bq == pytest.approx(HAND_DECAYED_DOSE, rel=1e-9)
    assert suv.factor == pytest.approx(HAND_FACTOR, rel=1e-6)


def test_dicom_pet_in_bqml_converts_to_suv(tmp_path: Path) -> None:
    path = pet_dicom(CT_SMALL, tmp_path / "pet.dcm")
    pet = read(path)
    assert (pet.modality, pet.unit) == ("PT", "BQML")  # read as what it is, never as SUV
    stored = pydicom.dcmread(path).pixel_array
    assert pet.array[0, 100] == stored[0, 100] * PET_SLOPE == 250.0
    suv = to_suv_bw(pet)
    assert suv.unit == "SUV"
    assert suv.array[0, 100] == pytest.approx(250.0 * HAND_FACTOR, rel=1e-6)  # 0.0750216
    np.testing.assert_allclose(suv.array, pet.array * HAND_FACTOR, rtol=1e-6)
    assert "SUVbw" in suv.metadata["derivation_notes"][-1]


@pytest.mark.parametrize(
    "drop, named",
    [
        (("PatientWeight",), "PatientWeight"),
        (("RadionuclideTotalDose",), "RadionuclideTotalDose"),
        (("RadionuclideHalfLife",), "RadionuclideHalfLife"),
        (("RadiopharmaceuticalStartTime",), "RadiopharmaceuticalStartTime"),
        (("SeriesTime", "AcquisitionTime"), "SeriesTime or AcquisitionTime"),
    ],
)
def test_missing_tags_are_refused(tmp_path: Path, drop: tuple[str, ...], named: str) -> None:
    pet = read(pet_dicom(CT_SMALL, tmp_path / "pet.dcm", drop=drop))
    assert pet.unit == "BQML"
    with pytest.raises(ValueError, match=f"cannot convert the PET.*missing or zero.*{named}"):
        to_suv_bw(pet)


def test_only_bqml_is_converted() -> None:
    with pytest.raises(ValueError, match="only a PET in Bq/mL"):
        to_suv_bw(Volume(np.ones((4, 4)), (4.0, 4.0), "PT", "counts"))


def test_decay_reference_time() -> None:
    earlier = {**PET_TAGS, "AcquisitionTime": "101730"}  # acquired before the series time
    assert suv_bw_factor(earlier).dt_s == pytest.approx(3750.0)
    admin = {**PET_TAGS, "DecayCorrection": "ADMIN"}  # already corrected to the injection
    assert suv_bw_factor(admin).factor == pytest.approx(72500 / 3.7e8)
    overnight = {**PET_TAGS, "SeriesDate": None, "RadiopharmaceuticalStartTime": "235000"}
    overnight |= {"SeriesTime": "005000", "AcquisitionTime": None}
    assert suv_bw_factor(overnight).dt_s == pytest.approx(3600.0)
    with pytest.raises(ValueError, match="DecayCorrection is 'NONE'"):
        suv_bw_factor({**PET_TAGS, "DecayCorrection": "NONE"})


def test_counts_are_never_written_as_suv(tmp_path: Path) -> None:
    from medsr.io.dicom_write import write_dicom

    pet = Volume(np.ones((4, 4)) * 7, (4.0, 4.0), "PT", "counts")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = pydicom.dcmread(write_dicom(pet, tmp_path / "pet.dcm"))
    assert ds.Units == "CNTS"
