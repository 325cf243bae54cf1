"""Evaluation pairs: made from real images with a task's physics, or read from `medsr degrade`.

Each input gives one 2-D pair. A 3-D volume contributes one slice (`slice_index`, default
the middle one), degraded as `medsr degrade --slice` degrades it: the task is calibrated on
the whole volume first (`for_scan`, e.g. low-dose CT's I0 once per scan). Input `k` of a run
seeded with `seed` is degraded with seed `slice_seed(seed, k)`, which is logged:
`medsr degrade --seed <that seed>` remakes the pair.

The CT metric window is chosen per image (`choose_window`): a named window, or `auto` from
the body part read in the sample name, DICOM BodyPartExamined / descriptions and file name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsr.image import Volume
from medsr.io import read
from medsr.io.samples import read_source
from medsr.metrics.ct import CT_WINDOWS
from medsr.physics.tasks import degrade_volume, slice_seed

WINDOW_CHOICES = (*CT_WINDOWS, "auto")
AUTO_DEFAULT = "abdomen"
# (window, words that name the body part), tried in order on the lower-cased description.
AUTO_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("neuro", ("head", "brain", "skull", "crani", "neuro", "cerebr")),
    ("chest", ("chest", "thorax", "thora", "lung", "pulmon")),
    ("abdomen", ("abdom", "pancrea", "liver", "kidney", "renal", "pelvis", "abd")),
)
_DESCRIPTIVE_KEYS = ("sample", "BodyPartExamined", "SeriesDescription", "StudyDescription")


@dataclass
class EvalPair:
    """One evaluation pair: `low` `(h, w)` and `high` `(s*h, s*w)`, float32 in `unit`.

    `params` are the degradation parameters of this pair (task, scale, dose, I0, ...;
    `degrade_seed` is the `medsr degrade --seed` that remakes it, `seed` the slice's
    generator seed); `seed` here is `degrade_seed`. `description` is the text the `auto`
    window rule reads; `spacing_mm` is the high grid's.
    """

    name: str
    source: str
    low: np.ndarray
    high: np.ndarray
    modality: str
    unit: str
    spacing_mm: float
    task: str
    scale: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def noisy(self) -> bool:
        """True for tasks that add noise (ldct*, xray*): denoising baselines apply."""
        return self.task.startswith(("ldct", "xray"))


def describe_volume(volume: Volume, source: str = "") -> str:
    """The text the `auto` window rule reads: sample name, body part, descriptions, source."""
    meta = volume.metadata
    words = [str(meta[k]) for k in _DESCRIPTIVE_KEYS if meta.get(k)]
    return " ".join([*words, source]).strip()


def choose_window(description: str, window: str = "auto") -> tuple[str, str]:
    """`(window name, reason)`: `window` itself, or for `auto` the first rule of `AUTO_RULES`
    whose word occurs in `description` (case-insensitive), else `AUTO_DEFAULT`."""
    if window not in WINDOW_CHOICES:
        raise ValueError(f"window must be one of {', '.join(WINDOW_CHOICES)}, got {window!r}")
    if window != "auto":
        return window, "chosen with --window"
    text = description.lower()
    for name, words in AUTO_RULES:
        found = next((w for w in words if w in text), None)
        if found is not None:
            return name, f"auto: body part {found!r} found in {description!r}"
    return AUTO_DEFAULT, f"auto: no body part in {description!r}; soft-tissue default"


def _slice(volume: Volume, slice_index: int | None) -> Volume:
    if not volume.is_volume:
        return volume
    return volume.slice(volume.num_slices // 2 if slice_index is None else slice_index)


def central_crop(volume: Volume, size: int | None) -> Volume:
    """The central `size x size` region of an image, or of every slice of a volume
    (unchanged when `size` is None)."""
    if size is None:
        return volume
    if size < 16:
        raise ValueError(f"input crop must be >= 16 pixels, got {size}")
    height, width = volume.shape[-2:]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    out = volume.with_array(volume.array[..., top : top + size, left : left + size])
    out.metadata = {**volume.metadata, "input_crop": [top, left, size]}
    return out


def make_pairs(
    sources: Sequence[str],
    task: str,
    seed: int = 0,
    slice_index: int | None = None,
    task_overrides: Mapping[str, Any] | None = None,
    input_crop: int | None = None,
) -> list[EvalPair]:
    """Degrade each source (`sample:NAME` or a path) with `task`; input `k` uses seed
    `slice_seed(seed, k)`. `input_crop` takes the central square of each image first."""
    if not sources:
        raise ValueError("no evaluation data given")
    pairs = []
    for k, source in enumerate(sources):
        scan = central_crop(read_source(source), input_crop)
        volume = _slice(scan, slice_index)  # the image of the pair
        index = int(volume.metadata["slice_index"]) if scan.is_volume else None
        image_seed = slice_seed(seed, k)
        high, low, params, _ = degrade_volume(
            scan, task, seed=image_seed, slice_index=index, **dict(task_overrides or {})
        )
        slice_params = params.pop("slices")[0]
        name = source.removeprefix("sample:") if source.startswith("sample:") else Path(source).name
        if "slice_index" in volume.metadata:
            name += f"_z{int(volume.metadata['slice_index']):04d}"
        pairs.append(
            EvalPair(
                name,
                source,
                low.array,
                high.array,
                volume.modality,
                volume.unit,
                float(volume.spacing[-1]),
                task,
                int(slice_params["scale"]),
                image_seed,
                {
                    **params,
                    **slice_params,
                    "degrade_seed": image_seed,
                    "run_seed": seed,
                    "input_crop": volume.metadata.get("input_crop"),
                },
                describe_volume(volume, source),
            )
        )
    _check_unique(pairs)
    return pairs


def read_pairs(folder: str | Path, slice_index: int | None = None) -> list[EvalPair]:
    """The pairs `medsr degrade` wrote in `folder` (one per `*_params.json`)."""
    folder = Path(folder)
    found = sorted(folder.glob("*_params.json"))
    if not found:
        raise ValueError(f"no *_params.json from `medsr degrade` in {folder}")
    pairs = []
    for path in found:
        params = json.loads(path.read_text(encoding="utf-8"))
        stem = path.name.removesuffix("_params.json")
        files = [Path(f) for f in params.get("files", [])]
        hr = [f for f in files if f.name.startswith(f"{stem}") and "_hr" in f.name]
        lr = [f for f in files if f.name.startswith(f"{stem}") and "_lr" in f.name]
        if not hr or not lr:
            raise ValueError(f"{path} lists no _hr/_lr files")
        high_path, low_path = _local(hr[0], folder), _local(lr[0], folder)
        high, low = _slice(read(high_path), slice_index), _slice(read(low_path), slice_index)
        slices = params.pop("slices", [{}])
        index = int(high.metadata.get("slice_index", 0)) if len(slices) > 1 else 0
        slice_params = slices[min(index, len(slices) - 1)]
        source = str(params.get("input", high_path))
        pairs.append(
            EvalPair(
                stem,
                source,
                low.array,
                high.array,
                high.modality,
                high.unit,
                float(high.spacing[-1]),
                str(params["task"]),
                int(slice_params.get("scale", high.shape[-1] // low.shape[-1])),
                int(params.get("seed", 0)),
                {
                    **params,
                    **slice_params,
                    "degrade_seed": params.get("seed"),
                    "pairs_file": str(path),
                },
                describe_volume(high, source),
            )
        )
    _check_unique(pairs)
    return pairs


def _local(path: Path, folder: Path) -> Path:
    """A file listed in a params JSON, found in `folder` when the folder was moved."""
    return path if path.is_file() else folder / path.name


def _check_unique(pairs: list[EvalPair]) -> None:
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"evaluation images must have distinct names, got {names}")
    tasks = {p.task for p in pairs}
    if len(tasks) != 1:
        raise ValueError(f"all pairs must come from one task, got {sorted(tasks)}")
