from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from medsr.inference.ensemble import self_ensemble
from medsr.models import build_generator
from medsr.training import checkpoint as ckpt
from medsr.training.config import TrainConfig
from medsr.training.distill import Teacher
from medsr.training.loop import train


def tiny_teacher(weight: float = 0.5, transforms: int = 2) -> Teacher:
    torch.manual_seed(0)
    model = build_generator("srresnet", scale=1, num_features=8, num_blocks=1, batch_norm=False)
    return Teacher(model.eval(), weight, transforms, seed=3)


def first_logged(run: Path, key: str) -> float:
    with (run / "train.csv").open() as stream:
        return float(next(csv.DictReader(stream))[key])


def test_the_transforms_of_a_step_are_drawn_from_the_seed_and_the_step() -> None:
    teacher = tiny_teacher(transforms=3)
    draws = [teacher.transforms_at(step) for step in range(20)]
    assert draws == [teacher.transforms_at(step) for step in range(20)]  # a resume draws alike
    assert all(len(set(ops)) == 3 and set(ops) <= set(range(8)) for ops in draws)
    assert len({tuple(ops) for ops in draws}) > 5
    assert tiny_teacher(transforms=8).transforms_at(7) == list(range(8))


def test_all_eight_transforms_give_the_inference_self_ensemble() -> None:
    """The training target and `medsr enhance --ensemble` average the same 8 passes."""
    teacher = tiny_teacher(transforms=8)
    low = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(1))

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return teacher.model(torch.from_numpy(batch)).numpy()

    expected = self_ensemble(run)(low.numpy())
    got = teacher.ensemble(low, step=0).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    plain = run(low.numpy())
    assert np.abs(got - plain).max() > 1e-4  # a random model is not equivariant: a real average


def test_the_target_blends_the_image_and_the_teacher_by_weight() -> None:
    teacher = tiny_teacher(weight=0.25)
    low, high = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    ensemble = teacher.ensemble(low, step=4)
    torch.testing.assert_close(teacher.target(low, high, 4), 0.75 * high + 0.25 * ensemble)


def test_a_distilled_run_learns_toward_its_teacher_and_resumes_exactly(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    """With the teacher as its own start and weight 1, the first step's pixel loss is the
    model's distance to its own self-ensemble (nonzero: a briefly trained model is not
    equivariant), below its distance to the true image (the same batch, the same weights).
    Stopped and resumed, the run ends where the whole one does (same draws per step)."""
    first = train(tiny_config("training.max_steps=3"), tmp_path / "first")
    start = first["checkpoint"]
    plain = tiny_config(f"initial_weights={start}", "training.max_steps=1", "intervals.log_every=1")
    train(plain, tmp_path / "plain")
    distilled = tiny_config(
        f"initial_weights={start}",
        f"losses.distillation.teacher={start}",
        "losses.distillation.weight=1.0",
        "training.max_steps=1",
        "intervals.log_every=1",
    )
    train(distilled, tmp_path / "distilled")
    to_truth = first_logged(tmp_path / "plain", "g_pixel")
    to_teacher = first_logged(tmp_path / "distilled", "g_pixel")
    assert 0 < to_teacher < 0.9 * to_truth

    config = tiny_config(f"initial_weights={start}", f"losses.distillation.teacher={start}")
    whole = train(config, tmp_path / "whole")
    resumed = train(config, tmp_path / "resumed", resume=tmp_path / "whole" / "step_00000003.pt")
    a = ckpt.load_checkpoint(whole["checkpoint"])["generator"]["state_dict"]
    b = ckpt.load_checkpoint(resumed["checkpoint"])["generator"]["state_dict"]
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_a_teacher_must_fit_the_model_and_have_a_weight(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    start = train(tiny_config("training.max_steps=1"), tmp_path / "first")["checkpoint"]
    with pytest.raises(ValueError, match="differs"):
        Teacher.from_config(
            tiny_config(f"losses.distillation.teacher={start}", "model.num_blocks=1"),
            torch.device("cpu"),
        )
    with pytest.raises(ValueError, match="weight must be in"):
        Teacher.from_config(
            tiny_config(f"losses.distillation.teacher={start}", "losses.distillation.weight=0"),
            torch.device("cpu"),
        )
    assert Teacher.from_config(tiny_config(), torch.device("cpu")) is None
    # the shipped configs state the scale in the model section too, as TrainState takes it
    stated = tiny_config(f"losses.distillation.teacher={start}", "model.scale=2")
    teacher = Teacher.from_config(stated, torch.device("cpu"))
    assert teacher is not None and teacher.weight == 0.5 and teacher.transforms == 2
