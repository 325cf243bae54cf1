from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from medsr.data.public.tcia_ldct import TciaLdctPairs, index_tcia_ldct
from medsr.data.splits import split_by_source

TEMPLATE = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
LOW_OFFSET = 10  # stored low-dose pixels = full-dose pixels + 10, so alignment is checkable
Z = [-20.0, -17.5, -15.0, -12.5]


def write_series(
    folder: Path,
    patient: str,
    description: str,
    dose: str,
    z: list[float] = Z,
    suffix: str = ".dcm",
) -> None:
    series = generate_uid()
    pixels = TEMPLATE.pixel_array.astype(np.int16)
    for k, position in enumerate(z):
        ds = copy.deepcopy(TEMPLATE)
        ds.PatientID, ds.SeriesInstanceUID, ds.SeriesDescription = patient, series, description
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.ImagePositionPatient = [-158.1, -179.0, position]
        ds.SliceThickness = 1.0
        ds.PixelData = (pixels + (LOW_OFFSET if dose == "low" else 0) + k).tobytes()
        folder.mkdir(parents=True, exist_ok=True)
        # Names run opposite to z so the reader must sort by position, not by name.
        ds.save_as(folder / f"1-{len(z) - k:03d}{suffix}")


def tcia_patient(
    root: Path,
    patient: str,
    low_name: str = "1.000000-Low Dose Images-39882",
    low_z: list[float] = Z,
) -> None:
    study = root / "LDCT-and-Projection-data" / patient / "08-23-2018-NA-NA-12345"
    write_series(study / "1.000000-Full dose images-34040", patient, "Full dose images", "full")
    write_series(study / low_name, patient, "Low dose images", "low", low_z)


def test_pairs_per_patient_matched_on_z(tmp_path: Path) -> None:
    tcia_patient(tmp_path, "L067")
    tcia_patient(tmp_path, "C001")
    pairs = index_tcia_ldct(tmp_path)
    assert [(p.patient_id, p.dose_fraction) for p in pairs] == [("C001", 0.10), ("L067", 0.25)]
    pair = pairs[1]
    assert [s.z_mm for s in pair.slices] == sorted(Z)
    assert all(s.low.name == s.full.name for s in pair.slices)
    assert pair.full.dose == "full" and pair.low.dose == "low"
    low, full = pair.load_slice(0)
    assert low.shape == full.shape == (128, 128)
    assert np.array_equal(low.array - full.array, np.full((128, 128), LOW_OFFSET, np.float32))


def test_series_known_by_description_and_aapm_folders(tmp_path: Path) -> None:
    generic = tmp_path / "N012" / "study"
    write_series(generic / "series-a", "N012", "Full Dose Images", "full")
    write_series(generic / "series-b", "N012", "QUARTER DOSE images", "low")
    write_series(generic / "series-c", "N012", "Full Dose Projections", "full")
    aapm = tmp_path / "L096"
    write_series(aapm / "full_1mm", "L096", "", "full", suffix=".IMA")
    write_series(aapm / "quarter_1mm", "L096", "", "low", suffix=".IMA")
    pairs = {p.patient_id: p for p in index_tcia_ldct(tmp_path)}
    assert pairs["N012"].dose_fraction == 0.25 and pairs["N012"].full.folder.name == "series-a"
    assert pairs["L096"].dose_fraction == 0.25 and pairs["L096"].low.folder.name == "quarter_1mm"


def test_patient_with_one_series_is_an_error(tmp_path: Path) -> None:
    tcia_patient(tmp_path, "L067")
    only = tmp_path / "LDCT-and-Projection-data" / "L109" / "study" / "1.000000-Full dose images-1"
    write_series(only, "L109", "Full dose images", "full")
    with pytest.raises(ValueError, match="patient L109 .* has only full-dose image series"):
        index_tcia_ldct(tmp_path)


def test_slice_positions_must_match_within_tolerance(tmp_path: Path) -> None:
    shifted = [z + 0.2 if k == 2 else z for k, z in enumerate(Z)]
    tcia_patient(tmp_path, "L067", low_z=shifted)
    with pytest.raises(ValueError, match="1 slice position.*more than 0.05 mm.*-15.0"):
        index_tcia_ldct(tmp_path)
    assert len(index_tcia_ldct(tmp_path, z_tolerance_mm=0.25)[0].slices) == 4


def test_slice_counts_must_match(tmp_path: Path) -> None:
    tcia_patient(tmp_path, "L067", low_z=Z[:3])
    with pytest.raises(ValueError, match="3 low-dose vs 4 full-dose slices"):
        index_tcia_ldct(tmp_path)


def test_pairs_dataset_gives_aligned_reproducible_patches(tmp_path: Path) -> None:
    tcia_patient(tmp_path, "L067")
    tcia_patient(tmp_path, "N001")
    pairs = index_tcia_ldct(tmp_path)
    data = TciaLdctPairs(pairs, patch_size=32, num_samples=16, seed=3)
    ops = set()
    for i in range(len(data)):
        item = data[i]
        assert item["low"].shape == item["high"].shape == (1, 32, 32)
        # Same crop, same flips: the difference is the known offset everywhere.
        assert torch.equal(item["low"] - item["high"], torch.full((1, 32, 32), float(LOW_OFFSET)))
        assert float((item["high"] > -500).float().mean()) > 0.5
        assert item["params"]["dose_fraction"] == 0.25
        ops.add(item["params"]["augment"])
    assert len(ops) >= 3
    assert torch.equal(data[5]["high"], data[5]["high"])
    again = TciaLdctPairs(pairs, patch_size=32, num_samples=16, seed=3)
    assert torch.equal(again[5]["high"], data[5]["high"])
    data.set_epoch(1)
    assert not torch.equal(again[5]["high"], data[5]["high"])


def test_split_pairs_by_patient(tmp_path: Path) -> None:
    for patient in ("L067", "L096", "C001"):
        tcia_patient(tmp_path, patient)
    pairs = index_tcia_ldct(tmp_path)
    split = split_by_source(pairs, lambda p: p.patient_id, (0.34, 0.33, 0.33))
    everyone = split.train_sources + split.validation_sources + split.test_sources
    assert sorted(map(str, everyone)) == ["C001", "L067", "L096"]
    assert TciaLdctPairs(split.train, 16).source_ids == list(split.train_sources)
