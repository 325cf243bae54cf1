"""CT-guided PET super-resolution: the fusion model against PET baselines on held-out slices.

    python benchmarks/fusion.py [--model fusion-petct-x4] [--json out.json]

Pairs are simulated (`medsr.physics.pet.PetFromCT`, the `petct` task defaults: 1e6 prompts,
25 % counts, 5 mm PSF, 35 % randoms + scatter, OSEM 3 x 15 on a 4x coarser grid, 4 mm
post-filter; target = true activity blurred 2 mm) from CT slices the model never saw:

* `invesalius-val`: InVesalius head CT slices 88-107 (training used 0-79; 80-87 a gap), one
  realisation each, seeds `slice_seed(1000, k)`;
* `ct-head-693`: pydicom-data 693_UNCR (another patient and scanner), area-downsampled x2
  from 0.48 to 0.96 mm, the training pixel size; `ct-abdomen`: pydicom-data explicit_VR-UN,
  0.86 mm (another patient, a body slice: the model saw only heads); 6 realisations each
  (own lesions and noise), seeds `slice_seed(2000 + r, 0)`.

Metrics, per method (all on the CT grid, SUV):
* PSNR / SSIM against the target on the whole slice, both clipped to SUV [0, 12],
  data_range 12;
* CRC per lesion = (mean(L) / mean(B) - 1) / (true ratio - 1), L the lesion disk, B the
  annulus 10-20 mm outside it (body only, other lesions excluded), true ratio from the
  unblurred activity; mean over lesions;
* BV = SD / mean in 5 mm-radius background disks where the true activity is flat (relative
  SD < 5 %), centres every 10 mm, > 15 mm from lesions; mean over disks. The target's own BV
  in the same disks (its texture) is printed as the floor.

Baselines: bicubic PET; bicubic + Gaussian post-filter (FWHM 3, 5, 7 mm); CT-guided filter
(He et al., "Guided image filtering", ECCV 2010) of the bicubic PET with the CT (C40/W400,
mapped to [0, 1]) as the guide. The model passes when it beats every baseline row on CRC
with a BV equal or lower.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from medsr.inference.fusion import FusionPredictor
from medsr.io.samples import load_sample
from medsr.metrics.image import psnr, ssim
from medsr.physics.pet import PetFromCT
from medsr.physics.resize import downsample, upsample
from medsr.physics.tasks import slice_seed

SUV_RANGE = 12.0
GAUSSIAN_FWHM_MM = (3.0, 5.0, 7.0)
GUIDED = ((2, 1e-3), (4, 1e-3), (4, 1e-2))  # (radius px, eps) on a [0, 1] guide


@dataclass
class Case:
    name: str
    ct: np.ndarray
    spacing_mm: float
    seed: int


@dataclass
class Scores:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    crc: list[float] = field(default_factory=list)
    bv: list[float] = field(default_factory=list)


def cases() -> list[Case]:
    out = []
    head = load_sample("invesalius-head-ct")
    for k in range(88, 108):
        out.append(Case("invesalius-val", head.array[k], head.spacing[-1], slice_seed(1000, k)))
    h693 = load_sample("ct-head-693")
    ct693 = downsample(torch.from_numpy(h693.array)[None], 2, "area")[0].numpy()
    abdomen = load_sample("ct-abdomen")
    for r in range(6):
        out.append(Case("ct-head-693", ct693, 2 * h693.spacing[-1], slice_seed(2000 + r, 0)))
        out.append(Case("ct-abdomen", abdomen.array, abdomen.spacing[-1], slice_seed(2000 + r, 0)))
    return out


def guided_filter(guide: np.ndarray, image: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. 2010, grey guide: `q = mean(a) I + mean(b)`, box windows of `2 r + 1`."""

    def box(x: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(x, 2 * radius + 1, mode="reflect")

    mean_i, mean_p = box(guide), box(image)
    var_i = box(guide * guide) - mean_i**2
    a = (box(guide * image) - mean_i * mean_p) / (var_i + eps)
    b = mean_p - a * mean_i
    return (box(a) * guide + box(b)).astype(np.float32)


def disk(shape: tuple[int, ...], row: float, col: float, radius_px: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - row) ** 2 + (cols - col) ** 2 <= radius_px**2


def lesion_rois(sim: Any, spacing: float) -> list[tuple[np.ndarray, np.ndarray]]:
    lesions = sim.params["lesions"]
    shape = sim.target.shape
    body = sim.activity.activity.numpy() > 0
    others = np.zeros(shape, bool)
    for lesion in lesions:
        others |= disk(shape, lesion["row"], lesion["col"], (lesion["radius_mm"] + 10) / spacing)
    rois = []
    for lesion in lesions:
        r_px = lesion["radius_mm"] / spacing
        inner = disk(shape, lesion["row"], lesion["col"], r_px)
        own = disk(shape, lesion["row"], lesion["col"], r_px + 10 / spacing)
        ring = disk(shape, lesion["row"], lesion["col"], r_px + 20 / spacing) & ~own
        ring &= body & ~(others & ~own)
        if inner.sum() >= 3 and ring.sum() >= 20:
            rois.append((inner, ring))
    return rois


def background_rois(sim: Any, spacing: float) -> list[np.ndarray]:
    truth = sim.activity.activity.numpy()
    shape, radius = truth.shape, 5.0 / spacing
    step = max(1, int(round(10.0 / spacing)))
    rois = []
    for row in range(step, shape[0] - step, step):
        for col in range(step, shape[1] - step, step):
            if any(
                math.hypot(row - le["row"], col - le["col"]) * spacing < le["radius_mm"] + 15
                for le in sim.params["lesions"]
            ):
                continue
            roi = disk(shape, row, col, radius)
            values = truth[roi]
            if values.min() > 0.2 and values.std() < 0.05 * values.mean():
                rois.append(roi)
    return rois


def score(image: np.ndarray, sim: Any, rois: Any, bg: list[np.ndarray], scores: Scores) -> None:
    target = sim.target.numpy()
    a = torch.from_numpy(np.clip(image, 0, SUV_RANGE))[None, None]
    b = torch.from_numpy(np.clip(target, 0, SUV_RANGE))[None, None]
    scores.psnr.append(float(psnr(a, b, data_range=SUV_RANGE)))
    scores.ssim.append(float(ssim(a, b, data_range=SUV_RANGE)))
    truth = sim.activity.activity.numpy()
    for inner, ring in rois:
        true_ratio = truth[inner].mean() / truth[ring].mean()
        measured = image[inner].mean() / max(image[ring].mean(), 1e-6)
        scores.crc.append(float((measured - 1) / (true_ratio - 1)))
    scores.bv.extend(float(image[roi].std() / max(image[roi].mean(), 1e-6)) for roi in bg)


def methods(
    ct: np.ndarray, low: np.ndarray, spacing: float, predictor: FusionPredictor | None
) -> dict[str, np.ndarray]:
    bicubic = upsample(torch.from_numpy(low)[None], 4, "bicubic")[0].numpy()
    out = {"bicubic": bicubic}
    for fwhm in GAUSSIAN_FWHM_MM:
        out[f"gaussian {fwhm:g} mm"] = ndimage.gaussian_filter(bicubic, fwhm / 2.3548 / spacing)
    guide = np.clip((ct + 160.0) / 400.0, 0.0, 1.0).astype(np.float32)
    for radius, eps in GUIDED:
        out[f"guided r{radius} eps{eps:g}"] = guided_filter(guide, bicubic, radius, eps)
    if predictor is not None:
        out["model"] = predictor.fuse_array(ct, low)
    return out


def run(model: str | None, threads: int = 1) -> dict[str, Any]:
    torch.set_num_threads(threads)
    predictor = FusionPredictor.load(model) if model else None
    operator = PetFromCT()  # the petct task defaults
    per: dict[str, dict[str, Scores]] = {}
    floors: dict[str, list[float]] = {}
    start = time.perf_counter()
    counts: dict[str, list[int]] = {}
    skipped: dict[str, int] = {}
    for case in cases():
        g = torch.Generator().manual_seed(case.seed)
        try:
            sim = operator(
                torch.from_numpy(np.ascontiguousarray(case.ct)),
                case.spacing_mm,
                g,
                full_count=False,
            )
        except ValueError:  # a slice above the head: no body, no PET
            skipped[case.name] = skipped.get(case.name, 0) + 1
            continue
        ct, low = sim.ct.numpy(), sim.pet_low.numpy()
        rois, bg = lesion_rois(sim, case.spacing_mm), background_rois(sim, case.spacing_mm)
        counts[case.name] = counts.get(case.name, [0, 0, 0])
        counts[case.name][0] += 1
        counts[case.name][1] += len(rois)
        counts[case.name][2] += len(bg)
        target = sim.target.numpy()
        floors.setdefault(case.name, []).extend(
            float(target[r].std() / target[r].mean()) for r in bg
        )
        for name, image in methods(ct, low, case.spacing_mm, predictor).items():
            for group in (case.name, "all"):
                score(image, sim, rois, bg, per.setdefault(group, {}).setdefault(name, Scores()))
    table = {
        group: {
            name: {k: float(np.mean(v)) if v else float("nan") for k, v in vars(s).items()}
            for name, s in rows.items()
        }
        for group, rows in per.items()
    }
    floors["all"] = [v for k, vs in floors.items() for v in vs]
    return {
        "table": table,
        "counts": counts,
        "target_bv": {k: float(np.mean(v)) for k, v in floors.items()},
        "seconds": time.perf_counter() - start,
        "model": model,
        "skipped_empty_slices": skipped,
    }


def verdict(rows: dict[str, dict[str, float]]) -> list[str]:
    model = rows["model"]
    lines = []
    for name, row in rows.items():
        if name == "model":
            continue
        ok = model["crc"] > row["crc"] and model["bv"] <= row["bv"]
        lines.append(
            f"{'PASS' if ok else 'FAIL'} vs {name}: CRC {model['crc']:.3f} vs "
            f"{row['crc']:.3f} ({model['crc'] - row['crc']:+.3f}), BV {model['bv']:.3f}"
            f" vs {row['bv']:.3f} ({model['bv'] - row['bv']:+.3f})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        default="fusion-petct-x4",
        help="name or checkpoint; 'none' for the baselines only",
    )
    parser.add_argument("--json", default=None, help="write the results here too")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    result = run(None if args.model == "none" else args.model, args.threads)
    for group, rows in result["table"].items():
        n = result["counts"].get(group) or [
            sum(c[i] for c in result["counts"].values()) for i in range(3)
        ]
        print(
            f"\n## {group}: {n[0]} slices, {n[1]} lesions, {n[2]} background disks; "
            f"target BV {result['target_bv'][group]:.3f}"
        )
        print("| method | PSNR dB | SSIM | CRC | BV |\n|---|---|---|---|---|")
        for name, row in rows.items():
            print(
                f"| {name} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['crc']:.3f} | "
                f"{row['bv']:.3f} |"
            )
        if "model" in rows:
            print("\n".join(["", *verdict(rows)]))
    print(
        f"\n{result['seconds']:.0f} s; PSNR/SSIM on SUV [0, 12], data_range 12; slices "
        f"without a body skipped: {result['skipped_empty_slices']}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(result, stream, indent=1)


if __name__ == "__main__":
    main()
