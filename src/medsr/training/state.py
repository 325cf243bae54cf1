"""What a training run updates, built from its config: the generator (and, in the GAN phase,
the discriminator, starting from the pretrained generator), their optimisers, the EMA of the
generator and the fp16 gradient scaler. The loop steps it; `training/checkpoint.py` saves
and restores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from medsr.checkpoint import load_checkpoint
from medsr.models import Configurable, build_discriminator, build_generator
from medsr.training import distributed as dist
from medsr.training.config import TrainConfig, TrainingConfig
from medsr.training.ema import EMA


def make_optimizer(params: Any, config: TrainingConfig) -> torch.optim.Optimizer:
    """Adam or AdamW at `config.lr` (the loop sets each step's rate)."""
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    betas = (config.betas[0], config.betas[1])
    return cls(params, lr=config.lr, betas=betas, weight_decay=config.weight_decay)


def load_pretrained(generator: Configurable, config: TrainConfig, path: str | None) -> None:
    """The EMA (else raw) weights of the checkpoint at `path` into `generator`, which must be
    the same architecture with the same constructor arguments."""
    if not path:
        raise ValueError("phase gan needs `pretrained`: a checkpoint of the pretrain phase")
    pretrained = load_checkpoint(path)
    spec = pretrained["generator"]
    if spec["name"] != config.model.name or spec["config"] != generator.config():
        raise ValueError(
            f"pretrained generator {spec['name']} {spec['config']} differs "
            f"from model {config.model.name} {generator.config()}"
        )
    generator.load_state_dict(pretrained["ema"] or spec["state_dict"])


def build_configured_generator(config: TrainConfig) -> Configurable:
    """A fresh generator as `config.model` says, at the data's scale (the model section may
    state it too)."""
    model_args = {"scale": config.data.scale, **config.model.kwargs}
    return build_generator(config.model.name, **model_args)


@dataclass
class TrainState:
    """The models, optimisers, EMA and scaler of a run (discriminator only in phase gan)."""

    generator: Configurable
    opt_g: torch.optim.Optimizer
    ema: EMA
    discriminator: Configurable | None = None
    opt_d: torch.optim.Optimizer | None = None
    scaler: torch.amp.GradScaler | None = None

    @classmethod
    def build(cls, config: TrainConfig, device: torch.device) -> TrainState:
        """Fresh models on `device` (the same initial weights on every rank: the loop seeds
        torch alike everywhere, and rank 0's are broadcast)."""
        tc = config.training
        generator = build_configured_generator(config).to(device)
        discriminator = None
        if config.phase == "pretrain" and config.initial_weights:
            # a warm start: the optimiser and schedule start afresh
            load_pretrained(generator, config, config.initial_weights)
        if config.phase == "gan":
            load_pretrained(generator, config, config.pretrained)
            kwargs = config.discriminator.kwargs
            discriminator = build_discriminator(config.discriminator.name, **kwargs).to(device)
        for model in (generator, discriminator):
            if model is not None:
                dist.broadcast_state(model, parameters=True)
        opt_g = make_optimizer(generator.parameters(), tc)
        opt_d = make_optimizer(discriminator.parameters(), tc) if discriminator else None
        ema = EMA(generator, tc.ema_decay)
        scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None
        return cls(generator, opt_g, ema, discriminator, opt_d, scaler)

    def models(self) -> Iterator[Configurable]:
        yield self.generator
        if self.discriminator is not None:
            yield self.discriminator

    def set_learning_rate(self, lr: float, discriminator_ratio: float = 1.0) -> None:
        """The optimisers' rates for the coming step: `lr` for the generator, `lr` times
        `discriminator_ratio` for the discriminator."""
        for optimizer, rate in ((self.opt_g, lr), (self.opt_d, lr * discriminator_ratio)):
            for group in optimizer.param_groups if optimizer is not None else []:
                group["lr"] = rate
