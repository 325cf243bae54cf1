"""Resampling between the high- and low-resolution grids of a super-resolution pair.

Grid convention (the one of `torch.nn.functional.interpolate` with `align_corners=False`):
low-resolution pixel `m` covers high-resolution pixels `s*m ... s*m + s - 1`, so its centre
lies at high-resolution coordinate `s*m + (s - 1) / 2`. Downsampling keeps the top-left
corner of the field of view; `upsample(downsample(x))` is aligned with `x`.

All functions take `(..., H, W)` tensors (any leading dimensions) and keep the dtype
(integer inputs are resampled in float32).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SCALES = (2, 3, 4, 8)
DOWNSAMPLE_METHODS = ("area", "bicubic-antialias", "bicubic-legacy", "nearest-legacy")
UPSAMPLE_METHODS = ("nearest", "bilinear", "bicubic", "lanczos")
LANCZOS_LOBES = 3


def _check_scale(scale: int, allowed: tuple[int, ...] = SCALES) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in allowed:
        raise ValueError(f"scale must be one of {allowed}, got {scale!r}")


def _as_batch(image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """`(..., H, W)` -> `(N, 1, H, W)` float, plus the leading shape to restore."""
    if image.ndim < 2:
        raise ValueError(f"image must have shape (..., H, W), got {tuple(image.shape)}")
    lead = tuple(image.shape[:-2])
    x = image.reshape(-1, 1, *image.shape[-2:])
    if not x.is_floating_point():
        x = x.float()
    return x, lead


def crop_to_multiple(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop `(..., H, W)` to `(..., s*floor(H/s), s*floor(W/s))`, dropping the last rows and
    columns (so the origin of the image, its first pixel, is unchanged).

    `downsample` does this crop itself; use this function to get the high-resolution image
    that matches its output.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    height, width = image.shape[-2] // scale * scale, image.shape[-1] // scale * scale
    if height == 0 or width == 0:
        raise ValueError(f"image {tuple(image.shape[-2:])} is smaller than the scale {scale}")
    return image[..., :height, :width]


def downsample(image: torch.Tensor, scale: int, method: str = "area") -> torch.Tensor:
    """Reduce `(..., H, W)` to `(..., H//s, W//s)`, after cropping H and W to multiples of s.

    Methods:
        `area`: exact box average of each `s x s` block; what a detector with `s`-times larger
            pixels integrates. Antialiased (frequency response sinc(s f), zero at the LR
            sampling frequency and its multiples). The default.
        `bicubic-antialias`: torch bicubic with `antialias=True` (the kernel is widened by `s`,
            as in Pillow / Matlab `imresize`).
        `bicubic-legacy`, `nearest-legacy`: torch interpolation *without* antialiasing, as many
            older SR projects did. They alias: detail above the LR Nyquist frequency folds back
            as false low-frequency patterns that no real scanner produces. Kept only to compare
            against those projects; never use them to make training data.

    Args:
        image: `(..., H, W)`, any unit (the unit is kept).
        scale: integer factor, one of 2, 3, 4, 8.
        method: one of `DOWNSAMPLE_METHODS`.

    Returns:
        `(..., H//s, W//s)` tensor; the matching high-resolution image is
        `crop_to_multiple(image, scale)`.
    """
    _check_scale(scale)
    if method not in DOWNSAMPLE_METHODS:
        raise ValueError(f"method must be one of {DOWNSAMPLE_METHODS}, got {method!r}")
    x, lead = _as_batch(crop_to_multiple(image, scale))
    size = (x.shape[-2] // scale, x.shape[-1] // scale)
    if method == "area":
        y = F.avg_pool2d(x, kernel_size=scale, stride=scale)
    elif method == "bicubic-antialias":
        y = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    elif method == "bicubic-legacy":
        y = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=False)
    else:
        y = F.interpolate(x, size=size, mode="nearest")
    return y.reshape(*lead, *size)


def lanczos_kernel(x: torch.Tensor, lobes: int = LANCZOS_LOBES) -> torch.Tensor:
    """Lanczos window `L(x) = sinc(x) sinc(x / a)` for `|x| < a`, else 0 (`sinc` normalised)."""
    return torch.where(x.abs() < lobes, torch.sinc(x) * torch.sinc(x / lobes), 0.0)


def _lanczos_phases(scale: int, lobes: int, dtype: torch.dtype) -> torch.Tensor:
    """`(s, 2a+1)` taps: output pixel `s*m + r` reads input `m-a ... m+a` with row `r`."""
    # Output pixel s*m + r sits at input coordinate m + d_r, d_r = (r + 0.5) / s - 0.5.
    offsets = (torch.arange(scale, dtype=torch.float64) + 0.5) / scale - 0.5
    taps = torch.arange(-lobes, lobes + 1, dtype=torch.float64)
    weights = lanczos_kernel(offsets[:, None] - taps[None, :], lobes)
    return (weights / weights.sum(dim=1, keepdim=True)).to(dtype)


def _lanczos_last_axis(x: torch.Tensor, scale: int, lobes: int) -> torch.Tensor:
    """Upsample the last axis of `(N, L)` to `(N, s*L)` by polyphase convolution."""
    kernel = _lanczos_phases(scale, lobes, x.dtype).to(x.device)[:, None, :]
    padded = F.pad(x[:, None, :], (lobes, lobes), mode="replicate")
    phases = F.conv1d(padded, kernel)  # (N, s, L): phase r of every output block
    return phases.transpose(1, 2).reshape(x.shape[0], -1)


def lanczos_upsample(image: torch.Tensor, scale: int, lobes: int = LANCZOS_LOBES) -> torch.Tensor:
    """Separable Lanczos-`a` interpolation of `(..., H, W)` to `(..., sH, sW)`.

    Each axis is convolved with the Lanczos kernel sampled at the `s` output phases (weights
    normalised to sum 1 so flat regions stay flat); borders repeat the edge pixel. This is
    the classical baseline every SR model is compared against.
    """
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    x, lead = _as_batch(image)
    height, width = x.shape[-2:]
    rows = _lanczos_last_axis(x.reshape(-1, width), scale, lobes).reshape(-1, height, width * scale)
    cols = rows.transpose(1, 2).reshape(-1, height)
    out = _lanczos_last_axis(cols, scale, lobes).reshape(-1, width * scale, height * scale)
    return out.transpose(1, 2).reshape(*lead, height * scale, width * scale)


def upsample(image: torch.Tensor, scale: int, method: str = "bicubic") -> torch.Tensor:
    """Enlarge `(..., H, W)` to `(..., sH, sW)` on the grid of `downsample` (see module doc).

    Methods: `nearest` (pixel replication, for display), `bilinear`, `bicubic` (torch, Keys
    a = -0.75, `align_corners=False`) and `lanczos` (Lanczos-3, `lanczos_upsample`).
    Interpolation cannot restore what the antialiasing filter removed; these are baselines.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if method not in UPSAMPLE_METHODS:
        raise ValueError(f"method must be one of {UPSAMPLE_METHODS}, got {method!r}")
    if method == "lanczos":
        return lanczos_upsample(image, scale)
    x, lead = _as_batch(image)
    size = (x.shape[-2] * scale, x.shape[-1] * scale)
    if method == "nearest":
        y = F.interpolate(x, size=size, mode="nearest")
    else:
        y = F.interpolate(x, size=size, mode=method, align_corners=False)
    return y.reshape(*lead, *size)


def lr_spacing(spacing_mm: float, scale: int) -> float:
    """Pixel spacing (mm) of the low-resolution grid: the high-resolution spacing times `s`."""
    if not (math.isfinite(spacing_mm) and spacing_mm > 0):
        raise ValueError(f"spacing_mm must be positive, got {spacing_mm}")
    return spacing_mm * scale


def zoom_centre(image: torch.Tensor, zoom: float) -> torch.Tensor:
    """The central `1 / zoom` of `(..., H, W)` resampled (bicubic) back to `(H, W)`: the same
    field reconstructed on a grid `zoom` times finer (at least 2 pixels are kept per axis)."""
    if not zoom >= 1:
        raise ValueError(f"zoom must be >= 1 (a finer grid), got {zoom}")
    batch, lead = _as_batch(image)
    height, width = batch.shape[-2:]
    rows, cols = max(2, round(height / zoom)), max(2, round(width / zoom))
    top, left = (height - rows) // 2, (width - cols) // 2
    centre = batch[..., top : top + rows, left : left + cols]
    out = F.interpolate(centre, size=(height, width), mode="bicubic", align_corners=False)
    return out.reshape(*lead, height, width)
