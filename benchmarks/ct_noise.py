"""Calibrated low-dose CT noise on real images: the PHYSICS.md table, reproduced.

Run: `python benchmarks/ct_noise.py [--seeds 3]`. For each real CT image, the simulator is
calibrated (I0 and FBP window) on the image's own normal-dose noise in uniform ROIs; the
table gives the measured total noise SD at 25 % and 10 % dose (mean over seeds) against the
expected SD / sqrt(dose), and the mean NPS frequency of the real noise, of the inserted
noise, and of white image-domain noise with the same SD.

The second table checks the simulation against REAL low-dose noise: the 11 full / quarter
dose pairs of AAPM/Mayo patient L143 in `../shared/data/ldct-mayo-L143` (Siemens SOMATOM
Definition AS+, 512^2, 0.82 mm, 3 mm; `L143_000NNN` reconstructed with the sharp D45f kernel,
`L143_smNNNN` with the smooth B30f). For each full-dose image the `ldct` task (25 % dose)
with the matched kernel (`b30f-like`, `d45f-like`) calibrates I0 on the image itself, as
`medsr degrade` does on a 2-D image, with each calibration method (`roi-sd`, `nps-band`),
and inserts one noise draw; the real noise is quarter minus full dose. Both are measured in
the same uniform ROIs of the full-dose image. The third table resamples both noise images
to other pixel sizes (bicubic, antialiased when coarser): the NPS in cycles/pixel shifts with
the pixel size, the match should not. The fourth table compares the noise's streakiness
(`medsr.metrics.noise.axis_power_ratio`: high-frequency NPS on the vertical over the
horizontal frequency axis) of the real noise with the simulation at a constant tube current
and with angular tube-current modulation (m = 0.5, the square-root rule, and m = 1; the
Siemens scanner modulates with CARE Dose). The fifth table checks the kernel's signal
transfer (`medsr.physics.projector.signal_transfer`, the task's `signal_kernel`): the B30f
full-dose images as `d45f-like` would reconstruct them (W_d45f-like / W_b30f-like, capped)
against the real D45f full-dose images of the same scan and dose (other slices: no slice
has both kernels), by the full dose's own noise in uniform ROIs, whose SD and NPS mean
frequency the kernel sets. `--l143 N` keeps N images per kernel (default: all);
without `../shared/data` the script says so and prints the first table only.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from medsr.image import Volume
from medsr.io import read
from medsr.io.samples import load_sample
from medsr.metrics.noise import (
    Roi,
    axis_power_ratio,
    find_uniform_rois,
    mean_nps_frequency,
    noise_power_spectrum,
    noise_sd,
    radial_nps,
)
from medsr.physics.ct_calibration import (
    CALIBRATION_METHODS,
    calibrate_incident_photons,
    low_dose_noise_sd,
)
from medsr.physics.projector import SIGNAL_MAX_GAIN, signal_transfer
from medsr.physics.tasks import make_task

L143 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ldct-mayo-L143"
# file-name prefix -> (the scanner's kernel, the matched kernel of medsr.physics.projector)
L143_KERNELS = {"L143_00": ("D45f", "d45f-like"), "L143_sm": ("B30f", "b30f-like")}
PIXEL_SIZES_MM = (0.5, 0.66, 0.82, 1.0)

IMAGES = {
    "pydicom 693_UNCR head 512^2": lambda: load_sample("ct-head-693"),
    "InVesalius slice z=80, 256^2": lambda: load_sample("invesalius-head-ct").slice(80),
    "pydicom explicit_VR-UN abdomen": lambda: load_sample("ct-abdomen"),
}


def row(label: str, image: Volume, seeds: int) -> str:
    image_hu = torch.from_numpy(image.array)
    calibration = calibrate_incident_photons(image_hu, image.spacing[-1])
    cells = [label, f"{calibration.real_noise_sd:.2f}"]
    for dose in (0.25, 0.1):
        measured = statistics.mean(
            low_dose_noise_sd(calibration, image_hu, dose, seed=s) for s in range(seeds)
        )
        cells.append(f"{measured:.2f} ({calibration.real_noise_sd / math.sqrt(dose):.2f})")
    assert calibration.projection is not None
    noise = calibration.simulator(0.25).noise(calibration.projection, torch.Generator())[0]
    white = np.random.default_rng(0).normal(0, float(noise.std()), noise.shape)
    cells += [
        f"{calibration.incident_photons:.3g}",
        calibration.filter_window,
        f"{calibration.real_mean_nps_frequency:.3f}",
        f"{mean_nps_frequency(noise.numpy(), calibration.rois):.3f}",
        f"{mean_nps_frequency(white, calibration.rois):.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


def nps_shape_distance(a: np.ndarray, b: np.ndarray, rois: list[Roi]) -> float:
    """L1 distance of the two radial NPS (8 bins to 0.5 cycles/pixel), each scaled to sum 1:
    0 = the same shape, 2 = no overlap."""
    shapes = [radial_nps(x, rois, bins=8)[1] for x in (a, b)]
    return float(np.abs(shapes[0] / shapes[0].sum() - shapes[1] / shapes[1].sum()).sum())


def l143_names(limit: int | None) -> dict[str, list[str]]:
    """The L143 file names per scanner kernel (the first `limit` of each, sorted)."""
    names = sorted(p.name for p in (L143 / "full_dose").iterdir() if p.suffix == ".IMA")
    groups = {}
    for prefix, (kernel, _) in L143_KERNELS.items():
        groups[kernel] = [n for n in names if n.startswith(prefix)][:limit]
    return groups


class L143Noise(NamedTuple):
    full: np.ndarray  # full-dose HU
    real: np.ndarray  # quarter - full dose
    simulated: dict[str, np.ndarray]  # per calibration method
    spacing: float


def l143_pair(name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """One L143 pair: the full dose (HU), the real noise (quarter - full) and the spacing."""
    full, quarter = read(L143 / "full_dose" / name), read(L143 / "quarter_dose" / name)
    full_hu = np.asarray(full.array, dtype=np.float64).squeeze()
    real = np.asarray(quarter.array, dtype=np.float64).squeeze() - full_hu
    return full_hu, real, float(full.spacing[-1])


def l143_noise(name: str, matched: str, seed: int) -> L143Noise:
    """Real (quarter - full) and simulated noise of one L143 pair, per calibration method."""
    full_hu, real, spacing = l143_pair(name)
    high = torch.from_numpy(full_hu.astype(np.float32))[None]  # one tensor: projected once
    simulated = {}
    for method in CALIBRATION_METHODS:
        task = make_task("ldct", filter_window=matched, calibration=method)
        pair = task(high, spacing, torch.Generator().manual_seed(seed))
        simulated[method] = (pair.low - pair.high)[0].double().numpy()
    return L143Noise(full_hu, real, simulated, spacing)


def resampled(image: np.ndarray, factor: float) -> np.ndarray:
    """`image` on a grid `factor` times finer (bicubic; antialiased when coarser)."""
    if factor == 1:
        return image
    tensor = torch.from_numpy(image)[None, None]
    out = F.interpolate(
        tensor, scale_factor=factor, mode="bicubic", align_corners=False, antialias=factor < 1
    )
    return out[0, 0].numpy()


def l143_tables(limit: int | None, seed: int) -> None:
    groups = l143_names(limit)
    print(
        "\nSimulated vs REAL low-dose noise, AAPM/Mayo L143 (Siemens SOMATOM Definition AS+, "
        "512^2, 0.82 mm, 3 mm): real = quarter - full dose; simulated = the `ldct` task at "
        "25 % dose, 720 views, parallel beam, the matched kernel, I0 calibrated on the "
        f"full-dose image itself (roi-sd / nps-band), seed {seed}; measured in the same 12 "
        "uniform 24x24 ROIs of the full-dose image (plane-detrended). SD in HU, NPS mean "
        "frequency in cycles/pixel, NPS shape = L1 distance of the radial NPS scaled to sum 1 "
        "(0 = same)."
    )
    print(
        "| image | kernel (scanner -> simulated) | real SD | sim SD, roi-sd | sim SD, nps-band "
        "| NPS f real | NPS f sim | NPS shape |"
    )
    print("|---|---|---|---|---|---|---|---|")
    by_kernel: dict[str, list[dict[str, float]]] = {}
    by_pixel: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for kernel, names in groups.items():
        matched = dict(L143_KERNELS.values())[kernel]
        for name in names:
            full, real, simulated, spacing = l143_noise(name, matched, seed)
            rois = find_uniform_rois(full, size=24)
            sim = simulated["nps-band"]
            values = {
                "real": noise_sd(real, rois),
                **{m: noise_sd(simulated[m], rois) for m in CALIBRATION_METHODS},
                "f real": mean_nps_frequency(real, rois),
                "f sim": mean_nps_frequency(sim, rois),
                "shape": nps_shape_distance(real, sim, rois),
            }
            by_kernel.setdefault(kernel, []).append(values)
            label = name.removesuffix(".IMA")
            print(_l143_row(label, f"{kernel} -> {matched}", values), flush=True)
            for size in PIXEL_SIZES_MM:
                factor = spacing / size if abs(spacing / size - 1) > 0.01 else 1.0
                full_at = resampled(full, factor)
                rois_at = find_uniform_rois(full_at, size=24)
                real_f = mean_nps_frequency(resampled(real, factor), rois_at)
                sim_f = mean_nps_frequency(resampled(sim, factor), rois_at)
                by_pixel.setdefault((kernel, size), []).append((real_f, sim_f))
    for kernel, rows in by_kernel.items():
        mean = {key: statistics.mean(r[key] for r in rows) for key in rows[0]}
        label = f"**mean of {len(rows)} {kernel}**"
        matched = dict(L143_KERNELS.values())[kernel]
        print(_l143_row(label, f"{kernel} -> {matched}", mean))
    print(
        "\nNPS mean frequency (cycles/pixel) of the same noise images resampled to other pixel "
        "sizes (the kernels are fixed in cycles/mm, so the texture in cycles/pixel moves), "
        "mean over the images of each kernel, real / simulated:"
    )
    print("| kernel | " + " | ".join(f"{s} mm" for s in PIXEL_SIZES_MM) + " |")
    print("|---|" + "---|" * len(PIXEL_SIZES_MM))
    for kernel in groups:
        cells = []
        for size in PIXEL_SIZES_MM:
            pairs = by_pixel.get((kernel, size), [])
            if pairs:
                real_f, sim_f = (statistics.mean(p[i] for p in pairs) for i in (0, 1))
                cells.append(f"{real_f:.3f} / {sim_f:.3f}")
        print(f"| {kernel} | " + " | ".join(cells) + " |")


MODULATIONS = (0.0, 0.5, 1.0)


def corner_share(image: np.ndarray, rois: list[Roi]) -> float:
    """The share of the NPS in the spectrum's corners, |f_x| and |f_y| > 0.35 cycles/pixel
    (the diagonal grain at the pixel-grid limit); white noise: 0.09."""
    spectrum = noise_power_spectrum(image, rois)
    frequency = np.abs(np.fft.fftshift(np.fft.fftfreq(spectrum.shape[0])))
    corners = (frequency[:, None] > 0.35) & (frequency[None, :] > 0.35)
    return float(spectrum[corners].sum() / spectrum.sum())


def streakiness_table(groups: dict[str, list[str]], seed: int) -> None:
    """Real vs simulated `axis_power_ratio` per L143 image, at each tube-current modulation
    of `MODULATIONS` (nps-band calibration, matched kernel, 25 % dose)."""
    print(
        "\nNoise streakiness, real vs simulated: NPS above 0.15 cycles/pixel near the vertical "
        "frequency axis over near the horizontal one (1 = isotropic), in the same 12 uniform "
        "24x24 ROIs; simulated at a constant tube current (m = 0) and with angular modulation "
        "(m = 0.5, the square-root rule; m = 1). Error = |ln(sim / real)|, mean per kernel "
        "(0 = same). Corner share: the NPS share at |f_x|, |f_y| > 0.35 cycles/pixel."
    )
    header = " | ".join(f"sim m={m}" for m in MODULATIONS)
    print(f"| image | kernel | real | {header} | corner share real / sim (m=0.5) |")
    print("|---|---|---|" + "---|" * len(MODULATIONS) + "---|")
    errors: dict[tuple[str, float], list[float]] = {}
    for kernel, names in groups.items():
        matched = dict(L143_KERNELS.values())[kernel]
        for name in names:
            full_hu, real, spacing = l143_pair(name)
            rois = find_uniform_rois(full_hu, size=24)
            real_ratio = axis_power_ratio(real, rois)
            high = torch.from_numpy(full_hu.astype(np.float32))[None]
            cells, corners = [], f"{corner_share(real, rois):.3f}"
            for m in MODULATIONS:
                task = make_task(
                    "ldct", filter_window=matched, calibration="nps-band", modulation_range=(m, m)
                )
                pair = task(high, spacing, torch.Generator().manual_seed(seed))
                simulated = (pair.low - pair.high)[0].double().numpy()
                ratio = axis_power_ratio(simulated, rois)
                if m == 0.5:
                    corners += f" / {corner_share(simulated, rois):.3f}"
                errors.setdefault((kernel, m), []).append(abs(math.log(ratio / real_ratio)))
                cells.append(f"{ratio:.2f}")
            label = name.removesuffix(".IMA")
            row = " | ".join([label, kernel, f"{real_ratio:.2f}", *cells, corners])
            print(f"| {row} |")
    for kernel in groups:
        means = [statistics.mean(errors[(kernel, m)]) for m in MODULATIONS]
        print(
            f"| **error, mean of {kernel}** | | | " + " | ".join(f"{e:.2f}" for e in means) + " | |"
        )


def signal_transfer_table(groups: dict[str, list[str]]) -> None:
    """The fifth table (module doc): full-dose noise SD and NPS mean frequency of the real
    B30f and D45f images and of the B30f ones filtered to `d45f-like`."""
    rows: dict[str, list[tuple[float, float]]] = {}
    for name in groups["B30f"] + groups["D45f"]:
        full, _, _ = l143_pair(name)
        rois = find_uniform_rois(full, size=24)
        kernel = "B30f" if name in groups["B30f"] else "D45f"
        rows.setdefault(f"real {kernel}", []).append(
            (noise_sd(full, rois), mean_nps_frequency(full, rois))
        )
        if kernel == "B30f":
            sharp = signal_transfer(torch.from_numpy(full), "b30f-like", "d45f-like").numpy()
            rows.setdefault("B30f as d45f-like", []).append(
                (noise_sd(sharp, rois), mean_nps_frequency(sharp, rois))
            )
    print(
        "\nFull-dose images as another kernel reconstructs them (`signal_transfer`, cap "
        f"{SIGNAL_MAX_GAIN:g}); own noise in uniform ROIs (24x24), mean over the images:\n"
    )
    print("| images | count | full-dose noise SD HU | NPS mean frequency c/px |")
    print("|---|---|---|---|")
    for label, values in rows.items():
        sd, frequency = np.mean(values, axis=0)
        print(f"| {label} | {len(values)} | {sd:.1f} | {frequency:.3f} |")


def _l143_row(label: str, kernels: str, v: dict[str, float]) -> str:
    def sd(method: str) -> str:
        return f"{v[method]:.1f} ({100 * (v[method] / v['real'] - 1):+.0f} %)"

    return (
        f"| {label} | {kernels} | {v['real']:.1f} | {sd('roi-sd')} | {sd('nps-band')} "
        f"| {v['f real']:.3f} | {v['f sim']:.3f} ({v['f sim'] - v['f real']:+.3f}) "
        f"| {v['shape']:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--l143", type=int, default=None, help="L143 images per kernel")
    parser.add_argument("--l143-seed", type=int, default=0)
    parser.add_argument("--skip-first", action="store_true", help="only the L143 tables")
    arguments = parser.parse_args()
    print(
        "720 views, parallel beam, noise-only FBP; SD in HU in uniform soft-tissue ROIs "
        "(24x24, plane-detrended); NPS mean frequency in cycles/pixel."
    )
    print(
        "| image | real SD | SD at 25 % (expected) | SD at 10 % (expected) | I0 | window "
        "| NPS f real | NPS f inserted | NPS f white |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    if not arguments.skip_first:
        for label, load in IMAGES.items():
            print(row(label, load(), arguments.seeds), flush=True)
    if not (L143 / "full_dose").is_dir():
        print(
            f"\n{L143} is absent: no comparison with real low-dose noise (the shared data "
            "folder is not part of the project; see ../shared/data/README.md)."
        )
        return
    l143_tables(arguments.l143, arguments.l143_seed)
    streakiness_table(l143_names(arguments.l143), arguments.l143_seed)
    signal_transfer_table(l143_names(arguments.l143))


if __name__ == "__main__":
    main()
