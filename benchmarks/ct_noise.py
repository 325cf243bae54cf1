"""Calibrated low-dose CT noise on real images: the PHYSICS.md table, reproduced.

Run: `python benchmarks/ct_noise.py [--seeds 3]`. For each real CT image, the simulator is
calibrated (I0 and FBP window) on the image's own normal-dose noise in uniform ROIs; the
table gives the measured total noise SD at 25 % and 10 % dose (mean over seeds) against the
expected SD / sqrt(dose), and the mean NPS frequency of the real noise, of the inserted
noise, and of white image-domain noise with the same SD.
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
import torch

from medsr.image import Volume
from medsr.io.samples import load_sample
from medsr.metrics.noise import mean_nps_frequency
from medsr.physics.ct_calibration import calibrate_incident_photons, low_dose_noise_sd

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
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
    for label, load in IMAGES.items():
        print(row(label, load(), arguments.seeds), flush=True)


if __name__ == "__main__":
    main()
