"""The one data model every medsr module takes: an array with its physical meaning.

A `Volume` is a 2-D image `(H, W)` or a 3-D volume `(D, H, W)` (slices, rows, columns) of
float32 values in a stated unit (HU for CT), with spacing in millimetres in the same axis
order, the patient-space geometry, a default display window and the metadata of its source.

This is the bottom layer (docs/ARCHITECTURE.md): it imports nothing of medsr but the
version, so every other package may use it. Beside the type it holds the few helpers that
were written several times above it: `rescaled_in_plane` (the grid of an image made `s`
times coarser or finer), `percentile_range` (the percentile intensity map), `Window.apply`
(the window map, numpy or torch), `dihedral` / `undo_dihedral` (the 8 flips and quarter
turns, numpy or torch: training augmentation and the inference self-ensemble),
`gaussian_blur` (torch: the physics' blurs and the band pixel loss), `body_mask` (a CT
slice's patient: the PET simulator's classes, the evaluation grid's zoom), `seeded_generator`
(independent torch streams from integer keys) and `Provenance` (how a
derived image was made, under `metadata[PROVENANCE_KEY]`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from medsr._version import __version__

if TYPE_CHECKING:
    import torch

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, "torch.Tensor")

MODALITIES = ("CT", "CR", "DX", "PT", "NM", "MR", "OT")


@dataclass(frozen=True)
class Window:
    """A display window (DICOM WindowCenter / WindowWidth), in the volume's unit."""

    center: float
    width: float

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ValueError(f"window width must be > 0, got {self.width}")

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2

    def apply(self, array: ArrayOrTensor) -> ArrayOrTensor:
        """Map `[low, high]` linearly to `[0, 1]`, clipping outside: a numpy array (as
        float32) or a torch tensor (same dtype and device)."""
        if not isinstance(array, np.ndarray) and hasattr(array, "clamp"):  # a torch tensor
            return ((array - self.low) / self.width).clamp(0.0, 1.0)
        return np.clip((np.asarray(array, dtype=np.float32) - self.low) / self.width, 0.0, 1.0)


@dataclass
class Volume:
    """An image or volume with spacing, geometry, modality, unit and window.

    Attributes:
        array: float32, `(H, W)` or `(D, H, W)`.
        spacing: millimetres per voxel along each array axis, same order as `array.shape`.
        modality: DICOM modality code (`CT`, `CR`, `DX`, `PT`, `NM`, `MR`, `OT`).
        unit: intensity unit, e.g. `HU`, `counts`, `SUV`, `a.u.`.
        window: default display window, or None.
        origin: patient position (LPS, mm) of the first voxel's centre.
        direction: 3x3 matrix whose columns are the LPS direction cosines of the column,
            row and slice axes (the DICOM / ITK convention).
        metadata: where the data came from (path, DICOM identifiers, ...); kept, never
            interpreted by the numeric code.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    modality: str = "OT"
    unit: str = "a.u."
    window: Window | None = None
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array, dtype=np.float32)
        if self.array.ndim not in (2, 3):
            raise ValueError(
                f"array must be 2-D (H, W) or 3-D (D, H, W), got shape {self.array.shape}"
            )
        self.spacing = tuple(float(s) for s in self.spacing)
        if len(self.spacing) != self.array.ndim:
            raise ValueError(
                f"spacing {self.spacing} must have one entry per array axis {self.array.shape}"
            )
        if any(not s > 0 for s in self.spacing):
            raise ValueError(f"spacing must be positive, got {self.spacing}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def is_volume(self) -> bool:
        return self.array.ndim == 3

    @property
    def num_slices(self) -> int:
        return self.array.shape[0] if self.is_volume else 1

    @property
    def affine(self) -> np.ndarray:
        """4x4 map from voxel index (column, row, slice) to patient LPS millimetres."""
        spacing_xyz = self.spacing[::-1] + ((1.0,) if not self.is_volume else ())
        affine = np.eye(4)
        affine[:3, :3] = self.direction @ np.diag(spacing_xyz)
        affine[:3, 3] = self.origin
        return affine

    def slice(self, index: int) -> Volume:
        """The 2-D image of slice `index` of a volume, with its own origin."""
        if not self.is_volume:
            raise ValueError("slice() needs a 3-D volume; this is a 2-D image")
        if not -self.num_slices <= index < self.num_slices:
            raise IndexError(f"slice {index} out of range for {self.num_slices} slices")
        index %= self.num_slices
        origin = tuple(np.asarray(self.origin) + self.direction[:, 2] * self.spacing[0] * index)
        return replace(
            self,
            array=self.array[index].copy(),
            spacing=self.spacing[1:],
            origin=origin,
            metadata={**self.metadata, "slice_index": index},
        )

    def with_array(self, array: np.ndarray, spacing: tuple[float, ...] | None = None) -> Volume:
        """A copy holding `array` (e.g. a restored image), optionally on a new grid spacing."""
        return replace(self, array=array, spacing=spacing or self.spacing)

    def describe(self) -> dict[str, Any]:
        """A plain summary for `medsr info` and logs."""
        window = None if self.window is None else (self.window.center, self.window.width)
        return {
            "modality": self.modality,
            "shape": self.shape,
            "spacing_mm": tuple(round(s, 4) for s in self.spacing),
            "unit": self.unit,
            "value_range": (float(self.array.min()), float(self.array.max())),
            "window": window,
        }


def rescaled_in_plane(
    volume: Volume, scale: int, finer: bool = False
) -> tuple[tuple[float, ...], tuple[float, float, float]]:
    """Spacing and origin of `volume`'s grid made `scale` times coarser in-plane (`finer`:
    `scale` times finer); the slice spacing is unchanged.

    A pixel covers `[-0.5, 0.5]` around its centre, so the first output pixel's centre moves
    by `(f - 1) / 2` input spacings along the column and row directions, `f` the ratio of
    output to input spacing: `(s - 1) / 2` coarser (area downsampling: one low pixel is an
    `s x s` block), `-(s - 1) / (2 s)` finer (super-resolution).
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    rows, columns = volume.spacing[-2], volume.spacing[-1]
    if finer:
        spacing = (*volume.spacing[:-2], rows / scale, columns / scale)
        shift = -(scale - 1) / (2 * scale)
    else:
        spacing = (*volume.spacing[:-2], rows * scale, columns * scale)
        shift = (scale - 1) / 2
    origin = (
        np.asarray(volume.origin)
        + volume.direction[:, 0] * columns * shift
        + volume.direction[:, 1] * rows * shift
    )
    return spacing, (float(origin[0]), float(origin[1]), float(origin[2]))


def thick_slabs(volume: Volume, k: int) -> Volume:
    """`volume` (3-D) reconstructed k times thicker: the mean of each k adjacent slices
    (non-overlapping; a last incomplete group is dropped), slice spacing times k, the origin
    at the first group's centre. A thicker reconstruction of the same scan averages its
    slices so: the same in-plane anatomy, noise SD down by about sqrt(k) (a clinical head
    CT's 5 mm slices are that much quieter than its 1-1.5 mm ones)."""
    if not volume.is_volume or k < 1:
        raise ValueError(f"thick slabs need a 3-D volume and k >= 1, got {volume.shape}, {k}")
    n = volume.num_slices // k
    groups = volume.array[: n * k].reshape(n, k, *volume.array.shape[1:])
    array = groups.mean(axis=1, dtype=np.float64).astype(np.float32)
    spacing = (volume.spacing[0] * k, *volume.spacing[1:])
    shift = volume.direction[:, 2] * volume.spacing[0] * (k - 1) / 2
    x, y, z = (float(v) for v in np.asarray(volume.origin) + shift)
    metadata = {**volume.metadata, "thick_slab": k}
    return replace(volume, array=array, spacing=spacing, origin=(x, y, z), metadata=metadata)


PERCENTILES = (0.5, 99.5)
MAX_PERCENTILE_VALUES = 2_000_000


def percentile_range(
    array: np.ndarray, percentiles: tuple[float, float] | list[float] = PERCENTILES
) -> tuple[float, float]:
    """`(low, high)` percentiles of `array`, on every k-th value so that at most ~2 M are
    used (k = size // 2 M): the percentile map of training and inference alike."""
    values = np.asarray(array)
    values = values.ravel()[:: max(1, values.size // MAX_PERCENTILE_VALUES)]
    low, high = np.percentile(values, list(percentiles))
    return float(low), float(high)


NUM_DIHEDRAL = 8


def dihedral(x: ArrayOrTensor, op: int) -> ArrayOrTensor:
    """One of the 8 flips / quarter turns of the last two axes of `(..., H, W)` (numpy or
    torch): `op % 4` quarter turns counter-clockwise, then a left-right flip when `op >= 4`."""
    if not 0 <= op < NUM_DIHEDRAL:
        raise ValueError(f"op must be in 0..7, got {op}")
    if isinstance(x, np.ndarray):
        turned = np.rot90(x, op % 4, axes=(-2, -1))
        return turned[..., ::-1] if op >= 4 else turned
    import torch

    y = torch.rot90(x, op % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if op >= 4 else y


def undo_dihedral(x: ArrayOrTensor, op: int) -> ArrayOrTensor:
    """The inverse of `dihedral(., op)`: the flip undone first, then the turns."""
    if not 0 <= op < NUM_DIHEDRAL:
        raise ValueError(f"op must be in 0..7, got {op}")
    if isinstance(x, np.ndarray):
        flipped = x[..., ::-1] if op >= 4 else x
        return np.rot90(flipped, -(op % 4), axes=(-2, -1))
    import torch

    y = torch.flip(x, dims=(-1,)) if op >= 4 else x
    return torch.rot90(y, -(op % 4), dims=(-2, -1))


def gaussian_kernel1d(sigma_px: float, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Sampled Gaussian of SD `sigma_px` pixels, radius ceil(4 sigma), summing to 1 (float32
    unless `dtype` says otherwise)."""
    import torch

    radius = max(1, math.ceil(4 * sigma_px))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma_px) ** 2)
    return (kernel / kernel.sum()).to(dtype or torch.float32)


def gaussian_blur(image: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of `(..., H, W)` with SD `sigma_px` pixels (edges replicated;
    the physics' detector and PSF blurs, the band pixel loss)."""
    import torch.nn.functional as F

    if not (math.isfinite(sigma_px) and sigma_px >= 0):
        raise ValueError(f"sigma_px must be finite and >= 0, got {sigma_px}")
    if sigma_px == 0:
        return image.clone()
    shape = image.shape
    x = image.reshape(-1, 1, *shape[-2:])
    kernel = gaussian_kernel1d(sigma_px, x.dtype).to(x.device)
    radius = kernel.numel() // 2
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.reshape(shape)


BODY_HU = -400.0


def body_mask(smoothed_hu: np.ndarray) -> np.ndarray:
    """The patient in a CT slice: the largest connected region above -400 HU, holes filled
    (lungs and bowel gas inside it; the table, a head holder or a second small region left
    out). `smoothed_hu`: the slice in HU, smoothed by the caller so that noise does not
    break the region. `(H, W)` bool, all False when nothing is above -400 HU."""
    from scipy import ndimage

    mask = ndimage.binary_fill_holes(np.asarray(smoothed_hu) > BODY_HU)
    labels, count = ndimage.label(mask)
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    return np.asarray(labels == 1 + int(np.argmax(sizes)))


def seeded_generator(*key: int) -> torch.Generator:
    """A CPU torch generator seeded from the integers `key` through numpy's `SeedSequence`:
    distinct keys give independent streams (e.g. `(seed, epoch, item)`)."""
    import torch

    state = np.random.SeedSequence(list(key)).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))


PROVENANCE_KEY = "inference"
"""`Volume.metadata[PROVENANCE_KEY]`: a `Provenance` as a plain dict (JSON-able)."""


@dataclass(frozen=True)
class Provenance:
    """How a derived image was made: the model, its checkpoint and the running medsr.

    Stored in `metadata[PROVENANCE_KEY]` as `to_dict()` (plain, JSON-able; DICOM writes it as
    DerivationDescription); read back with `Provenance.from_metadata`. `tiles` is
    `(tile_size, overlap)` for tiled inference, `guide` the guiding image of a fusion model.
    The defaults describe an image of unknown origin.
    """

    model: str = "unknown model"
    architecture: str = "?"
    task: str = "enhancement"
    scale: int | str = "?"
    checkpoint_sha256: str = "unknown"
    model_medsr_version: str = "?"
    medsr_version: str = __version__
    backend: str = "torch"
    tiles: tuple[int | None, int] | None = None
    guide: str | None = None
    research_use_only: bool = True

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        tiles, guide = record.pop("tiles"), record.pop("guide")
        research_use_only = record.pop("research_use_only")
        if tiles is not None:
            record["tile_size"], record["overlap"] = tiles
        if guide is not None:
            record["guide"] = guide
        return {**record, "research_use_only": research_use_only}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Provenance:
        names = set(cls.__dataclass_fields__)
        known: dict[str, Any] = {k: v for k, v in record.items() if k in names}
        if "tile_size" in record:
            known["tiles"] = (record["tile_size"], record.get("overlap", 0))
        return cls(**known)

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> Provenance | None:
        """The provenance recorded in `metadata`, or None for an image not made by a model."""
        record = metadata.get(PROVENANCE_KEY)
        return None if record is None else cls.from_dict(dict(record))

    def stamp(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """`metadata` plus this provenance and `research_use_only: True` (a new dict)."""
        return {**metadata, PROVENANCE_KEY: self.to_dict(), "research_use_only": True}
