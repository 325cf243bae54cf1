"""What every degradation returns, and the call shape datasets rely on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


@dataclass
class DegradedPair:
    """A training pair made from one real high-quality image.

    `low` is what the scanner would give (noisier and/or on a coarser grid), `high` the
    target; both `(C, H, W)` float32 in the image's own unit (HU for CT). `params` holds every
    parameter used, drawn ones included, so the pair can be reproduced and logged.
    `noisy`, for tasks that add noise on the high grid before downsampling, is that noisy
    image (e.g. the low-dose CT at full resolution), so the noise alone can be shown.
    `guide`, for guided tasks, is a second model input on the high grid `(C, H, W)` in its own
    unit (for `petct`: the CT in HU, while `low` and `high` are PET in SUV).
    """

    low: torch.Tensor
    high: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)
    noisy: torch.Tensor | None = None
    guide: torch.Tensor | None = None


class Degradation(Protocol):
    """`degradation(high, spacing_mm, generator) -> DegradedPair`.

    `high` is `(C, H, W)` in the image's unit, `spacing_mm` its in-plane pixel spacing;
    all randomness comes from `generator`, so a fixed seed gives the same pair.
    """

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair: ...
