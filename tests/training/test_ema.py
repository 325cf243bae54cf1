from __future__ import annotations

import pytest
import torch
from torch import nn

from medsr.training.ema import EMA


def test_ema_follows_the_formula() -> None:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9)
    assert ema.current_decay() == pytest.approx(0.1)  # warm-up: (1 + 0) / (10 + 0)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    assert float(ema.model.weight) == pytest.approx(0.9)
    for _ in range(200):
        ema.update(model)
    assert float(ema.model.weight) == pytest.approx(1.0, abs=1e-6)
    assert ema.current_decay() == pytest.approx(0.9)
    assert not ema.model.weight.requires_grad


def test_buffers_are_copied_and_state_round_trips() -> None:
    model = nn.BatchNorm1d(2)
    ema = EMA(model, decay=0.99)
    model.running_mean.fill_(3.0)
    ema.update(model)
    assert ema.model.running_mean.tolist() == [3.0, 3.0]
    other = EMA(nn.BatchNorm1d(2), decay=0.99)
    other.load_state_dict(ema.state_dict(), ema.num_updates)
    assert other.num_updates == 1 and other.model.running_mean.tolist() == [3.0, 3.0]
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)
