"""Training speed of every shipped config on this machine: samples/s, pretrain and GAN phase.

    python benchmarks/train_speed.py [--steps 3] [--batch-size N] [--threads 1] [--bf16]
        [--configs NAME ...] [--phases pretrain gan] [--set KEY=VALUE ...]

Runs the real loop (`medsr.training.train`) with each config's model, patch size, batch and
precision (as shipped unless `--batch-size` / `--bf16` / `--fp32` say otherwise) for
`--warmup` + `--steps` steps and reports the mean of the logged samples/s over the timed
steps (data + forward + backward + update; validation and checkpoints excluded). The GAN
phase starts from the pretrain run's checkpoint. For `ldct*` and `petct` configs the noise
bank is built once (cached in the config's `data.cache_dir`, `--bank-size` realisations per
slice), which is setup time and is reported in its own column, not in samples/s. `--set`
overrides go to every config (e.g. fewer source slices, to keep a bank's setup short).

To compare two versions of the code in one run, call it once per version and config,
alternating, with `PYTHONPATH=<other checkout>/src` for the other version (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

import medsr
from medsr.training import load_config, train

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(path.stem for path in (ROOT / "configs").glob("*.yaml"))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    cores = len(os.sched_getaffinity(0))
    return (
        f"{cpu}, {torch.get_num_threads()} torch threads ({cores} cores visible), "
        f"torch {torch.__version__}, {device}"
    )


def run(
    name: str, phase: str, args: argparse.Namespace, out: Path, pretrained: Path | None
) -> tuple[float, float, Path]:
    steps = args.warmup + args.steps
    overrides = [
        f"phase={phase}",
        f"training.max_steps={steps}",
        "training.warmup_steps=0",
        "intervals.log_every=1",
        f"intervals.validate_every={steps}",
        f"intervals.checkpoint_every={steps}",
        "data.num_validation=4",
        f"data.noise_bank_size={args.bank_size}",
        f"num_threads={args.threads}",
        *args.set,
    ]
    if args.precision:
        overrides.append(f"training.precision={args.precision}")
    if args.batch_size:
        overrides.append(f"training.batch_size={args.batch_size}")
    if pretrained is not None:
        overrides.append(f"pretrained={pretrained}")
    config = load_config(ROOT / "configs" / f"{name}.yaml", overrides)
    start = time.perf_counter()
    result = train(config, out)
    total = time.perf_counter() - start
    with (out / "train.csv").open() as stream:
        rows = list(csv.DictReader(stream))[args.warmup :]
    rate = sum(float(r["samples_per_s"]) for r in rows) / len(rows)
    step_time = config.training.batch_size / rate
    setup = total - step_time * steps  # data, noise bank, models, validation, checkpoints
    return rate, setup, result["checkpoint"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--bank-size", type=int, default=1)
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument(
        "--bf16", dest="precision", action="store_const", const="bf16", help="bf16 autocast"
    )
    precision.add_argument("--fp32", dest="precision", action="store_const", const="fp32")
    parser.add_argument("--configs", nargs="*", default=CONFIGS)
    parser.add_argument("--phases", nargs="*", default=["pretrain", "gan"])
    parser.add_argument("--set", nargs="*", default=[], help="KEY=VALUE for every config")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = [
        f"Machine: {machine()}; medsr from {Path(medsr.__file__).parents[1]}",
        "",
        "| config | phase | model | patch | batch | precision | samples/s | setup s | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            pretrained = None
            for phase in args.phases:
                extra = [f"training.precision={args.precision}"] if args.precision else []
                path = ROOT / "configs" / f"{name}.yaml"
                config = load_config(path, [f"phase={phase}", *args.set, *extra])
                load = os.getloadavg()[0]
                rate, setup, pretrained = run(
                    name, phase, args, Path(tmp) / f"{name}-{phase}", pretrained
                )
                batch = args.batch_size or config.training.batch_size
                model = f"{config.model.name} {config.model.kwargs.get('num_blocks')} blocks"
                if phase == "gan":
                    model += f" + {config.discriminator.name}"
                lines.append(
                    f"| {name} | {phase} | {model} | {config.data.patch_size} | "
                    f"{batch} | {config.training.precision} | {rate:.2f} | "
                    f"{setup:.0f} | {load:.1f} |"
                )
                print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
