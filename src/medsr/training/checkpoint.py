"""Training checkpoints: keep-last-K + best, resuming, and the global RNG states.

The file format, atomic writes and rebuilding a model from a file belong to
`medsr.checkpoint` (below training and inference), re-exported here for the loop:
`save_atomic`, `load_checkpoint`, `load_generator`, `FORMAT`.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsr.checkpoint import FORMAT, load_checkpoint, load_generator, save_atomic

__all__ = [
    "BEST_NAME",
    "FORMAT",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_generator",
    "prune_checkpoints",
    "rng_state",
    "save_atomic",
    "set_rng_state",
    "step_path",
]

STEP_PATTERN = re.compile(r"^step_(\d{8})\.pt$")
BEST_NAME = "best.pt"


def step_path(folder: str | Path, step: int) -> Path:
    """`folder/step_00001234.pt`."""
    return Path(folder) / f"step_{step:08d}.pt"


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """`(step, path)` of the `step_*.pt` files in `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_PATTERN.match(p.name))]
    return sorted(found)


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The `step_*.pt` with the highest step in `folder`, or None."""
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def prune_checkpoints(folder: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` step checkpoints (never `best.pt`)."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1, got {keep_last}")
    removed = [p for _, p in list_checkpoints(folder)[:-keep_last]]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def rng_state() -> dict[str, Any]:
    """Every global RNG state, as tensors and plain values (loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by `rng_state` (CUDA only where saved and available)."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
