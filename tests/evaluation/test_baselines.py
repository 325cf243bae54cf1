from __future__ import annotations

import numpy as np
import pytest

from medsr.evaluation import baselines
from medsr.evaluation.baselines import (
    estimate_noise_sd,
    mad_noise_sd,
    nlm_denoise,
    resolve_baselines,
    run_baseline,
)


def smooth_image(size: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    return (100 * np.sin(2 * np.pi * 1.5 * x) * np.cos(2 * np.pi * y)).astype(np.float32)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.parametrize("name", ["nearest", "bicubic", "lanczos"])
def test_interpolation_of_a_constant_is_the_constant(name: str) -> None:
    out = run_baseline(name, np.full((8, 6), 40.0, np.float32), 4, "CT").image
    assert out.shape == (32, 24)
    np.testing.assert_allclose(out, 40.0, atol=1e-4)


def test_nearest_replicates_pixels() -> None:
    low = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = run_baseline("nearest", low, 2, "CT").image
    np.testing.assert_array_equal(out, np.kron(low, np.ones((2, 2), np.float32)))


def test_lanczos_of_a_smooth_image_beats_bicubic_beats_nearest() -> None:
    high = smooth_image(64)
    low = high.reshape(16, 4, 16, 4).mean(axis=(1, 3))  # area x4
    errors = {
        m: rmse(run_baseline(m, low, 4, "CT").image[8:-8, 8:-8], high[8:-8, 8:-8])
        for m in ("nearest", "bicubic", "lanczos")
    }
    assert errors["lanczos"] < errors["bicubic"] < 0.5 * errors["nearest"], errors


def test_resolve_baselines_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    default = ["nearest", "bicubic", "lanczos", "denoise-lanczos"]
    assert resolve_baselines(default, 4, noisy=False) == ["nearest", "bicubic", "lanczos"]
    monkeypatch.setattr(baselines, "bm3d_available", lambda: False)
    assert resolve_baselines(default, 4, noisy=True)[-1] == "nlm-lanczos"
    monkeypatch.setattr(baselines, "bm3d_available", lambda: True)
    assert resolve_baselines(default, 4, noisy=True)[-1] == "bm3d-lanczos"
    assert resolve_baselines(default, 1, noisy=True) == ["input", "bm3d-lanczos"]
    with pytest.raises(ValueError, match="unknown baseline 'cubic'"):
        resolve_baselines(["cubic"], 2, noisy=False)
    with pytest.raises(ValueError, match="only defined at scale 1"):
        run_baseline("input", np.zeros((4, 4), np.float32), 2, "CT")


def test_noise_estimators_recover_white_noise_sd() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 5.0, (128, 128))
    assert mad_noise_sd(noise + 30.0) == pytest.approx(5.0, rel=0.06)
    sd, how = estimate_noise_sd((noise + 40.0).astype(np.float32), "CT")  # soft tissue ROIs
    assert sd == pytest.approx(5.0, rel=0.06) and "ROIs" in how
    sd, how = estimate_noise_sd((noise + 500.0).astype(np.float32), "CT")  # bone: no ROI
    assert sd == pytest.approx(5.0, rel=0.06) and "MAD" in how


def test_nlm_keeps_a_constant_and_removes_noise_from_a_step() -> None:
    np.testing.assert_allclose(nlm_denoise(np.full((20, 20), 7.0), 2.0), 7.0, atol=1e-5)
    clean = np.zeros((48, 48))
    clean[:, 24:] = 100.0
    noisy = clean + np.random.default_rng(1).normal(0, 10.0, clean.shape)
    out = nlm_denoise(noisy, 10.0)
    assert rmse(out, clean) < 0.4 * rmse(noisy, clean)
    assert abs(float(out[:, 30:].mean()) - 100.0) < 2.0  # the edge is not smeared away


def test_denoise_lanczos_reports_its_sigma() -> None:
    noisy = (40 + np.random.default_rng(2).normal(0, 8.0, (48, 48))).astype(np.float32)
    result = run_baseline("nlm-lanczos", noisy, 2, "CT")
    assert result.image.shape == (96, 96)
    assert result.info["sigma"] == pytest.approx(8.0, rel=0.1)
    assert float(result.image[8:-8, 8:-8].std()) < 0.5 * float(noisy.std())


@pytest.mark.skipif(not baselines.bm3d_available(), reason="bm3d (extra eval) not installed")
def test_bm3d_removes_noise_in_image_units() -> None:
    clean = np.zeros((48, 48))
    clean[12:36, 12:36] = 200.0
    noise = np.random.default_rng(3).normal(0, 15.0, clean.shape)
    noisy = (clean - 1000 + noise).astype(np.float32)
    out = baselines.bm3d_denoise(noisy, 15.0)
    assert rmse(out, clean - 1000) < 0.4 * rmse(noisy, clean - 1000)
