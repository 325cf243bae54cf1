"""Inference speed and memory of every shipped model, against baselines timed in the same run.

    .venv/bin/python benchmarks/speed.py                 # the table in BENCHMARKS.md
    .venv/bin/python benchmarks/speed.py --models xray-x4 --threads 2

Every model of the registry (`medsr.inference.registry.MODELS`) at the sizes of issue 17:
x4 128->512 and 512->2048, x2 256->512, x1 512^2 (the CT fusion model 128->512 PET on a
512^2 CT). Each (model, size) runs in its own subprocess, so the peak resident memory
(`ru_maxrss`) is its own. In that process, interleaved `--repeats` times (one fewer for
2048^2 outputs) so that a machine busy with other work slows all of them alike:

* `default`: `Predictor.load(name)` and `enhance_array` with their defaults (what
  `medsr enhance` and the web app get: `tile_size="auto"`, precision "auto");
* `old` (outputs up to `--old-up-to` pixels a side, and the `--old` pairs): the previous
  default, float32 NCHW, 256-pixel tiles with 32-pixel overlap, one tile
  per call (`Predictor.load(name, precision="fp32")`, a plain `TorchRunner` without
  channels-last, `tile_size=256`);
* a plain `2048 x 2048` float32 matmul (`2 n^3` FLOP) and bicubic upsampling of the same
  input (`medsr.physics.resize.upsample`).

Medians are reported. GFLOP are counted by `torch.utils.flop_counter.FlopCounterMode` on a
64 x 64 input and scaled by the pixel count (the networks are fully convolutional), so
GFLOP/s is the model's useful arithmetic rate (bf16 counts the same FLOPs). `% matmul` is
that rate over the matmul's, the ratio issue 17 asks >= 40 % of. The input is a smooth
random image in the model's intensity range. The load average is printed before and after:
on a busy machine the absolute times are slower than on an idle one, the ratios less so.
`--memory` adds the issue-13 check: xray-x4 1024^2 -> 4096^2 through `Predictor.enhance`
(with and without the consistency map), peak RSS against the 2 GB target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MATMUL_N = 2048
TARGETS = {("xray-x4", 128): 0.060, ("xray-x4", 512): 1.5, ("ct-ldct", 512): 0.4}
"""Issue 17's targets, seconds per image: (model, input side) -> seconds."""


def sizes_for(scale: int) -> list[int]:
    """Input sides for a model of `scale`: x4 128 and 512, x2 256, x1 512."""
    return {4: [128, 512], 2: [256], 1: [512]}.get(scale, [128])


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _image(side: int, low: float, high: float) -> np.ndarray:
    """A smooth random image (low frequencies plus a little noise) spanning [low, high]."""
    rng = np.random.default_rng(0)
    coarse = rng.random((side // 16 + 2, side // 16 + 2))
    smooth = np.kron(coarse, np.ones((16, 16)))[:side, :side]
    image = 0.9 * smooth + 0.1 * rng.random((side, side))
    return (low + (high - low) * image).astype(np.float32)


def _flops(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], pixels: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(*inputs)
    probe_pixels = inputs[0].shape[-1] * inputs[0].shape[-2]
    return counter.get_total_flops() * pixels / probe_pixels


def _single_input(
    name: str, side: int, with_old: bool = True
) -> tuple[dict[str, Callable[[], object]], float, str]:
    """Calls to time (default, old) for model `name` on a `side`^2 input, its FLOP, engine."""
    from medsr.inference import Predictor
    from medsr.inference.runner import TorchRunner

    default = Predictor.load(name)
    old = Predictor.load(name, precision="fp32")
    old.run = TorchRunner(old.run.model, precision="fp32", channels_last=False)  # type: ignore[attr-defined]
    task = default.task
    low, high = (0.0, 4000.0) if task.startswith("xray") else (-1000.0, 1500.0)
    image = _image(side, low, high)
    channels = int(getattr(default.run.model, "in_channels", 1))  # type: ignore[attr-defined]
    model = default.run.model.float().to(memory_format=torch.contiguous_format)  # type: ignore[attr-defined]
    flops = _flops(model, (torch.rand(1, channels, 64, 64),), side * side)
    default.run.model.to(memory_format=torch.channels_last)  # type: ignore[attr-defined]
    calls: dict[str, Callable[[], object]] = {"default": lambda: default.enhance_array(image)}
    default.enhance_array(image[:64, :64])
    if with_old:
        calls["old"] = lambda: old.enhance_array(image, tile_size=256, overlap=32)
        old.enhance_array(image[:64, :64], tile_size=256, overlap=32)
    return calls, flops, default.engine


def _fusion(
    name: str, side: int, with_old: bool = False
) -> tuple[dict[str, Callable[[], object]], float, str]:
    """The CT-guided PET model: PET `side`^2 -> `scale * side`^2 on a CT of that size."""
    from torch.utils.flop_counter import FlopCounterMode

    from medsr.inference.fusion import FusionPredictor

    predictor = FusionPredictor.load(name)
    s = predictor.scale
    ct, pet = _image(side * s, -1000.0, 1500.0), _image(side, 0.5, 8.0)
    with FlopCounterMode(display=False) as counter:
        predictor.fuse_array(ct[:64, :64], pet[: 64 // s, : 64 // s])
    flops = counter.get_total_flops() * (side * s) ** 2 / 64**2
    calls: dict[str, Callable[[], object]] = {"default": lambda: predictor.fuse_array(ct, pet)}
    return calls, flops, "torch on cpu, float32 NCHW (FusionPredictor, whole image)"


def worker(
    name: str, side: int, threads: int, repeats: int, with_old: bool = True
) -> dict[str, object]:
    """Time model `name` at input `side` in this process (module doc)."""
    from medsr.inference.registry import MODELS
    from medsr.physics.resize import upsample

    torch.set_num_threads(threads)
    entry = MODELS[name]
    make = _fusion if entry.task == "petct" else _single_input
    calls, flops, engine = make(name, side, with_old)
    scale = 4 if entry.task == "petct" else _scale(name)
    a = torch.rand(MATMUL_N, MATMUL_N)
    a @ a
    tensor = torch.from_numpy(_image(side, 0.0, 1.0))
    times: dict[str, list[float]] = {key: [] for key in (*calls, "matmul", "bicubic")}
    for _ in range(repeats):
        times["matmul"].append(_timed(lambda: a @ a))
        for key, call in calls.items():
            times[key].append(_timed(call))
        times["bicubic"].append(_timed(lambda: upsample(tensor, max(scale, 1), "bicubic")))
    median = {key: float(np.median(values)) for key, values in times.items()}
    return {
        "seconds": median,
        "flops": flops,
        "matmul_gflops": 2 * MATMUL_N**3 / median["matmul"] / 1e9,
        "engine": engine,
        "peak_rss_mib": _peak_mib(),
        "scale": scale,
    }


def _scale(name: str) -> int:
    from medsr.checkpoint import read_checkpoint
    from medsr.inference.registry import MODELS

    return int(read_checkpoint(MODELS[name].path).image_model(True)[1].scale)


def memory_worker(threads: int, consistency: bool) -> dict[str, object]:
    """xray-x4, 1024^2 -> 4096^2 through `Predictor.enhance` (the CLI/web call), optionally
    with the consistency map: seconds and peak RSS of this process."""
    from medsr.image import Volume
    from medsr.inference import Predictor

    torch.set_num_threads(threads)
    predictor = Predictor.load("xray-x4")
    volume = Volume(_image(1024, 0.0, 4000.0), spacing=(0.5, 0.5), modality="DX", unit="a.u.")
    start = time.perf_counter()
    out = predictor.enhance(volume)
    if consistency:
        from medsr.inference.consistency import consistency_map

        consistency_map(volume.array, out.array, predictor.task, predictor.scale)
    seconds = time.perf_counter() - start
    plan = predictor.plan((1024, 1024), "auto", 32)
    return {"seconds": seconds, "peak_rss_mib": _peak_mib(), "plan": list(plan)}


def _subprocess(arguments: list[str]) -> dict:
    command = [sys.executable, __file__, *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def main() -> None:
    from medsr.hardware import native_bf16
    from medsr.inference.registry import MODELS, available_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None, help="default: every shipped one")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="add the 4096^2 RSS check")
    parser.add_argument(
        "--old-up-to",
        type=int,
        default=1024,
        help="time the old path only for outputs up to this side (it is slow), and for "
        "MODEL:SIDE pairs given in --old",
    )
    parser.add_argument("--old", nargs="*", default=["xray-x4:512"])
    parser.add_argument("--no-old", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "SIDE"))
    parser.add_argument("--memory-worker", choices=("plain", "consistency"))
    args = parser.parse_args()
    if args.worker:
        name, side = args.worker
        result = worker(name, int(side), args.threads, args.repeats, not args.no_old)
        print(json.dumps(result))
        return
    if args.memory_worker:
        print(json.dumps(memory_worker(args.threads, args.memory_worker == "consistency")))
        return
    models = args.models or available_models()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
        f"{args.threads} thread(s), hardware bf16: {native_bf16()}, Python "
        f"{platform.python_version()}; {args.repeats} interleaved repeats, medians"
    )
    print(f"before: {_load()}")
    print(
        "\n| model | in -> out | default s | old s | old / default | GFLOP | GFLOP/s | "
        "% matmul | / bicubic | matmul GFLOP/s | peak RSS MiB | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    engines: dict[str, str] = {}
    for name in models:
        scale = 4 if MODELS[name].task == "petct" else _scale(name)
        for side in sizes_for(scale):
            # 2048^2 outputs take long on a busy machine: one repeat fewer.
            repeats = (
                args.repeats - 1 if side * scale >= 2048 and args.repeats > 1 else args.repeats
            )
            arguments = ["--worker", name, str(side)]
            arguments += ["--threads", str(args.threads), "--repeats", str(repeats)]
            if side * scale > args.old_up_to and f"{name}:{side}" not in args.old:
                arguments.append("--no-old")
            r = _subprocess(arguments)
            seconds = r["seconds"]
            default = seconds["default"]
            old = seconds.get("old")
            rate = r["flops"] / default / 1e9
            target = TARGETS.get((name, side))
            verdict = ""
            if target is not None:
                verdict = f"<= {target:g} s: " + (
                    "met" if default <= target else f"missed x{default / target:.1f}"
                )
            old_text = f"{old:.3g} | {old / default:.2f}" if old else "- | -"
            print(
                f"| {name} | {side}->{side * scale} | {default:.3g} | {old_text} | "
                f"{r['flops'] / 1e9:.1f} | {rate:.0f} | {100 * rate / r['matmul_gflops']:.0f} | "
                f"{default / seconds['bicubic']:.0f} | {r['matmul_gflops']:.0f} | "
                f"{r['peak_rss_mib']:.0f} | {verdict} |",
                flush=True,
            )
            engines[name] = r["engine"]
    print()
    for name, engine in engines.items():
        print(f"- {name}: {engine}")
    if args.memory:
        print()
        for mode in ("plain", "consistency"):
            m = _subprocess(["--memory-worker", mode, "--threads", str(args.threads)])
            verdict = "PASS" if m["peak_rss_mib"] < 2048 else "FAIL"
            what = "enhance + consistency map" if mode == "consistency" else "enhance"
            print(
                f"xray-x4 1024^2 -> 4096^2, {what} (plan {m['plan']}): {m['seconds']:.1f} s, "
                f"peak RSS {m['peak_rss_mib']:.0f} MiB ({verdict}: < 2048 MiB)"
            )
    print(f"after: {_load()}")


if __name__ == "__main__":
    main()
