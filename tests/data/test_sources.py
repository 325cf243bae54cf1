"""`data.sources` kinds (`medsr.data.sources`) on tiny fabricated copies of each public
dataset's layout, built by the fixtures of tests/data/public."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from medsr.data.sources import LidcSource, TciaLdctSource, rescaled, source_from_dict
from medsr.image import Volume
from tests.data.public.test_chestxray14 import build as chestxray14_layout
from tests.data.public.test_lidc import classic_tree
from tests.data.public.test_tcia_ldct import LOW_OFFSET, tcia_patient


def chestxray14_tree(root: Path, size: int = 64) -> Path:
    """The ChestX-ray14 layout of the reader's tests (patients 1-3 on the official train_val
    list, image 3 missing on disk; 4-5 on test_list.txt), with `size`^2 noise images."""
    chestxray14_layout(root)
    for k, png in enumerate(sorted(root.glob("images_*/images/*.png"))):
        pixels = np.random.default_rng(k).integers(0, 256, (size, size), dtype=np.uint8)
        Image.fromarray(pixels).save(png)
    return root


def ids(volumes: list[Any]) -> set[str]:
    return {v.metadata["source_id"] for v in volumes}


def test_chestxray14_trains_and_validates_on_train_val_patients_only(tmp_path: Path) -> None:
    root = chestxray14_tree(tmp_path)
    entry = {"kind": "chestxray14", "path": str(root), "validation_fraction": 0.5}
    images = source_from_dict({**entry, "scales": [1.0, 0.5]}).read()
    train, validation = ids(images.train), ids(images.validation)
    assert train | validation == {"00000001", "00000002"}  # 4 and 5 are the official test
    assert len(train) == len(validation) == 1
    assert all(v.modality == "DX" for v in images.train + images.validation)
    per_patient = 2 if "00000001" in train else 1
    shapes = sorted([(32, 32), (64, 64)] * per_patient)  # scales 0.5 and 1
    assert sorted(v.shape for v in images.train) == shapes
    full = next(v for v in images.train if v.shape == (64, 64))
    assert full.spacing == pytest.approx((0.143 * 2048 / 64, 0.143 * 2500 / 64))
    assert "official patient-wise lists" in images.statement
    assert "test patients are never read" in images.statement


def mean_step(image: np.ndarray) -> float:
    """The mean absolute difference of horizontal neighbours."""
    return float(np.abs(np.diff(image, axis=1)).mean())


def test_a_scale_above_1_is_the_image_bicubic_upsampled_smoother_per_pixel() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((32, 40)).astype(np.float32)
    volume = Volume(image, (0.5, 0.5), "DX", "")
    up = rescaled(volume, 1.5)
    assert up.shape == (48, 60) and up.spacing == pytest.approx((1 / 3, 1 / 3))
    assert up.metadata["rescaled_by"] == 1.5
    assert abs(float(up.array.mean()) - float(image.mean())) < 0.01
    # neighbours are closer than in the white-noise original: smoother per pixel
    assert mean_step(up.array) < 0.8 * mean_step(image)
    down = rescaled(volume, 0.5)
    assert down.shape == (16, 20) and down.spacing == pytest.approx((1.0, 1.0))


def test_lidc_reads_the_ct_series_of_train_and_validation_patients(tmp_path: Path) -> None:
    classic_tree(tmp_path)  # CT of LIDC-IDRI-0001..0003 (3, 4, 2 slices) and one CR
    entry = {"kind": "lidc-idri", "path": str(tmp_path)}
    source = source_from_dict({**entry, "validation_fraction": 0.34, "test_fraction": 0.33})
    assert isinstance(source, LidcSource)
    images = source.read()
    train, validation = ids(images.train), ids(images.validation)
    assert len(train) == len(validation) == 1 and not train & validation
    assert all(v.is_volume and v.unit == "HU" for v in images.train + images.validation)
    assert "test 1 patient(s) / 1 items" in images.statement
    limited = replace(source, limit=2, validation_fraction=0.5, test_fraction=0.0).read()
    assert ids(limited.train) | ids(limited.validation) == {"LIDC-IDRI-0001", "LIDC-IDRI-0002"}


def test_tcia_ldct_real_pairs_and_full_dose_volumes(tmp_path: Path) -> None:
    for patient in ("L067", "L096", "C001"):
        tcia_patient(tmp_path, patient)
    entry = {"kind": "tcia-ldct", "path": str(tmp_path), "validation_fraction": 0.34}
    source = source_from_dict({**entry, "test_fraction": 0.33})
    assert isinstance(source, TciaLdctSource) and source.use == "real-pairs"
    split, statement = source.split()
    patients = [{p.patient_id for p in s} for s in (split.train, split.validation, split.test)]
    assert [len(p) for p in patients] == [1, 1, 1]
    assert "TCIA LDCT" in statement and "never read" in statement
    with pytest.raises(ValueError, match="slice pairs, not images"):
        source.read()
    full = replace(source, use="full-dose").read()
    assert ids(full.train) == patients[0] and ids(full.validation) == patients[1]
    volume, pair = full.train[0], split.train[0]
    assert volume.shape == (4, 128, 128) and volume.unit == "HU"
    low, high = pair.load_slice(0)
    assert np.array_equal(volume.array[0], high.array)  # the full-dose series, sorted by z
    assert np.array_equal(low.array - volume.array[0], np.full((128, 128), LOW_OFFSET))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "nih", "path": "x"}, "known: image-folder, chestxray14, lidc-idri, tcia-ldct"),
        ({"kind": "lidc-idri", "path": "x", "holdout": 3}, r"takes no \['holdout'\]"),
        ({"kind": "chestxray14"}, "needs a path"),
        ({"kind": "chestxray14", "path": "x", "scales": [2.5]}, r"scales must be in \(0, 2\]"),
        (
            {"kind": "lidc-idri", "path": "x", "validation_fraction": 0.6, "test_fraction": 0.5},
            "sum < 1",
        ),
        ({"kind": "tcia-ldct", "path": "x", "use": "both"}, "real-pairs or full-dose"),
        ({"kind": "tcia-ldct", "path": "x", "limit": 0}, "limit must be >= 1"),
    ],
)
def test_bad_entries_name_the_problem(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        source_from_dict(entry)
