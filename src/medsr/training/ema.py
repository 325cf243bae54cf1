"""Exponential moving average of a model's weights (Polyak averaging; used by ESRGAN and
most SR training code to validate and ship smoother weights than the last step's)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """`ema = d * ema + (1 - d) * weights` after every step; buffers (e.g. batch-norm
    statistics) are copied. The decay warms up as `min(decay, (1 + n) / (10 + n))` after `n`
    updates, so early weights (random init) are forgotten quickly.

    Args:
        model: the model to average; a frozen copy of it is kept in `self.model`.
        decay: d in [0, 1); 0 makes the EMA a copy of the last weights.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._parameters = {name for name, _ in model.named_parameters()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Average in the current weights of `model` (same architecture)."""
        decay = self.current_decay()
        self.num_updates += 1
        ema_state = self.model.state_dict()
        for name, value in model.state_dict().items():
            target = ema_state[name]
            if name in self._parameters:
                target.lerp_(value.detach().to(target.dtype), 1.0 - decay)
            else:
                target.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any], num_updates: int) -> None:
        self.model.load_state_dict(state)
        self.num_updates = num_updates
