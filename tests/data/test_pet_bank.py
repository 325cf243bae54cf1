"""PET bank pairs: whole-slice simulations, aligned CT / PET / target crops, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr.data.pet_bank import PetBankPairs, guide_channels
from medsr.models import unpack_inputs
from medsr.physics.tasks import make_task
from tests.ct_phantom import body_phantom

pytestmark = pytest.mark.usefixtures("one_thread")


def bank(**options: object) -> PetBankPairs:
    ranges = {"counts_range": options.pop("counts_range")} if "counts_range" in options else {}
    settings = {
        "patch_size": 32,
        "num_samples": 6,
        "realisations": 2,
        "min_foreground": 0.3,
        "normalize": lambda x: x / 10.0,
        **options,
    }
    task = make_task("petct", anatomy="body", **ranges)  # the task draws the counts
    return PetBankPairs([body_phantom()], task, **settings)  # type: ignore[arg-type]


def test_guide_channels_map_windows_and_reject_bad_ones() -> None:
    ct = torch.tensor([[-2000.0, 0.0, 40.0, 3000.0]])
    out = guide_channels(ct, [(-1000, 1000), (0, 80)])
    assert out.shape == (2, 1, 4)
    assert torch.allclose(out[0, 0], torch.tensor([0.0, 0.5, 0.52, 1.0]))
    assert torch.allclose(out[1, 0], torch.tensor([0.0, 0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match=r"\(100, 0\)"):
        guide_channels(ct, [(100, 0)])


def test_items_are_aligned_crops_of_the_bank() -> None:
    data = bank(augment=False)
    for index in range(len(data)):
        item = data[index]
        sample = item["params"]["sample"]
        i, k, row, col, r = (
            sample[n] for n in ("source_index", "slice", "row", "col", "realisation")
        )
        assert row % 4 == 0 and col % 4 == 0
        assert item["low"].shape == (1 + 2 * 16, 8, 8) and item["high"].shape == (1, 32, 32)
        pet, ct = unpack_inputs(item["low"][None], 1, 2, 4)
        entry = data.bank[(i, k)]
        assert torch.equal(
            ct[0], guide_channels(entry["ct"][row : row + 32, col : col + 32], data.guide_windows)
        )
        low = entry["low"][r, row // 4 : row // 4 + 8, col // 4 : col // 4 + 8]
        assert torch.allclose(pet[0, 0], low / 10.0)
        assert torch.allclose(
            item["high"][0], entry["target"][r, row : row + 32, col : col + 32] / 10.0
        )


def test_realisations_differ_and_pet_tracks_the_target() -> None:
    data = bank()
    entry = data.bank[data.slice_index[0]]
    assert entry["target"].shape == (2, 64, 64) and entry["low"].shape == (2, 16, 16)
    assert not torch.equal(entry["low"][0], entry["low"][1])  # own lesions and noise
    # The low-res PET sits on the target's grid: it correlates with the area-downsampled
    # target far better than with a copy shifted by one PET pixel.
    target = torch.nn.functional.avg_pool2d(entry["target"][:1], 4)[0]
    low = entry["low"][0]
    aligned = np.corrcoef(low.ravel(), target.ravel())[0, 1]
    shifted = np.corrcoef(low[:, 1:].ravel(), target[:, :-1].ravel())[0, 1]
    assert aligned > 0.9 and aligned > shifted + 0.05


def test_items_are_reproducible_and_augmented_alike() -> None:
    first, second = bank(), bank()
    for index in range(3):
        a, b = first[index], second[index]
        assert torch.equal(a["low"], b["low"]) and torch.equal(a["high"], b["high"])
    first.set_epoch(1)
    assert not torch.equal(first[0]["high"], second[0]["high"])


def test_cache_round_trip(tmp_path: object) -> None:
    built = bank(cache_dir=tmp_path)
    cached = bank(cache_dir=tmp_path)
    key = built.slice_index[0]
    assert torch.equal(built.bank[key]["low"], cached.bank[key]["low"])
    assert len(list(tmp_path.iterdir())) == 1  # type: ignore[attr-defined]


def test_rejects_a_non_petct_task() -> None:
    with pytest.raises(ValueError, match="PetCtTask"):
        PetBankPairs([body_phantom()], make_task("x4"))  # type: ignore[arg-type]


def test_counts_range_and_anatomies_vary_the_realisations(tmp_path: object) -> None:
    task = make_task(
        "petct",
        anatomy="body",
        lesion_count=(0, 0),
        texture_amplitude=0.0,
        counts_range=(1e4, 1e7),
    )
    data = PetBankPairs(
        [body_phantom()],
        task,  # type: ignore[arg-type]
        patch_size=32,
        num_samples=6,
        realisations=4,
        min_foreground=0.3,
    )
    drawn = [data.params[(0, 0, r)]["counts"] for r in range(4)]
    assert all(1e4 <= c <= 1e7 for c in drawn) and len(set(drawn)) == 4
    # fewer counts, more noise: the PET's error against the target grows as counts fall
    entry = data.bank[(0, 0)]
    target = torch.nn.functional.avg_pool2d(entry["target"], 4)
    error = [float((entry["low"][r] - target[r]).std()) for r in range(4)]
    fewest, most = int(np.argmin(drawn)), int(np.argmax(drawn))
    assert error[fewest] > 1.5 * error[most], (drawn, error)
    assert bank(counts_range=(1e4, 1e7))[0]["params"]["counts"] == [1e4, 1e7]
    cycled = bank(realisations=2, anatomies=["body", "head"])
    assert cycled[0]["params"]["anatomy"] == ["body", "head"]
    assert [cycled._task_of(r).anatomy for r in range(3)] == [
        "body",
        "head",
        "body",
    ]
    # the options are part of the cache key: a plain bank does not reuse this one
    bank(cache_dir=tmp_path)
    bank(cache_dir=tmp_path, counts_range=(1e4, 1e7))
    assert len(list(tmp_path.iterdir())) == 2  # type: ignore[attr-defined]


def test_bad_counts_range_and_anatomy_are_refused() -> None:
    with pytest.raises(ValueError, match="counts_range"):
        bank(counts_range=(1e6, 1e5))
    with pytest.raises(ValueError, match="anatomy"):
        bank(anatomies=["thorax"])
