"""Index a local copy of NIH ChestX-ray14 (112,120 frontal chest PNGs); nothing is downloaded.

Layout: `Data_Entry_2017.csv` (or `Data_Entry_2017_v2020.csv`) and the PNGs in `images/` or
`images_001/images/` ... `images_012/images/`, optionally `train_val_list.txt` and
`test_list.txt` (the official patient-wise split). Images listed in the CSV but absent on disk
are counted in `ChestXray14Index.missing`, never silently dropped.

The CSV's pixel spacing is that of the original detector image; the PNGs were resized to
1024 x 1024, so `ChestXrayRecord.load()` rescales the spacing by original size / PNG size.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from medsr.data.splits import Split, assert_disjoint_sources, split_by_source
from medsr.image import Volume

CSV_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
_COLUMNS = (
    "Image Index",
    "Finding Labels",
    "Follow-up",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
    "OriginalImage[",
    "OriginalImagePixelSpacing",
)


@dataclass(frozen=True)
class ChestXrayRecord:
    """One image of the CSV. Spacings in mm, sizes in pixels, both `(x, y)` = (column, row)
    as in the CSV; `labels` as listed (`("No Finding",)` for normal images)."""

    image_index: str
    path: Path | None
    patient_id: int
    follow_up: int
    age_years: int | None
    sex: str
    view: str
    labels: tuple[str, ...]
    original_size: tuple[int, int]
    original_pixel_spacing: tuple[float, float]

    def load(self) -> Volume:
        """The PNG as a `DX` `Volume`, with spacing `(row, column)` mm of the PNG grid."""
        from medsr.io import read

        if self.path is None:
            raise FileNotFoundError(f"{self.image_index} is listed in the CSV but not on disk")
        volume = read(self.path)
        rows, cols = volume.shape[-2:]
        width, height = self.original_size
        spacing = (
            self.original_pixel_spacing[1] * height / rows,
            self.original_pixel_spacing[0] * width / cols,
        )
        meta = {
            **volume.metadata,
            "patient_id": self.patient_id,
            "view": self.view,
            "labels": self.labels,
            "image_index": self.image_index,
        }
        return replace(volume, spacing=spacing, modality="DX", metadata=meta)


@dataclass
class ChestXray14Index:
    """Records of images present on disk, the names missing, and the official lists."""

    root: Path
    records: list[ChestXrayRecord]
    missing: list[str] = field(default_factory=list)
    official_train_val: set[str] | None = None
    official_test: set[str] | None = None

    @property
    def patients(self) -> list[int]:
        return sorted({r.patient_id for r in self.records})

    def describe(self) -> str:
        text = (
            f"ChestX-ray14 at {self.root}: {len(self.records)} images of "
            f"{len(self.patients)} patients on disk"
        )
        if self.missing:
            text += f"; {len(self.missing)} images listed in the CSV are missing on disk"
        return text

    def split(
        self,
        validation_fraction: float = 0.1,
        seed: int = 0,
        fractions: Sequence[float] = (0.7, 0.1, 0.2),
    ) -> Split[ChestXrayRecord]:
        """Patient-level split. With the official lists: test = `test_list.txt`, and the
        patients of `train_val_list.txt` split into train / validation (`validation_fraction`,
        `seed`). Without them: `fractions` of the patients. No patient is in two subsets."""
        if self.official_test is None or self.official_train_val is None:
            return split_by_source(self.records, lambda r: r.patient_id, fractions, seed)
        test_names, train_val_names = self.official_test, self.official_train_val
        listed = test_names | train_val_names
        unlisted = [r.image_index for r in self.records if r.image_index not in listed]
        if unlisted:
            raise ValueError(
                f"{len(unlisted)} images are in neither official list: {unlisted[:10]}"
            )
        test_patients = {r.patient_id for r in self.records if r.image_index in test_names}
        train_val_patients = {
            r.patient_id for r in self.records if r.image_index in train_val_names
        }
        assert_disjoint_sources(train_val=train_val_patients, test=test_patients)
        split = split_by_source(
            [r for r in self.records if r.image_index in train_val_names],
            lambda r: r.patient_id,
            (1 - validation_fraction, validation_fraction, 0.0),
            seed,
        )
        test = [r for r in self.records if r.image_index in test_names]
        statement = (
            f"ChestX-ray14 official patient-wise lists: test_list.txt {len(test_patients)} "
            f"patients / {len(test)} images; train_val_list.txt {split.describe()}"
        )
        return Split(
            split.train,
            split.validation,
            test,
            split.train_sources,
            split.validation_sources,
            tuple(sorted(test_patients)),
            statement,
        )


def _column(header: list[str], prefix: str) -> int:
    for i, name in enumerate(header):
        if name.strip().startswith(prefix):
            return i
    raise ValueError(f"column starting with {prefix!r} not in CSV header {header}")


def _age(text: str) -> int | None:
    match = re.match(r"^\s*0*(\d+)\s*([YMD]?)\s*$", text)  # 2017 CSV: "058Y"; v2020: "58"
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    return value if unit in ("", "Y") else 0


def _read_list(path: Path) -> set[str] | None:
    if not path.is_file():
        return None
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def index_chestxray14(root: str | Path) -> ChestXray14Index:
    """Read the CSV under `root`, find each image in `images*/` and the official lists."""
    root = Path(root)
    csv_path = next((root / n for n in CSV_NAMES if (root / n).is_file()), None)
    if csv_path is None:
        raise FileNotFoundError(f"none of {CSV_NAMES} found in {root}")
    folders = [
        root / "images",
        *sorted(root.glob("images_*/images")),
        *sorted(root.glob("images_*")),
    ]
    on_disk: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for png in folder.glob("*.png"):
                on_disk.setdefault(png.name, png)
    records: list[ChestXrayRecord] = []
    missing: list[str] = []
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        col = {name: _column(header, name) for name in _COLUMNS}
        for row in reader:
            if not row or not row[0].strip():
                continue
            name = row[col["Image Index"]].strip()
            path = on_disk.get(name)
            if path is None:
                missing.append(name)
                continue
            size, spacing = col["OriginalImage["], col["OriginalImagePixelSpacing"]
            labels = tuple(label for label in row[col["Finding Labels"]].split("|") if label)
            records.append(
                ChestXrayRecord(
                    image_index=name,
                    path=path,
                    patient_id=int(row[col["Patient ID"]]),
                    follow_up=int(row[col["Follow-up"]]),
                    age_years=_age(row[col["Patient Age"]]),
                    sex=row[col["Patient Gender"]].strip(),
                    view=row[col["View Position"]].strip(),
                    labels=labels,
                    original_size=(int(float(row[size])), int(float(row[size + 1]))),
                    original_pixel_spacing=(float(row[spacing]), float(row[spacing + 1])),
                )
            )
    return ChestXray14Index(
        root=root,
        records=records,
        missing=missing,
        official_train_val=_read_list(root / "train_val_list.txt"),
        official_test=_read_list(root / "test_list.txt"),
    )
