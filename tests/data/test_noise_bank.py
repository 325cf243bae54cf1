from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medsr.data.datasets import PatchSource
from medsr.data.noise_bank import NoiseBankPairs
from medsr.image import dihedral, seeded_generator
from medsr.io.samples import is_available, load_sample
from medsr.physics.resize import downsample, zoom_centre
from medsr.physics.tasks import make_task

pytestmark = pytest.mark.skipif(not is_available("ct-small"), reason="needs pydicom's CT_small")


@pytest.fixture(scope="module")
def volume():  # type: ignore[no-untyped-def]
    return load_sample("ct-small")  # 128 x 128 HU


def bank(volume, cache_dir: Path | None = None, **kwargs) -> NoiseBankPairs:  # type: ignore[no-untyped-def]
    # fewer views: a fast test of the same physics; gain and zoom are the task's ranges
    ranges = {k: kwargs.pop(k) for k in ("noise_gain", "zoom") if k in kwargs}
    task = make_task("ldct-x2", num_views=180, **ranges)
    return NoiseBankPairs(
        [volume],
        task,
        patch_size=32,
        num_samples=8,
        seed=3,
        realisations=3,
        cache_dir=cache_dir,
        **kwargs,
    )


def test_items_are_aligned_patches_of_whole_slice_noise(volume) -> None:  # type: ignore[no-untyped-def]
    pairs = bank(volume)
    noise = pairs.bank[(0, 0)]
    assert noise.shape == (3, 128, 128)
    # the bank is the whole-slice noise of the task's operator, with I0 calibrated once on the
    # volume's own noise, seeded from (bank_seed, i, k)
    assert 1e2 < pairs.incident_photons[0] < 1e6
    operator = pairs.operator(0)
    assert operator.incident_photons == pairs.incident_photons[0]
    # calibrated as `medsr degrade` calibrates: the task's own `for_scan` on the volume
    scan = make_task("ldct-x2", num_views=180).for_scan(
        torch.from_numpy(volume.array), volume.spacing[-1]
    )
    assert pairs.scan_task(0) == scan and scan.scan_incident_photons == pairs.incident_photons[0]
    projection = operator.project(torch.from_numpy(volume.array), volume.spacing[-1])
    first = operator.noise(projection, seeded_generator(0, 0, 0))[0]
    assert torch.allclose(noise[0], first, atol=1e-4)
    assert not torch.allclose(noise[0], noise[1])
    for index in range(len(pairs)):
        item = pairs[index]
        s = item["params"]["sample"]
        assert item["low"].shape == (1, 16, 16) and item["high"].shape == (1, 32, 32)
        rows, cols = slice(s["row"], s["row"] + 32), slice(s["col"], s["col"] + 32)
        high = dihedral(torch.from_numpy(volume.array[rows, cols].copy())[None], s["augment"])
        assert torch.equal(item["high"], high)
        patch_noise = dihedral(noise[s["realisation"], rows, cols][None], s["augment"])
        assert torch.allclose(item["low"], downsample(high + patch_noise, 2, "area"), atol=1e-4)
        assert item["params"]["dose_fraction"] == 0.25
    # the noise is that of a 25 % dose scan: a few to tens of HU, not zero
    sd = float(noise.std())
    assert 3.0 < sd < 100.0


def test_items_are_reproducible_and_epochs_differ(volume) -> None:  # type: ignore[no-untyped-def]
    a, b = bank(volume), bank(volume)
    assert torch.equal(a[5]["low"], b[5]["low"])
    b.set_epoch(1)
    assert not torch.equal(a[5]["low"], b[5]["low"])


def test_bank_cache(volume, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = bank(volume, tmp_path)
    files = list(tmp_path.glob("noise_bank-*.pt"))
    assert len(files) == 1
    again = bank(volume, tmp_path)
    assert torch.equal(first.bank[(0, 0)], again.bank[(0, 0)])
    assert len(list(tmp_path.glob("noise_bank-*.pt"))) == 1


def test_per_item_augmentations_reuse_the_cached_bank(volume, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Gain and zoom are drawn per item from a bank built without them: the same file."""
    first = bank(volume, tmp_path)
    again = bank(volume, tmp_path, noise_gain=(0.5, 2.0), zoom=(1.0, 1.25))
    assert len(list(tmp_path.glob("noise_bank-*.pt"))) == 1
    assert torch.equal(first.bank[(0, 0)], again.bank[(0, 0)])
    assert again.task.zoom == (1.0, 1.25)  # the items still draw them
    other_dose = NoiseBankPairs(
        [volume],
        make_task("ldct-x2", num_views=180, dose_fraction=0.1),
        patch_size=32,
        num_samples=8,
        seed=3,
        realisations=3,
        cache_dir=tmp_path,
    )
    assert len(list(tmp_path.glob("noise_bank-*.pt"))) == 2  # the noise itself changed
    assert not torch.equal(first.bank[(0, 0)], other_dose.bank[(0, 0)])


def test_slices_and_task_are_checked(volume) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="LowDoseCTTask"):
        NoiseBankPairs([volume], make_task("x2"), patch_size=32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiple of scale"):
        NoiseBankPairs([volume], make_task("ldct-x4"), patch_size=30)  # type: ignore[arg-type]
    # only the allowed slices of a volume enter the bank
    stack = volume.with_array(np.stack([volume.array] * 4), spacing=(1.0, *volume.spacing))
    pairs = NoiseBankPairs(
        [PatchSource(stack, "s", slices=[1, 2])],
        make_task("ldct", num_views=90),
        patch_size=32,  # type: ignore[arg-type]
        realisations=1,
    )
    assert sorted(pairs.bank) == [(0, 1), (0, 2)]


def neighbour_correlation(x: torch.Tensor) -> float:
    pairs = torch.stack([x[..., :-1].flatten(), x[..., 1:].flatten()])
    return float(torch.corrcoef(pairs)[0, 1])


def test_noise_gain_scales_the_noise_and_zoom_resamples_both_patches(volume) -> None:  # type: ignore[no-untyped-def]
    plain, scaled = bank(volume), bank(volume, noise_gain=(2.5, 2.5), zoom=(2.0, 2.0))
    for index in range(4):
        a, b = plain[index], scaled[index]
        s = a["params"]["sample"]
        assert b["params"]["sample"]["noise_gain"] == 2.5 and b["params"]["sample"]["zoom"] == 2.0
        rows, cols = slice(s["row"], s["row"] + 32), slice(s["col"], s["col"] + 32)
        noise = dihedral(plain.bank[(0, 0)][s["realisation"], rows, cols][None], s["augment"])
        # the central 16 of the 32 pixels, resampled to 32 (bicubic), for both patches
        high = torch.nn.functional.interpolate(
            a["high"][None, :, 8:24, 8:24], size=(32, 32), mode="bicubic", align_corners=False
        )[0]
        assert torch.allclose(b["high"], high, atol=1e-4)
        expected = downsample(high + 2.5 * zoom_centre(noise, 2.0), 2, "area")
        assert torch.allclose(b["low"], expected, atol=1e-3)
    # a finer grid makes the noise coarser in pixels: neighbouring pixels correlate more
    noise = plain.bank[(0, 0)][0][None]
    assert neighbour_correlation(zoom_centre(noise, 2.0)) > neighbour_correlation(noise) + 0.2


def test_gain_and_zoom_draws_stay_in_range_and_bad_ranges_are_refused(volume) -> None:  # type: ignore[no-untyped-def]
    pairs = bank(volume, noise_gain=(0.5, 3.0), zoom=(1.0, 2.0))
    draws = [pairs[i]["params"]["sample"] for i in range(len(pairs))]
    assert all(0.5 <= d["noise_gain"] <= 3.0 and 1.0 <= d["zoom"] <= 2.0 for d in draws)
    assert len({d["noise_gain"] for d in draws}) == len(draws)  # drawn per item
    with pytest.raises(ValueError, match="zoom must be >= 1"):
        bank(volume, zoom=(0.5, 1.0))
    with pytest.raises(ValueError, match="noise_gain must be"):
        bank(volume, noise_gain=(3.0, 0.5))


def test_noise_level_channel_is_the_measured_slice_noise(volume) -> None:  # type: ignore[no-untyped-def]
    from medsr.metrics.noise import estimate_noise_sd

    task = make_task("ldct", num_views=180)
    options = {"patch_size": 32, "num_samples": 6, "seed": 3, "realisations": 2}
    plain = NoiseBankPairs([volume], task, noise_level_unit=50.0, **options)  # type: ignore[arg-type]
    loud_task = make_task("ldct", num_views=180, noise_gain=(3.0, 3.0))
    louder = NoiseBankPairs([volume], loud_task, noise_level_unit=50.0, **options)  # type: ignore[arg-type]
    for index in range(len(plain)):
        item, loud = plain[index], louder[index]
        assert item["low"].shape == (2, 32, 32) and item["high"].shape == (1, 32, 32)
        r = item["params"]["sample"]["realisation"]
        slice_low = volume.array.astype(np.float32) + plain.bank[(0, 0)][r].numpy()
        measured = estimate_noise_sd(slice_low, "CT")[0]
        assert torch.allclose(item["low"][1], torch.tensor(measured / 50.0), rtol=1e-4)
        # three times the added noise: a higher level, as the normal-dose noise stays
        level, loud_level = (x["params"]["sample"]["noise_level_hu"] for x in (item, loud))
        assert 1.5 * level < loud_level < 3.0 * level
        assert float(loud["low"][0].std()) > float(item["low"][0].std())
    with pytest.raises(ValueError, match="noise_level_unit must be > 0"):
        NoiseBankPairs([volume], task, noise_level_unit=0.0, **options)  # type: ignore[arg-type]
    # "added": the noise the model should remove, gain x sqrt(s1^2 - s0^2), a fixed share
    added = NoiseBankPairs(
        [volume],
        loud_task,  # type: ignore[arg-type]
        noise_level_unit=50.0,
        noise_level_of="added",
        **options,  # type: ignore[arg-type]
    )
    for index in range(len(added)):
        r = added[index]["params"]["sample"]["realisation"]
        s0, _, s1, _ = added.noise_measures[(0, 0)][r].tolist()
        expected = 3.0 * np.sqrt(s1**2 - s0**2)
        assert added[index]["params"]["sample"]["noise_level_hu"] == pytest.approx(expected)
        assert expected < louder[index]["params"]["sample"]["noise_level_hu"]


def test_realisations_draw_their_own_kernel_and_dose(volume) -> None:  # type: ignore[no-untyped-def]
    # a sampler for any kernel and dose: each realisation of the bank is one draw, remade
    # from its seed, and the items that use it carry its kernel and dose in their params
    task = make_task(
        "ldct",
        num_views=180,
        kernels=("b30f-like", "d45f-like"),
        dose_range=(0.05, 0.5),
        zoom=(1.0, 2.0),
    )
    options = {"patch_size": 32, "num_samples": 12, "seed": 3, "realisations": 4}
    pairs = NoiseBankPairs([volume], task, noise_level_unit=50.0, **options)  # type: ignore[arg-type]
    drawn = [pairs.realisation_params(0, 0, r) for r in range(4)]
    assert drawn == [pairs.realisation_params(0, 0, r) for r in range(4)]  # reproducible
    assert len({d.dose_fraction for d in drawn}) == 4
    assert all(0.05 <= d.dose_fraction <= 0.5 for d in drawn)
    # realisation 0 is the noise of its own kernel and dose at the scan's I0
    operator = pairs.scan_task(0).operator(drawn[0])
    assert (operator.filter_window, operator.dose_fraction) == (
        drawn[0].filter_window,
        drawn[0].dose_fraction,
    )
    projection = operator.project(torch.from_numpy(volume.array), volume.spacing[-1])
    first = operator.noise(projection, seeded_generator(0, 0, 0))[0]
    assert torch.allclose(pairs.bank[(0, 0)][0], first, atol=1e-4)
    for index in range(len(pairs)):
        params = pairs[index]["params"]
        r = params["sample"]["realisation"]
        assert params["filter_window"] == drawn[r].filter_window
        assert params["dose_fraction"] == drawn[r].dose_fraction
        assert params["pixel_size_mm"] == pytest.approx(volume.spacing[-1] / params["zoom"])
    # lower dose, more noise to remove: the noise-level channel follows the realisation
    levels = pairs.noise_measures[(0, 0)][:, 2].tolist()
    doses = [d.dose_fraction for d in drawn]
    same_kernel = [r for r in range(4) if drawn[r].filter_window == drawn[0].filter_window]
    if len(same_kernel) > 1:
        lowest, highest = (
            min(same_kernel, key=doses.__getitem__),
            max(same_kernel, key=doses.__getitem__),
        )
        assert levels[lowest] > levels[highest]


def test_signal_kernel_gives_a_sharp_kernel_pair_its_sharp_signal(volume) -> None:  # type: ignore[no-untyped-def]
    # the input is a smooth-kernel scan (filter_window b30f-like); a pair drawn with d45f-like
    # gets, under signal_kernel, the slice as d45f-like reconstructs it, noise added on top;
    # a b30f-like pair keeps the slice as it is. The bank's noise does not change.
    from medsr.physics.projector import signal_transfer

    def pairs_of(signal_kernel: bool) -> NoiseBankPairs:
        task = make_task(
            "ldct",
            num_views=180,
            filter_window="b30f-like",
            kernels=("b30f-like", "d45f-like"),
            signal_kernel=signal_kernel,
        )
        return NoiseBankPairs([volume], task, patch_size=32, num_samples=16, seed=3, realisations=4)

    plain, sharp = pairs_of(False), pairs_of(True)
    assert plain._key() == sharp._key()  # same noise, same cached bank
    whole = torch.from_numpy(volume.array.astype(np.float32))
    sharpened = signal_transfer(whole, "b30f-like", "d45f-like")
    kernels = set()
    for index in range(len(sharp)):
        item, before = sharp[index], plain[index]
        s = item["params"]["sample"]
        kernel = item["params"]["filter_window"]
        kernels.add(kernel)
        rows, cols = slice(s["row"], s["row"] + 32), slice(s["col"], s["col"] + 32)
        if kernel == "d45f-like":
            expected = dihedral(sharpened[rows, cols][None], s["augment"])
            torch.testing.assert_close(item["high"], expected)
            assert not torch.allclose(item["high"], before["high"], atol=1.0)
        else:
            assert torch.equal(item["high"], before["high"])
        # the noise on top is the realisation's, unchanged
        torch.testing.assert_close(
            item["low"] - item["high"], before["low"] - before["high"], rtol=0, atol=1e-3
        )
    assert kernels == {"b30f-like", "d45f-like"}


def non_blind_bank(volume, task, num_samples: int, realisations: int, **extra) -> NoiseBankPairs:  # type: ignore[no-untyped-def]
    """A bank of a kernel-aware non-blind denoiser's items (told the added noise's level and
    the input's NPS mean frequency; `extra`: more channels)."""
    return NoiseBankPairs(
        [volume],
        task,
        patch_size=32,
        num_samples=num_samples,
        seed=3,
        realisations=realisations,
        noise_level_unit=50.0,
        noise_level_of="added",
        noise_frequency_unit=0.5,
        **extra,
    )


def test_noise_frequency_channel_tells_the_kernel_as_inference_measures_it(volume) -> None:  # type: ignore[no-untyped-def]
    # a third channel: the NPS mean frequency of the whole low-dose slice, measured by
    # inference's estimator; a sharp kernel's pairs get a higher one than a smooth kernel's
    from medsr.metrics.noise import estimate_noise

    task = make_task(
        "ldct",
        num_views=180,
        filter_window="b30f-like",
        kernels=("b30f-like", "d45f-like"),
        dose_range=(0.1, 0.1),
        signal_kernel=True,
    )
    options = {"patch_size": 32, "num_samples": 16, "seed": 3, "realisations": 4}
    pairs = non_blind_bank(volume, task, num_samples=16, realisations=4)
    by_kernel: dict[str, set[float]] = {}
    for index in range(len(pairs)):
        item = pairs[index]
        assert item["low"].shape == (3, 32, 32)
        r, kernel = item["params"]["sample"]["realisation"], item["params"]["filter_window"]
        signal = pairs._signal(0, 0, pairs.realisation_params(0, 0, r)).numpy()
        low = estimate_noise(signal + pairs.bank[(0, 0)][r].numpy(), "CT")
        assert torch.allclose(item["low"][2], torch.tensor(low.mean_frequency / 0.5), rtol=1e-4)
        by_kernel.setdefault(kernel, set()).add(low.mean_frequency)
        # the level channel is measured on the same images: the slice as the kernel shows it
        added = np.sqrt(low.sd**2 - estimate_noise(signal, "CT").sd ** 2)
        assert float(item["low"][1, 0, 0]) == pytest.approx(added / 50.0, rel=1e-4)
    assert min(by_kernel["d45f-like"]) > max(by_kernel["b30f-like"]) + 0.03
    with pytest.raises(ValueError, match="noise_frequency_unit needs noise_level_unit"):
        NoiseBankPairs([volume], task, noise_frequency_unit=0.5, **options)  # type: ignore[arg-type]


def test_noise_frequency_follows_gain_and_zoom(volume) -> None:  # type: ignore[no-untyped-def]
    task = make_task("ldct", num_views=180)
    options = {"patch_size": 32, "num_samples": 2, "seed": 3, "realisations": 2}
    pairs = NoiseBankPairs(
        [volume],
        task,
        noise_level_unit=50.0,
        noise_frequency_unit=0.5,
        **options,  # type: ignore[arg-type]
    )
    s0, f0, s1, f1 = pairs.noise_measures[(0, 0)][0].tolist()
    assert pairs.noise_frequency(0, 0, 0, gain=1.0, zoom=1.0) == pytest.approx(f1)
    assert pairs.noise_frequency(0, 0, 0, gain=1.0, zoom=1.25) == pytest.approx(f1 / 1.25)
    # a large gain: the added noise's own frequency, (s1^2 f1 - s0^2 f0) / (s1^2 - s0^2)
    added = (s1**2 * f1 - s0**2 * f0) / (s1**2 - s0**2)
    assert pairs.noise_frequency(0, 0, 0, gain=1e3, zoom=1.0) == pytest.approx(added, rel=1e-4)
    assert pairs.noise_frequency(0, 0, 0, gain=1e-3, zoom=1.0) == pytest.approx(f0, rel=1e-4)


def test_dose_channel_is_the_realisations_dose_and_fixes_the_noise_the_target_keeps(volume) -> None:  # type: ignore[no-untyped-def]
    # a fourth channel: the dose fraction the pair stands for, the one a user states with
    # --dose; with the added noise's level it fixes the target's own noise
    from medsr.data.noise_bank import item_dose_fraction

    task = make_task("ldct", num_views=180, dose_range=(0.05, 0.9))
    pairs = non_blind_bank(volume, task, num_samples=12, realisations=4, dose_input=True)
    doses = set()
    for index in range(len(pairs)):
        item = pairs[index]
        assert item["low"].shape == (4, 32, 32)
        r = item["params"]["sample"]["realisation"]
        dose = pairs.realisation_params(0, 0, r).dose_fraction
        assert item["params"]["dose_fraction"] == pytest.approx(dose)
        assert torch.allclose(item["low"][3], torch.tensor(dose))
        doses.add(round(dose, 6))
    assert len(doses) > 1 and all(0.05 <= d <= 0.9 for d in doses)
    # a gain g on the added noise stands for the dose whose added noise is g times as large
    assert item_dose_fraction(0.25, 1.0) == pytest.approx(0.25)
    d = item_dose_fraction(0.25, 2.0)
    assert (1 / d - 1) == pytest.approx(4 * (1 / 0.25 - 1))
    with pytest.raises(ValueError, match="dose_input needs noise_level_unit"):
        NoiseBankPairs([volume], task, noise_level_unit=50.0, dose_input=True)


def test_an_x2_non_blind_items_noise_channels_are_measured_on_the_low_grid(volume) -> None:  # type: ignore[no-untyped-def]
    # joint denoising + x2: the channels are what inference measures on its (low) input, the
    # whole noisy slice area-downsampled, not the high-grid slice
    from medsr.metrics.noise import estimate_noise
    from medsr.physics.resize import downsample

    task = make_task(
        "ldct-x2",
        num_views=180,
        kernels=("b30f-like", "d45f-like"),
        dose_range=(0.1, 0.3),
        signal_kernel=True,
    )
    pairs = non_blind_bank(volume, task, num_samples=8, realisations=3)
    for index in range(len(pairs)):
        item = pairs[index]
        assert item["low"].shape == (3, 16, 16) and item["high"].shape == (1, 32, 32)
        r = item["params"]["sample"]["realisation"]
        signal = pairs._signal(0, 0, pairs.realisation_params(0, 0, r))
        normal = estimate_noise(downsample(signal, 2).numpy(), "CT")
        low = estimate_noise(downsample(signal + pairs.bank[(0, 0)][r], 2).numpy(), "CT")
        added = np.sqrt(low.sd**2 - normal.sd**2)
        assert float(item["low"][1, 0, 0]) == pytest.approx(added / 50.0, rel=1e-4)
        assert float(item["low"][2, 0, 0]) == pytest.approx(low.mean_frequency / 0.5, rel=1e-4)
        # not the high grid's: 2 x 2 means keep about half the white part of the noise SD
        high_grid = estimate_noise((signal + pairs.bank[(0, 0)][r]).numpy(), "CT")
        assert low.sd < 0.8 * high_grid.sd
