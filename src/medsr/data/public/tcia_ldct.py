"""Real low-dose / full-dose CT pairs from a local copy of TCIA LDCT-and-Projection-data (Mayo).

Layout: patient folders (`L067`, `C001`, `N012`, ...) anywhere up to three levels below the
root, each holding reconstructed image series in folders such as
`1.000000-Full dose images-34040` and `1.000000-Low Dose Images-39882` (or the AAPM
challenge's `full_1mm` / `quarter_1mm`). A series is full or low dose by its folder name, else
by its SeriesDescription ("full dose" vs "low dose" / "quarter dose", any case); projection
series are skipped. Full and low series of one patient are paired by slice thickness and
matched slice by slice on ImagePositionPatient z within `z_tolerance_mm`.

Dose fraction: "quarter" names give 0.25; TCIA "Low Dose" is 25 % for head (N) and abdomen (L)
patients and 10 % for chest (C) patients (the collection's description); else None.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from torch.utils.data import Dataset

from medsr.data.datasets import (
    CT_AIR_THRESHOLD_HU,
    Item,
    Normalize,
    PatchSamplingError,
    item_generator,
)
from medsr.image import NUM_DIHEDRAL, Volume, dihedral

PATIENT_PATTERN = re.compile(r"^[A-Z]\d{3}$")
FULL_PATTERN = re.compile(r"full[\s_-]*dose|^full_", re.IGNORECASE)
LOW_PATTERN = re.compile(r"(low|quarter)[\s_-]*dose|^quarter_", re.IGNORECASE)
DOSE_BY_PATIENT_PREFIX = {"L": 0.25, "N": 0.25, "C": 0.10}
DEFAULT_Z_TOLERANCE_MM = 0.05
_TAGS = ["ImagePositionPatient", "SeriesDescription", "SliceThickness", "SeriesInstanceUID"]


@dataclass(frozen=True)
class LdctSeries:
    """One reconstructed series: files sorted by z (mm), ascending."""

    folder: Path
    description: str
    dose: str  # "full" or "low"
    slice_thickness_mm: float | None
    files: tuple[Path, ...]
    z_mm: tuple[float, ...]


@dataclass(frozen=True)
class SlicePair:
    z_mm: float
    low: Path
    full: Path


@dataclass(frozen=True)
class LdctPair:
    """A patient's low-dose and full-dose series, matched slice by slice."""

    patient_id: str
    low: LdctSeries
    full: LdctSeries
    dose_fraction: float | None
    slices: tuple[SlicePair, ...]

    def load_slice(self, k: int) -> tuple[Volume, Volume]:
        """`(low, full)` 2-D images of slice `k`, in HU."""
        from medsr.io import read

        return read(self.slices[k].low), read(self.slices[k].full)


def _patient_folders(root: Path) -> list[Path]:
    found = [root] if PATIENT_PATTERN.match(root.name) else []
    for pattern in ("*", "*/*", "*/*/*"):
        found += [p for p in root.glob(pattern) if p.is_dir() and PATIENT_PATTERN.match(p.name)]
    return sorted(set(found))


def _dose_of(text: str) -> str | None:
    if "projection" in text.lower():
        return None
    if LOW_PATTERN.search(text):
        return "low"
    return "full" if FULL_PATTERN.search(text) else None


def _read_series(folder: Path, files: list[Path]) -> LdctSeries | None:
    if "projection" in folder.name.lower():
        return None
    first = pydicom.dcmread(files[0], stop_before_pixels=True, specific_tags=_TAGS)
    description = str(first.get("SeriesDescription", ""))
    dose = _dose_of(folder.name) or _dose_of(description)
    if dose is None or "projection" in description.lower():
        return None
    headers = [first]
    headers += [pydicom.dcmread(f, stop_before_pixels=True, specific_tags=_TAGS) for f in files[1:]]
    missing = [
        f.name for f, h in zip(files, headers, strict=True) if "ImagePositionPatient" not in h
    ]
    if missing:
        raise ValueError(
            f"{folder}: {len(missing)} file(s) lack ImagePositionPatient: {missing[:5]}"
        )
    z = [float(h.ImagePositionPatient[2]) for h in headers]
    order = np.argsort(z, kind="stable")
    thickness = headers[0].get("SliceThickness")
    return LdctSeries(
        folder=folder,
        description=description,
        dose=dose,
        slice_thickness_mm=float(thickness) if thickness not in (None, "") else None,
        files=tuple(files[i] for i in order),
        z_mm=tuple(z[i] for i in order),
    )


def _dose_fraction(patient_id: str, low: LdctSeries) -> float | None:
    if "quarter" in f"{low.folder.name} {low.description}".lower():
        return 0.25
    return DOSE_BY_PATIENT_PREFIX.get(patient_id[:1].upper())


def _match(patient_id: str, low: LdctSeries, full: LdctSeries, tolerance: float) -> LdctPair:
    where = f"patient {patient_id} ({low.folder.name} vs {full.folder.name})"
    if len(low.files) != len(full.files):
        raise ValueError(
            f"{where}: {len(low.files)} low-dose vs {len(full.files)} full-dose slices"
        )
    gaps = np.abs(np.asarray(low.z_mm) - np.asarray(full.z_mm))
    bad = np.flatnonzero(gaps > tolerance)
    if bad.size:
        k = int(bad[0])
        raise ValueError(
            f"{where}: {bad.size} slice position(s) differ by more than {tolerance} mm, "
            f"first at sorted slice {k}: low z={low.z_mm[k]} mm, full z={full.z_mm[k]} mm"
        )
    slices = tuple(
        SlicePair(f, lo, fu) for f, lo, fu in zip(full.z_mm, low.files, full.files, strict=True)
    )
    return LdctPair(patient_id, low, full, _dose_fraction(patient_id, low), slices)


def _pair_patient(patient: Path, tolerance: float) -> list[LdctPair]:
    series: list[LdctSeries] = []
    for dirpath, _, names in os.walk(patient):
        files = sorted(Path(dirpath) / n for n in names if n.lower().endswith((".dcm", ".ima")))
        found = _read_series(Path(dirpath), files) if files else None
        if found is not None:
            series.append(found)
    lows = [s for s in series if s.dose == "low"]
    fulls = [s for s in series if s.dose == "full"]
    if not lows or not fulls:
        have = "only low-dose" if lows else "only full-dose" if fulls else "no dose-labelled"
        raise ValueError(f"patient {patient.name} at {patient} has {have} image series")
    if len(lows) == 1 and len(fulls) == 1:
        return [_match(patient.name, lows[0], fulls[0], tolerance)]
    pairs = []
    for low in lows:  # several thicknesses (e.g. 1 mm and 3 mm): pair equal thicknesses
        same = [f for f in fulls if f.slice_thickness_mm == low.slice_thickness_mm]
        if len(same) != 1:
            raise ValueError(
                f"patient {patient.name}: {len(same)} full-dose series with the slice thickness "
                f"{low.slice_thickness_mm} mm of {low.folder.name}; expected exactly one"
            )
        pairs.append(_match(patient.name, low, same[0], tolerance))
    return pairs


def index_tcia_ldct(
    root: str | Path, z_tolerance_mm: float = DEFAULT_Z_TOLERANCE_MM
) -> list[LdctPair]:
    """Paired low/full-dose series of every patient under `root` (headers only).

    Raises `ValueError` for a patient with only one of the two series or with slice positions
    that do not match within `z_tolerance_mm`.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"LDCT folder not found: {root}")
    if not z_tolerance_mm >= 0:
        raise ValueError(f"z_tolerance_mm must be >= 0, got {z_tolerance_mm}")
    patients = _patient_folders(root)
    if not patients:
        raise ValueError(f"no patient folders (e.g. L067, C001, N012) found under {root}")
    return [pair for patient in patients for pair in _pair_patient(patient, z_tolerance_mm)]


class TciaLdctPairs(Dataset[Item]):
    """Aligned real low/full-dose patches `(1, p, p)` in HU (or `normalize`d), `num_samples`
    per epoch, reproducible per `(seed, epoch, index)` like `OnTheFlyPairs`.

    A slice pair is drawn uniformly, then positions until more than `min_foreground` of the
    full-dose patch is above `threshold_hu`; `max_retries` positions in all, then
    `PatchSamplingError`. The last `cache_slices` slices read are kept in memory.
    """

    def __init__(
        self,
        pairs: Sequence[LdctPair],
        patch_size: int = 64,
        num_samples: int = 1000,
        seed: int = 0,
        min_foreground: float = 0.5,
        threshold_hu: float = CT_AIR_THRESHOLD_HU,
        augment: bool = True,
        normalize: Normalize | None = None,
        max_retries: int = 100,
        cache_slices: int = 8,
    ) -> None:
        if patch_size < 1 or num_samples < 1 or max_retries < 1:
            raise ValueError(
                f"patch_size, num_samples, max_retries must be >= 1: "
                f"{patch_size}, {num_samples}, {max_retries}"
            )
        if not pairs:
            raise ValueError("pairs is empty")
        self.pairs, self.patch_size, self.num_samples = list(pairs), patch_size, num_samples
        self.seed, self.epoch, self.min_foreground = seed, 0, min_foreground
        self.threshold_hu, self.augment, self.normalize = threshold_hu, augment, normalize
        self.max_retries, self.cache_slices = max_retries, cache_slices
        self.slice_index = [(i, k) for i, p in enumerate(self.pairs) for k in range(len(p.slices))]
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def source_ids(self) -> list[str]:
        return [p.patient_id for p in self.pairs]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def _slice(self, i: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        key = (i, k)
        if key not in self._cache:
            low, full = self.pairs[i].load_slice(k)
            if low.shape != full.shape:
                raise ValueError(f"{self.pairs[i].slices[k]}: shapes {low.shape} != {full.shape}")
            while len(self._cache) >= max(1, self.cache_slices):
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (low.array, full.array)
        return self._cache[key]

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        g, p = item_generator(self.seed, self.epoch, index), self.patch_size
        for attempt in range(self.max_retries):
            if attempt % 10 == 0:  # a new slice every 10 positions: some slices are mostly air
                entry = int(torch.randint(0, len(self.slice_index), (1,), generator=g))
                i, k = self.slice_index[entry]
                low, full = self._slice(i, k)
                if min(full.shape) < p:
                    raise ValueError(f"slice {full.shape} smaller than patch_size {p}")
            row = int(torch.randint(0, full.shape[0] - p + 1, (1,), generator=g))
            col = int(torch.randint(0, full.shape[1] - p + 1, (1,), generator=g))
            patch = full[row : row + p, col : col + p]
            if np.count_nonzero(patch > self.threshold_hu) > self.min_foreground * p * p:
                break
        else:
            raise PatchSamplingError(
                f"no {p}x{p} patch with more than {self.min_foreground:.0%} above "
                f"{self.threshold_hu} HU in {self.max_retries} draws"
            )
        op = int(torch.randint(0, NUM_DIHEDRAL, (1,), generator=g)) if self.augment else 0
        low_t = dihedral(torch.tensor(low[row : row + p, col : col + p])[None], op)
        high_t = dihedral(torch.tensor(patch)[None], op)
        if self.normalize is not None:
            low_t, high_t = self.normalize(low_t), self.normalize(high_t)
        pair, sl = self.pairs[i], self.pairs[i].slices[k]
        params: dict[str, Any] = {
            "patient": pair.patient_id,
            "dose_fraction": pair.dose_fraction,
            "z_mm": sl.z_mm,
            "low_path": str(sl.low),
            "high_path": str(sl.full),
            "slice": k,
            "row": row,
            "col": col,
            "size": p,
            "augment": op,
            "epoch": self.epoch,
            "index": index,
        }
        return {"low": low_t.contiguous(), "high": high_t.contiguous(), "params": params}
