"""Inference speed and memory: each generator of GENERATORS, PyTorch vs ONNX Runtime.

    python benchmarks/speed.py                      # table for BENCHMARKS.md
    python benchmarks/speed.py --memory-check       # 1024^2 -> 4096^2 radiograph, peak RSS

Each (architecture, output size, backend) runs in its own subprocess, so its peak resident
memory (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) is its own. Models have the sizes of
the shipped configs (configs/srgan-xray-x4.yaml, configs/esrgan-xray-x4.yaml) with random
weights (speed does not depend on the weights), run through `Predictor.enhance_array` with
the default 256-pixel tiles and 32-pixel overlap, on a random image. `--archs` also takes
shipped model names (`--archs xray-x4 ct-ldct-x4`): their real weights and scale. One
warm-up call on a 64 x 64 image, then the mean of `repeats` timed calls. The bicubic column is
`medsr.physics.resize.upsample(..., "bicubic")` on the same input in the same process.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"srresnet": "configs/srgan-xray-x4.yaml", "rrdbnet": "configs/esrgan-xray-x4.yaml"}
REPEATS = {512: 3, 1024: 2, 2048: 1}


def _checkpoint(arch: str, folder: Path) -> Path:
    from medsr._version import __version__
    from medsr.checkpoint import FORMAT, save_atomic
    from medsr.models import build_generator

    config = yaml.safe_load((ROOT / CONFIGS[arch]).read_text())
    spec = {k: v for k, v in config["model"].items() if k != "name"}
    torch.manual_seed(0)
    model = build_generator(arch, **spec)
    normalization = {"kind": "percentile", "percentiles": [0.5, 99.5], "unit": "[0, 1]"}
    payload = {
        "format": FORMAT,
        "medsr_version": __version__,
        "step": 0,
        "generator": {"name": arch, "config": model.config(), "state_dict": model.state_dict()},
        "ema": None,
        "config": {"name": f"random-{arch}", "data": config["data"]},
        "normalization": normalization,
    }
    return save_atomic(payload, folder / f"{arch}.pt")


def worker(arch: str, size: int, backend: str, threads: int, repeats: int) -> dict[str, float]:
    """Time one configuration in this process; returns seconds and peak RSS (MiB)."""
    from medsr.inference import Predictor
    from medsr.physics.resize import upsample

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        # An architecture name gets random weights; anything else is a shipped model or a file.
        source = str(_checkpoint(arch, Path(folder))) if arch in CONFIGS else arch
        predictor = Predictor.load(source, backend=backend)
    low = size // predictor.scale
    image = np.random.default_rng(0).random((low, low)).astype(np.float32)
    predictor.enhance_array(image[:64, :64])
    start = time.perf_counter()
    for _ in range(repeats):
        out = predictor.enhance_array(image)
    seconds = (time.perf_counter() - start) / repeats
    assert out.shape == (size, size)
    tensor = torch.from_numpy(image)
    start = time.perf_counter()
    for _ in range(max(repeats, 3)):
        upsample(tensor, max(predictor.scale, 1), "bicubic")
    bicubic = (time.perf_counter() - start) / max(repeats, 3)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"seconds": seconds, "bicubic_seconds": bicubic, "peak_rss_mib": peak_mib}


def run_subprocess(arch: str, size: int, backend: str, threads: int, repeats: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        arch,
        str(size),
        backend,
        "--threads",
        str(threads),
        "--repeats",
        str(repeats),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--archs",
        nargs="+",
        default=list(CONFIGS),
        help="architectures (random weights) or shipped model names / files",
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=list(REPEATS))
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=None, help="default: 3/2/1 by size")
    parser.add_argument("--skip", nargs="*", default=[], help="ARCH:SIZE pairs to leave out")
    parser.add_argument("--memory-check", action="store_true")
    parser.add_argument("--worker", nargs=3, metavar=("ARCH", "SIZE", "BACKEND"))
    args = parser.parse_args()
    if args.worker:
        arch, size, backend = args.worker
        print(json.dumps(worker(arch, int(size), backend, args.threads, args.repeats or 1)))
        return
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} threads, Python {platform.python_version()}"
    )
    if args.memory_check:
        stats = run_subprocess("srresnet", 4096, "torch", args.threads, 1)
        verdict = "PASS" if stats["peak_rss_mib"] < 2048 else "FAIL"
        print(
            f"srresnet 1024^2 -> 4096^2 (torch, 256 tiles): {stats['seconds']:.1f} s, "
            f"peak RSS {stats['peak_rss_mib']:.0f} MiB ({verdict}: < 2048 MiB)"
        )
        return
    print(
        "| model | output | backend | images/s | output MP/s | s/image | bicubic s | "
        "model / bicubic | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for arch in args.archs:
        for size in args.sizes:
            if f"{arch}:{size}" in args.skip:
                print(f"| {arch} | {size}^2 | - | skipped | | | | | |")
                continue
            for backend in args.backends:
                repeats = args.repeats or REPEATS.get(size, 1)
                s = run_subprocess(arch, size, backend, args.threads, repeats)
                print(
                    f"| {arch} | {size}^2 | {backend} | {1 / s['seconds']:.3g} | "
                    f"{size * size / 1e6 / s['seconds']:.3g} | {s['seconds']:.3g} | "
                    f"{s['bicubic_seconds']:.2g} | {s['seconds'] / s['bicubic_seconds']:.0f} | "
                    f"{s['peak_rss_mib']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
