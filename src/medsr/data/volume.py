"""The one data model every medsr module takes: an array with its physical meaning.

A `Volume` is a 2-D image `(H, W)` or a 3-D volume `(D, H, W)` (slices, rows, columns) of
float32 values in a stated unit (HU for CT), with spacing in millimetres in the same axis
order, the patient-space geometry, a default display window and the metadata of its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

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

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Map `[low, high]` linearly to `[0, 1]`, clipping outside."""
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
