"""Putting a PET on a CT's grid from their geometry (spacing, origin, direction; LPS, mm).

`coarse_geometry(ct, scale)` is the CT grid `scale` times coarser in-plane, aligned like area
downsampling (coarse pixel `i` covers CT pixels `s i .. s i + s - 1`, so its centre is at CT
index `s i + (s - 1) / 2`); `resample_onto` samples a volume there trilinearly
(`scipy.ndimage.map_coordinates`, order 1) with 0 outside it; `check_overlap` refuses two
images whose boxes do not meet.

A 2-D image is one slice. A 2-D PET is only taken with a 2-D CT and then compared in-plane
(images such as PNGs carry no slice position); a 3-D PET is sampled at the CT's slices.
Images without a known spacing (PNG, TIFF: `metadata["spacing_known"] is False`) are
assumed to cover the same field of view as the CT (`match_field_of_view`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from medsr.image import Volume, rescaled_in_plane


@dataclass(frozen=True)
class Grid:
    """A sampling grid: `shape` `(D, H, W)`, `spacing` mm in the same order, `origin` (LPS
    mm of voxel `(0, 0, 0)`) and `direction` (columns: column, row, slice axes)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray

    @property
    def affine(self) -> np.ndarray:
        """4x4 map from voxel index (column, row, slice) to LPS mm."""
        affine = np.eye(4)
        affine[:3, :3] = self.direction @ np.diag(self.spacing[::-1])
        affine[:3, 3] = self.origin
        return affine


def grid_of(volume: Volume) -> Grid:
    """The grid of a volume; a 2-D image is one slice 1 mm thick."""
    shape = volume.shape if volume.is_volume else (1, *volume.shape)
    spacing = volume.spacing if volume.is_volume else (1.0, *volume.spacing)
    return Grid(tuple(shape), tuple(spacing), tuple(volume.origin), volume.direction)  # type: ignore[arg-type]


def coarse_geometry(volume: Volume, scale: int) -> Grid:
    """`volume`'s grid `scale` times coarser in-plane (rows and columns cropped to a
    multiple of `scale`), aligned like area downsampling (module doc)."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    grid = grid_of(volume)
    depth, height, width = grid.shape
    if height < scale or width < scale:
        raise ValueError(f"image {volume.shape} is smaller than the scale {scale}")
    spacing, origin = rescaled_in_plane(volume, scale)
    return Grid(
        (depth, height // scale, width // scale),
        (grid.spacing[0], spacing[-2], spacing[-1]),
        origin,
        grid.direction,
    )


def _corners(grid: Grid) -> np.ndarray:
    """LPS mm of the 8 outer corners of the grid's voxel box, `(8, 3)`."""
    d, h, w = grid.shape
    index = np.array(list(itertools.product((-0.5, w - 0.5), (-0.5, h - 0.5), (-0.5, d - 0.5))))
    return (grid.affine[:3, :3] @ index.T).T + grid.affine[:3, 3]


def _to_index(points: np.ndarray, grid: Grid) -> np.ndarray:
    """LPS mm `(N, 3)` -> fractional (column, row, slice) indices of `grid`, `(N, 3)`."""
    inverse = np.linalg.inv(grid.affine)
    return (inverse[:3, :3] @ points.T).T + inverse[:3, 3]


def check_overlap(fixed: Volume, moving: Volume, names: tuple[str, str] = ("CT", "PET")) -> float:
    """The fraction of `fixed`'s in-plane box that `moving`'s box covers; ValueError naming
    both boxes (LPS mm) when they do not overlap at all."""
    fixed_grid, moving_grid = grid_of(fixed), grid_of(moving)
    box = _to_index(_corners(moving_grid), fixed_grid)
    low, high = box.min(axis=0), box.max(axis=0)
    d, h, w = fixed_grid.shape
    lo = np.maximum(low, -0.5)
    hi = np.minimum(high, [w - 0.5, h - 0.5, d - 0.5])
    axes = 2 if not moving.is_volume else 3  # a 2-D PET goes with a 2-D CT: in-plane only
    if np.any(hi[:axes] <= lo[:axes]):

        def bounds(grid: Grid) -> str:
            c = _corners(grid)
            return (
                "["
                + ", ".join(f"{a:.1f}..{b:.1f}" for a, b in zip(c.min(0), c.max(0), strict=True))
                + "] mm"
            )

        raise ValueError(
            f"{names[0]} and {names[1]} do not overlap: {names[0]} spans {bounds(fixed_grid)}, "
            f"{names[1]} spans {bounds(moving_grid)} (LPS x, y, z); they are not of the same "
            "patient position, or one of them has wrong geometry"
        )
    return float((hi[0] - lo[0]) * (hi[1] - lo[1]) / (w * h))


def match_field_of_view(moving: Volume, fixed: Volume) -> Volume:
    """`moving` with spacing, origin and direction set so that it spans `fixed`'s in-plane
    field of view (for images without geometry, e.g. PNG)."""
    fh, fw = fixed.shape[-2:]
    mh, mw = moving.shape[-2:]
    spacing = (fixed.spacing[-2] * fh / mh, fixed.spacing[-1] * fw / mw)
    corner = (
        np.asarray(fixed.origin)
        - 0.5 * fixed.direction[:, 0] * fixed.spacing[-1]
        - 0.5 * fixed.direction[:, 1] * fixed.spacing[-2]
    )
    origin = (
        corner + 0.5 * fixed.direction[:, 0] * spacing[1] + 0.5 * fixed.direction[:, 1] * spacing[0]
    )
    return replace(
        moving,
        spacing=(*moving.spacing[:-2], *spacing),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=fixed.direction.copy(),
    )


def resample_onto(moving: Volume, grid: Grid) -> np.ndarray:
    """`moving` sampled trilinearly at every voxel of `grid`: float32 `grid.shape`, 0 where
    a voxel centre lies outside `moving`'s voxel box. A 2-D `moving` is sampled in-plane."""
    d, h, w = grid.shape
    k, r, c = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    index = np.stack([c.ravel(), r.ravel(), k.ravel()], axis=1).astype(np.float64)
    points = (grid.affine[:3, :3] @ index.T).T + grid.affine[:3, 3]
    target = _to_index(points, grid_of(moving))
    array = moving.array if moving.is_volume else moving.array[None]
    md, mh, mw = array.shape
    if not moving.is_volume:
        target[:, 2] = 0.0
    inside = np.all((target >= -0.5) & (target <= np.array([mw, mh, md]) - 0.5), axis=1)
    coordinates = np.stack([target[:, 2], target[:, 1], target[:, 0]])
    values = ndimage.map_coordinates(array.astype(np.float32), coordinates, order=1, mode="nearest")
    return np.where(inside, values, 0.0).astype(np.float32).reshape(d, h, w)
