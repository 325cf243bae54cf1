from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from medsr.checkpoint import read_checkpoint
from medsr.models import FUSION_GENERATORS, GENERATORS
from medsr.physics.tasks import TASKS
from medsr.training.config import (
    LowDoseConfig,
    PetConfig,
    config_from_dict,
    load_config,
    parse_override,
)

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def test_the_four_configs_ship() -> None:
    names = {p.name for p in CONFIGS}
    assert {
        "srgan-ct-ldct-x4.yaml",
        "esrgan-ct-ldct-x4.yaml",
        "srgan-xray-x4.yaml",
        "esrgan-xray-x4.yaml",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize("phase", ["pretrain", "gan"])
def test_shipped_configs_load_in_both_phases(path: Path, phase: str) -> None:
    config = load_config(path, [f"phase={phase}"])
    assert config.phase == phase
    assert config.model.name in {**GENERATORS, **FUSION_GENERATORS}
    assert config.model.kwargs["scale"] == config.data.scale
    assert config.data.scale == TASKS[config.data.task].defaults["scale"]
    if config.data.split == "source":  # evaluation never shares a source with training
        assert not set(config.data.samples) & set(config.data.validation_samples)
    else:
        assert config.data.gap_slices > 0 and len(config.data.samples) == 1
    assert config.to_dict()["model"]["name"] == config.model.name


def test_overrides_are_typed_and_nested() -> None:
    overrides = [
        "training.max_steps=10",
        "model.num_blocks=2",
        "training.lr=2e-4",
        "losses.adversarial.kind=hinge",
        "training.grad_clip=null",
        "data.samples=[ct-small]",
    ]
    config = config_from_dict({}, overrides)
    assert config.training.max_steps == 10
    assert config.model.kwargs == {"num_blocks": 2}
    assert config.training.lr == pytest.approx(2e-4) and isinstance(config.training.lr, float)
    assert config.losses.adversarial.kind == "hinge"
    assert config.training.grad_clip is None
    assert config.data.samples == ["ct-small"]


def test_unknown_keys_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"training.foo.*valid keys: .*training.max_steps"):
        config_from_dict({}, ["training.foo=1"])
    with pytest.raises(ValueError, match=r"model.foo.*valid keys: .*num_blocks"):
        config_from_dict({}, ["model.foo=1"])
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['bogus'\]"):
        config_from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        config_from_dict({}, ["model.name=nope"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.max_steps=ten", "training.max_steps: expected int"),
        ("training.max_steps=1.5", "training.max_steps: expected int"),
        ("training.lr=abc", "training.lr: expected float"),
        ("data.augment=maybe", "data.augment: expected bool"),
        ("training.precision=fp8", "not one of"),
        ("model.num_blocks=two", "model.num_blocks: expected int"),
        ("training.max_steps=0", "training.max_steps must be >= 1"),
        ("data.patch_size=30", "multiple of 4"),
        ("data.task=x5", "unknown task"),
        ("evaluation.window=brain", "unknown CT window"),
        ("training", "not key=value"),
        ("data.noise_level_unit=50", "needs an ldct task and model.in_channels 2"),
        ("data.ldct.noise_frequency_unit=0.5", "noise_frequency_unit needs data.ldct.noise_lev"),
        (
            "data.ldct.noise_level_unit=50 data.ldct.noise_frequency_unit=0.5 data.task=ldct "
            "model.in_channels=2",
            "needs an ldct task and model.in_channels 3",
        ),
        ("data.ldct.dose_input=true", "dose_input needs noise_level_unit and noise_level_of"),
        (
            "data.ldct.noise_level_unit=50 data.ldct.noise_level_of=added data.task=ldct "
            "data.ldct.dose_input=true model.in_channels=2",
            "needs an ldct task and model.in_channels 3",
        ),
        ("data.zoom=[2.0]", "need 2 values"),
        ("training.discriminator_lr_ratio=0", "discriminator_lr_ratio must be > 0"),
        ('data.source_weights={"nowhere":2}', "are not in data.samples / folders"),
        ('data.source_weights={"invesalius-head-ct":0}', "must be > 0"),
        ('data.source_weights={"invesalius-head-ct":2}', "needs data.split source"),
        ("data.thick_slabs=[1]", "thick_slabs must be integers >= 2"),
        ("data.thick_slabs=[3]", "thick_slabs needs data.split source"),
        ("losses.pixel.outside_window=0", "outside_window must be > 0"),
        ("losses.pixel.lowpass_sigma=-1", "lowpass_sigma and highpass_weight must be >= 0"),
        ("losses.pixel.highpass_weight=-0.5", "lowpass_sigma and highpass_weight must be >= 0"),
    ],
)
def test_bad_values_are_rejected(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict({}, override.split())


def test_phase_overrides_apply_under_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "training: {lr: 1.0e-3}\nphase_overrides:\n  gan: {training.lr: 1.0e-4, "
        "training.max_steps: 7}\n"
    )
    assert load_config(path).training.lr == pytest.approx(1e-3)
    gan = load_config(path, ["phase=gan"])
    assert (gan.training.lr, gan.training.max_steps) == (pytest.approx(1e-4), 7)
    cli = load_config(path, ["phase=gan", "training.lr=5e-4"])
    assert cli.training.lr == pytest.approx(5e-4)
    # the stored dict rebuilds the same config (phase overrides are not applied twice)
    assert config_from_dict(cli.to_dict()) == replace(cli, phase_overrides={})


def test_old_flat_data_keys_load_into_the_task_sections() -> None:
    """Checkpoints store their run's config: the keys before `data.ldct` / `data.pet` load."""
    old = {
        "data": {
            "task": "ldct",
            "scale": 1,
            "patch_size": 48,
            "validation_folders": [],
            "noise_gain": [0.3, 3.5],
            "zoom": [1.0, 2.0],
            "noise_level_unit": 50.0,
            "noise_level_of": "added",
            "pet_counts_range": [],
            "pet_anatomies": ["head"],
        },
        "model": {"in_channels": 2, "scale": 1},
        "training": {"discriminator_lr": None},
    }
    config = config_from_dict(old)
    assert config.data.ldct == LowDoseConfig([0.3, 3.5], [1.0, 2.0], 50.0, "added")
    assert config.data.pet == PetConfig([], ["head"])
    assert config_from_dict(config.to_dict()) == config
    assert "noise_gain" not in config.to_dict()["data"]
    # old dotted keys on the command line (and in phase_overrides) too
    assert config_from_dict(old, ["data.zoom=[1.0, 1.5]"]).data.ldct.zoom == [1.0, 1.5]
    with pytest.raises(ValueError, match="data.validation_folders is no longer supported"):
        config_from_dict({"data": {"validation_folders": ["x"]}})
    with pytest.raises(ValueError, match="data.zoom and data.ldct.zoom both given"):
        config_from_dict({"data": {"zoom": [1.0, 2.0], "ldct": {"zoom": [1.0, 2.0]}}})


def test_shipped_checkpoints_configs_load() -> None:
    for path in sorted((Path(__file__).parents[2] / "src/medsr/weights").glob("*.pt")):
        stored = read_checkpoint(path).config
        config = config_from_dict(stored)
        assert config.data.task == stored["data"]["task"], path.name
        assert config.data.ldct.noise_gain == stored["data"].get("noise_gain", [1.0, 1.0])


def test_parse_override_and_missing_file(tmp_path: Path) -> None:
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=") == ("a", None)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")
