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

from medsr._version import __version__
from medsr.losses import PerceptualLoss
from medsr.metrics.ct import describe_window, get_window, windowed_psnr, windowed_ssim
from medsr.metrics.image import psnr, ssim
from medsr.models import build_discriminator, build_generator
from medsr.physics.resize import upsample
from medsr.training import checkpoint as ckpt
from medsr.training import distributed as dist
from medsr.training.config import TrainConfig, TrainingConfig
from medsr.training.data import TrainingData, build_data, step_loader
from medsr.training.ema import EMA
from medsr.training.gan import StepOptions, discriminator_step, generator_step
from medsr.training.logging import MetricsLog

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


def _optimizer(params: Any, config: TrainingConfig, lr: float) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(
        params, lr=lr, betas=(config.betas[0], config.betas[1]), weight_decay=config.weight_decay
    )


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


def train(
    config: TrainConfig, output: str | Path | None = None, resume: str | Path | None = None
) -> dict[str, Any]:
    """Train as `config` says; write logs and checkpoints to `output` (default
    `runs/<name>-<phase>`). `resume`: a checkpoint path, or `"auto"` for the latest one in
    `output` (a fresh start when there is none). Returns the final step, metrics and paths."""
    # ---------------------------------------------------------------- setup
    tc, intervals = config.training, config.intervals
    device = dist.pick_device(config.device)
    info = dist.setup_distributed(device)
    out = Path(output) if output is not None else Path("runs") / f"{config.name}-{config.phase}"
    if tc.precision == "fp16" and device.type != "cuda":
        raise ValueError("training.precision fp16 needs CUDA; use fp32 or bf16 on the CPU")
    if config.num_threads is not None:  # 2 threads on 2 busy cores can be 20x slower than 1
        torch.set_num_threads(config.num_threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)  # same on every rank: identical initial weights

    data = build_data(
        config.data,
        config.normalization,
        config.seed,
        tc.batch_size * info.world_size,
        progress=info.is_main,
    )
    if config.evaluation.window and data.unit != "HU":
        raise ValueError(
            f"evaluation.window {config.evaluation.window!r} needs HU images, "
            f"got {data.unit!r}; set evaluation.window=null"
        )
    model_args = {"scale": config.data.scale, **config.model.kwargs}
    generator = build_generator(config.model.name, **model_args).to(device)
    discriminator = None
    if config.phase == "gan":
        if not config.pretrained:
            raise ValueError("phase gan needs `pretrained`: a checkpoint of the pretrain phase")
        pretrained = ckpt.load_checkpoint(config.pretrained)
        spec = pretrained["generator"]
        if spec["name"] != config.model.name or spec["config"] != generator.config():
            raise ValueError(
                f"pretrained generator {spec['name']} {spec['config']} differs "
                f"from model {config.model.name} {generator.config()}"
            )
        generator.load_state_dict(pretrained["ema"] or spec["state_dict"])
        discriminator = build_discriminator(
            config.discriminator.name, **config.discriminator.kwargs
        ).to(device)
    for model in (generator, discriminator):
        if model is not None:
            dist.broadcast_state(model, parameters=True)

    opt_g = _optimizer(generator.parameters(), tc, tc.lr)
    d_lr = tc.lr
    opt_d = _optimizer(discriminator.parameters(), tc, d_lr) if discriminator else None
    ema = EMA(generator, tc.ema_decay)
    perceptual = None
    if config.losses.perceptual.weight > 0 and config.phase == "gan":
        if not config.losses.perceptual.weights_path:
            raise ValueError("losses.perceptual.weight > 0 needs losses.perceptual.weights_path")
        perceptual = PerceptualLoss(
            config.losses.perceptual.weights_path, config.losses.perceptual.layers
        ).to(device)
    scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None
    dtype = torch.float16 if tc.precision == "fp16" else torch.bfloat16
    options = StepOptions(
        autocast=lambda: torch.autocast(device.type, dtype=dtype, enabled=tc.precision != "fp32"),
        scaler=scaler,
        grad_clip=tc.grad_clip,
        sync_gradients=dist.average_gradients,
    )

    start, best_psnr, metrics = 0, -math.inf, {}
    resume_path = ckpt.latest_checkpoint(out) if str(resume) == "auto" else resume
    if resume_path is not None:
        state = ckpt.load_checkpoint(resume_path, map_location=device)
        generator.load_state_dict(state["generator"]["state_dict"])
        ema.load_state_dict(state["ema"], state["ema_updates"])
        opt_g.load_state_dict(state["optimizers"]["generator"])
        if discriminator is not None and opt_d is not None:
            if state["discriminator"] is None:
                raise ValueError(
                    f"{resume_path} has no discriminator (a pretrain checkpoint?); "
                    "use it as `pretrained` for the gan phase"
                )
            discriminator.load_state_dict(state["discriminator"]["state_dict"])
            opt_d.load_state_dict(state["optimizers"]["discriminator"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        start, best_psnr, metrics = state["step"], state["best_psnr"], state["metrics"]

    def save(path: Path, step: int) -> None:
        payload = {
            "format": ckpt.FORMAT,
            "medsr_version": __version__,
            "step": step,
            "config": config.to_dict(),
            "normalization": data.normalization,
            "split": data.split,
            "metrics": metrics,
            "best_psnr": best_psnr,
            "generator": {
                "name": config.model.name,
                "config": generator.config(),
                "state_dict": generator.state_dict(),
            },
            "discriminator": None
            if discriminator is None
            else {
                "name": config.discriminator.name,
                "config": discriminator.config(),
                "state_dict": discriminator.state_dict(),
            },
            "ema": ema.state_dict(),
            "ema_updates": ema.num_updates,
            "optimizers": {
                "generator": opt_g.state_dict(),
                "discriminator": None if opt_d is None else opt_d.state_dict(),
            },
            "scheduler": {"kind": tc.schedule, "step": step},
            "scaler": None if scaler is None else scaler.state_dict(),
            "rng": ckpt.rng_state(),
        }
        ckpt.save_atomic(payload, path)

    label = metric_label(config)
    log = MetricsLog(out) if info.is_main else None
    if info.is_main:
        print(
            f"medsr train: {config.name} phase {config.phase}, {data.split}; "
            f"metrics on {label}; output {out}"
        )
    loader = step_loader(
        data.train, start, tc.max_steps, tc.batch_size, info.rank, config.data.num_workers
    )
    bar = tqdm(
        total=tc.max_steps, initial=start, disable=not info.is_main, unit="step", mininterval=1.0
    )
    timer, train_time, ticked = time.perf_counter(), 0.0, start

    # ---------------------------------------------------------------- step
    for step, batch in enumerate(loader, start=start):
        for group in opt_g.param_groups:
            group["lr"] = learning_rate(step, tc, tc.lr)
        for group in opt_d.param_groups if opt_d else []:
            group["lr"] = learning_rate(step, tc, d_lr)
        low, high = batch["low"].to(device), batch["high"].to(device)
        generator.train()
        with options.autocast():
            fake = generator(low)
        logs: dict[str, float] = {"lr": opt_g.param_groups[0]["lr"]}
        if discriminator is not None and opt_d is not None:
            kind = config.losses.adversarial.kind
            logs |= discriminator_step(discriminator, opt_d, high, fake, kind, options)
        logs |= generator_step(
            generator, opt_g, fake, high, config.losses, options, discriminator, perceptual
        )
        if scaler is not None:
            scaler.update()
        for model in (generator, discriminator):
            if model is not None:
                dist.broadcast_state(model)
        ema.update(generator)
        train_time += time.perf_counter() - timer  # data + update; not evaluation
        done = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{logs['g_loss']:.4g}", refresh=False)

        # ------------------------------------------------------------ evaluate
        if log is not None and (done % intervals.log_every == 0 or done == tc.max_steps):
            rate = (done - ticked) * tc.batch_size * info.world_size / max(train_time, 1e-9)
            log.write("train", done, {**logs, "samples_per_s": rate})
            train_time, ticked = 0.0, done
        last = done == tc.max_steps
        validate = done % intervals.validate_every == 0 or last
        is_best = False
        if log is not None and validate:
            metrics, output_images, bicubic = evaluate(ema.model, data, config, device)
            log.write("validation", done, {f"{k} ({label})": v for k, v in metrics.items()})
            tqdm.write(
                f"step {done}: PSNR {metrics['psnr_model']:.2f} dB (bicubic "
                f"{metrics['psnr_bicubic']:.2f}), SSIM {metrics['ssim_model']:.4f} "
                f"(bicubic {metrics['ssim_bicubic']:.4f}) on {label}"
            )
            is_best = metrics["psnr_model"] > best_psnr
            best_psnr = max(best_psnr, metrics["psnr_model"])
            if done % intervals.sample_every == 0 or last:
                show = (0.0, 1.0)
                if config.evaluation.window:
                    w, norm = get_window(config.evaluation.window), data.normalization
                    show = tuple(
                        (v - norm["low"]) / (norm["high"] - norm["low"]) for v in (w.low, w.high)
                    )
                from medsr.viz.samples import save_sample_grid

                save_sample_grid(
                    out / "samples" / f"step_{done:08d}.png",
                    bicubic,
                    output_images,
                    data.validation_high,
                    show,
                    f"{config.name} step {done}: LR bicubic | output (EMA) | "
                    f"target | error; {label}",
                )

        # ------------------------------------------------------------ checkpoint
        if done % intervals.checkpoint_every == 0 or last or validate:
            if info.is_main:
                if done % intervals.checkpoint_every == 0 or last:
                    save(ckpt.step_path(out, done), done)
                    ckpt.prune_checkpoints(out, intervals.keep_last)
                if is_best:
                    save(out / ckpt.BEST_NAME, done)
            dist.barrier()
        timer = time.perf_counter()

    bar.close()
    if debug := os.environ.get(DEBUG_STATE_ENV):
        Path(debug).mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "generator": generator.state_dict(),
                "ema": ema.state_dict(),
                "discriminator": None if discriminator is None else discriminator.state_dict(),
            },
            Path(debug) / f"rank{info.rank}.pt",
        )
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
