"""Brain next to the skull: the bias of CT super-resolution in the first pixels inside bone.

Run: `python benchmarks/ct_bone_edge.py [--models ct-ldct-x4 ct-ldct-x2] [--checkpoint
NAME=PATH ...] [--seed 0]`.

Thin subdural collections are read in the few pixels of brain along the skull's inner
table, where an edge-ringing model darkens or brightens the brain. The image: the bundled
pydicom-data 693_UNCR head slice (512^2, 0.48 mm; no model was trained on it), the model's
own task at 25 % dose (projection-domain noise, I0 calibrated on the slice, matched smooth
kernel; then the S x S area mean for an xS model), seed `--seed`. Measured: output minus the
full-dose target in HU, in bands of brain pixels (-20 to 100 HU in the target, inside the
skull) by their distance to the nearest bone pixel (> 300 HU): mean (bias) / RMS. Lanczos-3
(`ct_real_dose.lanczos`, as in the other CT benchmarks) of the same input is the reference;
a model should have a smaller |bias| and RMS.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from ct_real_dose import lanczos, parse_checkpoints
from scipy import ndimage

from medsr.inference.predictor import Predictor
from medsr.io.samples import load_sample
from medsr.physics.tasks import make_task

BANDS_PX = ((0, 2), (2, 4), (4, 8), (8, 16))
BONE_HU, BRAIN_HU = 300.0, (-20.0, 100.0)


def degraded(scale: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(low-dose input, full-dose target) of the head slice for an x`scale` model."""
    volume = load_sample("ct-head-693")
    spacing = float(volume.spacing[-1])
    high = torch.from_numpy(np.asarray(volume.array, dtype=np.float32).squeeze())
    task = make_task("ldct" if scale == 1 else f"ldct-x{scale}", dose_fraction=0.25)
    pair = task.for_scan(high, spacing)(high[None], spacing, torch.Generator().manual_seed(seed))
    return pair.low[0].numpy(), pair.high[0].numpy()


def band_errors(output: np.ndarray, target: np.ndarray) -> list[tuple[float, float]]:
    """(mean, RMS) of output - target in HU per band of `BANDS_PX` (module doc)."""
    bone = target > BONE_HU
    inside = ndimage.binary_fill_holes(bone) & ~bone
    brain = inside & (target > BRAIN_HU[0]) & (target < BRAIN_HU[1])
    distance = ndimage.distance_transform_edt(~bone)
    error = output.astype(np.float64) - target
    cells = []
    for low, high in BANDS_PX:
        band = brain & (distance > low) & (distance <= high)
        cells.append((float(error[band].mean()), float(np.sqrt(np.square(error[band]).mean()))))
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["ct-ldct-x4", "ct-ldct-x2"])
    parser.add_argument("--checkpoint", nargs="*", default=[], help="NAME=PATH of a .pt")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    sources = {name: name for name in arguments.models}
    sources.update(parse_checkpoints(arguments.checkpoint))
    predictors = {name: Predictor.load(path) for name, path in sources.items()}
    header = " | ".join(f"{a}-{b} px" for a, b in BANDS_PX)
    print(
        "pydicom-data 693_UNCR head slice, 25 % dose (projection domain), seed "
        f"{arguments.seed}; brain pixels inside the skull by distance to bone; output - "
        "full-dose target, mean / RMS in HU"
    )
    print(f"| scale | method | {header} |")
    print("|---|---|" + "---|" * len(BANDS_PX))
    for scale in sorted({p.scale for p in predictors.values()}):
        low, target = degraded(scale, arguments.seed)
        outputs = {"lanczos" if scale > 1 else "input": lanczos(low, scale)}
        for name, predictor in predictors.items():
            if predictor.scale == scale:
                outputs[name] = predictor.enhance_array(low)
        for name, output in outputs.items():
            cells = " | ".join(f"{m:+.1f} / {r:.1f}" for m, r in band_errors(output, target))
            print(f"| x{scale} | {name} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
