"""Where the slices of a DICOM series really are: gantry tilt and uneven slice spacing.

A CT series need not be a regular grid. With a gantry tilt the step from one slice's Image
Position (Patient) to the next has a component in the image plane (the stack is sheared);
with gaps or overlaps the steps along the slice normal differ. medsr keeps such a series as
it is (each slice with its own position, orientation and SOP reference, written back to its
own output slice) and states it: `describe_stack` measures both, `stack_notes` words them
for warnings and derived headers, and `check_regular_grid` refuses 3-D operations that
assume one spacing and one origin (resampling onto another grid, NIfTI's single affine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TILT_TOLERANCE_DEG = 0.05
"""Smaller shears are rounding in the stored positions, not a tilt."""
UNEVEN_TOLERANCE = 0.01
"""Steps differing from the median by more than this fraction make the spacing uneven."""


@dataclass(frozen=True)
class StackGeometry:
    """Slice positions projected on the slice normal (sorted), in mm.

    Attributes:
        spacing: median step along the normal.
        steps: every step along the normal, `(n - 1,)`.
        tilt_deg: angle between the stacking direction and the slice normal (gantry tilt).
    """

    spacing: float
    steps: tuple[float, ...]
    tilt_deg: float

    @property
    def tilted(self) -> bool:
        return self.tilt_deg > TILT_TOLERANCE_DEG

    @property
    def uneven(self) -> bool:
        steps = np.asarray(self.steps)
        return bool(np.max(np.abs(steps - self.spacing)) > UNEVEN_TOLERANCE * self.spacing)

    @property
    def regular(self) -> bool:
        return not (self.tilted or self.uneven)


def describe_stack(positions: np.ndarray, normal: np.ndarray) -> StackGeometry:
    """Steps and tilt of slices at `positions` `(n, 3)` (LPS mm, sorted along `normal`).

    The tilt is the median over steps of `atan(|in-plane part| / |normal part|)`.
    """
    deltas = np.diff(np.asarray(positions, dtype=np.float64), axis=0)
    along = deltas @ normal
    across = np.linalg.norm(deltas - along[:, None] * normal[None, :], axis=1)
    tilt = float(np.degrees(np.median(np.arctan2(across, np.abs(along)))))
    return StackGeometry(float(np.median(along)), tuple(float(s) for s in along), tilt)


def stack_notes(geometry: StackGeometry) -> list[str]:
    """What a user must be told about an irregular stack, one sentence each."""
    notes = []
    if geometry.tilted:
        notes.append(f"source series has a gantry tilt of {geometry.tilt_deg:.2f} deg")
    if geometry.uneven:
        notes.append(
            f"source series has uneven slice spacing {min(geometry.steps):.3f}.."
            f"{max(geometry.steps):.3f} mm (median {geometry.spacing:.3f} mm)"
        )
    if notes:
        notes.append("each slice keeps its own source position, orientation and reference")
    return notes


def stack_metadata(geometry: StackGeometry) -> dict[str, Any]:
    """The `Volume.metadata` entries describing `geometry` (JSON-able)."""
    return {
        "regular_grid": geometry.regular,
        "gantry_tilt_deg": round(geometry.tilt_deg, 4),
        "slice_steps_mm": [round(s, 4) for s in geometry.steps],
        "derivation_notes": stack_notes(geometry),
    }


def check_regular_grid(metadata: dict[str, Any], operation: str) -> None:
    """ValueError when the image described by `metadata` is a tilted or unevenly spaced
    series, for `operation`s that need one spacing and one origin."""
    if metadata.get("regular_grid") is not False:
        return
    problems = [n for n in metadata.get("derivation_notes", []) if n.startswith("source series")]
    raise ValueError(
        f"{operation} needs slices on a regular grid, but the {'; '.join(problems)}; "
        "resample the series to a regular grid first (e.g. dcm2niix, SimpleITK), or write "
        "it as DICOM, which keeps every slice's own position"
    )
