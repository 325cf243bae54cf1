"""The low-dose task's sampler: reconstruction kernel, dose fraction and pixel size per pair."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch

from medsr.physics.degradation import params_record
from medsr.physics.low_dose_task import LowDoseCTTask
from medsr.physics.projector import MATCHED_KERNELS
from medsr.physics.tasks import make_task
from tests.ct_phantom import body_phantom

KERNELS = ("b30f-like", "cosine", "shepp-logan", "d45f-like")


def sampler(**overrides: object) -> LowDoseCTTask:
    settings = {
        "kernels": KERNELS,
        "dose_range": (0.05, 0.5),
        "zoom": (1.0, 2.0),
        "incident_photons": 1e5,
        "num_views": 90,
        **overrides,
    }
    task = make_task("ldct", **settings)
    assert isinstance(task, LowDoseCTTask)
    return task


def test_draws_stay_in_range_cover_it_and_are_logged() -> None:
    task = sampler()
    draws = [task.sample(torch.Generator().manual_seed(seed)) for seed in range(400)]
    doses = [d.dose_fraction for d in draws]
    assert all(0.05 <= d <= 0.5 for d in doses)
    # log-uniform: the median is the geometric mean of the bounds, not the arithmetic one
    assert statistics.median(doses) == pytest.approx(math.sqrt(0.05 * 0.5), rel=0.15)
    assert min(doses) < 0.06 and max(doses) > 0.45
    kernels = [d.filter_window for d in draws]
    assert set(kernels) == set(KERNELS)
    assert min(kernels.count(k) for k in KERNELS) > 60  # uniform over the list
    assert all(1.0 <= d.zoom <= 2.0 for d in draws)
    for draw in draws[:5]:
        record = params_record(draw)  # JSON-able, every drawn value in it
        json.dumps(record)
        assert {"dose_fraction", "filter_window", "zoom", "calibration_window"} <= set(record)
        assert record["calibration_window"] == "hann"  # the input's kernel, I0 calibrated with


def test_same_seed_same_draw_and_seeds_differ() -> None:
    task = sampler()
    first = task.sample(torch.Generator().manual_seed(7))
    assert task.sample(torch.Generator().manual_seed(7)) == first
    assert task.sample(torch.Generator().manual_seed(8)) != first


def test_defaults_draw_nothing_new() -> None:
    # without kernels or dose_range the task is what `degrade` and `evaluate` always used:
    # 25 % dose, its filter window, and the generator is left as it was
    task = make_task("ldct")
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    draw = task.sample(generator)
    assert torch.equal(generator.get_state(), state)
    assert (draw.dose_fraction, draw.filter_window, draw.calibration) == (0.25, "hann", "roi-sd")
    # gain and zoom are drawn first, so adding kernels and doses keeps their stream
    ranges = {"noise_gain": (0.5, 2.0), "zoom": (1.0, 2.0)}
    plain = make_task("ldct", **ranges).sample(torch.Generator().manual_seed(5))
    drawn = make_task("ldct", **ranges, kernels=KERNELS, dose_range=(0.05, 0.5)).sample(
        torch.Generator().manual_seed(5)
    )
    assert (plain.noise_gain, plain.zoom) == (drawn.noise_gain, drawn.zoom)


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="kernels"):
        sampler(kernels=("hann", "b45f"))
    with pytest.raises(ValueError, match="kernels"):
        sampler(kernels=())
    with pytest.raises(ValueError, match="dose_range"):
        sampler(dose_range=(0.0, 0.5))
    with pytest.raises(ValueError, match="dose_range"):
        sampler(dose_range=(0.5, 0.1))
    with pytest.raises(ValueError, match="calibration"):
        sampler(calibration="mad")
    with pytest.raises(ValueError, match="modulation_range"):
        sampler(modulation_range=(0.5, 0.1))


def test_modulation_is_drawn_last_and_reaches_the_operator() -> None:
    plain = sampler().sample(torch.Generator().manual_seed(4))
    assert plain.tube_current_modulation == 0.0
    task = sampler(modulation_range=(0.0, 0.6))
    draws = [task.sample(torch.Generator().manual_seed(seed)) for seed in range(50)]
    values = [d.tube_current_modulation for d in draws]
    assert all(0.0 <= v <= 0.6 for v in values) and max(values) - min(values) > 0.4
    # drawn after kernel and dose: those keep their stream
    assert (draws[4].filter_window, draws[4].dose_fraction) == (
        plain.filter_window,
        plain.dose_fraction,
    )
    assert task.operator(draws[4]).tube_current_modulation == draws[4].tube_current_modulation


def test_pairs_use_the_drawn_kernel_dose_and_pixel_size() -> None:
    image = torch.from_numpy(body_phantom(1, 64).array[0])[None]
    task = sampler()
    pair = task(image, 1.0, torch.Generator().manual_seed(1))
    params = pair.params
    assert params["pixel_size_mm"] == pytest.approx(1.0 / params["zoom"])
    # the pair is exactly the deterministic operator of the logged draw
    draw = task.sample(torch.Generator().manual_seed(1))
    assert (draw.filter_window, draw.dose_fraction) == (
        params["filter_window"],
        params["dose_fraction"],
    )
    again = task(image, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(pair.low, again.low)
    operator = task.operator(draw)
    assert operator.filter_window == draw.filter_window
    assert operator.dose_fraction == draw.dose_fraction


def test_lower_dose_and_sharper_kernel_give_more_noise() -> None:
    # the sampled settings reach the noise: SD grows as the dose falls and the kernel sharpens
    image = torch.from_numpy(body_phantom(1, 64).array[0])[None]
    inside = image[0] == 40.0

    def sd(kernel: str, dose: float) -> float:
        task = sampler(kernels=(kernel,), dose_range=(dose, dose), zoom=(1.0, 1.0))
        pair = task(image, 1.0, torch.Generator().manual_seed(0))
        return float((pair.low - pair.high)[0][inside].std())

    smooth, sharp = (sd(k, 0.25) for k in MATCHED_KERNELS)
    assert 2.0 < sharp / smooth < 5.0
    # quantum noise: SD ~ sqrt((1 - a) / a), a little more with electronic noise at low dose
    ratio = sd("b30f-like", 0.05) / smooth
    assert ratio == pytest.approx(math.sqrt((0.95 / 0.05) / (0.75 / 0.25)), rel=0.25)


def test_signal_kernel_puts_the_drawn_kernels_signal_under_the_same_noise() -> None:
    from medsr.physics.projector import signal_transfer

    image = torch.from_numpy(body_phantom(1, 64).array[0])[None]
    settings = {"filter_window": "b30f-like", "dose_range": (0.25, 0.25), "zoom": (1.0, 1.0)}
    for kernel in ("b30f-like", "d45f-like"):
        plain = sampler(kernels=(kernel,), **settings)
        sharp = sampler(kernels=(kernel,), signal_kernel=True, **settings)
        assert repr(plain) == repr(sharp)  # the noise, and a bank's cache key, do not change
        before = plain(image, 1.0, torch.Generator().manual_seed(2))
        after = sharp(image, 1.0, torch.Generator().manual_seed(2))
        expected = signal_transfer(image, "b30f-like", kernel)
        torch.testing.assert_close(after.high, expected)
        noise_after, noise_before = after.low - after.high, before.low - before.high
        torch.testing.assert_close(noise_after, noise_before, rtol=0, atol=1e-3)  # HU
        if kernel == "b30f-like":  # the input's own kernel: nothing to change
            assert torch.equal(after.high, before.high)
        else:  # edges lifted: more power away from DC, the same mean
            assert float(after.high.std()) > float(before.high.std())
            assert float(after.high.mean()) == pytest.approx(float(before.high.mean()), abs=0.01)
