"""The degradation contract (`medsr.physics.degradation`) for every registered task, and one
noise for one task: `medsr degrade`, `medsr evaluate` and training draw the same low-dose
noise for the same volume, task, parameters and seed."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from medsr.data.datasets import PatchSource
from medsr.data.noise_bank import NoiseBankPairs
from medsr.evaluation import pairs as evaluation_pairs
from medsr.image import Volume, seeded_generator
from medsr.io.samples import is_available, load_sample
from medsr.physics.degradation import DegradationTask, SampledDegradation, params_record
from medsr.physics.tasks import TASKS, degrade_volume, make_task, slice_seed

pytestmark = pytest.mark.usefixtures("one_thread")
SPACING = 0.7


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def phantom(height: int = 48, width: int = 52) -> torch.Tensor:
    """(1, H, W) HU: air, a bone ring, soft tissue with a gentle texture."""
    y, x = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    r = ((y - height / 2) ** 2 + (x - width / 2) ** 2).sqrt() / (min(height, width) / 2)
    image = torch.full((height, width), -1000.0)
    image[r < 0.8] = 1000.0
    image[r < 0.7] = 40.0 + 5 * torch.sin(x / 3)[r < 0.7]
    return image[None]


def task_of(name: str) -> SampledDegradation:
    """`make_task(name)`, with a fixed I0 for the low-dose tasks (the noiseless phantom cannot
    calibrate it) and fewer views where the physics allows (same contract, faster)."""
    overrides: dict[str, object] = {}
    if make_task(name).bank == "noise":
        overrides = {"incident_photons": 1e5, "num_views": 90}
    elif make_task(name).bank == "pet":
        overrides = {"num_views": 60}
    return make_task(name, **overrides)


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_follows_the_contract(name: str) -> None:
    task = task_of(name)
    assert isinstance(task, DegradationTask)  # the typed contract, structurally
    high = phantom()

    # sample: a small frozen record, JSON-able, reproducible from the seed
    params = task.sample(gen(4))
    record = params_record(params)
    assert json.loads(json.dumps(record, allow_nan=False)) is not None
    assert task.sample(gen(4)) == params

    # forward: deterministic
    fitted = task.fit(high, SPACING, task.sample(gen(4)))
    target = task.target(high, fitted)
    first, second = (task.forward(target, SPACING, fitted) for _ in range(2))
    assert torch.equal(first, second) and torch.isfinite(first).all()

    # the pair is the composition noise(forward(target)) for the generator's draw
    generator = gen(5)
    drawn = task.fit(high, SPACING, task.sample(generator))
    target = task.target(high, drawn)
    low = task.noise(
        task.forward(target, SPACING, drawn), drawn, generator, high=high, spacing_mm=SPACING
    )
    pair = task(high, SPACING, gen(5))
    assert torch.equal(pair.low, low) and torch.equal(pair.high, target)
    assert pair.low.shape == first.shape
    assert pair.params["task"] == name and pair.params["generator_seed"] == 5
    assert {k: pair.params[k] for k in params_record(drawn)} == params_record(drawn)
    json.dumps(pair.params, allow_nan=False)

    # same seed, same pair; the task calibrated on a scan is the same kind of task
    again = task(high, SPACING, gen(5))
    assert torch.equal(again.low, pair.low) and again.params == pair.params
    for extra in ("noisy", "guide"):
        a, b = getattr(pair, extra), getattr(again, extra)
        assert (a is None and b is None) or torch.equal(a, b)
    assert type(task.for_scan(high[0], SPACING)) is type(task)


# --- one I0 policy: degrade, evaluate and training share the noise of a scan ---------------

HEAD = "invesalius-head-ct"
needs_head = pytest.mark.skipif(not is_available(HEAD), reason="InVesalius head CT not installed")
VIEWS = {"num_views": 90}  # fewer views than the default 720: the same physics, faster


@pytest.fixture(scope="module")
def scan() -> Volume:
    """Three slices of a real head CT: the vertex (its 'uniform' ROIs hold anatomy: 5 x the
    real noise SD), the middle, and the skull base (no uniform soft tissue at all)."""
    volume = load_sample(HEAD)
    return replace(volume, array=np.ascontiguousarray(volume.array[[10, 50, 100]]))


def body(image: np.ndarray) -> np.ndarray:
    return (image > -500) & (image < 500)


@needs_head
@pytest.mark.parametrize("name", ["ldct", "ldct-x2"])
def test_degrade_evaluate_and_training_draw_the_same_noise(
    scan: Volume, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spacing = float(scan.spacing[-1])
    task = make_task(name, **VIEWS).for_scan(torch.from_numpy(scan.array), spacing)
    assert task.calibration_slice == 1  # type: ignore[attr-defined]  # the middle slice
    i0 = task.scan_incident_photons  # type: ignore[attr-defined]

    # medsr degrade: every slice uses the scan's I0, also the one that could not calibrate
    degraded = degrade_volume(scan, name, seed=3, **VIEWS)
    assert degraded.noisy is not None
    slices = degraded.params["slices"]
    assert [s["incident_photons"] for s in slices] == [i0] * 3
    assert all(s["incident_photons_calibrated"] and s["calibration_slice"] == 1 for s in slices)
    # ... and `--slice 2` remakes slice 2 of the whole run
    alone = degrade_volume(scan, name, seed=3, slice_index=2, **VIEWS)
    np.testing.assert_array_equal(alone.low.array, degraded.low.array[2])

    # medsr evaluate: input k of a run seeded 11 is `degrade --seed slice_seed(11, k)`
    monkeypatch.setattr(evaluation_pairs, "read_source", lambda source: scan)
    (pair,) = evaluation_pairs.make_pairs(
        ["head"], name, seed=11, slice_index=2, task_overrides=VIEWS
    )
    assert pair.params["incident_photons"] == i0
    remade = degrade_volume(scan, name, seed=slice_seed(11, 0), slice_index=2, **VIEWS)
    np.testing.assert_array_equal(pair.low, remade.low.array)

    # training: the bank calibrates on the whole volume too (though it may use slice 2 only)
    bank = NoiseBankPairs(
        [PatchSource(scan, "head", slices=[2])],
        make_task(name, **VIEWS),  # type: ignore[arg-type]
        patch_size=32,
        num_samples=4,
        realisations=2,
        bank_seed=7,
    )
    assert bank.incident_photons[0] == i0
    # the bank's first realisation is the production path's noise for the same generator
    slice_2 = torch.from_numpy(scan.array[2])[None]
    production = task(slice_2, spacing, seeded_generator(7, 0, 2))
    assert production.noisy is not None
    torch.testing.assert_close(
        bank.bank[(0, 2)][0], (production.noisy - production.high)[0], atol=1e-3, rtol=0
    )


@needs_head
def test_degrade_evaluate_and_training_have_the_same_noise_sd(
    scan: Volume, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slice 2 of the scan, four realisations per path (other seeds): the noise SD on the body
    agrees within 5 % (one realisation's SD varies by ~2 %)."""
    mask = body(scan.array[2])

    def pooled(noises: list[np.ndarray]) -> float:
        return float(np.sqrt(np.mean([np.mean(n[mask] ** 2) for n in noises])))

    degraded = [degrade_volume(scan, "ldct", seed=s, slice_index=2, **VIEWS) for s in range(4)]
    monkeypatch.setattr(evaluation_pairs, "read_source", lambda source: scan)
    evaluated = evaluation_pairs.make_pairs(
        list("abcd"), "ldct", seed=11, slice_index=2, task_overrides=VIEWS
    )
    bank = NoiseBankPairs(
        [PatchSource(scan, "head", slices=[2])],
        make_task("ldct", **VIEWS),  # type: ignore[arg-type]
        patch_size=32,
        num_samples=4,
        realisations=4,
        bank_seed=7,
    )
    sds = {
        "degrade": pooled([d.low.array - d.high.array for d in degraded]),
        "evaluate": pooled([p.low - p.high for p in evaluated]),
        "training": pooled([n.numpy() for n in bank.bank[(0, 2)]]),
    }
    assert all(sd == pytest.approx(sds["degrade"], rel=0.05) for sd in sds.values()), sds
    assert sds["degrade"] > 3.0  # a 25 % dose scan: several HU of added noise, not zero


@needs_head
def test_one_i0_per_scan_where_per_slice_calibration_would_fail(scan: Volume) -> None:
    """Calibrated per slice, the vertex slice (anatomy in its 'uniform' ROIs) would get a
    several times lower I0 (more noise) and the skull-base slice none at all; per scan, all
    three slices are degraded with the middle slice's I0."""
    spacing = float(scan.spacing[-1])
    task = make_task("ldct", **VIEWS)
    i0 = task.for_scan(torch.from_numpy(scan.array), spacing).scan_incident_photons  # type: ignore[attr-defined]
    vertex = task.for_scan(torch.from_numpy(scan.array[0]), spacing)
    assert vertex.scan_incident_photons < i0 / 3  # type: ignore[attr-defined, operator]
    with pytest.raises(ValueError, match="no 12x12 region"):
        task.for_scan(torch.from_numpy(scan.array[2]), spacing)
    degraded = degrade_volume(scan, "ldct", seed=0, **VIEWS)
    assert {s["incident_photons"] for s in degraded.params["slices"]} == {i0}
