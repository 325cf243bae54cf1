"""Self-ensemble distillation: a fixed teacher's flip / turn average as part of the target.

`--ensemble` (EDSR's self-ensemble, `medsr.inference.ensemble`) gains about 0.1 dB on real
low-dose CT for 8x the time. Distillation tries to move that gain into the one-pass model
(`ct-ldct`'s sixteenth-session fine-tune: +0.02 / +0.03 dB on L143 in 3000 steps, its card):
the generator's pixel target becomes `(1 - weight) * high + weight * T(low)`, with `T` a fixed
teacher (a checkpoint or released model of the same architecture) averaged over
`transforms` of the 8 flips / quarter turns of its input (`medsr.image.dihedral`), drawn
per step from the run's seed and the step, so a resumed run draws the same ones; the teacher
runs in float32 whatever the step's precision. Averaged
over steps, a random subset is an unbiased estimate of the full 8-way average, so the
expected target is the full self-ensemble's at a fraction of its cost. The MSE to a blend
is, up to a constant, the same blend of the MSE to each, so `weight` splits the loss between
the true image (whose own noise the model cannot predict) and the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medsr.image import NUM_DIHEDRAL, dihedral, seeded_generator, undo_dihedral
from medsr.models import Configurable
from medsr.training.config import TrainConfig
from medsr.training.state import build_configured_generator, load_pretrained

# keys the draws apart from the data pipeline's, which also seed from the run's seed
_DRAW_KEY = 0xD157


@dataclass
class Teacher:
    """A frozen generator and how much of the target its self-ensemble makes."""

    model: Configurable
    weight: float
    transforms: int
    seed: int

    @classmethod
    def from_config(cls, config: TrainConfig, device: torch.device) -> Teacher | None:
        """The teacher that `losses.distillation` names (None when `teacher` is null); its
        weights load as `initial_weights` do (EMA, else raw; same architecture)."""
        settings = config.losses.distillation
        if settings.teacher is None:
            return None
        if not 0.0 < settings.weight <= 1.0:
            raise ValueError(f"losses.distillation.weight must be in (0, 1], got {settings.weight}")
        if not 1 <= settings.transforms <= NUM_DIHEDRAL:
            raise ValueError(
                f"losses.distillation.transforms must be in 1..{NUM_DIHEDRAL}, "
                f"got {settings.transforms}"
            )
        model = build_configured_generator(config)
        load_pretrained(model, config, settings.teacher)
        model.to(device).eval().requires_grad_(False)
        return cls(model, settings.weight, settings.transforms, config.seed)

    def transforms_at(self, step: int) -> list[int]:
        """The dihedral ops (0..7) of `step`: all 8 when `transforms` is 8, else a draw."""
        if self.transforms == NUM_DIHEDRAL:
            return list(range(NUM_DIHEDRAL))
        draw = torch.randperm(NUM_DIHEDRAL, generator=seeded_generator(self.seed, _DRAW_KEY, step))
        return sorted(int(op) for op in draw[: self.transforms])

    @torch.no_grad()
    def ensemble(self, low: torch.Tensor, step: int) -> torch.Tensor:
        """The teacher's output on `low`, averaged over `transforms_at(step)` (float32)."""
        ops = self.transforms_at(step)
        total = sum(undo_dihedral(self.model(dihedral(low, op)).float(), op) for op in ops)
        assert isinstance(total, torch.Tensor)
        return total / len(ops)

    def target(self, low: torch.Tensor, high: torch.Tensor, step: int) -> torch.Tensor:
        """`high` blended with the teacher's ensemble: `(1 - weight) * high + weight * T`."""
        return torch.lerp(high.float(), self.ensemble(low, step), self.weight)
