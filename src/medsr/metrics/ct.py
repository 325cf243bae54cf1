"""CT metrics on clinical HU windows and in HU.

PSNR / SSIM of CT are reported on a stated window mapped to [0, 1] (`data_range` 1), per
anatomy, following the 2024 low-dose CT benchmark convention; full-range PSNR
(e.g. [-1024, 3071]) inflates scores by 15-30 dB and is never reported alone (PHYSICS.md).

| window | centre / width (HU) | range (HU) |
|---|---|---|
| neuro | 40 / 80 | 0 .. 80 |
| abdomen | 50 / 400 | -150 .. 250 |
| chest | -600 / 1500 | -1350 .. 150 |

Images are `(B, C, H, W)` or `(H, W)` in HU (see `medsr.metrics.image`).
"""

from __future__ import annotations

import torch

from medsr.image import Window
from medsr.metrics.image import _reduce, mse, psnr, ssim

NEURO = Window(center=40.0, width=80.0)
ABDOMEN = Window(center=50.0, width=400.0)
CHEST = Window(center=-600.0, width=1500.0)
CT_WINDOWS: dict[str, Window] = {"neuro": NEURO, "abdomen": ABDOMEN, "chest": CHEST}


def get_window(window: str | Window) -> Window:
    """A `Window` from its name in `CT_WINDOWS` (or the window itself)."""
    if isinstance(window, Window):
        return window
    if window not in CT_WINDOWS:
        raise ValueError(f"unknown CT window {window!r}; known: {sorted(CT_WINDOWS)}")
    return CT_WINDOWS[window]


def describe_window(window: str | Window) -> str:
    """E.g. `neuro C40/W80 -> 0..1` for log lines and CSV headers (no commas)."""
    w = get_window(window)
    name = next((n for n, v in CT_WINDOWS.items() if v == w), "window")
    return f"{name} C{w.center:g}/W{w.width:g} -> 0..1"


PADDING_HU = -1500.0
"""CT values below this are no tissue (air is -1000 HU, stored CT starts at -1024) but the
padding some scanners write outside the reconstructed field of view (-2000, -2048, -3024 HU
by vendor): no image to measure or to enhance."""


def window_to_unit(image_hu: torch.Tensor, window: str | Window) -> torch.Tensor:
    """Map `[low, high]` of the window linearly to [0, 1], clipping outside."""
    w = get_window(window)
    return w.apply(image_hu)


def windowed_psnr(
    prediction_hu: torch.Tensor,
    target_hu: torch.Tensor,
    window: str | Window,
    reduction: str = "mean",
) -> torch.Tensor:
    """PSNR (dB) of both images after `window_to_unit`, with `data_range` 1."""
    return psnr(
        window_to_unit(prediction_hu, window),
        window_to_unit(target_hu, window),
        data_range=1.0,
        reduction=reduction,
    )


def windowed_ssim(
    prediction_hu: torch.Tensor,
    target_hu: torch.Tensor,
    window: str | Window,
    reduction: str = "mean",
) -> torch.Tensor:
    """SSIM of both images after `window_to_unit`, with `data_range` 1."""
    return ssim(
        window_to_unit(prediction_hu, window),
        window_to_unit(target_hu, window),
        data_range=1.0,
        reduction=reduction,
    )


def hu_rmse(
    prediction_hu: torch.Tensor, target_hu: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Root mean squared error in HU, per image (no window, no clipping)."""
    return _reduce(mse(prediction_hu, target_hu, reduction="none").sqrt(), reduction)
