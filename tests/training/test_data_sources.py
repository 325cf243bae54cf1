"""Training on a downloaded public dataset: `data.sources` of each kind through `build_data`
(and one short `train` on real TCIA low/full-dose pairs), on tiny fabricated layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from medsr.training.config import TrainConfig, config_from_dict
from medsr.training.data import build_data
from medsr.training.loop import train
from tests.data.public.test_lidc import classic_tree
from tests.data.public.test_tcia_ldct import LOW_OFFSET, tcia_patient
from tests.data.test_sources import chestxray14_tree

MODEL = {"name": "srresnet", "num_features": 8, "num_blocks": 1, "global_residual": True}


def config(source: dict[str, Any], *overrides: str, **data: Any) -> TrainConfig:
    base = {
        "num_threads": 1,
        "data": {
            "samples": [],
            "split": "source",
            "sources": [source],
            "patch_size": 16,
            "num_validation": 4,
            **data,
        },
        "model": MODEL,
        "training": {"batch_size": 2, "max_steps": 2, "warmup_steps": 0},
        "intervals": {
            "log_every": 1,
            "validate_every": 2,
            "sample_every": 2,
            "checkpoint_every": 2,
        },
    }
    return config_from_dict(base, list(overrides))


def build(settings: TrainConfig) -> Any:
    return build_data(settings.data, settings.normalization, seed=0, items_per_step=4)


def test_chestxray14_folder_trains_a_radiograph_model(tmp_path: Path) -> None:
    source = {"kind": "chestxray14", "path": str(chestxray14_tree(tmp_path))}
    settings = config(
        {**source, "validation_fraction": 0.5, "scales": [0.5, 1.0]},
        "normalization.kind=percentile",
        "evaluation.window=null",
        task="x2",
        scale=2,
    )
    data = build(settings)
    item = data.train[0]
    assert item["low"].shape == (1, 8, 8) and item["high"].shape == (1, 16, 16)
    assert data.validation_high.shape == (4, 1, 16, 16) and data.unit == "[0, 1]"
    assert data.split.startswith("split by source: ChestX-ray14 at ")
    assert "also train" not in data.split  # the patients are the source's, not named samples


def test_lidc_folder_trains_a_ct_model(tmp_path: Path) -> None:
    classic_tree(tmp_path)
    source = {"kind": "lidc-idri", "path": str(tmp_path), "validation_fraction": 0.34}
    data = build(config({**source, "test_fraction": 0.33}, task="x2", scale=2, patch_size=32))
    assert data.train[0]["high"].shape == (1, 32, 32) and data.unit == "HU"
    sources = {data.train[i]["params"]["sample"]["source"] for i in range(len(data.train))}
    assert len(sources) == 1 and next(iter(sources)).startswith("LIDC-IDRI-")
    assert "LIDC-IDRI at" in data.split and "test 1 patient(s)" in data.split


def test_tcia_full_dose_series_feed_a_simulated_low_dose_task(tmp_path: Path) -> None:
    for patient in ("L067", "C001"):
        tcia_patient(tmp_path, patient)
    source = {"kind": "tcia-ldct", "path": str(tmp_path), "use": "full-dose"}
    settings = config(
        {**source, "validation_fraction": 0.5, "test_fraction": 0.0},
        "model.scale=4",
        task="ldct-x4",
        scale=4,
        patch_size=32,
        noise_bank_size=1,
    )
    data = build(settings)
    assert data.train[0]["low"].shape == (1, 8, 8) and "TCIA LDCT" in data.split


def test_tcia_real_pairs_train_an_ldct_model(tmp_path: Path) -> None:
    for patient in ("L067", "L096", "C001"):
        tcia_patient(tmp_path / "tcia", patient)
    source = {"kind": "tcia-ldct", "path": str(tmp_path / "tcia"), "validation_fraction": 0.34}
    settings = config(
        {**source, "test_fraction": 0.33}, "model.scale=1", task="ldct", scale=1, patch_size=32
    )
    data = build(settings)
    # real pairs: the low-dose patch is the full-dose one + the layout's offset, in model units
    offset = LOW_OFFSET / (settings.normalization.high - settings.normalization.low)
    item = data.train[0]
    assert torch.allclose(item["low"] - item["high"], torch.full((1, 32, 32), offset), atol=1e-6)
    assert torch.allclose(data.validation_low - data.validation_high, torch.tensor(offset))
    assert "TCIA LDCT" in data.split and data.unit == "HU"
    result = train(settings, tmp_path / "run")
    assert result["step"] == 2 and "TCIA LDCT" in result["split"]


def test_real_pairs_refuse_other_data_and_other_tasks(tmp_path: Path) -> None:
    source = {"kind": "tcia-ldct", "path": str(tmp_path)}
    settings = config(source, "model.scale=4", samples=["ct-small"], task="ldct-x4", scale=4)
    with pytest.raises(ValueError, match="real-pairs needs task ldct.*; no other data"):
        build(settings)


def test_thick_slabs_add_each_training_volume_reconstructed_thicker(tmp_path: Path) -> None:
    from medsr.training.data import _sources
    from tests.data.public.test_lidc import write_series

    write_series(tmp_path / "series", "P1", "CT", 5)
    settings = config(
        {}, task="x2", scale=2, folders=[str(tmp_path / "series")],
        validation_samples=["ct-small"], sources=[], thick_slabs=[2],
    )  # fmt: skip
    train, validation, _ = _sources(settings.data, settings.normalization)
    assert [s.volume.num_slices for s in train] == [5, 2] and len(validation) == 1
    assert train[1].volume.metadata["thick_slab"] == 2
    assert train[1].volume.spacing[0] == 2 * train[0].volume.spacing[0]
