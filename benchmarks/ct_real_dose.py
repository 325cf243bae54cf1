"""CT models against classical methods on REAL quarter-dose scans (issue 15's targets).

Run: `python benchmarks/ct_real_dose.py [--models ct-ldct ct-ldct-x2 ct-ldct-x4 ...]
[--checkpoint NAME=PATH ...] [--ensemble] [--strength K ...] [--fp32] [--dose D]
[--output DIR]`.

Data: `../shared/data/ldct-mayo-L143` (AAPM/Mayo 2016 grand challenge, patient L143, Siemens
SOMATOM Definition AS+, 512^2, 0.82 mm, 3 mm): 11 real pairs of a full-dose slice and the same
slice at quarter dose (Mayo's validated projection-domain noise insertion on the real scan),
4 with the sharp D45f kernel and 7 with the smooth B30f kernel (DICOM ConvolutionKernel). No
shipped model was trained on them (the CT configs list their data). Without the folder the
script says so and exits 0.

Conditions (every pair, every method, one run), reported per kernel:
- x1 (denoising): input = the quarter dose; target = the full dose.
- xS (S = 2, 4: joint denoising + super-resolution): input = the S x S block mean of the
  quarter dose (256^2 or 128^2: a scanner's larger pixels integrate the same photons);
  target = the 512^2 full dose.
- Methods: `input` (x1) or Lanczos-3 (xS); `gaussian` a Gaussian blur whose SD (0.3 to 3.0
  pixels, step 0.1) is the best for that kernel's pairs in hindsight (an oracle, so a
  stricter baseline than a user could tune), then Lanczos for xS; `bm3d` BM3D (PyPI bm3d)
  with the noise SD estimated from the input image itself (its uniform soft-tissue ROIs,
  `medsr.metrics.noise.estimate_noise_sd`), not from the truth, then Lanczos for xS; each
  model through `Predictor.enhance_array` (the default a user gets: a non-blind model's noise
  level measured on the input, 25 % dose assumed, and a kernel-aware one's noise frequency
  measured there too), whole image, no tiles; with `--ensemble` also each model (not its
  `@` rows) as `NAME+ensemble` (`medsr enhance --ensemble`: the average over the 8 flips /
  rotations of the input, `medsr.inference.ensemble`); with `--strength K` also
  each non-blind model as `NAME@strengthK` (`medsr enhance --strength K`: its noise level
  input times K); with `--fp32` also each model in float32 as `NAME@fp32` where the default
  is bf16 autocast (`Predictor.load(precision="fp32")`: what bf16 costs in dB).
- With `--dose D`: every pair's input stands for a dose fraction D instead of 1/4, made from
  its real noise: `full + k (quarter - full)`, `k = sqrt((1/D - 1) / 3)` (the quarter dose
  adds 3x the full dose's noise variance, a dose D adds `1/D - 1` times it, same texture: the
  real noise, scaled; D 0.1 -> k 1.73, 0.5 -> 0.58); the models still assume 1/4 by default,
  and each non-blind one is also run told the truth as `NAME@doseD` (`medsr enhance --dose D`).
  What the 25 % default costs on scans of other doses.
- Metrics: PSNR and SSIM on the C40/W400 window ([-160, 240] HU clipped to [0, 1], data range
  1), whole 512^2 image; in the full dose's 12 most uniform 32^2 soft-tissue ROIs: the noise
  SD (detrended, HU), the HU bias (mean over ROIs of |ROI mean - full-dose ROI mean|), and the
  0.25 cycles/pixel NPS peak ratio: the 2-D NPS at the 8 frequencies (+-0.25, 0), (0, +-0.25),
  (+-0.25, +-0.25) over the median NPS of the ring 0.2-0.3 cycles/pixel (a 4-pixel periodic
  pattern, the x4 pixel-shuffle artefact, makes it >> 1; noise without it gives ~1); and
  the NPS at those 8 frequencies over the full dose's there (absolute power, HU^2: > 1 is
  more 4-pixel periodic content than the real scan has; the peak ratio also rises when a
  model removes the ring's noise and leaves the same power at 0.25); and the NPS-weighted
  mean radial frequency (`mean_nps_frequency`, cycles/pixel: the texture's grain, lower =
  blotchier); the contrast retention (`medsr.metrics.contrast`) in the full dose's soft
  tissue (smoothed full dose in -100..200 HU, 8 px from its edges): the output's
  difference-of-Gaussians band (1-3 px: fine, 2-6 px: coarser) regressed on the full dose's,
  1 = its low-contrast structure kept (the quarter dose: ~1), < 1 flattened; and PSNR as
  others may measure it: over the whole 12-bit HU range ([-1024, 3071] clipped, data range
  4095 HU) and in a lung window ([-1350, 150] HU), the targets still on C40/W400.
- A GAN fine-tune (`NAME-gan`) is held to staying above BM3D with a texture like the full
  dose's: NPS mean frequency within 0.03 c/px and noise SD within 20 % of the full dose's.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from scipy.ndimage import gaussian_filter

from medsr.evaluation.baselines import bm3d_denoise
from medsr.image import Window
from medsr.inference import Predictor
from medsr.inference.predictor import float32_variants
from medsr.io import read
from medsr.metrics.contrast import contrast_retention, soft_tissue_mask
from medsr.metrics.ct import windowed_psnr, windowed_ssim
from medsr.metrics.noise import (
    Roi,
    estimate_noise_sd,
    find_uniform_rois,
    mean_nps_frequency,
    noise_power_spectrum,
    noise_sd,
    radial_frequencies,
)
from medsr.physics.resize import upsample

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ldct-mayo-L143"
WINDOW = Window(center=40.0, width=400.0)
# PSNR where others may measure it: the whole HU range a 12-bit scan stores, and a lung window
OTHER_WINDOWS = {
    "psnr_full_range": Window(center=1023.5, width=4095.0),  # [-1024, 3071] HU
    "psnr_lung": Window(center=-600.0, width=1500.0),  # [-1350, 150] HU
}
GAUSSIAN_SIGMAS = tuple(round(0.3 + 0.1 * k, 1) for k in range(28))
ROI_SIZE = 32
CONTRAST_BANDS = {"contrast_1_3": (1.0, 3.0), "contrast_2_6": (2.0, 6.0)}  # DoG SDs, pixels
CT_MODELS = ("ct-ldct", "ct-ldct-x2", "ct-ldct-x4")


@dataclass(frozen=True)
class Pair:
    """One real pair: the full and quarter dose of one slice, in HU."""

    name: str
    kernel: str
    full: np.ndarray
    quarter: np.ndarray


def kernel_of(path: Path) -> str:
    """The reconstruction kernel in the DICOM header (e.g. D45f, B30f)."""
    value = pydicom.dcmread(path, stop_before_pixels=True).get("ConvolutionKernel", "unknown")
    return str(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)


def at_dose(pair: Pair, dose: float) -> Pair:
    """`pair` with its input standing for dose fraction `dose` (module doc, `--dose`)."""
    if not 0 < dose <= 1:
        raise ValueError(f"--dose must be in (0, 1], got {dose}")
    k = math.sqrt((1 / dose - 1) / 3)
    quarter = (pair.full + k * (pair.quarter - pair.full)).astype(np.float32)
    return Pair(pair.name, pair.kernel, pair.full, quarter)


def load_pairs(folder: Path) -> list[Pair]:
    pairs = []
    for full_path in sorted((folder / "full_dose").glob("*.IMA")):
        quarter_path = folder / "quarter_dose" / full_path.name
        full = _image(full_path)
        quarter = _image(quarter_path)
        pairs.append(Pair(full_path.stem, kernel_of(full_path), full, quarter))
    return pairs


def _image(path: Path) -> np.ndarray:
    volume = read(path)
    return (volume.slice(0) if volume.is_volume else volume).array.astype(np.float32)


def block_mean(image: np.ndarray, scale: int) -> np.ndarray:
    h, w = image.shape[0] // scale, image.shape[1] // scale
    return image[: h * scale, : w * scale].reshape(h, scale, w, scale).mean(axis=(1, 3))


def lanczos(image: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return image
    out = upsample(
        torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), scale, "lanczos"
    )
    return out.numpy()


def grid_nps(image: np.ndarray, rois: list[Roi]) -> tuple[float, float]:
    """The NPS (HU^2 pixel^2) at the 0.25 cycles/pixel grid frequencies, and its ratio to the
    median of the 0.2-0.3 ring (the grid excluded)."""
    spectrum = noise_power_spectrum(image, rois)
    frequency = np.fft.fftshift(np.fft.fftfreq(ROI_SIZE))
    fy, fx = np.meshgrid(frequency, frequency, indexing="ij")
    grid = np.isclose(np.abs(fy), 0.25) & (np.isclose(np.abs(fx), 0.25) | np.isclose(fx, 0))
    grid |= np.isclose(np.abs(fx), 0.25) & np.isclose(fy, 0)
    radius = radial_frequencies(ROI_SIZE)
    ring = (radius >= 0.2) & (radius <= 0.3) & ~grid
    power = float(spectrum[grid].mean())
    return power, power / float(np.median(spectrum[ring]))


def measure(
    output: np.ndarray,
    pair: Pair,
    rois: list[Roi],
    full_grid_power: float,
    soft_tissue: np.ndarray,
) -> dict[str, float]:
    """`output`'s metrics against the full dose; `full_grid_power`: `grid_nps(pair.full)[0]`,
    `soft_tissue`: `soft_tissue_mask(pair.full)`."""
    p, t = torch.from_numpy(output[None, None]), torch.from_numpy(pair.full[None, None])
    bias = [abs(float(r.take(output).mean() - r.take(pair.full).mean())) for r in rois]
    power, peak = grid_nps(output, rois)
    return {
        "psnr": float(windowed_psnr(p, t, WINDOW)),
        **{name: float(windowed_psnr(p, t, window)) for name, window in OTHER_WINDOWS.items()},
        "ssim": float(windowed_ssim(p, t, WINDOW)),
        "noise_sd": noise_sd(output, rois),
        "hu_bias": float(np.mean(bias)),
        "nps_peak_025": peak,
        "nps_power_025": power / full_grid_power,
        "nps_mean_frequency": mean_nps_frequency(output, rois),
        **{
            name: contrast_retention(output, pair.full, soft_tissue, sigmas)
            for name, sigmas in CONTRAST_BANDS.items()
        },
    }


def classical(low: np.ndarray, scale: int, sigmas: tuple[float, ...]) -> dict[str, np.ndarray]:
    outputs = {"lanczos" if scale > 1 else "input": lanczos(low, scale)}
    for sigma in sigmas:
        outputs[f"gaussian-{sigma}"] = lanczos(gaussian_filter(low, sigma), scale)
    noise, _ = estimate_noise_sd(low, "CT")
    outputs["bm3d"] = lanczos(bm3d_denoise(low, noise).astype(np.float32), scale)
    return outputs


def evaluate(
    pairs: list[Pair], scale: int, models: dict[str, Predictor]
) -> dict[str, dict[str, Any]]:
    """Per kernel: each method's mean metrics (and per-pair PSNR) at this scale."""
    per_pair: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    seconds: dict[str, list[float]] = {}
    for pair in pairs:
        rois = find_uniform_rois(pair.full, size=ROI_SIZE)
        low = pair.quarter if scale == 1 else block_mean(pair.quarter, scale).astype(np.float32)
        outputs = classical(low, scale, GAUSSIAN_SIGMAS)
        outputs["full-dose"] = pair.full
        for name, predictor in models.items():
            start = time.perf_counter()
            outputs[name] = predictor.enhance_array(low, tile_size=None)
            seconds.setdefault(name, []).append(time.perf_counter() - start)
        full_grid_power = grid_nps(pair.full, rois)[0]
        soft_tissue = soft_tissue_mask(pair.full)
        rows = {
            m: measure(out, pair, rois, full_grid_power, soft_tissue) for m, out in outputs.items()
        }
        per_pair.setdefault(pair.kernel, {})[pair.name] = rows
        print(f"  x{scale} {pair.name} ({pair.kernel}) done", file=sys.stderr, flush=True)
    results: dict[str, dict[str, Any]] = {}
    for kernel, by_pair in per_pair.items():
        methods = next(iter(by_pair.values())).keys()
        means = {
            m: {k: statistics.fmean(r[m][k] for r in by_pair.values()) for k in METRICS}
            for m in methods
        }
        best = max(GAUSSIAN_SIGMAS, key=lambda s: means[f"gaussian-{s}"]["psnr"])
        means["gaussian"] = {**means[f"gaussian-{best}"], "sigma": best}
        for sigma in GAUSSIAN_SIGMAS:
            del means[f"gaussian-{sigma}"]
        for name in models:
            means[name]["seconds"] = statistics.fmean(seconds[name])
            means[name]["wins_over_bm3d"] = sum(
                r[name]["psnr"] > r["bm3d"]["psnr"] for r in by_pair.values()
            )
        results[kernel] = {"pairs": sorted(by_pair), "methods": means}
    return results


METRICS = (
    "psnr",
    *OTHER_WINDOWS,
    "ssim",
    "noise_sd",
    "hu_bias",
    "nps_peak_025",
    "nps_power_025",
    "nps_mean_frequency",
    *CONTRAST_BANDS,
)


def table(results: dict[str, dict[str, Any]], scale: int) -> str:
    lines = [
        f"| kernel (pairs), x{scale} | method | PSNR dB | SSIM | noise SD HU | HU bias | "
        "NPS 0.25 peak | NPS 0.25 power / full dose's | NPS mean c/px | "
        "contrast kept 1-3 / 2-6 px | PSNR full range / lung dB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kernel, result in sorted(results.items()):
        for method, row in result["methods"].items():
            label = method
            if method == "gaussian":
                label = f"gaussian (best sigma {row['sigma']} px)"
            if method == "bm3d" and scale > 1:
                label = "bm3d + lanczos"
            lines.append(
                f"| {kernel} ({len(result['pairs'])}) | {label} | {row['psnr']:.2f} | "
                f"{row['ssim']:.4f} | {row['noise_sd']:.1f} | {row['hu_bias']:.1f} | "
                f"{row['nps_peak_025']:.2f} | {row['nps_power_025']:.2f} | "
                f"{row['nps_mean_frequency']:.3f} | "
                f"{row['contrast_1_3']:.2f} / {row['contrast_2_6']:.2f} | "
                f"{row['psnr_full_range']:.2f} / {row['psnr_lung']:.2f} |"
            )
    return "\n".join(lines)


def targets(name: str, results: dict[str, dict[str, Any]], scale: int) -> list[str]:
    """Issue 15's targets for `name` per kernel, each met or missed with its margin."""
    lines = []
    for kernel, result in sorted(results.items()):
        m = result["methods"]
        model = m[name]
        checks: list[tuple[str, float, str]] = []
        if scale == 1:
            checks += [
                ("PSNR >= BM3D + 1.0 dB", model["psnr"] - m["bm3d"]["psnr"] - 1.0, "dB"),
                (
                    "PSNR >= best Gaussian + 1.0 dB",
                    model["psnr"] - m["gaussian"]["psnr"] - 1.0,
                    "dB",
                ),
                ("noise SD <= full dose's", m["full-dose"]["noise_sd"] - model["noise_sd"], "HU"),
                ("HU bias < 5 HU", 5.0 - model["hu_bias"], "HU"),
            ]
        else:
            need = 3.0 if scale == 4 else 1.5
            checks += [
                (f"PSNR >= Lanczos + {need} dB", model["psnr"] - m["lanczos"]["psnr"] - need, "dB"),
                (
                    "PSNR >= BM3D + Lanczos + 2.0 dB" if scale == 4 else "PSNR >= BM3D + Lanczos",
                    model["psnr"] - m["bm3d"]["psnr"] - (2.0 if scale == 4 else 0.0),
                    "dB",
                ),
                (
                    "no 0.25 cycles/pixel NPS peak the full dose lacks (ratio <= full's x 1.5)",
                    1.5 * m["full-dose"]["nps_peak_025"] - model["nps_peak_025"],
                    "ratio",
                ),
            ]
        if is_gan(name):  # keeps texture, stays above BM3D
            full = m["full-dose"]
            checks = [
                (
                    "PSNR >= BM3D" + (" + Lanczos" if scale > 1 else ""),
                    model["psnr"] - m["bm3d"]["psnr"],
                    "dB",
                ),
                (
                    "NPS mean frequency within 0.03 c/px of the full dose's (texture)",
                    0.03 - abs(model["nps_mean_frequency"] - full["nps_mean_frequency"]),
                    "c/px",
                ),
                (
                    "noise SD within 20 % of the full dose's (texture kept, not added)",
                    0.2 * full["noise_sd"] - abs(model["noise_sd"] - full["noise_sd"]),
                    "HU",
                ),
            ]
        for what, margin, unit in checks:
            state = "met" if margin >= 0 else "MISSED"
            lines.append(f"- {kernel}: {what}: {state} (margin {margin:+.2f} {unit})")
    return lines


def is_gan(name: str) -> bool:
    """Whether a row is a GAN fine-tune (`NAME-gan`) or a variant of one (`NAME-gan@strength0.9`,
    `NAME-gan@fp32`, `NAME-gan+ensemble`): held to the GAN targets."""
    return name.split("@")[0].removesuffix("+ensemble").endswith("-gan")


def variants(
    predictors: dict[str, Predictor],
    *,
    strengths: Sequence[float] = (),
    dose: float | None = None,
    fp32: bool = False,
    ensemble: bool = False,
) -> dict[str, Predictor]:
    """`predictors` and the rows the options add to each (module doc): `NAME@fp32`,
    `NAME@strengthK` and `NAME@doseD` (non-blind models), `NAME+ensemble`."""
    rows = dict(predictors)
    if fp32:
        rows |= float32_variants(predictors)
    for name, predictor in predictors.items():
        if ensemble:
            rows[f"{name}+ensemble"] = predictor.with_geometric_ensemble()
        normalization = predictor.info.normalization
        if normalization.get("noise_level_unit"):
            rows |= {
                f"{name}@strength{k:g}": predictor.with_noise_options(strength=k) for k in strengths
            }
        if dose is not None and normalization.get("noise_level_dose_fraction") is not None:
            rows[f"{name}@dose{dose:g}"] = predictor.with_noise_options(dose_fraction=dose)
    return rows


def parse_checkpoints(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--checkpoint wants NAME=PATH, got {item!r}")
        out[name] = path
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="shipped model names")
    parser.add_argument("--checkpoint", nargs="*", default=[], help="NAME=PATH of a .pt")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--output", type=Path, default=Path("runs/ct_real_dose"))
    parser.add_argument(
        "--ensemble", action="store_true", help="also each model as a self-ensemble (8 passes)"
    )
    parser.add_argument(
        "--strength",
        nargs="*",
        type=float,
        default=[],
        help="also each non-blind model with its noise level x each of these (--strength)",
    )
    parser.add_argument(
        "--dose",
        type=float,
        default=None,
        help="inputs standing for this dose fraction, from the real noise (see the doc)",
    )
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="also each model in float32 (NAME@fp32) where the default precision is bf16",
    )
    arguments = parser.parse_args()
    if not arguments.data.is_dir():
        print(f"{arguments.data} is absent: nothing measured")
        return
    from medsr.inference.registry import available_models

    sources = {
        n: n
        for n in (
            arguments.models
            if arguments.models is not None  # `--models` alone: only the --checkpoint ones
            else [m for m in CT_MODELS if m in available_models()]
        )
    }
    sources.update(parse_checkpoints(arguments.checkpoint))
    predictors = variants(
        {name: Predictor.load(path) for name, path in sources.items()},
        strengths=arguments.strength,
        dose=arguments.dose,
        fp32=arguments.fp32,
        ensemble=arguments.ensemble,
    )
    pairs = load_pairs(arguments.data)
    dose = ""
    if arguments.dose is not None:
        pairs = [at_dose(pair, arguments.dose) for pair in pairs]
        dose = f"; inputs at dose fraction {arguments.dose:g}, from the real noise (--dose)"
    print(
        f"{len(pairs)} real pairs from {arguments.data}{dose}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    arguments.output.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {}
    for scale in sorted({p.scale for p in predictors.values()}):
        models = {n: p for n, p in predictors.items() if p.scale == scale}
        results = evaluate(pairs, scale, models)
        record[f"x{scale}"] = results
        print(f"\n### x{scale}\n\n{table(results, scale)}\n")
        for name in models:
            print(f"{name}:\n" + "\n".join(targets(name, results, scale)))
    (arguments.output / "results.json").write_text(json.dumps(record, indent=1))
    print(f"\nwritten {arguments.output / 'results.json'}")


if __name__ == "__main__":
    main()
