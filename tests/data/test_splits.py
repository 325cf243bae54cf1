from __future__ import annotations

import pytest

from medsr.data.splits import assert_disjoint_sources, split_by_slab, split_by_source

# 20 patients with 1..5 slices each: (patient, slice) items.
ITEMS = [(f"P{p:02d}", k) for p in range(20) for k in range(1 + p % 5)]


def patient(item: tuple[str, int]) -> str:
    return item[0]


def test_split_by_source_keeps_each_patient_in_one_subset() -> None:
    split = split_by_source(ITEMS, patient, (0.6, 0.2, 0.2), seed=3)
    subsets = [split.train, split.validation, split.test]
    patients = [{patient(i) for i in subset} for subset in subsets]
    assert not patients[0] & patients[1] and not patients[0] & patients[2]
    assert not patients[1] & patients[2]
    assert sum(len(s) for s in subsets) == len(ITEMS)
    assert [len(p) for p in patients] == [12, 4, 4]
    assert set(split.train_sources) == patients[0]
    assert "no patient is in more than one subset" in split.describe()
    assert "seed 3" in split.describe()


def test_split_by_source_is_reproducible_and_seed_dependent() -> None:
    a = split_by_source(ITEMS, patient, seed=1)
    b = split_by_source(list(reversed(ITEMS)), patient, seed=1)
    c = split_by_source(ITEMS, patient, seed=2)
    assert a.test_sources == b.test_sources
    assert a.test_sources != c.test_sources


def test_small_dataset_still_gets_one_source_per_subset() -> None:
    split = split_by_source(ITEMS[:6], patient, (0.8, 0.1, 0.1))  # P00..P02
    assert (len(split.train_sources), len(split.validation_sources), len(split.test_sources)) == (
        1,
        1,
        1,
    )
    with pytest.raises(ValueError, match="too few"):
        split_by_source(ITEMS[:3], patient, (0.8, 0.1, 0.1))  # P00, P01 only


def test_explicit_lists_rest_goes_to_train() -> None:
    split = split_by_source(ITEMS, patient, validation=["P01"], test=["P02", "P03"])
    assert split.validation_sources == ("P01",)
    assert split.test_sources == ("P02", "P03")
    assert len(split.train_sources) == 17
    assert all(patient(i) == "P01" for i in split.validation)


def test_explicit_lists_that_share_a_patient_raise() -> None:
    with pytest.raises(ValueError, match="P04.*both train and test|both train and test.*P04"):
        split_by_source(ITEMS, patient, train=["P04", "P05"], test=["P04"])


def test_explicit_lists_with_unknown_or_unassigned_sources_raise() -> None:
    with pytest.raises(ValueError, match="not in the items"):
        split_by_source(ITEMS, patient, test=["P99"])
    with pytest.raises(ValueError, match="in no subset"):
        split_by_source(ITEMS, patient, train=["P00"], test=["P01"])


def test_bad_fractions_raise() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        split_by_source(ITEMS, patient, (0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="empty"):
        split_by_source([], patient)


def test_assert_disjoint_sources_names_the_shared_source() -> None:
    assert_disjoint_sources(train=["a", "b"], validation=["c"])
    with pytest.raises(ValueError, match="both train and validation: b"):
        assert_disjoint_sources(train=["a", "b"], validation=["b"])


def test_split_by_slab_matches_the_documented_example() -> None:
    slab = split_by_slab(108, 0.8, 8, name="InVesalius head CT")
    assert slab.train == range(0, 80)
    assert slab.gap == range(80, 88)
    assert slab.validation == range(88, 108)
    assert len(slab.test) == 0
    assert slab.describe().startswith(
        "InVesalius head CT: train slices 0-79, gap 80-87, validation 88-107"
    )


def test_split_by_slab_with_test_keeps_gaps_and_covers_all_slices() -> None:
    slab = split_by_slab(100, 0.6, 5, test_fraction=0.2)
    assert slab.train.stop + 5 == slab.validation.start
    assert slab.validation.stop + 5 == slab.test.start
    assert slab.test.stop == 100
    assert len(slab.train) == 54 and len(slab.test) == 18
    assert "test 82-99" in slab.describe()


@pytest.mark.parametrize(
    "args", [(0, 0.8, 1), (10, 0.8, -1), (10, 1.0, 1), (10, 0.8, 9), (10, 0.5, 1, 0.6)]
)
def test_split_by_slab_rejects_bad_arguments(args: tuple) -> None:
    with pytest.raises(ValueError):
        split_by_slab(*args[:3], test_fraction=args[3] if len(args) > 3 else 0.0)
