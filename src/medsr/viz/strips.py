"""Comparison pictures: titled panels side by side, e.g. normal dose | low dose | noise, and
the PET/CT strip of `medsr degrade --task petct`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window (also on headless servers)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from medsr.image import Volume, Window  # noqa: E402

if TYPE_CHECKING:
    from medsr.physics.pet_task import PetCtVolumes


def to_size(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Enlarge a 2-D image by pixel replication (nearest) to `shape`, an integer multiple.

    Display only: it shows the low-resolution pixels as they are, without interpolation.
    """
    image = np.asarray(image)
    if image.shape == shape:
        return image
    factors = (shape[0] // image.shape[0], shape[1] // image.shape[1])
    if factors[0] < 1 or (image.shape[0] * factors[0], image.shape[1] * factors[1]) != shape:
        raise ValueError(f"cannot enlarge {image.shape} to {shape} by an integer factor")
    return np.kron(image, np.ones(factors, dtype=image.dtype))


def comparison_strip(
    panels: Sequence[tuple[str, np.ndarray]],
    path: str | Path,
    window: Window | None = None,
    *,
    unit: str = "",
    differences: Collection[int] = (),
    dpi: int = 100,
) -> Path:
    """Write a PNG of 2-D panels side by side, each titled, with a colour bar.

    Smaller panels (e.g. low resolution) are enlarged by nearest to the largest panel's size,
    so pixels line up and the LR pixels stay visible. Ordinary panels are shown in grey on
    `window` (or the first panel's 1st-99th percentile range), with the window and `unit` in
    the title; the panels whose indices are in `differences` (e.g. low - high) on a symmetric
    diverging scale around 0 whose limit (the 99.5th percentile of |d|) is in the title.

    Returns the path written. Matplotlib's Agg backend: no display is needed.
    """
    if not panels:
        raise ValueError("panels must not be empty")
    arrays = [np.asarray(a, dtype=np.float32) for _, a in panels]
    for title, array in zip((t for t, _ in panels), arrays, strict=True):
        if array.ndim != 2:
            raise ValueError(f"panel {title!r} must be 2-D, got shape {array.shape}")
    shape = max((a.shape for a in arrays), key=lambda s: s[0] * s[1])
    arrays = [to_size(a, shape) for a in arrays]
    if window is None:
        grey = [a for i, a in enumerate(arrays) if i not in differences] or arrays
        low, high = (float(v) for v in np.percentile(grey[0], [1, 99]))
        window = Window((low + high) / 2, max(high - low, 1e-6))
    suffix = f" {unit}" if unit else ""
    width = 3.2 * len(arrays) * max(1.0, shape[1] / shape[0])
    figure, axes = plt.subplots(1, len(arrays), figsize=(width, 3.6), squeeze=False)
    for index, ((title, _), array, axis) in enumerate(zip(panels, arrays, axes[0], strict=True)):
        if index in differences:
            limit = float(np.percentile(np.abs(array), 99.5)) or 1.0
            shown = axis.imshow(array, cmap="RdBu_r", vmin=-limit, vmax=limit)
            label = f"{title}\nscale \u00b1{limit:.3g}{suffix}"
        else:
            shown = axis.imshow(array, cmap="gray", vmin=window.low, vmax=window.high)
            label = f"{title}\nC {window.center:.4g} / W {window.width:.4g}{suffix}"
        axis.set_title(label, fontsize=9)
        axis.set_axis_off()
        figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def pair_strip(
    high: np.ndarray,
    low: np.ndarray,
    path: str | Path,
    window: Window | None = None,
    *,
    unit: str = "",
    label: str = "",
    spacing_mm: float | None = None,
    noisy: np.ndarray | None = None,
) -> Path:
    """The strip of one training pair: high | low (nearest) | low upsampled - high.

    With no downsampling the last panel is the added noise; otherwise it is the noise plus
    the detail the low-resolution grid lost (low upsampled by bicubic interpolation). Given
    `noisy` (the noisy image on the high grid), the strip is instead
    high | noisy | noise (noisy - high) | low (nearest), which shows the noise texture alone.
    """
    from medsr.physics.resize import upsample  # torch only when a pair strip is drawn

    high, low = np.asarray(high, dtype=np.float32), np.asarray(low, dtype=np.float32)
    scale = high.shape[-1] // low.shape[-1]
    mm = f", {spacing_mm:.3g} mm" if spacing_mm else ""
    lr_mm = f", {spacing_mm * scale:.3g} mm" if spacing_mm else ""
    if scale == 1:
        difference, difference_title = low - high, "noise: low - high"
    else:
        import torch

        up = upsample(torch.from_numpy(low), scale, "bicubic").numpy()
        difference, difference_title = up - high, f"bicubic x{scale}(low) - high"
    if noisy is not None:
        noisy = np.asarray(noisy, dtype=np.float32)
        noise = noisy - high
        panels = [
            (f"{label} normal dose {high.shape[0]}x{high.shape[1]}{mm}".strip(), high),
            ("low dose, same grid", noisy),
            (f"noise: low - normal dose (SD {noise.std():.3g})", noise),
        ]
        if scale > 1:
            panels.append((f"low {low.shape[0]}x{low.shape[1]}{lr_mm} (nearest)", low))
        return comparison_strip(panels, path, window, unit=unit, differences={2})
    panels = [
        (f"{label} high {high.shape[0]}x{high.shape[1]}{mm}".strip(), high),
        (f"low {low.shape[0]}x{low.shape[1]}{lr_mm}" + (" (nearest)" if scale > 1 else ""), low),
        (difference_title, difference),
    ]
    return comparison_strip(panels, path, window, unit=unit, differences={2})


def _middle(volume: Volume) -> np.ndarray:
    return volume.array[volume.num_slices // 2] if volume.is_volume else volume.array


def _petct_panels(
    result: PetCtVolumes, info: dict[str, Any], window: Window
) -> list[tuple[str, np.ndarray, str, float, float]]:
    """`(title, image, colour map, low, high)` of the CT, target, PET and low-count PET;
    the PET panels on the activity's SUV scale."""
    ct, target = _middle(result.ct), _middle(result.target)
    vmax = max(1.0, float(np.percentile(target, 99.8)))
    spacing, pet_mm = result.ct.spacing[-1], result.pet.spacing[-1]
    fraction = info["count_fraction"]
    prompts = result.params["full_count"]["prompts"][result.ct.num_slices // 2]
    return [
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
            f"{prompts:.3g} prompts",
            _middle(result.pet),
            "gray_r",
            0.0,
            vmax,
        ),
        (
            f"PET low count ({fraction:g})\n{info['prompts_low']:.3g} prompts",
            _middle(result.pet_low),
            "gray_r",
            0.0,
            vmax,
        ),
    ]


def petct_strip(
    result: PetCtVolumes, path: str | Path, ct_window: Window | None = None, dpi: int = 100
) -> Path:
    """PNG of the middle slice: CT | target activity (lesions circled) | PET | PET low-count.

    PET panels are shown with nearest enlargement (their pixels stay visible) on the same
    SUV scale as the activity.
    """
    info = result.params["slices"][result.ct.num_slices // 2]
    window = ct_window or result.ct.window or Window(40.0, 400.0)
    panels = _petct_panels(result, info, window)
    ct, spacing = panels[0][1], result.ct.spacing[-1]
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
