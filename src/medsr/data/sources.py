"""Training data sources named in a config: folders of images and public datasets on disk.

`data.sources` in a training config lists them; an entry's `kind` picks its class in
`SOURCE_KINDS`, its other keys are that class's fields:

```yaml
data:
  sources:
    - {kind: image-folder, path: ../shared/data/cxr-nih, holdout: 40, seed: 0, scales: [0.5]}
    - {kind: chestxray14, path: /data/ChestX-ray14, limit: 2000, scales: [0.5]}
    - {kind: lidc-idri, path: /data/LIDC-IDRI, limit: 20}
    - {kind: tcia-ldct, path: /data/LDCT-and-Projection-data}
```

`image-folder` reads every PNG / TIFF / DICOM file of `path` (not recursive), groups files
by patient (the NIH ChestX-ray14 name `PPPPPPPP_FFF.png` gives patient `PPPPPPPP`; any other
name is its own patient) and moves whole patients, in a seeded random order, to validation
until it holds at least `holdout` images. Each image may be added at several `scales`
(antialiased box/area resampling of the whole image, 1.0 = as stored; up to 2, bicubic
upsampling: an image smoother per pixel, as a detector sampling finer than its blur gives),
so patches are drawn at the grids users will feed the model. The split statement names the
seed and the counts; `held_out_files` lists the validation files so benchmarks evaluate on
exactly them.

The public datasets are indexed by `medsr.data.public` (nothing is downloaded) and split by
patient with `split_by_source` (`seed`): `validation_fraction` of the patients validate,
`test_fraction` are held out for evaluation and never read (ChestX-ray14: its official
`test_list.txt` when present). `limit` keeps the first `limit` images (`chestxray14`), CT
series (`lidc-idri`) or patients (`tcia-ldct`) of the index before the split: every image
read is held in memory.

- `chestxray14`: the frontal radiographs (DX, pixel spacing from the CSV), at `scales`.
- `lidc-idri`: the CT series (3-D, HU) for a CT task to degrade.
- `tcia-ldct`: `use: real-pairs` trains an `ldct` model on the collection's own low / full
  dose slice pairs (`TciaLdctPairs`; no other data may be mixed in); `use: full-dose` reads
  the full-dose series as CT volumes (3-D, HU) for any CT task to degrade.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from medsr.data.public.chestxray14 import ChestXrayRecord, index_chestxray14
from medsr.data.public.lidc import LidcSeries, index_lidc
from medsr.data.public.tcia_ldct import DEFAULT_Z_TOLERANCE_MM, LdctPair, index_tcia_ldct
from medsr.data.splits import Split, split_by_source
from medsr.image import Volume

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".dcm")
_NIH_NAME = re.compile(r"^(\d{8})_\d{3}$")


@dataclass
class SourceImages:
    """What a source gives training: images to train on, held-out images to validate on
    (each with `metadata["source_id"]`, its patient) and the split statement."""

    train: list[Volume]
    validation: list[Volume]
    statement: str


def _read(path: Path) -> Volume:
    from medsr.io import read

    return read(path)


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
        _check_scales(self.scales)

    def read(self) -> SourceImages:
        train, validation, statement = split_files(self)
        return SourceImages(
            read_images(train, self.scales, _read),
            read_images(validation, self.scales, _read),
            statement,
        )


MAX_SCALE = 2.0


def _check_scales(scales: tuple[float, ...]) -> None:
    if not scales or any(not 0 < s <= MAX_SCALE for s in scales):
        raise ValueError(f"scales must be in (0, {MAX_SCALE:g}], got {scales}")


@dataclass(frozen=True)
class _PublicSource:
    """The fields every public-dataset source shares (see the module doc)."""

    path: str
    seed: int = 0
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    limit: int | None = None

    def __post_init__(self) -> None:
        v, t = self.validation_fraction, self.test_fraction
        if not (0 < v < 1 and 0 <= t < 1 and v + t < 1):
            raise ValueError(
                f"need 0 < validation_fraction, 0 <= test_fraction, and their sum < 1: {v}, {t}"
            )
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 or null, got {self.limit}")

    @property
    def fractions(self) -> tuple[float, float, float]:
        v, t = self.validation_fraction, self.test_fraction
        return (1.0 - v - t, v, t)

    def _statement(self, name: str, split: Split[Any]) -> str:
        return f"{name} at {self.path}: {split.describe()}; the test patients are never read"


def _loaded(volume: Volume, patient: str, kind: str) -> Volume:
    volume.metadata["source_id"] = patient
    volume.metadata["data_source"] = kind
    return volume


@dataclass(frozen=True)
class ChestXray14Source(_PublicSource):
    """`kind: chestxray14` (see the module doc)."""

    scales: tuple[float, ...] = (1.0,)
    kind: str = field(default="chestxray14")

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_scales(self.scales)

    def read(self) -> SourceImages:
        index = index_chestxray14(self.path)
        index.records = index.records[: self.limit]
        split = index.split(self.validation_fraction, self.seed, self.fractions)

        def images(records: list[ChestXrayRecord]) -> list[Volume]:
            out: list[Volume] = []
            for record in records:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    volume = record.load()
                volume = _loaded(volume, f"{record.patient_id:08d}", self.kind)
                out.extend(rescaled(volume, s) for s in self.scales)
            return out

        statement = self._statement("ChestX-ray14", split)
        return SourceImages(images(split.train), images(split.validation), statement)


@dataclass(frozen=True)
class LidcSource(_PublicSource):
    """`kind: lidc-idri` (see the module doc)."""

    kind: str = field(default="lidc-idri")

    def read(self) -> SourceImages:
        index = index_lidc(self.path)
        index.ct = index.ct[: self.limit]
        split = index.split(self.fractions, self.seed)

        def volumes(series: list[LidcSeries]) -> list[Volume]:
            return [_loaded(s.load(), s.patient_id, self.kind) for s in series]

        statement = self._statement("LIDC-IDRI", split)
        return SourceImages(volumes(split.train), volumes(split.validation), statement)


@dataclass(frozen=True)
class TciaLdctSource(_PublicSource):
    """`kind: tcia-ldct` (see the module doc)."""

    use: Literal["real-pairs", "full-dose"] = "real-pairs"
    z_tolerance_mm: float = DEFAULT_Z_TOLERANCE_MM
    kind: str = field(default="tcia-ldct")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use not in ("real-pairs", "full-dose"):
            raise ValueError(f"use must be real-pairs or full-dose, got {self.use!r}")

    def split(self) -> tuple[Split[LdctPair], str]:
        """The patients' low/full-dose pairs split by patient, and the statement."""
        pairs = index_tcia_ldct(self.path, self.z_tolerance_mm)
        patients = sorted({p.patient_id for p in pairs})[: self.limit]
        pairs = [p for p in pairs if p.patient_id in patients]
        split = split_by_source(pairs, lambda p: p.patient_id, self.fractions, self.seed)
        return split, self._statement("TCIA LDCT", split)

    def read(self) -> SourceImages:
        if self.use == "real-pairs":
            raise ValueError("tcia-ldct use: real-pairs gives slice pairs, not images")
        split, statement = self.split()

        def volumes(pairs: list[LdctPair]) -> list[Volume]:
            return [_loaded(_read(p.full.folder), p.patient_id, self.kind) for p in pairs]

        return SourceImages(volumes(split.train), volumes(split.validation), statement)


DataSource = FolderSource | ChestXray14Source | LidcSource | TciaLdctSource
SOURCE_KINDS: dict[str, type[DataSource]] = {
    "image-folder": FolderSource,
    "chestxray14": ChestXray14Source,
    "lidc-idri": LidcSource,
    "tcia-ldct": TciaLdctSource,
}


def source_from_dict(entry: Mapping[str, Any]) -> DataSource:
    """A source from its config dict; ValueError naming the bad kind or key."""
    entry = dict(entry)
    kind = entry.pop("kind", "image-folder")
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown data source kind {kind!r}; known: {', '.join(SOURCE_KINDS)}")
    cls = SOURCE_KINDS[kind]
    allowed = {f.name for f in fields(cls)} - {"kind"}
    if set(entry) - allowed:
        raise ValueError(
            f"data source takes no {sorted(set(entry) - allowed)}; keys: {sorted(allowed)}"
        )
    if "path" not in entry:
        raise ValueError("data source needs a path")
    if "scales" in entry:
        entry["scales"] = tuple(float(s) for s in entry["scales"])
    return cls(**entry)


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
    """The 2-D image resampled by `factor`: down (<= 1) with antialiased (area)
    interpolation; up (> 1, at most `MAX_SCALE`) bicubic, an image smoother per pixel, as a
    detector sampling finer than its own blur gives; the pixel spacing is divided by it."""
    if factor == 1.0:
        return volume
    image = torch.from_numpy(np.ascontiguousarray(volume.array, dtype=np.float32))[None, None]
    size = (round(image.shape[-2] * factor), round(image.shape[-1] * factor))
    if factor < 1.0:
        out = F.interpolate(image, size=size, mode="area")[0, 0].numpy()
    else:
        out = F.interpolate(image, size=size, mode="bicubic", align_corners=False)[0, 0].numpy()
    spacing = tuple(s / factor for s in volume.spacing)
    result = volume.with_array(out, spacing=spacing)
    result.metadata = {**volume.metadata, "rescaled_by": factor}
    return result


def read_images(
    paths: list[Path], scales: tuple[float, ...], reader: Callable[[Path], Volume]
) -> list[Volume]:
    """Every file read once (quietly: NIH PNGs carry no spacing), at every scale."""
    import warnings

    volumes: list[Volume] = []
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            volume = reader(path)
        volume.metadata.setdefault("path", str(path))
        volume.metadata["source_id"] = patient_of(path)
        volumes.extend(rescaled(volume, s) for s in scales)
    return volumes
