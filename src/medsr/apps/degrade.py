"""`medsr degrade` on files: read a source, degrade it with a task, write the pair.

Writes `<stem>_hr`, `<stem>_lr` (and for `petct` `<stem>_ct`, `<stem>_lr_fullcount`) in the
chosen format, `<stem>_params.json` with every parameter, and `<stem>_strip.png`. Refuses to
replace any existing file before doing any work; never touches the input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medsr.image import Volume
from medsr.io import write
from medsr.io.atomic import write_bytes_atomic
from medsr.io.samples import read_source
from medsr.physics.pet_task import SUV_WINDOW, PetCtVolumes
from medsr.physics.tasks import degrade_volume
from medsr.viz.strips import pair_strip, petct_strip

Progress = Callable[[Iterable[int]], Iterable[int]]


def degrade_files(
    source: str,
    output: str | Path,
    task: str,
    format: str = "nifti",
    seed: int = 0,
    slice_index: int | None = None,
    overrides: dict[str, Any] | None = None,
    progress: Progress | None = None,
    keep_identifiers: bool = False,
) -> list[Path]:
    """Degrade `source` (a path or `sample:NAME`) with `task`; returns the files written.

    `overrides` are task parameters (None values ignored); `dose_fraction` is the count
    fraction for `petct`. `progress` wraps the slice loop of a volume. NIfTI outputs carry
    no patient, study or scanner identifiers unless `keep_identifiers`.
    """
    suffix = {"png": ".png", "nifti": ".nii.gz", "npy": ".npy"}.get(format)
    overrides = dict(overrides or {})
    pet = task == "petct"  # writes ct, hr (activity), lr (PET at --dose), lr_fullcount
    if pet:
        overrides["count_fraction"] = overrides.pop("dose_fraction", None)
    kinds = ("ct", "hr", "lr", "lr_fullcount") if pet else ("hr", "lr")
    if suffix is None:
        raise ValueError(f"--format must be png, nifti or npy, got {format!r}")
    sample = source.removeprefix("sample:") if source.startswith("sample:") else None
    volume = read_source(source)
    stem = sample or Path(source).name.removesuffix(".gz").rsplit(".", 1)[0]
    stem += f"_z{slice_index:04d}" if slice_index is not None and volume.is_volume else ""
    split = volume.is_volume and slice_index is None and format == "png"
    count = volume.num_slices if split else 1
    names = [f"{stem}_z{k:04d}" if split else stem for k in range(count)]
    out = Path(output)
    _refuse_existing(out, stem, [f"{n}_{kind}{suffix}" for n in names for kind in kinds])
    n_slices = volume.num_slices if slice_index is None else 1
    progress = progress if n_slices > 1 else None
    given = {k: v for k, v in overrides.items() if v is not None}
    if pet:
        result = degrade_petct(volume, seed, slice_index, progress, **given)
        params = result.params
        volumes = (result.ct, result.target, result.pet_low, result.pet)
        outputs = dict(zip(kinds, volumes, strict=True))
    else:
        high, low, params, noisy = degrade_volume(
            volume, task, seed=seed, slice_index=slice_index, progress=progress, **given
        )
        outputs = {"hr": high, "lr": low}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    options = {"keep_identifiers": keep_identifiers} if format == "nifti" else {}
    for k, name in enumerate(names):
        for kind, vol in outputs.items():
            path = out / f"{name}_{kind}{suffix}"
            written.append(write(vol.slice(k) if split else vol, path, **options))
    params.update(input=source if sample else str(Path(source).resolve()), format=format)
    params["files"] = [str(p) for p in written]
    written.append(out / f"{stem}_params.json")
    write_bytes_atomic(written[-1], json.dumps(params, indent=1, default=str).encode("utf-8"))
    strip = out / f"{stem}_strip.png"
    if pet:
        written.append(petct_strip(result, strip, volume.window))
    else:
        written.append(_middle_strip(high, low, noisy, strip, volume, task))
    return written


def _refuse_existing(out: Path, stem: str, outputs: list[str]) -> None:
    """FileExistsError naming every planned file (outputs, params, strip) that exists."""
    planned = [out / name for name in outputs]
    planned += [out / f"{stem}_params.json", out / f"{stem}_strip.png"]
    planned += [p.with_suffix(".json") for p in planned if p.suffix == ".npy"]  # sidecars
    if existing := [str(p) for p in planned if p.exists()]:
        raise FileExistsError(f"will not overwrite {', '.join(existing)}")


def _middle_strip(
    high: Volume, low: Volume, noisy: Volume | None, path: Path, source: Volume, task: str
) -> Path:
    """The picture of the middle slice's pair (and its noisy image, for noise tasks)."""
    middle = high.num_slices // 2

    def image(volume: Volume) -> np.ndarray:
        return volume.array[middle] if volume.is_volume else volume.array

    return pair_strip(
        image(high),
        image(low),
        path,
        source.window,
        unit=source.unit,
        label=task,
        spacing_mm=high.spacing[-1],
        noisy=None if noisy is None else image(noisy),
    )


def degrade_petct(
    volume: Volume,
    seed: int = 0,
    slice_index: int | None = None,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
    **overrides: Any,
) -> PetCtVolumes:
    """`degrade_volume(volume, "petct", ...)` at `count_fraction` and at full count.

    Both runs use the same slice seeds, so they share the activity and the prompts; the
    low-count data are the binomial thinning of the full-count data.
    """
    if volume.modality != "CT":
        raise ValueError(f"task 'petct' is for CT images, got modality {volume.modality!r}")
    low = degrade_volume(volume, "petct", seed, slice_index, progress, **overrides)
    full = degrade_volume(
        volume, "petct", seed, slice_index, None, **{**overrides, "count_fraction": 1.0}
    )
    if slice_index is not None and volume.is_volume:
        volume = volume.slice(slice_index)
    scale = int(low.params["slices"][0]["scale"])
    height, width = volume.shape[-2] // scale * scale, volume.shape[-1] // scale * scale
    ct = volume.with_array(np.ascontiguousarray(volume.array[..., :height, :width]))

    def as_pet(result: Volume) -> Volume:
        return replace(result, modality="PT", unit="SUV", window=SUV_WINDOW)

    params = {
        **low.params,
        "outputs": {
            "ct": "CT, HU",
            "hr": "target activity, SUV",
            "lr": "PET, count_fraction of the counts, SUV",
            "lr_fullcount": "PET, SUV",
        },
        "full_count": {"prompts": [s["prompts"] for s in full.params["slices"]]},
    }
    return PetCtVolumes(ct, as_pet(low.high), as_pet(full.low), as_pet(low.low), params)
