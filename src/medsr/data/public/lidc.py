"""Index a local copy of LIDC-IDRI (TCIA) by patient and series; nothing is downloaded.

Layouts understood (the root may be any of the folders shown, or one above them):

    LIDC-IDRI/LIDC-IDRI-0001/<study folder>/<series folder>/*.dcm  (+ annotation *.xml)
    manifest-<id>/metadata.csv + manifest-<id>/LIDC-IDRI/LIDC-IDRI-0001/...  (newer TCIA)

Each series folder is described from one DICOM header read with `stop_before_pixels`, or
from `metadata.csv` when present (series it lists but that are absent on disk are reported
in `LidcIndex.missing`). XML annotations and other non-DICOM files are ignored. Pixels load
lazily with `LidcSeries.load()` (`medsr.io.read` on the series folder).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from medsr.data.splits import Split, split_by_source
from medsr.image import Volume

PATIENT_PATTERN = re.compile(r"^LIDC-IDRI-\d{4}$")
RADIOGRAPH_MODALITIES = ("CR", "DX")
_HEADER_TAGS = [
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesDescription",
]


@dataclass(frozen=True)
class LidcSeries:
    """One image series of one LIDC-IDRI patient."""

    patient_id: str
    series_uid: str
    study_uid: str
    modality: str
    num_slices: int
    folder: Path
    description: str = ""

    def load(self) -> Volume:
        """The series as a `Volume` (HU for CT), read with `medsr.io.read`."""
        from medsr.io import read

        return read(self.folder)


@dataclass
class LidcIndex:
    """CT series, radiograph (CR/DX) series and other series found under `root`."""

    root: Path
    ct: list[LidcSeries] = field(default_factory=list)
    radiographs: list[LidcSeries] = field(default_factory=list)
    other: list[LidcSeries] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def patients(self) -> list[str]:
        """Patients with at least one CT series, sorted."""
        return sorted({s.patient_id for s in self.ct})

    def ct_by_patient(self) -> dict[str, list[LidcSeries]]:
        grouped: dict[str, list[LidcSeries]] = {}
        for series in self.ct:
            grouped.setdefault(series.patient_id, []).append(series)
        return grouped

    def describe(self) -> str:
        text = (
            f"LIDC-IDRI at {self.root}: {len(self.ct)} CT series of {len(self.patients)} "
            f"patients ({sum(s.num_slices for s in self.ct)} slices), "
            f"{len(self.radiographs)} radiograph series, {len(self.other)} other series"
        )
        if self.missing:
            text += f"; {len(self.missing)} series listed in metadata.csv are missing on disk"
        return text

    def split(
        self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
    ) -> Split[LidcSeries]:
        """CT series split by patient: no patient has series in two subsets."""
        return split_by_source(self.ct, lambda s: s.patient_id, fractions, seed)


def _patient_folders(root: Path) -> list[Path]:
    found = [root] if PATIENT_PATTERN.match(root.name) else []
    for pattern in ("LIDC-IDRI-*", "*/LIDC-IDRI-*", "*/*/LIDC-IDRI-*"):
        found += [p for p in root.glob(pattern) if p.is_dir() and PATIENT_PATTERN.match(p.name)]
    return sorted(set(found))


def _series_folders(patient: Path) -> dict[Path, int]:
    """Folders holding `*.dcm` files, with their file count."""
    folders: dict[Path, int] = {}
    for dirpath, _, filenames in os.walk(patient):
        count = sum(1 for f in filenames if f.lower().endswith(".dcm"))
        if count:
            folders[Path(dirpath)] = count
    return folders


def _metadata_rows(root: Path) -> dict[Path, dict[str, str]]:
    """`metadata.csv` rows keyed by the resolved series folder they name."""
    candidates = [root / "metadata.csv", *root.glob("manifest-*/metadata.csv")]
    if root.name == "LIDC-IDRI":
        candidates.append(root.parent / "metadata.csv")
    rows: dict[Path, dict[str, str]] = {}
    for path in candidates:
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                location = (row.get("File Location") or "").strip().replace("\\", "/")
                if location and row.get("Collection", "LIDC-IDRI").strip() == "LIDC-IDRI":
                    rows[(path.parent / location).resolve()] = row
    return rows


def _from_header(folder: Path, count: int) -> LidcSeries:
    first = min(p for p in folder.iterdir() if p.name.lower().endswith(".dcm"))
    header = pydicom.dcmread(first, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    patient = str(header.get("PatientID", "")) or next(
        (p.name for p in folder.parents if PATIENT_PATTERN.match(p.name)), folder.name
    )
    return LidcSeries(
        patient_id=patient,
        series_uid=str(header.get("SeriesInstanceUID", "")),
        study_uid=str(header.get("StudyInstanceUID", "")),
        modality=str(header.get("Modality", "")).upper(),
        num_slices=count,
        folder=folder,
        description=str(header.get("SeriesDescription", "")),
    )


def _from_row(folder: Path, count: int, row: dict[str, str]) -> LidcSeries:
    return LidcSeries(
        patient_id=row.get("Subject ID", "").strip(),
        series_uid=row.get("Series UID", "").strip(),
        study_uid=row.get("Study UID", "").strip(),
        modality=row.get("Modality", "").strip().upper(),
        num_slices=count,
        folder=folder,
        description=row.get("Series Description", "").strip(),
    )


def index_lidc(root: str | Path, use_metadata: bool = True) -> LidcIndex:
    """Index LIDC-IDRI under `root` (see the module docstring for the layouts).

    `num_slices` is the number of `*.dcm` files in the series folder. With `use_metadata`,
    series listed in a `metadata.csv` take their identifiers from it instead of a header.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"LIDC-IDRI folder not found: {root}")
    patients = _patient_folders(root)
    if not patients:
        raise ValueError(f"no LIDC-IDRI-NNNN patient folders found under {root}")
    rows = _metadata_rows(root) if use_metadata else {}
    index = LidcIndex(root=root)
    seen: set[Path] = set()
    for patient in patients:
        for folder, count in sorted(_series_folders(patient).items()):
            resolved = folder.resolve()
            seen.add(resolved)
            row = rows.get(resolved)
            series = _from_row(folder, count, row) if row else _from_header(folder, count)
            if series.modality == "CT":
                index.ct.append(series)
            elif series.modality in RADIOGRAPH_MODALITIES:
                index.radiographs.append(series)
            else:
                index.other.append(series)
    index.missing = sorted(
        f"{row.get('Subject ID', '?')} {row.get('Modality', '?')} {folder}"
        for folder, row in rows.items()
        if folder not in seen
    )
    return index
