from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsr.data.public.chestxray14 import index_chestxray14

HEADER_2017 = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"
)
# (image, labels, follow-up, patient, view); patients 1-3 official train_val, 4-5 test.
ROWS = [
    ("00000001_000.png", "Cardiomegaly", 0, 1, "PA"),
    ("00000001_001.png", "Cardiomegaly|Emphysema", 1, 1, "PA"),
    ("00000002_000.png", "No Finding", 0, 2, "AP"),
    ("00000003_000.png", "Hernia", 0, 3, "PA"),
    ("00000004_000.png", "No Finding", 0, 4, "PA"),
    ("00000004_001.png", "Mass", 1, 4, "AP"),
    ("00000005_000.png", "No Finding", 0, 5, "PA"),
]
MISSING = {"00000003_000.png"}


def build(root: Path, v2020: bool = False, lists: bool = True) -> None:
    for n, (name, *_) in enumerate(ROWS):
        if name in MISSING:
            continue
        folder = root / f"images_{1 + n % 2:03d}" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 20), 10 * n, np.uint8)).save(folder / name)
    lines = [HEADER_2017.rstrip(",") if v2020 else HEADER_2017]
    for name, labels, follow, patient, view in ROWS:
        age = str(40 + patient) if v2020 else f"{40 + patient:03d}Y"
        lines.append(f"{name},{labels},{follow},{patient},{age},M,{view},2500,2048,0.143,0.143,")
    csv_name = "Data_Entry_2017_v2020.csv" if v2020 else "Data_Entry_2017.csv"
    (root / csv_name).write_text("\n".join(lines) + "\n")
    if lists:
        names = [r[0] for r in ROWS]
        (root / "train_val_list.txt").write_text("\n".join(n for n in names if n < "00000004"))
        (root / "test_list.txt").write_text("\n".join(n for n in names if n >= "00000004"))


@pytest.mark.parametrize("v2020", [False, True])
def test_index_reads_records_and_reports_missing(tmp_path: Path, v2020: bool) -> None:
    build(tmp_path, v2020=v2020)
    index = index_chestxray14(tmp_path)
    assert [r.image_index for r in index.records] == [r[0] for r in ROWS if r[0] not in MISSING]
    assert index.missing == ["00000003_000.png"]
    assert "1 images listed in the CSV are missing on disk" in index.describe()
    second = index.records[1]
    assert second.patient_id == 1 and second.follow_up == 1 and second.view == "PA"
    assert second.labels == ("Cardiomegaly", "Emphysema")
    assert second.age_years == 41
    assert second.original_size == (2500, 2048)
    assert second.original_pixel_spacing == (0.143, 0.143)
    assert second.path is not None and second.path.parent.parent.name == "images_002"
    assert index.patients == [1, 2, 4, 5]


def test_load_rescales_spacing_to_the_png_grid(tmp_path: Path) -> None:
    build(tmp_path)
    image = index_chestxray14(tmp_path).records[0].load()
    assert image.shape == (16, 20)
    assert image.modality == "DX"
    assert image.spacing == pytest.approx((0.143 * 2048 / 16, 0.143 * 2500 / 20))
    assert image.metadata["patient_id"] == 1


def test_official_lists_give_the_test_set_and_a_patient_split(tmp_path: Path) -> None:
    build(tmp_path)
    split = index_chestxray14(tmp_path).split(validation_fraction=0.34, seed=0)
    assert sorted(r.image_index for r in split.test) == [
        "00000004_000.png",
        "00000004_001.png",
        "00000005_000.png",
    ]
    assert split.test_sources == (4, 5)
    train = {r.patient_id for r in split.train}
    validation = {r.patient_id for r in split.validation}
    assert train and validation and not train & validation
    assert train | validation == {1, 2}
    assert "official patient-wise lists" in split.describe()


def test_official_lists_sharing_a_patient_raise(tmp_path: Path) -> None:
    build(tmp_path)
    (tmp_path / "test_list.txt").write_text("00000001_001.png\n00000005_000.png\n")
    (tmp_path / "train_val_list.txt").write_text(
        "00000001_000.png\n00000002_000.png\n00000004_000.png\n00000004_001.png\n"
    )
    with pytest.raises(ValueError, match="both train_val and test: 1"):
        index_chestxray14(tmp_path).split()


def test_without_lists_split_is_by_patient(tmp_path: Path) -> None:
    build(tmp_path, lists=False)
    index = index_chestxray14(tmp_path)
    assert index.official_test is None
    split = index.split(fractions=(0.5, 0.25, 0.25), seed=2)
    groups = [{r.patient_id for r in s} for s in (split.train, split.validation, split.test)]
    assert [len(g) for g in groups] == [2, 1, 1]
    assert len(set().union(*groups)) == 4
    assert sum(len(s) for s in (split.train, split.validation, split.test)) == 6


def test_missing_csv_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Data_Entry_2017"):
        index_chestxray14(tmp_path)
