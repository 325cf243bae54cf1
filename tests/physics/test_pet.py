from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from medsr.io.samples import is_available, load_sample
from medsr.physics.degradation import params_record
from medsr.physics.pet import (
    CLASSES,
    PetFromCT,
    activity_from_ct,
    mu511_from_hu,
)
from medsr.physics.pet_activity import classify
from medsr.physics.pet_recon import (
    PetSystem,
    SubsetProjector,
    background_shape,
    simulate_trues,
)
from medsr.physics.projector import ParallelBeamProjector
from medsr.physics.resize import downsample
from medsr.physics.tasks import make_task

HEAD = "invesalius-head-ct"
needs_head = pytest.mark.skipif(not is_available(HEAD), reason="InVesalius head CT not installed")
# Small and fast: PET on a 64^2 grid, 60 views (4 per subset).
FAST: dict[str, Any] = {"grid_factor": 2, "num_views": 60}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def radius_map(n: int) -> torch.Tensor:
    y, x = torch.meshgrid(
        torch.arange(n) - (n - 1) / 2, torch.arange(n) - (n - 1) / 2, indexing="ij"
    )
    return (x**2 + y**2).sqrt()


def water_disk(n: int = 128, fraction: float = 0.8) -> torch.Tensor:
    """CT (HU) of a water cylinder in air, diameter `fraction` of the field."""
    return torch.where(radius_map(n) < fraction * n / 2, 0.0, -1000.0)


@pytest.fixture(scope="module")
def head_slice() -> tuple[torch.Tensor, float]:
    """InVesalius slice 60 (ventricles, cortex), full 256^2 at 0.957 mm."""
    if not is_available(HEAD):
        pytest.skip("InVesalius head CT not installed")
    volume = load_sample(HEAD)
    return torch.from_numpy(volume.array[60].copy()), float(volume.spacing[-1])


@pytest.fixture(scope="module")
def head_small(head_slice: tuple[torch.Tensor, float]) -> tuple[torch.Tensor, float]:
    """The same slice area-downsampled to 128^2 (1.91 mm)."""
    ct, spacing = head_slice
    return downsample(ct, 2), spacing * 2


def test_mu511_by_hand() -> None:
    hu = torch.tensor([-3024.0, -1000.0, -500.0, 0.0, 100.0, 1000.0])
    expected = torch.tensor([0.0, 0.0, 0.048, 0.096, 0.096 + 0.0051, 0.096 + 0.051])
    torch.testing.assert_close(mu511_from_hu(hu), expected)


def test_subset_projector_matches_the_projector() -> None:
    full = ParallelBeamProjector(20, 24, 12)
    subset = SubsetProjector(20, 24, full.angles[1::3])
    image, sinogram = torch.rand(20, 24, generator=gen()), torch.rand(4, full.num_bins)
    reference = ParallelBeamProjector(20, 24, 4)
    reference.angles = full.angles[1::3]
    torch.testing.assert_close(subset.forward(image), reference.forward(image[None])[0])
    torch.testing.assert_close(
        subset.backproject(sinogram), reference.backproject(sinogram[None])[0]
    )


def test_osem_on_noiseless_uniform_disk_is_within_10_percent() -> None:
    ct, spacing = water_disk(128), 1.5
    activity = torch.where(ct > -500, 1.0, 0.0)
    mu = mu511_from_hu(ct)
    trues = simulate_trues(activity, mu, spacing, 2, 2, 60, 5.0)  # oversampled data
    efficiency = 1e5 / float(trues.sum())
    background = 0.35 * 1e5 * background_shape(trues, 2 * spacing)
    system = PetSystem(downsample(mu, 2), 2 * spacing, 60, 15, 5.0, efficiency)
    image = system.osem(efficiency * trues + background, background, iterations=3)
    interior = image[radius_map(64) < 0.6 * 32]  # away from the PSF-blurred edge
    assert float(interior.mean()) == pytest.approx(1.0, abs=0.03)
    assert float((interior - 1).abs().max()) < 0.1
    assert float(image[radius_map(64) > 0.95 * 32].mean()) < 0.1  # air stays near 0


def test_counts_and_noise_scale_with_count_fraction() -> None:
    operator = PetFromCT(
        counts=4e5, lesion_count=(0, 0), texture_amplitude=0.0, anatomy="body", **FAST
    )
    interior = radius_map(64) < 0.5 * 32
    ratios = []
    for seed in range(3):
        sim = operator(water_disk(), 1.5, gen(seed))
        assert sim.params["prompts"] == pytest.approx(4e5, rel=0.01)  # Poisson SD 0.16 %
        assert sim.params["prompts_low"] / sim.params["prompts"] == pytest.approx(0.25, abs=0.005)
        assert sim.params["expected_background"] == pytest.approx(
            0.35 * sim.params["expected_trues"], rel=1e-4
        )
        assert sim.pet is not None
        full, low = sim.pet[interior], sim.pet_low[interior]
        # Calibration: the uniform region reconstructs to its SUV of 1.
        assert float(full.mean()) == pytest.approx(1.0, abs=0.1)
        assert float(low.mean()) == pytest.approx(1.0, abs=0.1)
        ratios.append(float(low.std() / low.mean()) / float(full.std() / full.mean()))
    # Relative noise ~ 1 / sqrt(counts): x2 at 25 %; each SD from ~100 correlated samples.
    assert float(np.mean(ratios)) == pytest.approx(2.0, rel=0.15)


def test_same_generator_same_simulation_other_seed_differs(
    head_small: tuple[torch.Tensor, float],
) -> None:
    operator = PetFromCT(counts=1e6, **FAST)
    ct, spacing = head_small
    first, second = operator(ct, spacing, gen(3)), operator(ct, spacing, gen(3))
    other = operator(ct, spacing, gen(4))
    assert torch.equal(first.activity.activity, second.activity.activity)
    assert torch.equal(first.pet_low, second.pet_low) and first.params == second.params
    assert first.pet is not None and second.pet is not None and torch.equal(first.pet, second.pet)
    assert not torch.equal(first.activity.activity, other.activity.activity)
    assert not torch.equal(first.prompts, other.prompts)
    assert first.params["lesions"] != other.params["lesions"]
    json.dumps(first.params)  # every logged value is plain JSON
    # Skipping the full-count image changes nothing else.
    low_only = operator(ct, spacing, gen(3), full_count=False)
    assert low_only.pet is None and torch.equal(low_only.pet_low, first.pet_low)


def test_lesions_are_recorded_inside_the_body_with_their_activity(
    head_slice: tuple[torch.Tensor, float],
) -> None:
    ct, spacing = head_slice
    for seed in range(3):
        result = activity_from_ct(ct, spacing, gen(seed), lesion_count=(3, 3))
        assert len(result.lesions) == 3 and result.params["lesions_drawn"] == 3
        labels = result.labels
        for k, lesion in enumerate(result.lesions):
            assert 4.0 <= lesion.radius_mm <= 10.0 and 4.0 <= lesion.suv <= 12.0
            assert lesion.row_mm == pytest.approx(lesion.row * spacing)
            # The centre pixel is fully covered: the activity there is the lesion's SUV.
            assert float(result.activity[lesion.row, lesion.col]) == pytest.approx(lesion.suv)
            assert CLASSES[int(labels[lesion.row, lesion.col])] in ("soft", "white", "grey")
            rows, cols = np.mgrid[: ct.shape[0], : ct.shape[1]]
            disc = np.hypot(rows - lesion.row, cols - lesion.col) * spacing <= lesion.radius_mm
            assert (labels.numpy()[disc] != CLASSES.index("outside")).all()
            for other in result.lesions[k + 1 :]:
                gap = np.hypot(lesion.row - other.row, lesion.col - other.col) * spacing
                assert gap > lesion.radius_mm + other.radius_mm


def test_grey_white_ratio_and_csf_on_head_ct(head_slice: tuple[torch.Tensor, float]) -> None:
    ct, spacing = head_slice
    result = activity_from_ct(ct, spacing, gen(1), lesion_count=(0, 0))
    assert result.params["brain_found"] is True
    labels, activity = result.labels, result.activity
    grey, white = labels == CLASSES.index("grey"), labels == CLASSES.index("white")
    csf = labels == CLASSES.index("csf")
    brain = grey | white | csf
    assert 0.3 < float(grey.sum() / brain.sum()) < 0.7  # a real split, not one class
    assert 0.3 < float(white.sum() / brain.sum()) < 0.7
    assert float(activity[grey].mean() / activity[white].mean()) == pytest.approx(4.0, rel=0.1)
    assert float(csf.sum()) * spacing**2 > 300  # the lateral ventricles
    assert float(activity[csf].mean()) == pytest.approx(0.3)


def test_abdomen_has_no_brain_but_enhancing_tissue_and_fat() -> None:
    if not is_available("ct-abdomen"):
        pytest.skip("ct-abdomen not installed")
    volume = load_sample("ct-abdomen")
    labels, info = classify(torch.from_numpy(volume.array), float(volume.spacing[-1]))
    assert info["brain_found"] is False
    fractions = {c: float((labels == k).float().mean()) for k, c in enumerate(CLASSES)}
    assert fractions["enhancing"] > 0.01 and fractions["lung_fat"] > 0.02
    assert fractions["soft"] > 0.05 and fractions["grey"] == 0.0


def test_petct_task_pair_and_guide(head_small: tuple[torch.Tensor, float]) -> None:
    ct, spacing = head_small
    task = make_task("petct", scale=2, num_views=60, counts=1e6)
    pair = task(ct[None, :127], spacing, gen(2))  # 127 rows: cropped to 126
    assert pair.high.shape == (1, 126, 128) and pair.low.shape == (1, 63, 64)
    assert pair.guide is not None and torch.equal(pair.guide, ct[None, :126])
    params = json.loads(json.dumps(pair.params))
    assert params["scale"] == 2 and params["count_fraction"] == 0.25
    assert params["low_spacing_mm"] == pytest.approx(2 * spacing)
    # count_fraction 1 gives the full-count image of the same simulation.
    # The task's `sample` draws the activity's seed; the counts noise follows from the generator.
    full = make_task("petct", scale=2, num_views=60, counts=1e6, count_fraction=1.0)
    generator = gen(2)
    seed = full.sample(generator).activity_seed  # type: ignore[attr-defined]
    assert seed == params["activity_seed"]  # the same draw as the low-count pair's
    simulation = PetFromCT(grid_factor=2, num_views=60, counts=1e6)(
        ct[:126], spacing, gen(seed), noise_generator=generator
    )
    assert simulation.pet is not None
    torch.testing.assert_close(full(ct[None, :126], spacing, gen(2)).low[0], simulation.pet)
    torch.testing.assert_close(pair.low[0], simulation.pet_low)
    # The target is the activity with a 2 mm blur: lesions keep most of their contrast.
    lesion = simulation.activity.lesions[0]
    assert float(simulation.target[lesion.row, lesion.col]) > 0.8 * lesion.suv


@pytest.mark.parametrize(
    "overrides",
    [
        {"count_fraction": 0.0},
        {"count_fraction": 1.5},
        {"counts": -1.0},
        {"num_views": 50},
        {"grid_factor": 5},
        {"oversample": 3},
        {"anatomy": "chest"},
    ],
)
def test_bad_arguments_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(overrides))):
        PetFromCT(**overrides)  # type: ignore[arg-type]


def test_task_sample_draws_in_range_and_logs() -> None:
    """The petct task's `sample` is the random sampler (training and `degrade` alike)."""
    task = make_task(
        "petct",
        counts_range=(5e5, 2e6),
        psf_fwhm_mm_range=(4.5, 6.0),
        randoms_fraction_range=(0.25, 0.45),
        postfilter_fwhm_mm_range=(3.0, 5.0),
    )
    params = task.sample(gen(7))
    operator = task.operator(params)  # type: ignore[attr-defined]
    again = task.operator(task.sample(gen(7)))  # type: ignore[attr-defined]
    record = params_record(params)  # the log holds every setting of the operator drawn
    assert operator == again
    assert all(record[k] == v for k, v in operator.describe().items() if k != "grid_factor")
    assert 5e5 <= operator.counts <= 2e6 and 4.5 <= operator.psf_fwhm_mm <= 6.0
    assert 0.25 <= operator.randoms_fraction <= 0.45
    assert task.operator(task.sample(gen(8))) != operator  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="counts_range"):
        make_task("petct", counts_range=(2e6, 5e5))
