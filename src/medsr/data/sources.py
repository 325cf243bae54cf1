"""Training data sources named in a config: a folder of images with a seeded hold-out.

`data.sources` in a training config lists folders on disk:

```yaml
data:
  sources:
    - {kind: image-folder, path: ../shared/data/cxr-nih, holdout: 40, seed: 0, scales: [0.5]}
```

`image-folder` reads every PNG / TIFF / DICOM file of `path` (not recursive), groups files
by patient (the NIH ChestX-ray14 name `PPPPPPPP_FFF.png` gives patient `PPPPPPPP`; any other
name is its own patient) and moves whole patients, in a seeded random order, to validation
until it holds at least `holdout` images. Each image may be added at several `scales`
(antialiased box/area resampling of the whole image, 1.0 = as stored), so patches are drawn
at the grid users will feed the model. The split statement names the seed and the counts;
`held_out_files` lists the validation files so benchmarks evaluate on exactly them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medsr.image import Volume

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".dcm")
_NIH_NAME = re.compile(r"^(\d{8})_\d{3}$")


@dataclass(frozen=True)
class FolderSource:
    """`kind: image-folder` (see the module doc)."""

    path: str
    holdout: int = 0
    seed: int = 0
    scales: tuple[float, ...] = (1.0,)
    limit: int | None = None
    kind: str = field(default="image-folder")

    def __post_init__(self) -> None:
        if self.holdout < 0:
            raise ValueError(f"holdout must be >= 0, got {self.holdout}")
        if not self.scales or any(not 0 < s <= 1 for s in self.scales):
            raise ValueError(f"scales must be in (0, 1], got {self.scales}")


def source_from_dict(entry: Mapping[str, Any]) -> FolderSource:
    """A source from its config dict; ValueError naming the bad kind or key."""
    entry = dict(entry)
    kind = entry.pop("kind", "image-folder")
    if kind != "image-folder":
        raise ValueError(f"unknown data source kind {kind!r}; known: image-folder")
    allowed = {"path", "holdout", "seed", "scales", "limit"}
    if set(entry) - allowed:
        raise ValueError(
            f"data source takes no {sorted(set(entry) - allowed)}; keys: {sorted(allowed)}"
        )
    if "path" not in entry:
        raise ValueError("data source needs a path")
    if "scales" in entry:
        entry["scales"] = tuple(float(s) for s in entry["scales"])
    return FolderSource(**entry)


def patient_of(path: Path) -> str:
    """The patient a file belongs to: NIH's 8-digit prefix, else the file name itself."""
    match = _NIH_NAME.match(path.stem)
    return match.group(1) if match else path.name


def image_files(folder: str | Path) -> list[Path]:
    """The image files of `folder`, sorted by name; FileNotFoundError if there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"data source folder {root} does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no {'/'.join(IMAGE_SUFFIXES)} files in {root}")
    return files


def split_files(source: FolderSource) -> tuple[list[Path], list[Path], str]:
    """`(train, validation, statement)`: whole patients held out, seeded (module doc)."""
    files = image_files(source.path)
    if source.limit is not None:
        files = files[: source.limit]
    patients = sorted({patient_of(p) for p in files})
    order = np.random.default_rng(source.seed).permutation(len(patients))
    held: set[str] = set()
    count = 0
    for index in order:
        if count >= source.holdout:
            break
        held.add(patients[index])
        count += sum(patient_of(p) == patients[index] for p in files)
    validation = [p for p in files if patient_of(p) in held]
    train = [p for p in files if patient_of(p) not in held]
    if not train:
        raise ValueError(f"holdout {source.holdout} leaves no training image in {source.path}")
    statement = (
        f"{source.path}: {len(train)} training and {len(validation)} held-out images, "
        f"whole patients held out (seed {source.seed}, numpy default_rng permutation of the "
        "sorted patient ids); no patient in both"
    )
    return train, validation, statement


def held_out_files(source: FolderSource) -> list[Path]:
    """The validation files of `source` (what benchmarks evaluate on)."""
    return split_files(source)[1]


def rescaled(volume: Volume, factor: float) -> Volume:
    """The 2-D image resampled by `factor` <= 1 with antialiased (area) interpolation;
    the pixel spacing grows by `1 / factor`."""
    if factor == 1.0:
        return volume
    image = torch.from_numpy(np.ascontiguousarray(volume.array, dtype=np.float32))[None, None]
    size = (round(image.shape[-2] * factor), round(image.shape[-1] * factor))
    out = F.interpolate(image, size=size, mode="area")[0, 0].numpy()
    spacing = tuple(s / factor for s in volume.spacing)
    result = volume.with_array(out, spacing=spacing)
    result.metadata = {**volume.metadata, "rescaled_by": factor}
    return result


def read_images(
    paths: list[Path], scales: tuple[float, ...], reader: Callable[[Path], Volume]
) -> list[Volume]:
    """Every file read once (quietly: NIH PNGs carry no spacing), at every scale."""
    import warnings

    volumes = []
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            volume = reader(path)
        volume.metadata.setdefault("path", str(path))
        volume.metadata["source_id"] = patient_of(path)
        volumes.extend(rescaled(volume, s) for s in scales)
    return volumes
