from __future__ import annotations

import math

import pytest
import torch

from medsr.image import Window
from medsr.metrics.ct import (
    CT_WINDOWS,
    describe_window,
    hu_rmse,
    window_to_unit,
    windowed_psnr,
    windowed_ssim,
)


def test_windows_are_the_benchmark_ones() -> None:
    assert {k: (w.center, w.width) for k, w in CT_WINDOWS.items()} == {
        "neuro": (40, 80),
        "abdomen": (50, 400),
        "chest": (-600, 1500),
    }
    assert describe_window("neuro") == "neuro C40/W80 -> 0..1"


def test_window_to_unit_maps_and_clips() -> None:
    hu = torch.tensor([-1000.0, 0.0, 40.0, 80.0, 1000.0])
    assert window_to_unit(hu, "neuro").tolist() == pytest.approx([0, 0, 0.5, 1, 1])
    assert window_to_unit(hu, Window(0, 2000)).tolist() == pytest.approx([0, 0.5, 0.52, 0.54, 1])
    with pytest.raises(ValueError, match="unknown CT window"):
        window_to_unit(hu, "brain")


def test_windowed_psnr_of_a_known_error() -> None:
    target = torch.full((1, 1, 16, 16), 40.0)
    prediction = target + 8.0  # 0.1 of the 80 HU neuro window
    assert float(windowed_psnr(prediction, target, "neuro")) == pytest.approx(20.0)
    # the same 8 HU is 0.02 of the 400 HU abdomen window: 14 dB higher
    assert float(windowed_psnr(prediction, target, "abdomen")) == pytest.approx(
        -10 * math.log10(0.02**2)
    )


def test_errors_outside_the_window_are_clipped() -> None:
    target = torch.full((1, 1, 16, 16), 500.0)
    prediction = target + 300.0  # both above the neuro window: identical after windowing
    assert math.isinf(float(windowed_psnr(prediction, target, "neuro")))
    assert float(windowed_ssim(prediction, target, "neuro")) == pytest.approx(1.0)
    assert float(hu_rmse(prediction, target)) == pytest.approx(300.0)


def test_hu_rmse_per_image() -> None:
    target = torch.zeros(2, 1, 4, 4)
    prediction = torch.stack([torch.full((1, 4, 4), 5.0), torch.full((1, 4, 4), -3.0)])
    assert hu_rmse(prediction, target, reduction="none").tolist() == pytest.approx([5.0, 3.0])


def test_windowed_ssim_below_one_for_noise() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.full((1, 1, 32, 32), 40.0)
    noisy = target + 10 * torch.randn(target.shape, generator=g)
    assert 0 < float(windowed_ssim(noisy, target, "neuro")) < 0.5
    assert float(windowed_ssim(noisy, target, "chest")) > 0.9  # noise is small on a wide window
