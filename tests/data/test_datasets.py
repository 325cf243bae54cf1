from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from medsr.data.datasets import (
    OnTheFlyPairs,
    PatchSamplingError,
    PatchSource,
    collate_pairs,
    item_generator,
)
from medsr.image import Volume, dihedral
from medsr.io.samples import load_sample
from medsr.physics.degradation import DegradedPair


class AreaDown:
    """x2 area downsampling plus optional white noise: a fast stand-in for real physics."""

    def __init__(self, noise_sd: float = 0.0) -> None:
        self.noise_sd = noise_sd

    def __call__(self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator):
        low = F.avg_pool2d(high[None], 2)[0]
        noise = torch.randn(low.shape, generator=generator) * self.noise_sd
        return DegradedPair(low + noise, high, {"noise_sd": self.noise_sd, "spacing": spacing_mm})


@pytest.fixture(scope="module")
def head_ct() -> Volume:
    return load_sample("invesalius-head-ct")


def foreground(t: torch.Tensor, threshold: float = -500.0) -> float:
    return float((t > threshold).float().mean())


def test_patches_from_real_ct_are_never_mostly_air(head_ct: Volume) -> None:
    data = OnTheFlyPairs([head_ct], AreaDown(), patch_size=32, scale=2, num_samples=40)
    fractions = [foreground(data[i]["high"]) for i in range(len(data))]
    assert min(fractions) > 0.5
    # The rule matters: uniformly placed patches of this head CT are often mostly air.
    g = torch.Generator().manual_seed(0)
    blind = []
    for _ in range(40):
        k, r, c = (int(torch.randint(0, n, (1,), generator=g)) for n in (108, 225, 225))
        blind.append(foreground(torch.from_numpy(head_ct.array[k, r : r + 32, c : c + 32])))
    assert sum(f <= 0.5 for f in blind) >= 10


def test_ct_small_slice_and_source_index(head_ct: Volume) -> None:
    small = load_sample("ct-small")
    data = OnTheFlyPairs(
        [PatchSource(head_ct, "head", slices=range(0, 80)), small], AreaDown(), 32, 2, 30
    )
    assert data.source_ids == ["head", str(small.metadata["PatientID"])]
    assert {k for i, k in data.slice_index if i == 0} <= set(range(80))
    for i in range(len(data)):
        sample = data[i]["params"]["sample"]
        assert sample["source_index"] == 1 or sample["slice"] < 80
        assert foreground(data[i]["high"]) > 0.5


def test_items_are_reproducible_per_index_and_epoch(head_ct: Volume) -> None:
    data = OnTheFlyPairs([head_ct], AreaDown(noise_sd=20.0), patch_size=16, scale=2, seed=7)
    first, again, other = data[3], data[3], data[4]
    assert torch.equal(first["low"], again["low"]) and torch.equal(first["high"], again["high"])
    assert not torch.equal(first["high"], other["high"])
    data.set_epoch(1)
    next_epoch = data[3]
    assert not torch.equal(first["high"], next_epoch["high"])
    data.set_epoch(0)
    assert torch.equal(data[3]["low"], first["low"])
    fresh = OnTheFlyPairs([head_ct], AreaDown(noise_sd=20.0), patch_size=16, scale=2, seed=7)
    assert torch.equal(fresh[3]["low"], first["low"])  # nothing hidden in the object's state


def test_item_generator_streams_differ() -> None:
    draws = {
        float(torch.rand(1, generator=item_generator(*key)))
        for key in [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)]
    }
    assert len(draws) == 4
    with pytest.raises(ValueError, match="-1"):
        item_generator(0, 0, -1)


@pytest.mark.parametrize("op", range(8))
def test_dihedral_commutes_with_area_downsampling(op: int) -> None:
    x = torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(op))
    g = torch.Generator()
    degrade = AreaDown()
    assert torch.allclose(
        degrade(dihedral(x, op), 1.0, g).low, dihedral(degrade(x, 1.0, g).low, op)
    )


def test_dihedral_ops_are_the_eight_distinct_symmetries() -> None:
    x = torch.arange(9.0).reshape(1, 3, 3)
    assert len({tuple(dihedral(x, op).flatten().tolist()) for op in range(8)}) == 8
    with pytest.raises(ValueError, match="8"):
        dihedral(x, 8)


def test_augmented_pairs_stay_aligned_with_the_source_patch(head_ct: Volume) -> None:
    data = OnTheFlyPairs([head_ct], AreaDown(), patch_size=16, scale=2, num_samples=24)
    ops = set()
    for i in range(len(data)):
        item = data[i]
        s = item["params"]["sample"]
        raw = torch.from_numpy(
            head_ct.array[s["slice"], s["row"] : s["row"] + 16, s["col"] : s["col"] + 16].copy()
        )[None]
        ops.add(s["augment"])
        assert torch.equal(item["high"], dihedral(raw, s["augment"]))
        expected_low = dihedral(F.avg_pool2d(raw[None], 2)[0], s["augment"])
        assert torch.allclose(item["low"], expected_low, atol=1e-4)
    assert len(ops) >= 4


def test_normalize_is_applied_to_both_after_degradation(head_ct: Volume) -> None:
    def hu_to_unit(t: torch.Tensor) -> torch.Tensor:
        return (t + 1000.0) / 2000.0

    plain = OnTheFlyPairs([head_ct], AreaDown(), patch_size=16, scale=2)
    scaled = OnTheFlyPairs([head_ct], AreaDown(), patch_size=16, scale=2, normalize=hu_to_unit)
    assert torch.allclose(scaled[0]["high"], hu_to_unit(plain[0]["high"]))
    assert torch.allclose(scaled[0]["low"], hu_to_unit(plain[0]["low"]))


def test_dataloader_batches_keep_params_as_a_list(head_ct: Volume) -> None:
    data = OnTheFlyPairs([head_ct], AreaDown(noise_sd=5.0), patch_size=32, scale=2, num_samples=8)
    loader = DataLoader(data, batch_size=4, num_workers=0, collate_fn=collate_pairs)
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["low"].shape == (4, 1, 16, 16)
    assert batches[0]["high"].shape == (4, 1, 32, 32)
    assert [p["sample"]["index"] for p in batches[1]["params"]] == [4, 5, 6, 7]
    assert batches[1]["params"][0]["noise_sd"] == 5.0
    assert torch.equal(batches[1]["low"][0], data[4]["low"])


def test_collate_rejects_mixed_shapes() -> None:
    a = {"low": torch.zeros(1, 4, 4), "high": torch.zeros(1, 8, 8), "params": {}}
    b = {"low": torch.zeros(1, 5, 5), "high": torch.zeros(1, 10, 10), "params": {}}
    with pytest.raises(ValueError, match="low tensors differ"):
        collate_pairs([a, b])


def test_argument_errors_and_patch_retry_limit() -> None:
    stripes = np.full((64, 64), 100.0, dtype=np.float32)
    stripes[:, ::4] = -1000.0  # 75 % foreground in every patch
    image = Volume(stripes, (1.0, 1.0), modality="CT", unit="HU")
    with pytest.raises(ValueError, match="multiple of scale 2"):
        OnTheFlyPairs([image], AreaDown(), patch_size=15, scale=2)
    data = OnTheFlyPairs([image], AreaDown(), 16, 2, min_foreground=0.9, max_retries=5)
    with pytest.raises(PatchSamplingError, match="90% foreground in 5 draws"):
        data[0]
    assert (
        foreground(OnTheFlyPairs([image], AreaDown(), 16, 2, min_foreground=0.7)[0]["high"]) > 0.7
    )
    with pytest.raises(ValueError, match="no slice"):
        OnTheFlyPairs([image.with_array(np.full((64, 64), -1000.0))], AreaDown(), 16, 2)


def test_radiograph_threshold_is_a_fraction_of_the_range() -> None:
    array = np.zeros((64, 64), dtype=np.float32)
    array[:, 32:] = 1000.0  # right half is anatomy, left half background
    data = OnTheFlyPairs([Volume(array, (0.2, 0.2), modality="DX")], AreaDown(), 16, 2, 20)
    assert data.thresholds[0] == pytest.approx(100.0)
    assert all(data[i]["params"]["sample"]["col"] > 32 - 8 for i in range(20))


def test_a_source_weight_scales_how_often_its_slices_are_drawn(head_ct: Volume) -> None:
    small = load_sample("ct-small")
    head = PatchSource(head_ct, "head", slices=range(30, 40))

    def small_share(weight: float) -> float:
        sources = [head, PatchSource(small, "small", weight=weight)]
        data = OnTheFlyPairs(sources, AreaDown(), 32, 2, num_samples=600, augment=False)
        drawn = [data[i]["params"]["sample"]["source_index"] for i in range(len(data))]
        return drawn.count(1) / len(drawn)

    # a weight w multiplies the odds of drawing the source by w (patches rejected for too
    # little foreground are redrawn, so the shares are not the foreground counts' alone)
    shares = {w: small_share(w) for w in (1.0, 4.0)}
    odds = {w: share / (1 - share) for w, share in shares.items()}
    assert odds[4.0] / odds[1.0] == pytest.approx(4.0, rel=0.35)
    with pytest.raises(ValueError, match="weights must be > 0"):
        OnTheFlyPairs([PatchSource(small, "small", weight=0.0)], AreaDown(), 32, 2)
