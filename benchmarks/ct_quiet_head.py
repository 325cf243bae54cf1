"""Quiet CT: a low-dose denoiser against BM3D where the full dose itself has little noise.

Run: `python benchmarks/ct_quiet_head.py [--models ct-ldct] [--checkpoint NAME=PATH ...]
[--seeds 2]`.

The images: the bundled pydicom-data slices 693_UNCR (head, 512^2, 0.48 mm, its own noise
~3 HU: quieter than any slice the CT models were trained on) and explicit_VR-UN (abdomen,
0.86 mm), and the head block-averaged to 0.96 mm (the training sources' pixel size: padding
as air, 2 x 2 mean), none of them trained on. Each at a simulated 25 % dose (projection-domain
noise, I0 calibrated on the image's own noise, tube-current modulation drawn per seed) with a
b30f-like and a d45f-like kernel (signal and noise: the full dose is the image as that kernel
reconstructs it), seeds 0 .. `--seeds` - 1. Measured as `ct_real_dose.py` measures the real
L143 pairs (C40/W400 -> [0, 1], the same BM3D with sigma estimated from the image): PSNR and
the noise SD in uniform ROIs of the full dose, mean over seeds.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from ct_real_dose import (
    ROI_SIZE,
    Pair,
    block_mean,
    classical,
    grid_nps,
    measure,
    parse_checkpoints,
)

from medsr.evaluation.pairs import make_pairs
from medsr.image import rescaled_in_plane
from medsr.inference.predictor import Predictor
from medsr.io.dicom_write import write_dicom
from medsr.io.samples import load_sample
from medsr.metrics.contrast import soft_tissue_mask
from medsr.metrics.ct import PADDING_HU
from medsr.metrics.noise import find_uniform_rois

KERNELS = ("b30f-like", "d45f-like")
TASK = {
    "dose_fraction": 0.25,
    "dose_range": [0.25, 0.25],
    "filter_window": "b30f-like",
    "calibration": "nps-band",
    "modulation_range": [0.0, 1.0],
    "signal_kernel": True,
}


def head_at_096mm(folder: Path) -> str:
    """The pydicom head slice 2 x 2 block-averaged (padding as air) as a CT DICOM file."""
    head = load_sample("ct-head-693")
    air = np.where(head.array < PADDING_HU, np.float32(-1000.0), head.array)
    spacing, origin = rescaled_in_plane(head, 2)
    record = {"model": "2x2 mean", "architecture": "-", "task": "downsample", "scale": 1}
    volume = replace(
        head,
        array=block_mean(air, 2).astype(np.float32),
        spacing=spacing,
        origin=origin,
        metadata={**head.metadata, "inference": record},
    )
    return str(write_dicom(volume, folder / "ct-head-693-0.96mm.dcm"))


def evaluate(
    models: dict[str, Predictor], sources: list[str], seeds: int
) -> dict[tuple[str, str, str], list[dict[str, float]]]:
    """(kernel, image, method) -> the measures of each seed."""
    rows: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for kernel in KERNELS:
        for seed in range(seeds):
            overrides = {**TASK, "kernels": [kernel]}
            for pair in make_pairs(sources, "ldct", seed=seed, task_overrides=overrides):
                full, low = pair.high.astype(np.float32), pair.low.astype(np.float32)
                reference = Pair(pair.name, kernel, full, low)
                rois = find_uniform_rois(full, size=ROI_SIZE)
                full_nps, tissue = grid_nps(full, rois)[0], soft_tissue_mask(full)
                outputs = classical(low, 1, ())
                for name, predictor in models.items():
                    outputs[name] = predictor.enhance_array(low, tile_size=None)
                for method, output in outputs.items():
                    key = (kernel, pair.name, method)
                    rows.setdefault(key, []).append(
                        measure(output, reference, rois, full_nps, tissue)
                    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["ct-ldct"])
    parser.add_argument("--checkpoint", nargs="*", default=[], help="NAME=PATH to compare")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(2)
    names = {name: name for name in args.models} | parse_checkpoints(args.checkpoint)
    models = {name: Predictor.load(source) for name, source in names.items()}
    with tempfile.TemporaryDirectory() as folder:
        sources = ["sample:ct-abdomen", "sample:ct-head-693", head_at_096mm(Path(folder))]
        rows = evaluate(models, sources, args.seeds)
    print(f"Simulated 25 % dose, C40/W400, means over {args.seeds} seed(s)\n")
    print("| kernel | image | method | PSNR dB | noise SD HU |\n|---|---|---|---|---|")
    for (kernel, image, method), measures in sorted(rows.items()):
        psnr = np.mean([m["psnr"] for m in measures])
        sd = np.mean([m["noise_sd"] for m in measures])
        print(f"| {kernel} | {image} | {method} | {psnr:.2f} | {sd:.1f} |")


if __name__ == "__main__":
    main()
