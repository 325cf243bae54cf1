"""The `petct` task: CT-guided PET super-resolution pairs simulated from real CT slices.

`make_task("petct")(ct (1, H, W) in HU, spacing_mm, generator)` returns a `DegradedPair`:

| field | shape | content |
|---|---|---|
| `high` | (1, H, W) | target: true activity (SUV) blurred by the 2 mm residual PSF |
| `low` | (1, H/s, W/s) | OSEM PET (SUV) from `count_fraction` x `counts` prompts, s = `scale` |
| `guide` | (1, H, W) | the CT (HU) on the target grid: the input cropped like `high` |

A two-input generator takes `(guide, low)` and predicts `high`; a single-input one ignores
`guide`. `low` and `high` share the unit (SUV), `guide` has its own (normalise it apart).
`count_fraction=1` gives the full-count PET. H and W are cropped to multiples of `scale`.

`degrade_petct` runs the task over a `Volume` for `medsr degrade --task petct` and returns
the CT, the target, the full-count and the low-count PET as volumes; `petct_strip` draws
CT | activity | PET | PET low-count with the lesions circled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from medsr.image import Volume, Window
from medsr.physics.degradation import DegradedPair
from medsr.physics.pet import PetFromCT

SUV_WINDOW = Window(center=5.0, width=10.0)


_PET = PetFromCT()  # the operator's defaults are the task's: one place to change them


@dataclass(frozen=True)
class PetCtTask:
    """PET from CT on a `scale`-times coarser grid (`PetFromCT`, `grid_factor = scale`).

    The arguments other than `task` and `scale` are those of `PetFromCT`.
    """

    task: str
    scale: int = 4
    counts: float = _PET.counts
    count_fraction: float = _PET.count_fraction
    psf_fwhm_mm: float = _PET.psf_fwhm_mm
    randoms_fraction: float = _PET.randoms_fraction
    iterations: int = _PET.iterations
    subsets: int = _PET.subsets
    num_views: int = _PET.num_views
    oversample: int = _PET.oversample
    postfilter_fwhm_mm: float = _PET.postfilter_fwhm_mm
    target_fwhm_mm: float = _PET.target_fwhm_mm
    lesion_count: tuple[int, int] = _PET.lesion_count
    lesion_radius_mm: tuple[float, float] = _PET.lesion_radius_mm
    lesion_suv: tuple[float, float] = _PET.lesion_suv
    texture_amplitude: float = _PET.texture_amplitude
    anatomy: str = _PET.anatomy

    def __post_init__(self) -> None:
        self.operator()  # validates every argument before any simulation

    def operator(self) -> PetFromCT:
        settings = {k: v for k, v in asdict(self).items() if k not in ("task", "scale")}
        return PetFromCT(grid_factor=self.scale, **settings)

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair:
        if high.ndim != 3 or high.shape[0] != 1:
            raise ValueError(f"high must be one CT slice (1, H, W) in HU, got {tuple(high.shape)}")
        simulation = self.operator()(high[0], spacing_mm, generator, full_count=False)
        low, target, ct = simulation.pet_low[None], simulation.target[None], simulation.ct[None]
        params = {
            **simulation.params,
            "task": self.task,
            "scale": self.scale,
            "guide": "CT, HU, high grid",
            "high_shape": list(target.shape),
            "low_shape": list(low.shape),
            "high_spacing_mm": spacing_mm,
            "low_spacing_mm": spacing_mm * self.scale,
            "generator_seed": generator.initial_seed(),
        }
        return DegradedPair(low.contiguous(), target.contiguous(), params, guide=ct.contiguous())


class PetCtVolumes(NamedTuple):
    """What `degrade_petct` returns: `ct` (HU) and `target` (SUV) on the cropped CT grid,
    `pet` (full count) and `pet_low` (`count_fraction`) on the PET grid, in SUV; `params`
    as `degrade_volume`'s, with the full-count prompts per slice under `full_count`."""

    ct: Volume
    target: Volume
    pet: Volume
    pet_low: Volume
    params: dict[str, Any]


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
    from medsr.physics.tasks import degrade_volume  # tasks registers this module's task

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


def petct_strip(
    result: PetCtVolumes, path: str | Path, ct_window: Window | None = None, dpi: int = 100
) -> Path:
    """PNG of the middle slice: CT | target activity (lesions circled) | PET | PET low-count.

    PET panels are shown with nearest enlargement (their pixels stay visible) on the same
    SUV scale as the activity.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medsr.viz.strips import to_size

    def middle(v: Volume) -> np.ndarray:
        return v.array[v.num_slices // 2] if v.is_volume else v.array

    info = result.params["slices"][result.ct.num_slices // 2]
    ct, target = middle(result.ct), middle(result.target)
    window = ct_window or result.ct.window or Window(40.0, 400.0)
    vmax = max(1.0, float(np.percentile(target, 99.8)))
    spacing, pet_mm = result.ct.spacing[-1], result.pet.spacing[-1]
    fraction = info["count_fraction"]
    panels = [
        (
            f"CT {ct.shape[0]}x{ct.shape[1]}, {spacing:.3g} mm\nC {window.center:g} / W "
            f"{window.width:g} HU",
            ct,
            "gray",
            window.low,
            window.high,
        ),
        (
            f"target activity (SUV), {info['target_fwhm_mm']:g} mm blur\n"
            f"{len(info['lesions'])} lesions circled",
            target,
            "gray_r",
            0.0,
            vmax,
        ),
        (
            f"PET {result.pet.shape[-2]}x{result.pet.shape[-1]}, {pet_mm:.3g} mm\n"
            f"{result.params['full_count']['prompts'][result.ct.num_slices // 2]:.3g} prompts",
            middle(result.pet),
            "gray_r",
            0.0,
            vmax,
        ),
        (
            f"PET low count ({fraction:g})\n{info['prompts_low']:.3g} prompts",
            middle(result.pet_low),
            "gray_r",
            0.0,
            vmax,
        ),
    ]
    figure, axes = plt.subplots(1, 4, figsize=(14.0, 3.9))
    for axis, (title, image, cmap, low, high) in zip(axes, panels, strict=True):
        shown = axis.imshow(to_size(image, ct.shape), cmap=cmap, vmin=low, vmax=high)
        axis.set_title(title, fontsize=9)
        axis.set_axis_off()
        figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02)
    for lesion in info["lesions"]:
        radius = lesion["radius_mm"] / spacing + 3
        axes[1].add_patch(
            plt.Circle(
                (lesion["col"], lesion["row"]), radius, color="tab:red", fill=False, linewidth=0.8
            )
        )
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path
