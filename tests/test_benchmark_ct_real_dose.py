"""`benchmarks/ct_real_dose.py`'s targets, on made-up rows (its data is not bundled): which
rows are held to the GAN targets (texture kept, above BM3D) and how margins come out; the
synthetic doses of `--dose`."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def ct_real_dose() -> ModuleType:
    return load_benchmark("ct_real_dose")


def _row(psnr: float, noise_sd: float, frequency: float) -> dict[str, float]:
    return {"psnr": psnr, "noise_sd": noise_sd, "nps_mean_frequency": frequency, "hu_bias": 1.0}


@pytest.mark.parametrize(
    ("name", "gan"),
    [
        ("ct-ldct-gan", True),
        ("ct-ldct-gan+ensemble", True),
        ("ct-ldct-gan@strength0.85", True),
        ("ct-ldct-gan@fp32", True),
        ("ct-ldct", False),
        ("ct-ldct@strength0.85", False),
        ("gan-like-ct-ldct", False),
    ],
)
def test_gan_rows_and_their_variants_get_the_gan_targets(
    ct_real_dose: ModuleType, name: str, gan: bool
) -> None:
    assert ct_real_dose.is_gan(name) is gan
    methods: dict[str, Any] = {
        "bm3d": _row(24.0, 30.0, 0.25),
        "gaussian": _row(23.5, 40.0, 0.19),
        "full-dose": _row(float("inf"), 50.0, 0.29),
        name: _row(24.1, 41.0, 0.27),
    }
    lines = ct_real_dose.targets(name, {"D45f": {"methods": methods, "pairs": [1]}}, scale=1)
    texture = [line for line in lines if "texture" in line]
    if gan:
        assert any("PSNR >= BM3D: met (margin +0.10 dB)" in line for line in lines), lines
        assert len(texture) == 2 and all(": met" in line for line in texture), texture
    else:
        assert not texture
        assert any("PSNR >= BM3D + 1.0 dB: MISSED (margin -0.90 dB)" in line for line in lines)


def test_at_dose_scales_the_real_noise_to_the_asked_dose(ct_real_dose: ModuleType) -> None:
    """Noise variance above the full dose goes as 1/D - 1: 3 at a quarter dose, 9 at 10 %."""
    rng = np.random.default_rng(0)
    full = rng.normal(0.0, 1.0, (256, 256)).astype(np.float32)  # the full dose's own noise
    added = rng.normal(0.0, math.sqrt(3.0), (256, 256)).astype(np.float32)
    pair = ct_real_dose.Pair("p", "B30f", full, full + added)
    np.testing.assert_allclose(ct_real_dose.at_dose(pair, 0.25).quarter, pair.quarter, atol=1e-5)
    for dose in (0.1, 0.5):
        lower = ct_real_dose.at_dose(pair, dose)
        assert lower.full is pair.full
        assert np.var(lower.quarter - full) == pytest.approx(1 / dose - 1, rel=0.03)
    with pytest.raises(ValueError, match="--dose must be in"):
        ct_real_dose.at_dose(pair, 0.0)


def test_variants_add_the_rows_each_option_names(ct_real_dose: ModuleType) -> None:
    """Non-blind models get the noise-level rows; every model its ensemble; the @ rows no
    ensemble of their own (the card's rows are the command's: `benchmarks/quality.py`)."""
    from medsr.inference import Predictor

    blind, non_blind = Predictor.load("ct-ldct-x2"), Predictor.load("ct-ldct")
    rows = ct_real_dose.variants(
        {"ct-ldct-x2": blind, "ct-ldct": non_blind}, strengths=[0.85], dose=0.1, ensemble=True
    )
    assert list(rows) == [
        "ct-ldct-x2",
        "ct-ldct",
        "ct-ldct-x2+ensemble",
        "ct-ldct+ensemble",
        "ct-ldct@strength0.85",
        "ct-ldct@dose0.1",
    ]
    assert rows["ct-ldct@strength0.85"].strength == 0.85
    assert rows["ct-ldct@dose0.1"].dose_fraction == 0.1
    assert rows["ct-ldct+ensemble"].geometric_ensemble
    assert list(ct_real_dose.variants({"ct-ldct": non_blind})) == ["ct-ldct"]


def test_psnr_is_also_measured_over_the_whole_hu_range_and_a_lung_window(
    ct_real_dose: ModuleType,
) -> None:
    """An error of 20 HU in soft tissue counts ~20 dB less over [-1024, 3071] than in C40/W400
    (data range 4095 vs 400 HU); an error in the lungs only where the window shows it."""
    from medsr.metrics.contrast import soft_tissue_mask
    from medsr.metrics.noise import find_uniform_rois

    rng = np.random.default_rng(1)
    full = np.full((256, 256), 40.0, dtype=np.float32)
    full[:, :64] = -850.0  # a lung
    full += rng.normal(0.0, 5.0, full.shape).astype(np.float32)
    output = full + rng.normal(0.0, 20.0, full.shape).astype(np.float32)
    pair = ct_real_dose.Pair("p", "B30f", full, output)
    rois = find_uniform_rois(full, size=ct_real_dose.ROI_SIZE)
    power = ct_real_dose.grid_nps(full, rois)[0]
    row = ct_real_dose.measure(output, pair, rois, power, soft_tissue_mask(full))
    # C40/W400 clips the lung (a quarter of the image) in both: its error does not count
    assert row["psnr"] == pytest.approx(20 * math.log10(400 / 20) + 10 * math.log10(4 / 3), abs=0.3)
    assert row["psnr_full_range"] == pytest.approx(20 * math.log10(4095 / 20), abs=0.3)
    assert row["psnr_lung"] == pytest.approx(20 * math.log10(1500 / 20), abs=0.3)
    assert set(ct_real_dose.OTHER_WINDOWS) <= set(ct_real_dose.METRICS)
