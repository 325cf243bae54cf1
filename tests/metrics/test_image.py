from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from medsr.metrics.image import gaussian_window, l1, mse, psnr, ssim


def reference_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Wang et al. 2004 with scipy: Gaussian sigma 1.5 truncated to 11 taps, valid region."""

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma=1.5, truncate=3.5)[5:-5, 5:-5]

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def smooth_image(seed: int = 0, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random((size, size)), 2.0) * 3.0


def test_psnr_of_a_known_mse() -> None:
    target = torch.zeros(2, 1, 8, 8)
    prediction = torch.full_like(target, 0.1)  # MSE 0.01
    assert float(mse(prediction, target)) == pytest.approx(0.01)
    assert float(l1(prediction, target)) == pytest.approx(0.1)
    assert float(psnr(prediction, target, data_range=1.0)) == pytest.approx(20.0)
    assert float(psnr(prediction, target, data_range=2.0)) == pytest.approx(20 + 20 * math.log10(2))


def test_psnr_per_image_and_mean() -> None:
    target = torch.zeros(2, 1, 4, 4)
    prediction = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.01)])
    values = psnr(prediction, target, data_range=1.0, reduction="none")
    assert values.shape == (2,)
    assert values.tolist() == pytest.approx([20.0, 40.0])
    assert float(psnr(prediction, target, data_range=1.0)) == pytest.approx(30.0)


def test_data_range_is_required_and_checked() -> None:
    x = torch.zeros(1, 1, 16, 16)
    with pytest.raises(TypeError):
        psnr(x, x)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ssim(x, x)  # type: ignore[call-arg]
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="data_range"):
            psnr(x, x, data_range=bad)


def test_shape_mismatch_and_bad_reduction() -> None:
    with pytest.raises(ValueError, match="differ"):
        mse(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="reduction"):
        mse(torch.zeros(4, 4), torch.zeros(4, 4), reduction="sum")
    with pytest.raises(ValueError, match="at least"):
        ssim(torch.zeros(8, 8), torch.zeros(8, 8), data_range=1.0)


def test_gaussian_window() -> None:
    w = gaussian_window()
    assert w.shape == (11,) and float(w.sum()) == pytest.approx(1.0)
    assert int(w.argmax()) == 5


def test_ssim_of_identical_images_is_one() -> None:
    image = torch.from_numpy(smooth_image())
    assert float(ssim(image, image, data_range=3.0)) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_a_constant_shift_matches_reference() -> None:
    x = smooth_image()
    y = x + 0.5  # only the luminance term drops: 1 - ~0.1
    value = float(ssim(torch.from_numpy(y), torch.from_numpy(x), data_range=1.0))
    assert 0.5 < value < 0.97
    assert value == pytest.approx(reference_ssim(y, x, 1.0), abs=1e-10)


def test_ssim_of_noisy_batch_matches_reference() -> None:
    rng = np.random.default_rng(1)
    x = np.stack([smooth_image(s) for s in range(3)])
    y = x + rng.normal(0, 0.05, x.shape)
    values = ssim(
        torch.from_numpy(y)[:, None], torch.from_numpy(x)[:, None], data_range=1.0, reduction="none"
    )
    expected = [reference_ssim(y[i], x[i], 1.0) for i in range(3)]
    assert values.tolist() == pytest.approx(expected, abs=1e-10)
    assert all(v < 1 for v in expected)
