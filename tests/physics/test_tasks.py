from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medsr.image import Volume
from medsr.physics.ct import LowDoseCT
from medsr.physics.resize import downsample
from medsr.physics.tasks import TASKS, degrade_volume, make_task, slice_seed

SPACING = 0.7


def make(name: str, **overrides: object):  # type: ignore[no-untyped-def]
    """`make_task` with a fixed I0 for the CT tasks: the noiseless phantom cannot calibrate it."""
    if name.startswith("ldct") and "legacy" not in name:
        overrides.setdefault("incident_photons", 1e5)
    return make_task(name, **overrides)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def phantom(height: int = 50, width: int = 53) -> torch.Tensor:
    """(1, H, W) head-like HU phantom: air, a water disc, a bone ring."""
    y, x = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    r = ((y - height / 2) ** 2 + (x - width / 2) ** 2).sqrt() / (min(height, width) / 2)
    image = torch.full((height, width), -1000.0)
    image[r < 0.8] = 1000.0
    image[r < 0.7] = 40.0 + 5 * torch.sin(x / 3)[r < 0.7]
    return image[None]


def test_registry_has_the_documented_tasks() -> None:
    expected = {
        "x2",
        "x4",
        "x8",
        "ldct",
        "ldct-x2",
        "ldct-x4",
        "ldct-legacy-x4",
        "xray-x4",
        "xray-blind-x2",
        "xray-blind-x4",
        "petct",
    }
    assert set(TASKS) == expected
    assert {name: TASKS[name].defaults["scale"] for name in ("ldct", "ldct-x4", "x8")} == {
        "ldct": 1,
        "ldct-x4": 4,
        "x8": 8,
    }


@pytest.mark.parametrize("name", list(TASKS))
def test_default_shapes_and_params(name: str) -> None:
    high = phantom()
    pair = make(name)(high, SPACING, gen())
    scale = TASKS[name].defaults["scale"]
    cropped = (50 // scale * scale, 53 // scale * scale)
    assert pair.high.shape == (1, *cropped)
    assert pair.low.shape == (1, 50 // scale, 53 // scale)
    expected = high[:, : cropped[0], : cropped[1]]
    if name.startswith("xray-blind"):  # the target takes the drawn contrast change too
        expected = pair.params["contrast_gain"] * expected + pair.params["contrast_offset"]
    if name != "petct":  # petct's high is the PET target; its guide is the cropped CT
        torch.testing.assert_close(pair.high, expected)
    assert pair.low.dtype == torch.float32
    params = json.loads(json.dumps(pair.params))  # everything is JSON-serialisable
    assert params["task"] == name and params["scale"] == scale
    assert params["low_spacing_mm"] == pytest.approx(SPACING * scale)
    assert params["generator_seed"] == 0
    assert params["low_shape"] == list(pair.low.shape)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("name", [n for n in TASKS if not n.startswith("x")])
def test_every_noise_task_at_every_scale(name: str, scale: int) -> None:
    overrides = {"num_views": 90} if name.startswith("ldct-x") or name == "ldct" else {}
    pair = make(name, scale=scale, **overrides)(phantom(48, 48), SPACING, gen())
    assert pair.high.shape == (1, 48, 48)
    assert pair.low.shape == (1, 48 // scale, 48 // scale)
    assert torch.isfinite(pair.low).all()


@pytest.mark.parametrize("name", list(TASKS))
def test_same_seed_same_pair(name: str) -> None:
    task = make(name)
    first, second = task(phantom(), SPACING, gen(5)), task(phantom(), SPACING, gen(5))
    assert torch.equal(first.low, second.low) and torch.equal(first.high, second.high)
    assert first.params == second.params


@pytest.mark.parametrize("name", [n for n in TASKS if not n.startswith("x")])
def test_different_seeds_differ(name: str) -> None:
    task = make(name)
    assert not torch.equal(
        task(phantom(), SPACING, gen(1)).low, task(phantom(), SPACING, gen(2)).low
    )


def test_ldct_x4_is_low_dose_then_downsample() -> None:
    high = phantom(48, 48)
    pair = make_task("ldct-x4", dose_fraction=0.1, incident_photons=3e4)(high, SPACING, gen(9))
    noisy = LowDoseCT(dose_fraction=0.1, incident_photons=3e4)(high, SPACING, gen(9))
    torch.testing.assert_close(pair.low, downsample(noisy, 4, "area"))
    assert pair.params["dose_fraction"] == 0.1 and pair.params["incident_photons"] == 3e4
    assert pair.params["electronic_noise_variance"] == pytest.approx(3.0)
    assert pair.params["noise_model"] == "ct-projection-domain"


def test_ldct_noise_grows_as_dose_falls() -> None:
    high = phantom(64, 64)
    sds = [
        float(
            (
                make_task("ldct", dose_fraction=a, incident_photons=1e5)(high, SPACING, gen()).low
                - high
            )[0, 24:40, 24:40].std()
        )
        for a in (0.5, 0.1)
    ]
    # Added variance is proportional to (1 - a) / a: 1 at a = 0.5, 9 at a = 0.1.
    assert sds[1] / sds[0] == pytest.approx(3.0, rel=0.25)


def test_x_tasks_are_plain_area_downsampling() -> None:
    high = phantom(48, 48)
    for name, scale in (("x2", 2), ("x4", 4), ("x8", 8)):
        torch.testing.assert_close(make(name)(high, SPACING, gen()).low, downsample(high, scale))


def test_legacy_task_logs_its_noise_model() -> None:
    params = make_task("ldct-legacy-x4", gaussian_sd=3.0)(phantom(), SPACING, gen()).params
    assert params["noise_model"] == "image-domain"
    assert (params["gaussian_sd"], params["poisson_scale"], params["offset"]) == (3.0, 20.0, 1024.0)


def test_xray_task_logs_the_resolved_value_range() -> None:
    params = make_task("xray-x4")(phantom(), SPACING, gen()).params
    assert params["value_range"] == (-1000.0, 1000.0)
    assert params["incident_photons"] == 1e4 and params["binning"] == 4


def test_bad_names_overrides_and_inputs_raise() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        make_task("x5")
    with pytest.raises(ValueError, match="dose_fraction"):
        make_task("x4", dose_fraction=0.25)
    with pytest.raises(ValueError, match="scale"):
        make_task("x4", scale=5)(phantom(), SPACING, gen())
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        make_task("x4")(phantom()[0], SPACING, gen())
    with pytest.raises(ValueError, match="dose_fraction"):
        make_task("ldct", dose_fraction=1.5)(phantom(), SPACING, gen())


def ct_volume() -> Volume:
    array = torch.cat([phantom(32, 34) + 10 * k for k in range(3)]).numpy()
    return Volume(array, spacing=(2.0, 0.5, 0.6), modality="CT", unit="HU", origin=(10, 20, 30))


def test_degrade_volume_geometry() -> None:
    high, low, params, noisy = degrade_volume(ct_volume(), "x4")
    assert noisy is None
    assert high.shape == (3, 32, 32) and low.shape == (3, 8, 8)
    assert low.spacing == (2.0, 2.0, 2.4)
    # The first LR pixel's centre sits 1.5 HR pixels in from the first HR pixel's centre.
    assert low.origin == pytest.approx((10 + 1.5 * 0.6, 20 + 1.5 * 0.5, 30))
    assert params["low_spacing_mm"] == [2.0, 2.0, 2.4] and len(params["slices"]) == 3


def test_degrade_volume_slices_are_reproducible_alone() -> None:
    volume = ct_volume()
    _, all_low, params, all_noisy = degrade_volume(volume, "ldct-legacy-x4", seed=3)
    assert all_noisy is not None and list(all_noisy.shape) == params["high_shape"]
    _, one_low, one, _ = degrade_volume(volume, "ldct-legacy-x4", seed=3, slice_index=2)
    np.testing.assert_array_equal(one_low.array, all_low.array[2])
    assert one["slices"][0]["seed"] == params["slices"][2]["seed"] == slice_seed(3, 2)
    assert len({s["seed"] for s in params["slices"]}) == 3


def test_degrade_volume_checks_the_modality() -> None:
    radiograph = Volume(np.random.rand(16, 16).astype(np.float32), (0.2, 0.2), modality="CR")
    with pytest.raises(ValueError, match="CT"):
        degrade_volume(radiograph, "ldct")
    _, low, _, _ = degrade_volume(radiograph, "xray-x4")
    assert low.shape == (4, 4)


def test_incident_photons_are_calibrated_on_a_real_image_and_refused_without_noise() -> None:
    from medsr.io.samples import load_sample

    image = load_sample("invesalius-head-ct").slice(80)
    high = torch.from_numpy(image.array)[None]
    pair = make_task("ldct", num_views=360)(high, image.spacing[-1], gen())
    assert pair.params["incident_photons_calibrated"] is True
    assert 3e4 < pair.params["incident_photons"] < 3e6
    flat = torch.full((1, 64, 64), 40.0)
    with pytest.raises(ValueError, match="no noise"):
        make_task("ldct")(flat, SPACING, gen())
