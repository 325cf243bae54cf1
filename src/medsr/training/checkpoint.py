"""Training checkpoints: the payload of a run's state, resuming it, keep-last-K + best, and
the global RNG states.

The file format, atomic writes and rebuilding a model from a file belong to
`medsr.checkpoint` (below training and inference), re-exported here for the loop:
`save_atomic`, `load_checkpoint`, `load_generator`, `FORMAT`.
"""

from __future__ import annotations

import math
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsr._version import __version__
from medsr.checkpoint import FORMAT, load_checkpoint, load_generator, save_atomic
from medsr.training.config import TrainConfig
from medsr.training.state import TrainState

__all__ = [
    "BEST_NAME",
    "FORMAT",
    "clean_partial",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_generator",
    "prune_checkpoints",
    "restore",
    "resume",
    "rng_state",
    "save_atomic",
    "save_checkpoints",
    "set_rng_state",
    "step_path",
    "training_payload",
]

STEP_PATTERN = re.compile(r"^step_(\d{8})\.pt$")
PARTIAL_PATTERN = re.compile(r"^\.(step_\d{8}|best)\.pt\..+\.tmp$")
"""The temporary files of `save_atomic` (`.step_00001000.pt.<random>.tmp`): what a run
killed while saving leaves behind."""
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


def save_checkpoints(
    payload: dict[str, Any], folder: Path, step: int, due: bool, is_best: bool, keep_last: int
) -> None:
    """`payload` as `step_<step>.pt` when `due` (keeping the newest `keep_last`), and as
    `best.pt` when `is_best`."""
    if due:
        save_atomic(payload, step_path(folder, step))
        prune_checkpoints(folder, keep_last)
    if is_best:
        save_atomic(payload, folder / BEST_NAME)


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


def _model_spec(name: str, model: Any) -> dict[str, Any]:
    return {"name": name, "config": model.config(), "state_dict": model.state_dict()}


def training_payload(
    state: TrainState,
    config: TrainConfig,
    step: int,
    normalization: dict[str, Any],
    split: str,
    metrics: dict[str, float],
    best_psnr: float,
) -> dict[str, Any]:
    """Everything `restore` needs to continue bit-identically after `step` steps, plus what
    inference reads (generator spec, EMA weights, normalisation, config, split statement)."""
    d, opt_d, scaler = state.discriminator, state.opt_d, state.scaler
    return {
        "format": FORMAT,
        "medsr_version": __version__,
        "step": step,
        "config": config.to_dict(),
        "normalization": normalization,
        "split": split,
        "metrics": metrics,
        "best_psnr": best_psnr,
        "generator": _model_spec(config.model.name, state.generator),
        "discriminator": None if d is None else _model_spec(config.discriminator.name, d),
        "ema": state.ema.state_dict(),
        "ema_updates": state.ema.num_updates,
        "optimizers": {
            "generator": state.opt_g.state_dict(),
            "discriminator": None if opt_d is None else opt_d.state_dict(),
        },
        "scheduler": {"kind": config.training.schedule, "step": step},
        "scaler": None if scaler is None else scaler.state_dict(),
        "rng": rng_state(),
    }


def restore(
    state: TrainState, payload: dict[str, Any], path: str | Path
) -> tuple[int, float, dict[str, float]]:
    """Load a `training_payload` into `state` and the global RNGs; returns its `(step,
    best_psnr, metrics)`. A pretrain checkpoint cannot resume the gan phase."""
    state.generator.load_state_dict(payload["generator"]["state_dict"])
    state.ema.load_state_dict(payload["ema"], payload["ema_updates"])
    state.opt_g.load_state_dict(payload["optimizers"]["generator"])
    if state.discriminator is not None and state.opt_d is not None:
        if payload["discriminator"] is None:
            raise ValueError(
                f"{path} has no discriminator (a pretrain checkpoint?); "
                "use it as `pretrained` for the gan phase"
            )
        state.discriminator.load_state_dict(payload["discriminator"]["state_dict"])
        state.opt_d.load_state_dict(payload["optimizers"]["discriminator"])
    if state.scaler is not None and payload.get("scaler"):
        state.scaler.load_state_dict(payload["scaler"])
    set_rng_state(payload["rng"])
    return payload["step"], payload["best_psnr"], payload["metrics"]


def clean_partial(folder: str | Path) -> list[Path]:
    """Delete the temporary checkpoint files of runs killed while saving (`PARTIAL_PATTERN`);
    returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = [p for p in folder.iterdir() if PARTIAL_PATTERN.match(p.name)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def resume(
    state: TrainState, resume: str | Path | None, folder: Path, device: torch.device
) -> tuple[int, float, dict[str, float]]:
    """`(step, best_psnr, metrics)` to start from: `(0, -inf, {})` for a fresh start, else
    those of checkpoint `resume`, restored. `"auto"`: the latest readable checkpoint in
    `folder` (one that cannot be read, e.g. truncated by a full disk, is passed over with
    a warning; ValueError when there are checkpoints and none can be read). Temporary files
    of killed saves are deleted first (`clean_partial`)."""
    clean_partial(folder)
    if str(resume) != "auto":
        if resume is None:
            return 0, -math.inf, {}
        return restore(state, load_checkpoint(resume, map_location=device), resume)
    found = list_checkpoints(folder)
    for _, path in reversed(found):
        try:
            payload = load_checkpoint(path, map_location=device)
        except Exception as error:  # torch.load: RuntimeError, EOFError, UnpicklingError
            problem = str(error).strip().splitlines()[0] if str(error).strip() else ""
            warnings.warn(
                f"{path} cannot be read ({type(error).__name__}: {problem[:200]}); "
                "resuming from the checkpoint before it",
                stacklevel=2,
            )
            continue
        return restore(state, payload, path)
    if found:
        raise ValueError(f"no readable checkpoint in {folder} ({len(found)} found, all damaged)")
    return 0, -math.inf, {}
