"""Training checkpoints: atomic writes, keep-last-K + best, and rebuilding a model from a file.

A checkpoint is a dict saved with `torch.save` and read with `weights_only=True` (tensors,
numbers, strings, lists and dicts only; no pickled classes):

| key | content |
|---|---|
| `format`, `medsr_version`, `step` | `"medsr-checkpoint/1"`, the writer's version, steps done |
| `generator`, `discriminator` | `{"name", "config", "state_dict"}` (no discriminator: None) |
| `ema` | state dict of the EMA generator (the weights validated and used for inference) |
| `optimizers`, `scaler` | optimiser states (`generator`, `discriminator`), fp16 grad scaler |
| `scheduler` | `{"kind": ..., "step": ...}`: the lr is a pure function of the step |
| `rng` | torch CPU (and CUDA) generator states, numpy and python `random` states |
| `config`, `normalization`, `split` | full config dict, intensity mapping, split statement |
| `metrics`, `best_psnr` | last validation metrics, best validation PSNR so far |

`load_generator(path)` rebuilds the generator from the file alone.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsr.models import Configurable, build_generator

FORMAT = "medsr-checkpoint/1"
STEP_PATTERN = re.compile(r"^step_(\d{8})\.pt$")
BEST_NAME = "best.pt"


def step_path(folder: str | Path, step: int) -> Path:
    """`folder/step_00001234.pt`."""
    return Path(folder) / f"step_{step:08d}.pt"


def save_atomic(payload: dict[str, Any], path: str | Path) -> Path:
    """`torch.save` to a temporary file in the same folder, then `os.replace` onto `path`,
    so a crash never leaves a partial checkpoint under the final name (nor a temp file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes 0600 files
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


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


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (`weights_only=True`) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a medsr training checkpoint ({FORMAT})")
    return payload


def load_generator(path: str | Path, use_ema: bool = True) -> Configurable:
    """Rebuild the generator of a checkpoint from the file alone, in eval mode.

    `use_ema` loads the EMA weights (those validated and kept as best), else the raw ones.
    The intensity mapping the model expects is `load_checkpoint(path)["normalization"]`.
    """
    payload = load_checkpoint(path)
    spec = payload["generator"]
    model = build_generator(spec["name"], **spec["config"])
    state = payload["ema"] if use_ema and payload.get("ema") is not None else spec["state_dict"]
    model.load_state_dict(state)
    return model.eval()
