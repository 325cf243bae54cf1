"""FDG-like PET activity (SUV) of one slice, made from the tissue classes of a real CT slice.

Classes on the CT smoothed by a Gaussian of SD `smoothing_mm` (PHYSICS.md, "PET from CT"):

| class | rule (smoothed HU, inside the body mask) | SUV |
|---|---|---|
| outside | outside the body mask | 0 |
| gas | < -950 (bowel gas, sinuses, trachea) | 0 |
| lung / fat | -950 .. -30 | 0.4 |
| soft tissue | -30 .. 100 | 1.0 x (1 + 0.15 t) |
| enhancing | 100 .. 300, farther than 2 mm from bone | 1.8 |
| bone | >= 300, and the 100-300 HU rim within 2 mm of it | 0.6 |
| CSF | inside the skull, 0 .. 15 | 0.3 |
| white matter | inside the skull, 15 .. split (<= 100) | 2 x (1 + 0.15 t) |
| grey matter | inside the skull, > split, or within 3 mm of the inner skull | 8 x (1 + 0.15 t) |

`t` is a smooth random field (Gaussian-filtered white noise of SD `texture_mm`) scaled to
[-1, 1]. The body mask is the smoothed CT above -400 HU with holes filled (lungs, gas), largest
component (drops the table and head holders). The brain is the non-bone part of the convex hull of
the skull when it looks like a brain (`brain_mask`).
The grey/white split is the median smoothed HU of the brain parenchyma (>= 15 HU): CTs differ
by several HU in calibration and in grey/white contrast, so a fixed 35-40 HU threshold makes
almost everything white on some scanners (e.g. the InVesalius head, parenchyma peak ~22 HU).
With the cortical band, grey is a little over half of the parenchyma.

Hot lesions: a drawn number of discs (radius, SUV drawn uniformly), centred on a soft-tissue
or brain pixel whose distance to the body edge exceeds radius + 2 mm, not overlapping earlier
lesions; edges are anti-aliased (pixel coverage). Every drawn value is returned and logged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from medsr.image import body_mask, gaussian_blur

CLASSES = ("outside", "gas", "lung_fat", "soft", "enhancing", "bone", "csf", "white", "grey")
SUV = {
    "outside": 0.0,
    "gas": 0.0,
    "lung_fat": 0.4,
    "soft": 1.0,
    "enhancing": 1.8,
    "bone": 0.6,
    "csf": 0.3,
    "white": 2.0,
    "grey": 8.0,
}
TEXTURED = ("soft", "white", "grey")
ANATOMIES = ("auto", "head", "body")
BONE_HU = 300.0


@dataclass(frozen=True)
class Lesion:
    """A hot disc: centre pixel (row, column) of the CT grid, the same in mm from the centre
    of pixel (0, 0), radius in mm, activity in SUV."""

    row: int
    col: int
    radius_mm: float
    suv: float
    row_mm: float
    col_mm: float


@dataclass
class ActivityMap:
    """`activity` (H, W) float32 in SUV; `labels` (H, W) int64 indices into `CLASSES`
    (before lesions); `lesions`; `params`: every setting and drawn value."""

    activity: torch.Tensor
    labels: torch.Tensor
    lesions: list[Lesion]
    params: dict[str, Any] = field(default_factory=dict)


def _seed(generator: torch.Generator) -> int:
    """A sub-seed drawn from `generator`, logged so a random field can be remade alone."""
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def _disk(radius_px: float) -> np.ndarray:
    r = max(1, math.ceil(radius_px))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return np.asarray(x**2 + y**2 <= radius_px**2 + 1e-9)


def convex_hull_mask(mask: np.ndarray) -> np.ndarray:
    """Pixels inside the convex hull of the True pixels of `mask` (empty if degenerate)."""
    from scipy.spatial import ConvexHull  # 0.15 s to import: only when a slice is simulated

    points = np.argwhere(mask)
    if len(points) < 3 or np.linalg.matrix_rank(points - points.mean(0)) < 2:
        return np.zeros_like(mask, dtype=bool)
    (r0, c0), (r1, c1) = points.min(0), points.max(0)
    rows, cols = np.mgrid[r0 : r1 + 1, c0 : c1 + 1].astype(np.float64)
    inside = np.ones(rows.shape, dtype=bool)
    for a, b, offset in ConvexHull(points).equations:  # inside: a row + b col + offset <= 0
        inside &= a * rows + b * cols + offset <= 1e-9
    out = np.zeros_like(mask, dtype=bool)
    out[r0 : r1 + 1, c0 : c1 + 1] = inside
    return out


def brain_mask(s: np.ndarray, body: np.ndarray, spacing_mm: float, force: bool) -> np.ndarray:
    """Non-bone pixels inside the convex hull of the skull (>= 200 HU in the body).

    Empty unless it looks like a brain (or `force`): >= 1000 mm^2, >= 75 % of the hull's
    edge within 5 mm of bone (a skull, not ribs), >= 75 % of it at 0-60 HU. A hull, not a
    hole fill: real skulls have gaps (thin frontal bone, sinuses, foramina) in one slice.
    """
    bone = (s >= 200.0) & body
    hull = convex_hull_mask(bone)
    cavity = hull & body & ~bone
    if not cavity.any():
        return cavity
    edge = hull & ~ndimage.binary_erosion(hull)
    to_bone_mm = ndimage.distance_transform_edt(~bone) * spacing_mm
    values = s[cavity]
    plausible = (
        cavity.sum() * spacing_mm**2 >= 1000.0
        and float(np.mean(to_bone_mm[edge] <= 5.0)) >= 0.75
        and float(np.mean((values >= 0.0) & (values <= 60.0))) >= 0.75
    )
    return cavity if plausible or force else np.zeros_like(cavity)


def classify(
    ct_hu: torch.Tensor, spacing_mm: float, smoothing_mm: float = 2.0, anatomy: str = "auto"
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Class index map `(H, W)` int64 (indices into `CLASSES`) and what was detected."""
    if anatomy not in ANATOMIES:
        raise ValueError(f"anatomy must be one of {ANATOMIES}, got {anatomy!r}")
    hu = ct_hu.float().clamp(min=-1000.0).numpy()  # padding (-2000, -3024) is air
    s = ndimage.gaussian_filter(hu, smoothing_mm / spacing_mm, mode="nearest", truncate=3.0)
    body = body_mask(s)
    bone = s >= BONE_HU
    near_bone = ndimage.binary_dilation(bone, _disk(2.0 / spacing_mm)) if bone.any() else bone
    labels = np.full(s.shape, CLASSES.index("outside"), dtype=np.int64)
    rules = (
        ("gas", s < -950.0),
        ("lung_fat", (s >= -950.0) & (s < -30.0)),
        ("soft", (s >= -30.0) & (s <= 100.0)),
        ("enhancing", (s > 100.0) & ~near_bone),
        ("bone", bone | ((s > 100.0) & near_bone)),
    )
    for name, rule in rules:
        labels[body & rule] = CLASSES.index(name)
    brain = brain_mask(s, body, spacing_mm, anatomy == "head") if anatomy != "body" else None
    info: dict[str, Any] = {"brain_found": bool(brain is not None and brain.any())}
    if brain is not None and brain.any():
        parenchyma = brain & (s >= 15.0) & (s <= 100.0)
        split = float(np.median(s[parenchyma])) if parenchyma.any() else 35.0
        band = brain & ~ndimage.binary_erosion(brain, _disk(3.0 / spacing_mm))
        labels[brain & (s >= 0.0) & (s < 15.0)] = CLASSES.index("csf")
        labels[parenchyma] = CLASSES.index("white")
        labels[parenchyma & ((s > split) | band)] = CLASSES.index("grey")
        info.update(grey_white_split_hu=split, brain_area_mm2=float(brain.sum()) * spacing_mm**2)
    return torch.from_numpy(labels), info


def smooth_texture(
    shape: tuple[int, int], spacing_mm: float, texture_mm: float, generator: torch.Generator
) -> torch.Tensor:
    """Smooth random field in [-1, 1]: white noise on a grid of pixel `texture_mm / 2`,
    Gaussian-filtered (SD 2 of its pixels = `texture_mm`), bilinearly enlarged to `shape`."""
    step = max(1.0, texture_mm / 2.0 / spacing_mm)
    coarse = (max(2, math.ceil(shape[0] / step)), max(2, math.ceil(shape[1] / step)))
    noise = torch.randn(coarse, generator=generator, dtype=torch.float64)
    field_ = gaussian_blur(noise, texture_mm / (step * spacing_mm)).float()[None, None]
    field_ = F.interpolate(field_, size=shape, mode="bilinear", align_corners=False)[0, 0]
    return field_ / field_.abs().max().clamp(min=1e-12)


def _place_lesions(
    activity: torch.Tensor,
    labels: torch.Tensor,
    spacing_mm: float,
    generator: torch.Generator,
    count: tuple[int, int],
    radius_mm: tuple[float, float],
    suv: tuple[float, float],
) -> tuple[list[Lesion], int]:
    body = (labels != CLASSES.index("outside")).numpy()
    inside_mm = ndimage.distance_transform_edt(np.pad(body, 1))[1:-1, 1:-1] * spacing_mm
    tissue = np.isin(labels.numpy(), [CLASSES.index(c) for c in ("soft", "enhancing") + TEXTURED])
    rows, cols = np.mgrid[: body.shape[0], : body.shape[1]].astype(np.float64)
    lesions: list[Lesion] = []
    wanted = int(torch.randint(count[0], count[1] + 1, (1,), generator=generator))
    for _ in range(wanted):
        radius = radius_mm[0] + float(torch.rand((), generator=generator, dtype=torch.float64)) * (
            radius_mm[1] - radius_mm[0]
        )
        value = suv[0] + float(torch.rand((), generator=generator, dtype=torch.float64)) * (
            suv[1] - suv[0]
        )
        allowed = tissue & (inside_mm > radius + 2.0)
        for other in lesions:
            gap = np.hypot(rows - other.row, cols - other.col) * spacing_mm
            allowed &= gap > radius + other.radius_mm + 2.0
        candidates = np.flatnonzero(allowed)
        if candidates.size == 0:
            continue  # too small a body for this lesion: logged as fewer lesions
        pick = int(candidates[int(torch.randint(0, candidates.size, (1,), generator=generator))])
        row, col = divmod(pick, body.shape[1])
        distance = torch.from_numpy(np.hypot(rows - row, cols - col)).float()
        coverage = (radius / spacing_mm - distance + 0.5).clamp(0.0, 1.0)
        activity.mul_(1 - coverage).add_(value * coverage)
        lesions.append(Lesion(row, col, radius, value, row * spacing_mm, col * spacing_mm))
    return lesions, wanted


def activity_from_ct(
    ct_hu: torch.Tensor,
    spacing_mm: float,
    generator: torch.Generator,
    *,
    smoothing_mm: float = 2.0,
    texture_amplitude: float = 0.15,
    texture_mm: float = 10.0,
    lesion_count: tuple[int, int] = (2, 4),
    lesion_radius_mm: tuple[float, float] = (4.0, 10.0),
    lesion_suv: tuple[float, float] = (4.0, 12.0),
    anatomy: str = "auto",
) -> ActivityMap:
    """Activity in SUV of a CT slice `(H, W)` in HU with square pixels of `spacing_mm`.

    Classes and values are in the module docstring. `anatomy` "auto" finds a brain when the
    slice has one, "head" always takes the skull cavity as brain, "body" never does.
    Deterministic given `generator`: it draws, in order, the texture seed, the number of
    lesions, then per lesion its radius, SUV and centre.
    """
    if ct_hu.ndim != 2:
        raise ValueError(f"ct_hu must be (H, W), got shape {tuple(ct_hu.shape)}")
    if not spacing_mm > 0:
        raise ValueError(f"spacing_mm must be > 0, got {spacing_mm}")
    if not (0 <= lesion_count[0] <= lesion_count[1]):
        raise ValueError(f"lesion_count must be 0 <= low <= high, got {lesion_count}")
    if not (0 < lesion_radius_mm[0] <= lesion_radius_mm[1]):
        raise ValueError(f"lesion_radius_mm must be 0 < low <= high, got {lesion_radius_mm}")
    if not (0 <= lesion_suv[0] <= lesion_suv[1]):
        raise ValueError(f"lesion_suv must be 0 <= low <= high, got {lesion_suv}")
    if not 0 <= texture_amplitude < 1:
        raise ValueError(f"texture_amplitude must be in [0, 1), got {texture_amplitude}")
    labels, info = classify(ct_hu, spacing_mm, smoothing_mm, anatomy)
    table = torch.tensor([SUV[c] for c in CLASSES], dtype=torch.float32)
    activity = table[labels]
    texture_seed = _seed(generator)
    texture = smooth_texture(
        (labels.shape[0], labels.shape[1]),
        spacing_mm,
        texture_mm,
        torch.Generator().manual_seed(texture_seed),
    )
    textured = torch.isin(labels, torch.tensor([CLASSES.index(c) for c in TEXTURED]))
    activity = torch.where(textured, activity * (1 + texture_amplitude * texture), activity)
    lesions, wanted = _place_lesions(
        activity, labels, spacing_mm, generator, lesion_count, lesion_radius_mm, lesion_suv
    )
    params = {
        "smoothing_mm": smoothing_mm,
        "texture_amplitude": texture_amplitude,
        "texture_mm": texture_mm,
        "texture_seed": texture_seed,
        "anatomy": anatomy,
        **info,
        "class_suv": dict(SUV),
        "lesion_count": list(lesion_count),
        "lesion_radius_mm": list(lesion_radius_mm),
        "lesion_suv": list(lesion_suv),
        "lesions_drawn": wanted,
        "lesions": [asdict(lesion) for lesion in lesions],
    }
    return ActivityMap(activity.contiguous(), labels, lesions, params)
