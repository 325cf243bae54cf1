"""`petct` training through the usual loop: config checks, a few steps, a usable checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medsr.inference.fusion import FusionPredictor
from medsr.io import write
from medsr.training import train
from medsr.training.checkpoint import load_checkpoint
from medsr.training.config import config_from_dict
from tests.ct_phantom import body_phantom


def fusion_config(folder: str, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "tiny-fusion",
        "num_threads": 1,
        "data": {
            "samples": [],
            "folders": [folder],
            "split": "slab",
            "train_fraction": 0.8,
            "gap_slices": 1,
            "task": "petct",
            "task_overrides": {"anatomy": "body"},
            "scale": 4,
            "patch_size": 32,
            "num_validation": 4,
            "noise_bank_size": 1,
            "min_foreground": 0.3,
        },
        "normalization": {"kind": "window", "low": 0.0, "high": 10.0},
        "model": {"name": "petct-fusion", "num_features": 8, "num_blocks": 1},
        "discriminator": {"name": "vgg", "num_features": 4},
        "training": {"lr": 1e-3, "batch_size": 4, "max_steps": 4, "warmup_steps": 0},
        "intervals": {
            "log_every": 2,
            "validate_every": 2,
            "sample_every": 4,
            "checkpoint_every": 4,
        },
        "evaluation": {"window": None},
    }
    for key, value in changes.items():
        section, _, name = key.partition(".")
        config[section][name] = value
    return config


@pytest.fixture
def volume_path(tmp_path: Path) -> str:
    return str(write(body_phantom(12), tmp_path / "phantom.nii.gz"))


def test_config_pairs_petct_with_fusion_models_only(volume_path: str) -> None:
    config_from_dict(fusion_config(volume_path))
    with pytest.raises(ValueError, match="task petct needs a model"):
        config_from_dict(fusion_config(volume_path), ["model.name=srresnet"])
    with pytest.raises(ValueError, match="task petct needs a model"):
        config_from_dict(fusion_config(volume_path), ["data.task=x4"])
    with pytest.raises(ValueError, match="guide_channels 1 != 2"):
        config_from_dict(fusion_config(volume_path), ["model.guide_channels=1"])
    with pytest.raises(ValueError, match="normalization.kind window"):
        config_from_dict(fusion_config(volume_path), ["normalization.kind=percentile"])


def test_pretrain_then_gan_steps_write_a_fusion_checkpoint(
    volume_path: str, tmp_path: Path
) -> None:
    config = config_from_dict(fusion_config(volume_path))
    result = train(config, tmp_path / "run")
    metrics = result["metrics"]
    assert {"psnr_model", "psnr_bicubic", "ssim_model"} <= set(metrics)
    assert 5 < metrics["psnr_bicubic"] < 60  # SUV / 10 in [0, 1], not HU with data_range 1
    payload = load_checkpoint(result["checkpoint"])
    norm = payload["normalization"]
    assert norm["unit"] == "SUV" and norm["guide_windows"] == [[-1000.0, 1000.0], [0.0, 80.0]]
    predictor = FusionPredictor.load(str(result["checkpoint"]))
    ct = body_phantom(1).array[0]
    out = predictor.fuse_array(ct, np.ones((16, 16), np.float32))
    assert out.shape == (64, 64) and np.isfinite(out).all()
    gan = config_from_dict(
        fusion_config(volume_path),
        ["phase=gan", f"pretrained={result['checkpoint']}", "training.max_steps=2"],
    )
    gan_result = train(gan, tmp_path / "gan")
    assert load_checkpoint(gan_result["checkpoint"])["discriminator"] is not None
