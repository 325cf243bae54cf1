"""The training loop, top to bottom: setup, step, evaluate, checkpoint (nanoGPT-style).

`train(config, output, resume)` runs pixel pretraining (`phase: pretrain`) or GAN fine-tuning
from a pretrained generator (`phase: gan`), alone or under torchrun (see `distributed.py`).
Validation runs the EMA generator and the bicubic baseline on the same held-out pairs and
reports PSNR / SSIM on the stated window (CT) or on [0, 1] (radiographs), data_range 1.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from medsr import hardware
from medsr.losses import PerceptualLoss
from medsr.metrics.ct import describe_window, get_window, windowed_psnr, windowed_ssim
from medsr.metrics.image import psnr, ssim
from medsr.physics.resize import upsample
from medsr.training import checkpoint as ckpt
from medsr.training import distributed as dist
from medsr.training.config import TrainConfig, TrainingConfig
from medsr.training.data import TrainingData, build_data, check_metric_unit, step_loader
from medsr.training.distill import Teacher
from medsr.training.gan import StepOptions, discriminator_step, generator_step
from medsr.training.logging import MetricsLog
from medsr.training.state import TrainState

DEBUG_STATE_ENV = "MEDSR_DEBUG_STATE_DIR"  # tests: every rank writes its final weights there


def learning_rate(step: int, config: TrainingConfig, base: float) -> float:
    """The lr of `step` (0-based): linear warmup, then the schedule. A pure function of the
    step, so resuming needs no scheduler state beyond the step itself."""
    if step < config.warmup_steps:
        return base * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return base
    if config.schedule == "step":
        return base * config.step_gamma ** (step // config.step_every)
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return config.min_lr + (base - config.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def metric_label(config: TrainConfig) -> str:
    """Where PSNR / SSIM are computed, for log lines and CSV headers."""
    window = config.evaluation.window
    return f"{describe_window(window)}; data_range 1" if window else "0..1; data_range 1"


def _to_metric_space(x: torch.Tensor, data: TrainingData) -> torch.Tensor:
    norm = data.normalization
    if norm["kind"] == "window":  # back to the image unit (HU for CT)
        return x * (norm["high"] - norm["low"]) + norm["low"]
    return x.clamp(0.0, 1.0)


PSNR_CAP_DB = 100.0


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, data: TrainingData, config: TrainConfig, device: torch.device
) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """PSNR / SSIM of `model` and of bicubic upsampling on the validation pairs.

    Returns the metrics and the model and bicubic outputs (normalised units)."""
    model.eval()
    size = config.evaluation.batch_size
    low, high = data.validation_low, data.validation_high
    output = torch.cat(
        [model(low[i : i + size].to(device)).float().cpu() for i in range(0, len(low), size)]
    )
    low = low[:, : high.shape[1]]  # a packed CT + PET input (fusion) holds the PET first
    bicubic = upsample(low, config.data.scale, "bicubic") if config.data.scale > 1 else low
    window, metrics = config.evaluation.window, {}
    # Without a window the metrics are on the normalised images clipped to [0, 1] (as labelled)
    space = (lambda x: _to_metric_space(x, data)) if window else (lambda x: x.clamp(0.0, 1.0))
    target = space(high)
    for name, image in (("model", output), ("bicubic", bicubic)):
        image = space(image)
        if window:
            metrics[f"psnr_{name}"] = float(windowed_psnr(image, target, window))
            metrics[f"ssim_{name}"] = float(windowed_ssim(image, target, window))
        else:
            # A patch identical to its target (e.g. saturated to 1 in both) has PSNR inf:
            # capped at PSNR_CAP_DB so one such patch does not make the mean inf.
            per_image = psnr(image, target, data_range=1.0, reduction="none")
            metrics[f"psnr_{name}"] = float(per_image.clamp(max=PSNR_CAP_DB).mean())
            metrics[f"ssim_{name}"] = float(ssim(image, target, data_range=1.0))
    return metrics, output, bicubic


def _setup_process(config: TrainConfig) -> tuple[torch.device, dist.DistributedInfo]:
    """Device, process group, threads and global seeds (the same on every rank, so the
    initial weights are identical)."""
    device = dist.pick_device(config.device)
    info = dist.setup_distributed(device)
    if config.training.precision == "fp16" and device.type != "cuda":
        raise ValueError("training.precision fp16 needs CUDA; use fp32 or bf16 on the CPU")
    if config.num_threads is not None:  # 2 threads on 2 busy cores can be 20x slower than 1
        torch.set_num_threads(config.num_threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    return device, info


def _perceptual_loss(config: TrainConfig, device: torch.device) -> PerceptualLoss | None:
    """The VGG feature loss of the gan phase, when it has a weight."""
    loss = config.losses.perceptual
    if loss.weight <= 0 or config.phase != "gan":
        return None
    if not loss.weights_path:
        raise ValueError("losses.perceptual.weight > 0 needs losses.perceptual.weights_path")
    return PerceptualLoss(loss.weights_path, loss.layers).to(device)


def channels_last(state: TrainState, device: torch.device) -> torch.memory_format:
    """Put the models (the EMA copy too) in channels-last memory format on the CPU and
    return the format the batches should take. oneDNN runs NHWC convolutions without
    reordering every input and gradient: a training step of the shipped configs is 5-10 %
    faster in bf16 and ~25 % in fp32 (BENCHMARKS.md, "Training speed"); the weights are
    the same numbers, only their layout in memory differs. Other devices are left as they
    are (not measured there)."""
    if device.type != "cpu":
        return torch.preserve_format
    for model in (*state.models(), state.ema.model):
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return torch.channels_last


def resolved_precision(requested: str, device: torch.device) -> str:
    """What a step computes in: `auto` is `medsr.hardware.auto_precision` (bf16 autocast
    where the device computes it natively, as inference), the other values as they are."""
    if requested != "auto":
        return requested
    return hardware.auto_precision(device)


def _step_options(
    config: TrainingConfig,
    device: torch.device,
    state: TrainState,
    memory_format: torch.memory_format = torch.preserve_format,
) -> StepOptions:
    precision = resolved_precision(config.precision, device)
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    enabled = precision != "fp32"
    return StepOptions(
        autocast=lambda: torch.autocast(device.type, dtype=dtype, enabled=enabled),
        scaler=state.scaler,
        grad_clip=config.grad_clip,
        sync_gradients=dist.average_gradients,
        memory_format=memory_format,
    )


def _train_step(
    state: TrainState,
    batch: dict[str, Any],
    config: TrainConfig,
    options: StepOptions,
    perceptual: PerceptualLoss | None,
    device: torch.device,
    teacher: Teacher | None = None,
    step: int = 0,
) -> dict[str, float]:
    """One update of the discriminator (phase gan) and the generator, then the EMA. With a
    `teacher` (self-ensemble distillation) the generator's target is its blend for `step`;
    the discriminator still sees the true images."""
    low = batch["low"].to(device, memory_format=options.memory_format)
    high = batch["high"].to(device, memory_format=options.memory_format)
    target = high if teacher is None else teacher.target(low, high, step)
    generator, discriminator = state.generator, state.discriminator
    generator.train()
    with options.autocast():
        fake = generator(low)
    logs: dict[str, float] = {"lr": state.opt_g.param_groups[0]["lr"]}
    if discriminator is not None and state.opt_d is not None:
        kind = config.losses.adversarial.kind
        logs |= discriminator_step(discriminator, state.opt_d, high, fake, kind, options)
    logs |= generator_step(
        generator,
        state.opt_g,
        fake,
        target,
        config.losses,
        options,
        discriminator,
        perceptual,
        grid_period=config.data.scale,
    )
    if state.scaler is not None:
        state.scaler.update()
    for model in state.models():
        dist.broadcast_state(model)
    state.ema.update(generator)
    return logs


def _validate(
    state: TrainState,
    data: TrainingData,
    config: TrainConfig,
    device: torch.device,
    log: MetricsLog,
    output: Path,
    done: int,
) -> dict[str, float]:
    """Metrics of the EMA generator and of bicubic upsampling, logged and printed; the
    sample grid when due (shown on the metric window for CT, else on [0, 1])."""
    label = metric_label(config)
    metrics, output_images, bicubic = evaluate(state.ema.model, data, config, device)
    log.write("validation", done, {f"{k} ({label})": v for k, v in metrics.items()})
    tqdm.write(
        f"step {done}: PSNR {metrics['psnr_model']:.2f} dB (bicubic "
        f"{metrics['psnr_bicubic']:.2f}), SSIM {metrics['ssim_model']:.4f} "
        f"(bicubic {metrics['ssim_bicubic']:.4f}) on {label}"
    )
    if done % config.intervals.sample_every == 0 or done == config.training.max_steps:
        from medsr.viz.samples import save_sample_grid

        show = (0.0, 1.0)
        if config.evaluation.window:
            window, norm = get_window(config.evaluation.window), data.normalization
            low, high = norm["low"], norm["high"]
            show = tuple((v - low) / (high - low) for v in (window.low, window.high))
        save_sample_grid(
            output / "samples" / f"step_{done:08d}.png",
            bicubic,
            output_images,
            data.validation_high,
            show,
            f"{config.name} step {done}: LR bicubic | output (EMA) | target | error; {label}",
        )
    return metrics


def _write_debug_state(state: TrainState, rank: int) -> None:
    """Tests: every rank's final weights, to check that the ranks stayed in step."""
    if debug := os.environ.get(DEBUG_STATE_ENV):
        Path(debug).mkdir(parents=True, exist_ok=True)
        weights = {
            "generator": state.generator.state_dict(),
            "ema": state.ema.state_dict(),
            "discriminator": None
            if state.discriminator is None
            else state.discriminator.state_dict(),
        }
        torch.save(weights, Path(debug) / f"rank{rank}.pt")


def train(
    config: TrainConfig, output: str | Path | None = None, resume: str | Path | None = None
) -> dict[str, Any]:
    """Train as `config` says; write logs and checkpoints to `output` (default
    `runs/<name>-<phase>`). `resume`: a checkpoint path, or `"auto"` for the latest one in
    `output` (a fresh start when there is none). Returns the final step, metrics and paths."""
    # Longer than ~60 lines on purpose (nanoGPT's train.py): the run reads top to bottom,
    # setup, step, evaluate, checkpoint; each part is a call to the code that owns it.
    # ---------------------------------------------------------------- setup
    tc, intervals = config.training, config.intervals
    device, info = _setup_process(config)
    out = Path(output) if output is not None else Path("runs") / f"{config.name}-{config.phase}"
    items_per_step = tc.batch_size * info.world_size
    data = build_data(
        config.data, config.normalization, config.seed, items_per_step, progress=info.is_main
    )
    check_metric_unit(config.evaluation.window, data.unit)
    state = TrainState.build(config, device)
    perceptual = _perceptual_loss(config, device)
    options = _step_options(tc, device, state, channels_last(state, device))
    teacher = Teacher.from_config(config, device)
    if teacher is not None:
        teacher.model.to(memory_format=options.memory_format)  # type: ignore[call-overload]
    start, best_psnr, metrics = ckpt.resume(state, resume, out, device)
    log = MetricsLog(out, resume_step=start) if info.is_main else None
    if info.is_main:
        precision = resolved_precision(tc.precision, device)
        print(
            f"medsr train: {config.name} phase {config.phase}, {data.split}; "
            f"metrics on {metric_label(config)}; {precision} on {device.type} "
            f"(training.precision {tc.precision}); output {out}"
        )
        if precision == "bf16" and device.type == "cpu" and not hardware.native_bf16(device):
            print(
                "medsr train: warning: this CPU has no bf16 instructions, bf16 is emulated "
                "(over 10x slower than fp32 here); training.precision=auto picks fp32"
            )
    workers = config.data.num_workers
    loader = step_loader(data.train, start, tc.max_steps, tc.batch_size, info.rank, workers)
    bar = tqdm(
        total=tc.max_steps, initial=start, disable=not info.is_main, unit="step", mininterval=1.0
    )
    timer, train_time, ticked = time.perf_counter(), 0.0, start

    # ---------------------------------------------------------------- step
    for step, batch in enumerate(loader, start=start):
        state.set_learning_rate(learning_rate(step, tc, tc.lr), tc.discriminator_lr_ratio)
        logs = _train_step(state, batch, config, options, perceptual, device, teacher, step)
        train_time += time.perf_counter() - timer  # data + update; not evaluation
        done, last = step + 1, step + 1 == tc.max_steps
        bar.update(1)
        bar.set_postfix(loss=f"{logs['g_loss']:.4g}", refresh=False)

        # ------------------------------------------------------------ evaluate
        if log is not None and (done % intervals.log_every == 0 or last):
            rate = (done - ticked) * items_per_step / max(train_time, 1e-9)
            log.write("train", done, {**logs, "samples_per_s": rate})
            train_time, ticked = 0.0, done
        validate, is_best = done % intervals.validate_every == 0 or last, False
        if log is not None and validate:
            metrics = _validate(state, data, config, device, log, out, done)
            is_best = metrics["psnr_model"] > best_psnr
            best_psnr = max(best_psnr, metrics["psnr_model"])

        # ------------------------------------------------------------ checkpoint
        due = done % intervals.checkpoint_every == 0 or last
        if info.is_main and (due or is_best):
            payload = ckpt.training_payload(
                state, config, done, data.normalization, data.split, metrics, best_psnr
            )
            ckpt.save_checkpoints(payload, out, done, due, is_best, intervals.keep_last)
        if due or validate:
            dist.barrier()
        timer = time.perf_counter()

    bar.close()
    _write_debug_state(state, info.rank)
    if log is not None:
        log.close()
    dist.cleanup()
    return {
        "step": tc.max_steps,
        "metrics": metrics,
        "best_psnr": best_psnr,
        "output": out,
        "checkpoint": ckpt.latest_checkpoint(out),
        "split": data.split,
    }
