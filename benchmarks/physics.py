"""Seconds per CT projection, FBP, and low-dose noise draw (projection cached) on this machine.

Run: `python benchmarks/physics.py [--repeats 3] [--views 720]`. Images are the real samples
(InVesalius slice 80 at 256^2, pydicom-data 693 at 512^2). The baseline row is the
image-domain Gaussian noise draw on the same image, timed in the same run, so the ratio
column survives noisy machines.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from medsr.image import Volume
from medsr.io.samples import load_sample
from medsr.physics.ct import LowDoseCT


def seconds(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up: allocator, thread pool
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_image(image: Volume, views: int, repeats: int) -> list[tuple[str, float, float]]:
    """(operation, seconds, ratio to the image-domain baseline) for one image."""
    image_hu = torch.from_numpy(image.array)
    spacing = image.spacing[-1]
    simulator = LowDoseCT(dose_fraction=0.25, incident_photons=3e5, num_views=views)
    projection = simulator.project(image_hu, spacing)
    generator = torch.Generator().manual_seed(0)
    baseline = seconds(
        lambda: image_hu + 10.0 * torch.randn(image_hu.shape, generator=generator), repeats
    )
    project = seconds(lambda: simulator.project(image_hu, spacing), repeats)
    fbp = seconds(lambda: projection.projector.fbp(projection.line_integrals, "hann"), repeats)
    draw = seconds(lambda: simulator.noise(projection, generator), repeats)
    rows = [
        ("image-domain noise draw (baseline)", baseline),
        ("projection R mu", project),
        ("FBP (filter + back-projection)", fbp),
        ("projection + FBP", project + fbp),
        ("low-dose noise draw, R cached", draw),
    ]
    return [(operation, value, value / baseline) for operation, value in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--views", type=int, default=720)
    arguments = parser.parse_args()

    images = {
        "256^2 (InVesalius z=80)": load_sample("invesalius-head-ct").slice(80),
        "512^2 (pydicom 693)": load_sample("ct-head-693"),
    }
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{arguments.views} views, median of {arguments.repeats}"
    )
    header = f"| {'image':<24} | {'operation':<34} | {'seconds':>8} | {'x baseline':>10} |"
    print(header)
    print("|" + "|".join("-" * (len(cell) + 0) for cell in header.split("|")[1:-1]) + "|")
    for label, image in images.items():
        for operation, value, ratio in time_image(image, arguments.views, arguments.repeats):
            print(f"| {label:<24} | {operation:<34} | {value:>8.3f} | {ratio:>10.0f} |")


if __name__ == "__main__":
    main()
