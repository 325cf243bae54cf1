"""Turn a training checkpoint into a small file to ship: generator weights and provenance only.

    python -m medsr.training.release runs/NAME/step_00003000.pt src/medsr/weights/NAME.pt \
        --name NAME [--raw]

The release keeps the checkpoint format (`medsr-checkpoint/1`), so `Predictor.load` and
`load_generator` read it unchanged, but drops the discriminator, optimisers and RNG states
and stores the EMA weights (unless `--raw`) as the generator's. It adds a `training` record
(steps, samples seen, wall time summed from the run's `train.csv`, machine) for the model card.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
from pathlib import Path
from typing import Any

import torch

from medsr.checkpoint import load_checkpoint, save_atomic


def training_record(run_folder: Path, batch_size: int, up_to_step: int) -> dict[str, Any]:
    """Steps and wall seconds of a run up to `up_to_step`, from its `train.csv` (logged every
    N steps), so a checkpoint taken mid-run is credited only with the time it had."""
    path = run_folder / "train.csv"
    record: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    if not path.is_file():
        return record
    with path.open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    seconds, previous = 0.0, 0
    for row in rows:
        step = int(row["step"])
        if step > up_to_step:
            break
        rate = float(row["samples_per_s"])
        if rate > 0:
            seconds += (step - previous) * batch_size / rate
        previous = step
    return {**record, "logged_steps": previous, "train_seconds": round(seconds)}


def release(source: Path, destination: Path, name: str, use_ema: bool = True) -> Path:
    """Write the slim release of checkpoint `source` to `destination` (never overwrites)."""
    if destination.exists():
        raise FileExistsError(f"will not overwrite {destination}")
    payload = load_checkpoint(source)
    generator = dict(payload["generator"])
    if use_ema and payload.get("ema") is not None:
        generator["state_dict"] = payload["ema"]
    config = dict(payload.get("config") or {})
    config["name"] = name
    batch_size = int(config.get("training", {}).get("batch_size", 1))
    slim = {
        "format": payload["format"],
        "medsr_version": payload.get("medsr_version"),
        "step": payload.get("step"),
        "generator": generator,
        "discriminator": None,
        "ema": None,
        "config": config,
        "normalization": payload.get("normalization"),
        "training": {
            "source_checkpoint": source.name,
            "weights": "ema" if use_ema and payload.get("ema") is not None else "raw",
            **training_record(source.parent, batch_size, int(payload.get("step") or 0)),
        },
    }
    destination.parent.mkdir(parents=True, exist_ok=True)
    return save_atomic(slim, destination)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--raw", action="store_true", help="ship the raw, not the EMA, weights")
    arguments = parser.parse_args()
    path = release(arguments.source, arguments.destination, arguments.name, not arguments.raw)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({size:.1f} MB, step {torch.load(path, weights_only=True)['step']})")


if __name__ == "__main__":
    main()
