"""Training: one readable loop (`loop.train`), GAN step functions, checkpoints, EMA, torchrun.

from medsr.training import load_config, train
train(load_config("configs/srgan-ct-ldct-x4.yaml", ["training.max_steps=10"]))
"""

from __future__ import annotations

from medsr.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_generator,
    save_atomic,
)
from medsr.training.config import TrainConfig, config_from_dict, load_config
from medsr.training.ema import EMA
from medsr.training.gan import discriminator_step, generator_step
from medsr.training.loop import evaluate, learning_rate, train

__all__ = [
    "EMA",
    "TrainConfig",
    "config_from_dict",
    "discriminator_step",
    "evaluate",
    "generator_step",
    "latest_checkpoint",
    "learning_rate",
    "load_checkpoint",
    "load_config",
    "load_generator",
    "save_atomic",
    "train",
]
