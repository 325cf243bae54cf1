from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from medsr.models import build_discriminator, build_generator
from medsr.training import checkpoint as ckpt
from medsr.training.config import TrainConfig, TrainingConfig
from medsr.training.loop import learning_rate, train


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


def test_learning_rate_schedules() -> None:
    config = TrainingConfig(lr=1.0, warmup_steps=4, max_steps=104, schedule="cosine", min_lr=0.1)
    assert [learning_rate(s, config, 1.0) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert learning_rate(54, config, 1.0) == pytest.approx(0.55)  # half way: mean of 1 and 0.1
    assert learning_rate(104, config, 1.0) == pytest.approx(0.1)
    step = TrainingConfig(schedule="step", step_every=10, step_gamma=0.5)
    assert [learning_rate(s, step, 2.0) for s in (0, 9, 10, 25)] == [2.0, 2.0, 1.0, 0.5]
    assert learning_rate(7, TrainingConfig(schedule="constant"), 3.0) == 3.0


def test_pretraining_beats_bicubic_on_held_out_slices(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    """A real learning test: x2 on InVesalius, validation on the held-out slab (88-107).

    A tiny SRResNet with a bicubic skip starts below bicubic (random output conv) and must
    end > 0.2 dB above it on the neuro window; 400 steps reach ~0.45 dB above."""
    config = tiny_config(
        "training.max_steps=400",
        "training.batch_size=16",
        "intervals.validate_every=100",
        "intervals.log_every=100",
        "intervals.checkpoint_every=400",
        "intervals.sample_every=400",
    )
    result = train(config, tmp_path)
    validation = rows(tmp_path / "validation.csv")
    header = list(validation[0])
    assert "psnr_model (neuro C40/W80 -> 0..1; data_range 1)" in header
    psnr = [float(r[header[1]]) for r in validation]
    bicubic = float(validation[-1]["psnr_bicubic (neuro C40/W80 -> 0..1; data_range 1)"])
    assert result["metrics"]["psnr_model"] == pytest.approx(psnr[-1], abs=1e-4)
    assert psnr[-1] > psnr[0]
    assert psnr[-1] > bicubic + 0.2, (psnr, bicubic)
    assert result["best_psnr"] == pytest.approx(max(psnr), abs=1e-4)
    assert (tmp_path / "samples" / "step_00000400.png").stat().st_size > 10_000
    train_rows = rows(tmp_path / "train.csv")
    assert [int(r["step"]) for r in train_rows] == [100, 200, 300, 400]


def final_weights(path: Path) -> dict[str, torch.Tensor]:
    payload = ckpt.load_checkpoint(path)
    return {
        **payload["generator"]["state_dict"],
        **{f"ema.{k}": v for k, v in payload["ema"].items()},
    }


def test_resume_reaches_the_same_weights(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    """Stopped at step 3 and resumed, a run ends where the uninterrupted one does
    (generator, EMA, Adam state, lr schedule and data order): max abs diff < 1e-6."""
    config = tiny_config()  # 6 steps, warmup 2, cosine, checkpoints at 3 and 6
    whole = train(config, tmp_path / "whole")
    resumed = train(config, tmp_path / "resumed", resume=tmp_path / "whole" / "step_00000003.pt")
    a, b = final_weights(whole["checkpoint"]), final_weights(resumed["checkpoint"])
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst < 1e-6
    start = final_weights(tmp_path / "whole" / "step_00000003.pt")
    assert max(float((a[k] - start[k]).abs().max()) for k in a) > 1e-4  # the steps did move
    # the resumed run logged only its own steps and the same losses as the whole run
    assert [r["step"] for r in rows(tmp_path / "resumed" / "train.csv")] == ["4", "6"]
    whole_rows = {r["step"]: r for r in rows(tmp_path / "whole" / "train.csv")}
    for row in rows(tmp_path / "resumed" / "train.csv"):
        assert float(row["g_loss"]) == pytest.approx(float(whole_rows[row["step"]]["g_loss"]))


def test_resume_auto(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    first = train(tiny_config("training.max_steps=3"), tmp_path, resume="auto")  # fresh start
    assert first["checkpoint"] == tmp_path / "step_00000003.pt"
    second = train(tiny_config("training.max_steps=6"), tmp_path, resume="auto")
    assert second["checkpoint"] == tmp_path / "step_00000006.pt"
    assert [r["step"] for r in rows(tmp_path / "train.csv")] == ["2", "3", "4", "6"]


def test_gan_phase_trains_the_discriminator_from_a_pretrained_generator(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    pretrain = train(tiny_config("training.max_steps=3"), tmp_path / "pretrain")
    config = tiny_config(
        "phase=gan",
        f"pretrained={pretrain['checkpoint']}",
        "training.max_steps=3",
        "losses.feature_matching.weight=0.1",
    )
    gan = train(config, tmp_path / "gan")
    payload = ckpt.load_checkpoint(gan["checkpoint"])
    torch.manual_seed(config.seed)  # the loop builds the generator, then the discriminator
    build_generator("srresnet", scale=2, **config.model.kwargs)
    initial = build_discriminator("vgg", **config.discriminator.kwargs).state_dict()
    trained = payload["discriminator"]["state_dict"]
    changed = max(
        float((trained[k].float() - initial[k].float()).abs().max())
        for k in initial
        if initial[k].is_floating_point()
    )
    assert changed > 1e-4
    assert payload["optimizers"]["discriminator"] is not None
    logged = rows(tmp_path / "gan" / "train.csv")[-1]
    for key in ("d_loss", "g_adversarial", "g_feature_matching", "g_pixel"):
        assert math.isfinite(float(logged[key]))
    # the GAN run starts from the pretrained EMA weights, and moves away from them
    start = ckpt.load_checkpoint(pretrain["checkpoint"])["ema"]
    end = payload["generator"]["state_dict"]
    moved = max(float((end[k] - start[k]).abs().max()) for k in start)
    assert 0 < moved < 0.5


def test_gan_phase_needs_a_pretrained_checkpoint(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="needs `pretrained`"):
        train(tiny_config("phase=gan"), tmp_path)
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        train(tiny_config("training.precision=fp16", "device=cpu"), tmp_path)


def test_pretrain_warm_starts_from_initial_weights(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    """`initial_weights`: a pretrain run whose generator starts from a checkpoint's EMA
    weights, with a fresh optimiser; a checkpoint of another architecture is refused."""
    first = train(tiny_config("training.max_steps=1"), tmp_path / "first")
    payload = ckpt.load_checkpoint(first["checkpoint"])
    # weights no random initialisation would give: every tensor shifted by 0.25
    payload["ema"] = {k: v + 0.25 for k, v in payload["ema"].items()}
    shifted = tmp_path / "shifted.pt"
    torch.save(payload, shifted)
    config = tiny_config(f"initial_weights={shifted}", "training.max_steps=1")
    warm = train(config, tmp_path / "warm")
    weights = ckpt.load_checkpoint(warm["checkpoint"])["generator"]["state_dict"]
    distance = max(float((weights[k] - payload["ema"][k]).abs().max()) for k in weights)
    # one Adam step moves a weight by about the learning rate (half of it in warm-up)
    assert distance < 2 * config.training.lr
    with pytest.raises(ValueError, match="differs"):
        train(
            tiny_config(f"initial_weights={shifted}", "model.num_blocks=1"),
            tmp_path / "mismatch",
        )


def test_grid_loss_weight_adds_a_logged_term_at_the_model_scale(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    config = tiny_config("training.max_steps=2", "intervals.log_every=1", "losses.grid.weight=10")
    assert config.data.scale == 2
    train(config, tmp_path)
    logged = rows(tmp_path / "train.csv")[-1]
    grid, pixel = float(logged["g_grid"]), float(logged["g_pixel"])
    # a random-init x2 model's period-2 error is part of its MSE: > 0, and weighted 10x
    # it stays below 10 times the whole MSE
    assert 0 < grid < 10 * pixel
    assert float(logged["g_loss"]) == pytest.approx(grid + pixel, rel=1e-4)


def test_discriminator_lr_ratio_scales_only_the_discriminator() -> None:
    from medsr.training.state import TrainState

    generator, discriminator = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    state = TrainState(
        generator=generator,  # type: ignore[arg-type]
        opt_g=torch.optim.Adam(generator.parameters()),
        ema=None,  # type: ignore[arg-type]
        discriminator=discriminator,  # type: ignore[arg-type]
        opt_d=torch.optim.Adam(discriminator.parameters()),
    )
    state.set_learning_rate(2e-4, discriminator_ratio=4.0)
    assert state.opt_g.param_groups[0]["lr"] == 2e-4
    assert state.opt_d is not None and state.opt_d.param_groups[0]["lr"] == 8e-4


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it_natively(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from medsr import hardware
    from medsr.training import loop

    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "native_bf16", lambda device="cpu": True)
    assert loop.resolved_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(hardware, "native_bf16", lambda device="cpu": False)
    assert loop.resolved_precision("auto", cpu) == "fp32"  # emulated bf16: over 10x slower
    assert loop.resolved_precision("bf16", cpu) == "bf16"  # as asked
    assert loop.resolved_precision("fp32", cpu) == "fp32"


def test_a_run_states_its_precision_and_warns_of_emulated_bf16(
    tiny_config: Callable[..., TrainConfig],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from medsr import hardware

    monkeypatch.setattr(hardware, "native_bf16", lambda device="cpu": False)
    train(tiny_config("training.max_steps=1", "training.precision=auto"), tmp_path / "a")
    out = capsys.readouterr().out
    assert "fp32 on cpu (training.precision auto)" in out and "warning" not in out
    train(tiny_config("training.max_steps=1", "training.precision=bf16"), tmp_path / "b")
    assert "bf16 is emulated" in capsys.readouterr().out
