"""The shipped low-dose CT models against classical methods on a held-out slice (issue 15).

The pydicom-data abdomen slice (another patient and scanner than the training data) at a
simulated 25 % dose with a smooth and a sharp reconstruction kernel. The real quarter-dose
figures are in the model cards (`benchmarks/ct_real_dose.py`, data not bundled).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr.evaluation.baselines import bm3d_available, bm3d_denoise
from medsr.evaluation.pairs import make_pairs
from medsr.inference import Predictor
from medsr.inference.registry import MODELS
from medsr.metrics.ct import ABDOMEN, windowed_psnr
from medsr.metrics.noise import (
    estimate_noise_sd,
    find_uniform_rois,
    noise_power_spectrum,
    noise_sd,
)
from medsr.physics.resize import upsample

X1 = sorted(n for n, e in MODELS.items() if e.task == "ldct")
SR = sorted(n for n, e in MODELS.items() if e.task.startswith("ldct-x"))
KERNELS = ("b30f-like", "d45f-like")


def _pair(task: str, kernel: str, kernel_signal: bool = False):  # type: ignore[no-untyped-def]
    """The abdomen at a 25 % dose with `kernel`'s noise. `kernel_signal`: as a scanner would
    give it, the smooth slice's I0 and the target reconstructed with `kernel` too
    (`signal_kernel`); else the slice taken as a `kernel` scan itself."""
    overrides = {"dose_fraction": 0.25, "filter_window": kernel}
    if kernel_signal:
        overrides = {
            "dose_fraction": 0.25,
            "filter_window": "b30f-like",
            "kernels": [kernel],
            "signal_kernel": True,
        }
    (pair,) = make_pairs(["sample:ct-abdomen"], task, seed=0, task_overrides=overrides)
    return pair


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]


def _psnr(x: np.ndarray, target: np.ndarray, border: int) -> float:
    inner = (slice(border, -border), slice(border, -border))
    return float(windowed_psnr(_tensor(x[inner]), _tensor(target[inner]), ABDOMEN))


def _lanczos(x: np.ndarray, scale: int) -> np.ndarray:
    return upsample(_tensor(x), scale, "lanczos").numpy()[0, 0]


def _bm3d(low: np.ndarray, scale: int) -> np.ndarray:
    sigma, _ = estimate_noise_sd(low, "CT")  # from the image, as a user would
    return _lanczos(bm3d_denoise(low, sigma).astype(np.float32), scale)


needs_bm3d = pytest.mark.skipif(not bm3d_available(), reason="PyPI bm3d (extra eval) missing")


# Issue 15 asks BM3D + 1 dB on real scans, which the shipped x1 model misses (card: L143
# +0.69 dB over BM3D on B30f, +0.78 dB on D45f). Here, on a simulated dose, it is held to
# what its releases measured, so a regression fails: at least this far above BM3D (commit
# 34222fa's weights: +1.19 dB smooth). The sharp pair is the smooth slice as the sharp kernel
# reconstructs it (`signal_kernel`), the pair a real sharp scan makes: the release trained
# with it +2.12 dB, the one before +1.67.
BM3D_MARGIN_DB = {"b30f-like": 0.6, "d45f-like": 1.8}


@needs_bm3d
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("name", X1)
def test_ct_denoiser_beats_bm3d_and_keeps_hu(name: str, kernel: str) -> None:
    predictor = Predictor.load(name)
    pair = _pair(predictor.task, kernel, kernel_signal=True)
    output = predictor.enhance_array(pair.low, tile_size=None)
    assert output.shape == pair.high.shape and np.isfinite(output).all()
    score = _psnr(output, pair.high, 4)
    assert score > _psnr(pair.low, pair.high, 4) + 2.0
    assert score > _psnr(_bm3d(pair.low, 1), pair.high, 4) + BM3D_MARGIN_DB[kernel]
    rois = find_uniform_rois(pair.high, size=24)
    bias = np.mean([abs(r.take(output).mean() - r.take(pair.high).mean()) for r in rois])
    assert bias < 5.0  # HU
    assert noise_sd(output, rois) < 0.7 * noise_sd(pair.low, rois)


@needs_bm3d
@pytest.mark.parametrize("name", SR)
def test_ct_super_resolution_beats_bm3d_lanczos_without_a_grid_pattern(name: str) -> None:
    predictor = Predictor.load(name)
    pair = _pair(predictor.task, "d45f-like")
    s = predictor.scale
    output = predictor.enhance_array(pair.low, tile_size=None)
    assert output.shape == pair.high.shape and np.isfinite(output).all()
    lanczos = _lanczos(pair.low, s)
    # measured when shipped: x4 +3.9 dB over Lanczos, x2 +0.6 dB (the block mean of a 25 %
    # dose at x2 keeps more noise, and less detail is lost)
    margin = {2: 0.3, 4: 1.0}[s]
    assert _psnr(output, pair.high, 4 * s) > _psnr(lanczos, pair.high, 4 * s) + margin
    assert _psnr(output, pair.high, 4 * s) > _psnr(_bm3d(pair.low, s), pair.high, 4 * s)
    # An upsampler can print a period-s pattern: power at 1/s cycles/pixel. The output's must
    # stay within 1.5x Lanczos's (interpolating s x s blocks leaves some too). Absolute power
    # (HU^2): divided by each image's mean power, as before, a better denoiser scored worse
    # (the shipped x2 fine-tune: 2.2-2.4x Lanczos's ratio, 0.9-1.2x its power).
    rois = find_uniform_rois(pair.high, size=32)
    assert _grid_power(output, rois, s) < 1.5 * _grid_power(lanczos, rois, s)


def _grid_power(image: np.ndarray, rois: list, scale: int) -> float:  # type: ignore[type-arg]
    """Mean NPS (HU^2 pixel^2) at the frequencies of a period-`scale` pattern: k / scale
    cycles/pixel along each axis, k = 0..scale-1, not (0, 0)."""
    spectrum = np.fft.ifftshift(noise_power_spectrum(image, rois))  # (0, 0) at [0, 0]
    step = spectrum.shape[0] // scale
    grid = spectrum[::step, ::step].copy()
    grid[0, 0] = np.nan
    return float(np.nanmean(grid))


@pytest.mark.parametrize("scale", [2, 4])
def test_grid_power_flags_a_one_hu_pattern_on_lanczos(scale: int) -> None:
    """The measure above can fail: a 1 HU period-`scale` pattern, invisible in a soft-tissue
    window, on top of Lanczos's output takes it past the 1.5x limit."""
    pair = _pair(f"ldct-x{scale}", "d45f-like")
    lanczos = _lanczos(pair.low, scale)
    rows, cols = np.indices(lanczos.shape)
    pattern = np.where((rows % scale == 0) & (cols % scale == 0), 1.0, 0.0)
    pattern = (pattern - pattern.mean()) / pattern.std()  # period `scale`, RMS 1 HU
    rois = find_uniform_rois(pair.high, size=32)
    assert _grid_power(lanczos + pattern, rois, scale) > 1.5 * _grid_power(lanczos, rois, scale)
