"""Radiograph super-resolution on real chest X-rays the models never saw, as users meet it.

Run: `python benchmarks/radiograph_sr.py [--models xray-x4 xray-x2 ...] [--output DIR]`.

Data: the held-out images of `../shared/data/cxr-nih` (NIH ChestX-ray14, 1024^2 8-bit PNG):
exactly the seeded, patient-wise hold-out of the training config (`medsr.data.sources`,
holdout 40, seed 0), so no model was trained on them. Without `../shared/data` the script
says so and exits 0.

Conditions (every image, every method, one run):
- HR: the 1024^2 original reduced to `size`^2 with Pillow's BOX filter (area average),
  rounded to 8 bits, as a user would store it; `size` 1024 keeps the original.
- LR (factor s), made from the 8-bit HR and rounded to 8 bits again:
  `bicubic` Pillow BICUBIC (antialiased), `area` Pillow BOX, `gaussian` a Gaussian blur of
  SD (s - 1) / 2 HR pixels (scikit-image's default) then sampling at the block centres,
  `bicubic-aliased` bicubic sampling without antialiasing (OpenCV's INTER_CUBIC, torch's
  `interpolate`: at x4 each low pixel sees 4 of 16 high pixels),
  `bicubic+noise` the bicubic LR plus white Gaussian noise of SD 0.005 (on [0, 1], seeded,
  not re-quantised); `bicubic+inverted` the bicubic LR of the inverted HR (255 - value, the
  grey scale of a MONOCHROME1 image read without its inversion), scored against that HR.
- Methods: Pillow BICUBIC and LANCZOS upsampling of the float LR, and each model
  (`Predictor.enhance_array`, whole image, no tiles). Every output clipped to [0, 255].
- Metrics: PSNR and SSIM (`medsr.metrics.image`, Gaussian window 11, sigma 1.5) on
  value / 255, data_range 1, whole image; "wins" = images where the model's PSNR exceeds
  Lanczos's; "texture" = the output's power at 0.125-0.5 cycles/pixel (Hann-windowed
  periodogram) over the HR image's: 1 is the target's fine texture, < 1 smoother.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from medsr.data.sources import FolderSource, held_out_files
from medsr.inference import Predictor
from medsr.inference.predictor import float32_variants
from medsr.metrics.image import psnr, ssim
from medsr.physics.unknown_resize import resize_down

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cxr-nih"
HOLDOUT = FolderSource(path=str(DATA), holdout=40, seed=0)
NOISE_SD = 0.005
KERNELS = ("bicubic", "area", "gaussian", "bicubic-aliased", "bicubic+noise", "bicubic+inverted")


@dataclass(frozen=True)
class Condition:
    """One benchmark row: the HR size, the factor and how the LR image was made."""

    hr_size: int
    scale: int
    kernel: str

    @property
    def label(self) -> str:
        lr = self.hr_size // self.scale
        return f"{lr}->{self.hr_size} x{self.scale} {self.kernel}"


def reduce_8bit(image: np.ndarray, size: int, kernel: str) -> np.ndarray:
    """`image` (uint8) reduced to `size`^2 by `kernel`, rounded to uint8."""
    if kernel in ("bicubic", "area"):
        filt = Image.Resampling.BICUBIC if kernel == "bicubic" else Image.Resampling.BOX
        return np.asarray(Image.fromarray(image).resize((size, size), filt))
    scale = image.shape[0] // size
    if kernel in ("gaussian", "bicubic-aliased"):
        # gaussian: SD (s - 1) / 2, sampled at the block centres s*i + (s - 1) / 2
        sigma = (scale - 1) / 2 if kernel == "gaussian" else 0.0
        pixels = torch.from_numpy(image.astype(np.float32))[None]
        sampled = resize_down(pixels, scale, kernel, sigma)[0].numpy()
        return np.clip(np.rint(sampled), 0, 255).astype(np.uint8)
    raise ValueError(f"unknown kernel {kernel!r}")


def low_resolution(hr: np.ndarray, condition: Condition, seed: int) -> np.ndarray:
    """The LR image (float32, 0..255 scale) of `condition`."""
    size = condition.hr_size // condition.scale
    kernel = condition.kernel.partition("+")[0]
    low = reduce_8bit(hr, size, kernel).astype(np.float32)
    if condition.kernel.endswith("+noise"):
        rng = np.random.default_rng(seed)
        low = low + (255.0 * NOISE_SD * rng.standard_normal(low.shape)).astype(np.float32)
    return low


def pil_upsample(low: np.ndarray, scale: int, method: str) -> np.ndarray:
    filt = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}[method]
    h, w = low.shape
    return np.asarray(
        Image.fromarray(low.astype(np.float32), mode="F").resize((w * scale, h * scale), filt)
    )


def scores(output: np.ndarray, hr: np.ndarray) -> tuple[float, float]:
    p = torch.from_numpy(np.clip(output, 0, 255).astype(np.float32) / 255.0)[None, None]
    t = torch.from_numpy(hr.astype(np.float32) / 255.0)[None, None]
    return float(psnr(p, t, data_range=1.0)), float(ssim(p, t, data_range=1.0))


def band_power(image: np.ndarray, band: tuple[float, float] = (0.125, 0.5)) -> float:
    """Power of `image` (mean removed, Hann-windowed) at radial frequencies in `band`
    cycles/pixel: the fine texture a super-resolved image has or lacks."""
    h, w = image.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    spectrum = np.abs(np.fft.fft2((image - image.mean()) * window)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    radius = np.hypot(fy, fx)
    return float(spectrum[(radius >= band[0]) & (radius < band[1])].sum())


def conditions_for(scale: int) -> list[Condition]:
    rows = [Condition(512, scale, k) for k in KERNELS]
    if scale == 4:  # the sizes chest X-ray SR projects advertise, and the whole 1024^2 image
        rows += [Condition(128, 4, "bicubic"), Condition(256, 4, "bicubic")]
        rows += [Condition(1024, 4, "bicubic")]
    else:
        rows += [Condition(1024, 2, "bicubic")]
    return rows


def evaluate(models: dict[str, Predictor], scale: int, files: list[Path]) -> dict[str, dict]:
    """Per condition: per-method mean PSNR / SSIM, per-image PSNRs, and timing."""
    originals = [np.asarray(Image.open(f).convert("L")) for f in files]
    results: dict[str, dict] = {}
    for condition in conditions_for(scale):
        per: dict[str, list[tuple[float, float]]] = {}
        seconds: dict[str, float] = {}
        for index, original in enumerate(originals):
            hr = (
                original
                if condition.hr_size == 1024
                else reduce_8bit(original, condition.hr_size, "area")
            )
            if condition.kernel.endswith("+inverted"):
                hr = 255 - hr
            low = low_resolution(hr, condition, seed=index)
            outputs = {m: pil_upsample(low, scale, m) for m in ("bicubic", "lanczos")}
            for name, predictor in models.items():
                start = time.perf_counter()
                outputs[name] = predictor.enhance_array(low, tile_size=None)
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            reference = band_power(hr.astype(np.float64))
            for method, output in outputs.items():
                texture = band_power(np.clip(output, 0, 255).astype(np.float64)) / reference
                per.setdefault(method, []).append((*scores(output, hr), texture))
        row: dict[str, dict] = {}
        for method, values in per.items():
            psnrs = [v[0] for v in values]
            row[method] = {
                "psnr": statistics.fmean(psnrs),
                "ssim": statistics.fmean(v[1] for v in values),
                "texture_ratio": statistics.fmean(v[2] for v in values),
                "per_image_psnr": psnrs,
            }
        for name in models:
            lanczos = row["lanczos"]["per_image_psnr"]
            wins = sum(m > b for m, b in zip(row[name]["per_image_psnr"], lanczos, strict=True))
            row[name]["wins_over_lanczos"] = wins
            row[name]["seconds_per_image"] = seconds[name] / len(originals)
        results[condition.label] = {"condition": condition.__dict__, "methods": row}
    return results


def cell(method: dict) -> str:
    return f"{method['psnr']:.2f} / {method['ssim']:.4f} / {method['texture_ratio']:.2f}"


def table(results: dict[str, dict], models: list[str], count: int) -> str:
    """Markdown: per condition, PSNR dB / SSIM / texture of each method (module doc)."""
    head = "| condition | bicubic | Lanczos | " + " | ".join(
        f"{m} | vs Lanczos | wins" for m in models
    )
    lines = [head + " |", "|" + "---|" * (3 + 3 * len(models))]
    for label, result in results.items():
        row = result["methods"]
        cells = [
            label,
            cell(row["bicubic"]),
            cell(row["lanczos"]),
        ]
        for m in models:
            delta = row[m]["psnr"] - row["lanczos"]["psnr"]
            cells += [
                cell(row[m]),
                f"{delta:+.2f} dB",
                f"{row[m]['wins_over_lanczos']}/{count}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["xray-x4"])
    parser.add_argument("--output", default="runs/radiograph-sr")
    parser.add_argument("--limit", type=int, default=None, help="first N held-out images only")
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="also each model in float32 (NAME@fp32) where the default precision is bf16",
    )
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"{DATA} is absent: the held-out NIH radiographs are needed; nothing measured.")
        return 0
    torch.set_num_threads(max(1, torch.get_num_threads()))
    files = held_out_files(HOLDOUT)[: args.limit]
    predictors = {name: Predictor.load(name) for name in args.models}
    if args.fp32:
        predictors.update(float32_variants(predictors))
    scales = {p.scale for p in predictors.values()}
    if len(scales) != 1:
        sys.exit("give models of one scale per run")
    scale = scales.pop()
    results = evaluate(predictors, scale, files)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    record = {"files": [f.name for f in files], "scale": scale, "results": results}
    (out / f"radiograph_sr_x{scale}.json").write_text(json.dumps(record, indent=1))
    print(
        f"{len(files)} held-out NIH radiographs ({HOLDOUT.path}, holdout 40, seed 0); "
        "PSNR dB / SSIM on value/255, whole image"
    )
    print(table(results, list(predictors), len(files)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
