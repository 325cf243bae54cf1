"""Every shipped model loads, runs on a real sample it never trained on, and beats bicubic."""

from __future__ import annotations

import numpy as np
import pytest

from medsr.evaluation.pairs import make_pairs
from medsr.inference import Predictor
from medsr.inference.registry import MODELS
from medsr.metrics.ct import ABDOMEN, windowed_psnr
from medsr.metrics.image import psnr
from medsr.physics.resize import upsample
from medsr.physics.unknown_resize import resize_only

# The blind radiograph models have their own test below, one case per resize kernel.
SINGLE_INPUT = sorted(
    name
    for name, entry in MODELS.items()
    if entry.task != "petct" and not entry.task.startswith("xray-blind")
)
# Held out from training: CT models trained on the InVesalius volume, radiograph models on RG1.
CASES = {
    "ldct": ("sample:ct-small", None, {}),
    "xray": ("sample:xray-extremity-rg3", 768, {"incident_photons": 10000.0}),
}


def test_every_registered_model_ships_its_weights() -> None:
    missing = [name for name, entry in MODELS.items() if not entry.installed]
    assert not missing, f"registered models without weights: {missing}"


@pytest.mark.parametrize("name", SINGLE_INPUT)
def test_shipped_model_beats_bicubic_on_a_held_out_sample(name: str) -> None:
    predictor = Predictor.load(name)
    source, crop, overrides = CASES["xray" if predictor.task.startswith("xray") else "ldct"]
    (pair,) = make_pairs(
        [source], predictor.task, seed=0, task_overrides=overrides, input_crop=crop
    )
    output = predictor.enhance_array(pair.low)
    assert output.shape == pair.high.shape and np.isfinite(output).all()
    bicubic = upsample(_tensor(pair.low), predictor.scale, "bicubic").numpy()[0, 0]
    border = 4 * predictor.scale
    inner = (slice(border, -border), slice(border, -border))
    if predictor.task.startswith("xray"):
        low, high = np.percentile(pair.high, [0.5, 99.5])

        def score(x: np.ndarray) -> float:  # noqa: E306
            scaled = [np.clip((a[inner] - low) / (high - low), 0, 1) for a in (x, pair.high)]
            return float(psnr(_tensor(scaled[0]), _tensor(scaled[1]), data_range=1.0))
    else:

        def score(x: np.ndarray) -> float:  # noqa: E306
            return float(windowed_psnr(_tensor(x[inner]), _tensor(pair.high[inner]), ABDOMEN))

    # ct-small is tiny and very noisy and the crop is anatomy only: a modest but real margin
    # for the PSNR-oriented models; the GAN ones trade PSNR for texture and must still win.
    margin = 0.0 if name.endswith("-gan") else 0.2
    assert score(output) > score(bicubic) + margin


def _tensor(array: np.ndarray):  # type: ignore[no-untyped-def]
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]


BLIND_XRAY = sorted(n for n, e in MODELS.items() if e.task.startswith("xray-blind"))


@pytest.mark.parametrize("kernel", ["bicubic", "box", "gaussian"])
@pytest.mark.parametrize("name", BLIND_XRAY)
def test_radiograph_model_beats_bicubic_whatever_made_the_low_image(name: str, kernel: str) -> None:
    """The blind radiograph models on RG3 (never trained on) whose LR was made by each kernel."""
    predictor = Predictor.load(name)
    sigma = (predictor.scale - 1) / 2 / predictor.scale
    (pair,) = make_pairs(
        ["sample:xray-extremity-rg3"],
        predictor.task,
        seed=0,
        # Gaussian: SD (s - 1) / 2 high pixels, scikit-image's default and the benchmark's;
        # much wider blurs are a known weakness (model cards, RG3 rows).
        task_overrides={**resize_only(kernel), "gaussian_sigma_range": (sigma, sigma)},
        input_crop=512,
    )
    output = predictor.enhance_array(pair.low, tile_size=None)
    assert output.shape == pair.high.shape and np.isfinite(output).all()
    bicubic = upsample(_tensor(pair.low), predictor.scale, "bicubic").numpy()[0, 0]
    low, high = np.percentile(pair.high, [0.5, 99.5])

    def score(x: np.ndarray) -> float:
        scaled = [np.clip((a - low) / (high - low), 0, 1) for a in (x, pair.high)]
        return float(psnr(_tensor(scaled[0]), _tensor(scaled[1]), data_range=1.0))

    margin = 0.0 if name.endswith("-gan") else 0.2
    assert score(output) > score(bicubic) + margin


@pytest.mark.parametrize("name", BLIND_XRAY)
def test_radiograph_model_works_on_a_small_crop_as_on_the_whole_image(name: str) -> None:
    """Each input is mapped by its own percentiles: a small crop (mostly bone) maps quite
    differently from the whole image, and must still be enhanced as well."""
    predictor = Predictor.load(name)
    (pair,) = make_pairs(
        ["sample:xray-extremity-rg3"],
        predictor.task,
        seed=0,
        task_overrides=resize_only("bicubic"),
        input_crop=512,
    )
    s, low = predictor.scale, pair.low
    whole = predictor.enhance_array(low, tile_size=None)
    lo, size = low.shape[0] // 4, low.shape[0] // 2  # the central quarter of the area
    crop = predictor.enhance_array(low[lo : lo + size, lo : lo + size], tile_size=None)
    region = (slice(lo * s, (lo + size) * s), slice(lo * s, (lo + size) * s))
    high = pair.high[region]
    vmin, vmax = np.percentile(high, [0.5, 99.5])
    inner = (slice(4 * s, -4 * s), slice(4 * s, -4 * s))

    def score(x: np.ndarray) -> float:
        scaled = [np.clip((a[inner] - vmin) / (vmax - vmin), 0, 1) for a in (x, high)]
        return float(psnr(_tensor(scaled[0]), _tensor(scaled[1]), data_range=1.0))

    bicubic = upsample(_tensor(low), s, "bicubic").numpy()[0, 0][region]
    assert score(crop) > score(bicubic) + 0.2
    assert score(crop) > score(whole[region]) - 0.3
