"""Train / validation / test splits that never leak a patient into evaluation.

Slices of one patient are strongly correlated, so evaluation on slices of a training volume
overstates quality. `split_by_source` keeps every item (slice, patch, image) of one source
(patient, volume) in exactly one subset. `split_by_slab` is the stated exception for a single
volume: contiguous slabs with a gap of unused slices between training and evaluation.
Every split carries a human-readable `describe()` statement to log next to the results.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")
SUBSETS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split(Generic[T]):
    """Items in three subsets, and the sources (patients / volumes) each subset holds."""

    train: list[T]
    validation: list[T]
    test: list[T]
    train_sources: tuple[Hashable, ...]
    validation_sources: tuple[Hashable, ...]
    test_sources: tuple[Hashable, ...]
    statement: str

    def describe(self) -> str:
        """What this split is, in one sentence fit for a results table."""
        return self.statement


def assert_disjoint_sources(**subsets: Iterable[Hashable]) -> None:
    """Raise `ValueError` naming the shared sources if any two named subsets share one.

    Example: `assert_disjoint_sources(train=train_ids, validation=val_ids)`.
    """
    names = list(subsets)
    sets = {name: set(subsets[name]) for name in names}
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            shared = sets[first] & sets[second]
            if shared:
                listed = ", ".join(sorted(map(str, shared))[:10])
                raise ValueError(
                    f"{len(shared)} source(s) are in both {first} and {second}: {listed}; "
                    "slices of one patient must not be used for training and evaluation"
                )


def _allocate(num_sources: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    if fractions[0] == 0:
        raise ValueError(f"the train fraction must be > 0, got {fractions}")
    counts = [int(round(f * num_sources)) for f in fractions[1:]]
    # A non-zero fraction gets at least one source, so a small dataset still has an evaluation set.
    counts = [max(c, 1) if f > 0 else 0 for c, f in zip(counts, fractions[1:], strict=True)]
    num_train = num_sources - sum(counts)
    if num_train < 1:
        raise ValueError(
            f"{num_sources} source(s) are too few for fractions {tuple(fractions)}: "
            "each subset with a non-zero fraction needs at least one whole source"
        )
    return num_train, counts[0], counts[1]


def _explicit_groups(
    sources: list[Hashable], explicit: dict[str, Iterable[Hashable] | None]
) -> dict[str, set[Hashable]]:
    """The sources of each subset from explicit lists; `train` (when None) gets the rest."""
    lists = {name: list(v) if v is not None else [] for name, v in explicit.items()}
    assert_disjoint_sources(**lists)
    known = set(sources)
    unknown = [s for name in SUBSETS for s in lists[name] if s not in known]
    if unknown:
        raise ValueError(f"explicit split names source(s) not in the items: {unknown[:10]}")
    listed = {s for name in SUBSETS for s in lists[name]}
    if explicit["train"] is None:
        lists["train"] = [s for s in sources if s not in listed]
    else:
        unassigned = [s for s in sources if s not in listed]
        if unassigned:
            raise ValueError(
                f"{len(unassigned)} source(s) are in no subset: {unassigned[:10]}; "
                "list them or omit `train` to send them to training"
            )
    return {name: set(lists[name]) for name in SUBSETS}


def _fraction_groups(
    sources: list[Hashable], fractions: Sequence[float], seed: int
) -> dict[str, set[Hashable]]:
    """The sources of each subset: `fractions` of them, in a seeded random order."""
    n_train, n_val, _ = _allocate(len(sources), fractions)
    order = np.random.default_rng(seed).permutation(len(sources))
    shuffled = [sources[i] for i in order]
    return {
        "train": set(shuffled[:n_train]),
        "validation": set(shuffled[n_train : n_train + n_val]),
        "test": set(shuffled[n_train + n_val :]),
    }


def split_by_source(
    items: Sequence[T],
    key: Callable[[T], Hashable],
    fractions: Sequence[float] | None = (0.8, 0.1, 0.1),
    seed: int = 0,
    *,
    train: Iterable[Hashable] | None = None,
    validation: Iterable[Hashable] | None = None,
    test: Iterable[Hashable] | None = None,
    source_name: str = "patient",
) -> Split[T]:
    """Split `items` so that all items of one source (`key(item)`) land in one subset.

    Either `fractions` (train, validation, test) of the *sources*, shuffled with `seed`, or
    explicit source lists: any of `train`, `validation`, `test`; when `train` is omitted it
    gets every source not listed elsewhere. Explicit lists that share a source, name an unknown
    source, or (with `train` given) leave a source unassigned raise `ValueError`.
    """
    sources = sorted({key(item) for item in items}, key=str)
    if not sources:
        raise ValueError("cannot split an empty list of items")
    explicit = {"train": train, "validation": validation, "test": test}
    if any(v is not None for v in explicit.values()):
        groups = _explicit_groups(sources, explicit)
        how = "explicit source lists"
    else:
        if fractions is None:
            raise ValueError("give either fractions or explicit train/validation/test lists")
        groups = _fraction_groups(sources, fractions, seed)
        how = f"fractions {tuple(round(f, 3) for f in fractions)} of {source_name}s, seed {seed}"
    subsets: dict[str, list[T]] = {name: [] for name in SUBSETS}
    for item in items:
        source = key(item)
        subsets[next(name for name in SUBSETS if source in groups[name])].append(item)
    ordered = {name: tuple(s for s in sources if s in groups[name]) for name in SUBSETS}
    counts = ", ".join(
        f"{name} {len(ordered[name])} {source_name}(s) / {len(subsets[name])} items"
        for name in SUBSETS
    )
    statement = (
        f"split by {source_name} ({how}): {counts}; no {source_name} is in more than one subset"
    )
    return Split(
        train=subsets["train"],
        validation=subsets["validation"],
        test=subsets["test"],
        train_sources=ordered["train"],
        validation_sources=ordered["validation"],
        test_sources=ordered["test"],
        statement=statement,
    )


@dataclass(frozen=True)
class SlabSplit:
    """Contiguous slabs of one volume's slices with a gap between training and evaluation."""

    name: str
    num_slices: int
    train: range
    gap: range
    validation: range
    test: range

    def describe(self) -> str:
        """E.g. `InVesalius head CT: train slices 0-79, gap 80-87, validation 88-107`."""

        def span(r: range) -> str:
            return f"{r.start}-{r.stop - 1}" if len(r) else "none"

        parts = [f"train slices {span(self.train)}", f"gap {span(self.gap)}"]
        parts.append(f"validation {span(self.validation)}")
        if len(self.test):
            parts.append(f"gap {span(range(self.validation.stop, self.test.start))}")
            parts.append(f"test {span(self.test)}")
        return (
            f"{self.name}: " + ", ".join(parts) + f" (one volume of {self.num_slices} slices split "
            f"by contiguous slab; the {len(self.gap)}-slice gap is unused)"
        )


def split_by_slab(
    num_slices: int,
    train_fraction: float,
    gap_slices: int,
    *,
    test_fraction: float = 0.0,
    name: str = "volume",
) -> SlabSplit:
    """Split one volume's slice indices into a training slab, a gap, then evaluation slabs.

    `train_fraction` (and `test_fraction`) are fractions of the slices left after the gap(s);
    validation gets the rest. With `test_fraction > 0` the test slab follows the validation
    slab after a second gap of `gap_slices`. `split_by_slab(108, 0.8, 8)` gives train 0-79,
    gap 80-87, validation 88-107.
    """
    if num_slices < 1:
        raise ValueError(f"num_slices must be >= 1, got {num_slices}")
    if gap_slices < 0:
        raise ValueError(f"gap_slices must be >= 0, got {gap_slices}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if not 0 <= test_fraction < 1 - train_fraction:
        raise ValueError(f"test_fraction must be in [0, {1 - train_fraction}), got {test_fraction}")
    num_gaps = 2 if test_fraction > 0 else 1
    usable = num_slices - num_gaps * gap_slices
    num_train = int(round(train_fraction * usable))
    num_test = int(round(test_fraction * usable))
    num_val = usable - num_train - num_test
    if num_train < 1 or num_val < 1 or (test_fraction > 0 and num_test < 1):
        raise ValueError(
            f"{num_slices} slices are too few for train_fraction {train_fraction}, "
            f"test_fraction {test_fraction} and gaps of {gap_slices} slices"
        )
    train = range(0, num_train)
    gap = range(num_train, num_train + gap_slices)
    validation = range(gap.stop, gap.stop + num_val)
    test_start = validation.stop + gap_slices
    test = range(test_start, test_start + num_test) if num_test else range(0)
    return SlabSplit(name, num_slices, train, gap, validation, test)
