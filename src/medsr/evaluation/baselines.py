"""Classical baselines every model is compared with, on the same (low, high) pairs.

| name | output |
|---|---|
| `nearest`, `bicubic`, `lanczos` | `medsr.physics.resize.upsample` of the low image |
| `input` | the low image itself (tasks with scale 1, where every interpolation is the identity) |
| `bm3d-lanczos` | BM3D (Makinen et al. 2020, PyPI `bm3d`) on the low image, then Lanczos-3 |
| `nlm-lanczos` | non-local means (Buades et al. 2005, torch code here), then Lanczos-3 |
| `denoise-lanczos` | `bm3d-lanczos` when `bm3d` is installed (extra `eval`), else `nlm-lanczos` |

Denoisers get the noise SD of the low image: for CT the pooled SD of its uniform soft-tissue
ROIs (`medsr.metrics.noise`), else (no ROI, or a radiograph) the median absolute deviation of
its finest diagonal Haar detail (Donoho's estimator). Both assume white noise; low-dose CT
noise is correlated on the high grid, less so after area downsampling.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from medsr.metrics.noise import estimate_noise_sd, mad_noise_sd  # noqa: F401 (API)
from medsr.physics.resize import upsample

INTERPOLATIONS = ("nearest", "bicubic", "lanczos")
DENOISERS = ("bm3d", "nlm")
BASELINES = (*INTERPOLATIONS, "input", "bm3d-lanczos", "nlm-lanczos", "denoise-lanczos")
DEFAULT_BASELINES = ("nearest", "bicubic", "lanczos", "denoise-lanczos")
DESCRIPTIONS = {
    "nearest": "pixel replication",
    "bicubic": "bicubic interpolation (Keys a = -0.75, torch, align_corners=False)",
    "lanczos": "Lanczos-3 interpolation (separable, normalised taps)",
    "input": "the low image unchanged (scale 1: every interpolation is the identity)",
    "bm3d-lanczos": "BM3D (PyPI bm3d, both stages) on the low image with its estimated "
    "noise SD, then Lanczos-3",
    "nlm-lanczos": "non-local means (5x5 patches, 11x11 search, h = 0.8 sigma) on the low "
    "image with its estimated noise SD, then Lanczos-3",
}


def bm3d_available() -> bool:
    """True when the optional `bm3d` package (extra `eval`) can be imported."""
    return importlib.util.find_spec("bm3d") is not None


def resolve_baselines(names: Sequence[str], scale: int, noisy: bool) -> list[str]:
    """The concrete baseline names to run, in order, without duplicates.

    `denoise-lanczos` becomes `bm3d-lanczos` or `nlm-lanczos`; denoisers are dropped for
    noise-free tasks (`noisy` False); at scale 1 the interpolations collapse into `input`.
    """
    resolved: list[str] = []
    for name in names:
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
        if name == "denoise-lanczos":
            name = "bm3d-lanczos" if bm3d_available() else "nlm-lanczos"
        if name.endswith("-lanczos") and not noisy:
            continue
        if name in INTERPOLATIONS and scale == 1:
            name = "input"
        if name not in resolved:
            resolved.append(name)
    return resolved


def nlm_denoise(
    image: np.ndarray, sigma: float, patch: int = 5, search: int = 11, h_factor: float = 0.8
) -> np.ndarray:
    """Pixelwise non-local means of a 2-D image (Buades et al. 2005), in its unit.

    Weights `exp(-max(d - 2 sigma^2, 0) / h^2)`, `d` the mean squared difference of `patch^2`
    patches, `h = h_factor * sigma`, over a `search^2` neighbourhood (reflect padding).
    """
    if patch % 2 == 0 or search % 2 == 0 or patch < 1 or search < 1:
        raise ValueError(f"patch and search must be odd and positive, got {patch}, {search}")
    x = torch.from_numpy(np.asarray(image, dtype=np.float64))
    if x.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {tuple(x.shape)}")
    if not sigma > 0:
        return x.numpy().astype(np.float32)
    reach, half = search // 2, patch // 2
    pad = reach + half
    padded = F.pad(x[None, None], (pad, pad, pad, pad), mode="reflect")[0, 0]
    height, width = x.shape
    centre = padded[reach : reach + height + 2 * half, reach : reach + width + 2 * half]
    h2 = (h_factor * sigma) ** 2
    total = torch.zeros_like(x)
    weights = torch.zeros_like(x)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            rows = slice(reach + dy, reach + dy + height + 2 * half)
            cols = slice(reach + dx, reach + dx + width + 2 * half)
            shifted = padded[rows, cols]
            distance = F.avg_pool2d(((shifted - centre) ** 2)[None, None], patch, stride=1)[0, 0]
            weight = torch.exp(-(distance - 2 * sigma**2).clamp(min=0) / h2)
            total += weight * shifted[half : half + height, half : half + width]
            weights += weight
    return (total / weights).numpy().astype(np.float32)


def bm3d_denoise(image: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D of a 2-D image with white-noise SD `sigma` (same unit); needs PyPI `bm3d`."""
    if not bm3d_available():
        raise ValueError("baseline bm3d-lanczos needs the bm3d package: pip install 'medsr[eval]'")
    import bm3d

    x = np.asarray(image, dtype=np.float64)
    if not sigma > 0:
        return x.astype(np.float32)
    # BM3D's internal thresholds assume roughly unit-range data: scale in and back out.
    low, span = float(x.min()), float(np.ptp(x)) or 1.0
    out = bm3d.bm3d((x - low) / span, sigma_psd=sigma / span)
    return (np.asarray(out, dtype=np.float64) * span + low).astype(np.float32)


@dataclass(frozen=True)
class BaselineOutput:
    """A baseline's output `(sH, sW)` in the image unit and what it used (e.g. sigma)."""

    image: np.ndarray
    info: dict[str, str | float]


def run_baseline(name: str, low: np.ndarray, scale: int, modality: str) -> BaselineOutput:
    """Apply one concrete baseline (a name from `resolve_baselines`) to a low image `(h, w)`."""
    x = np.asarray(low, dtype=np.float32)
    info: dict[str, str | float] = {}
    if name == "input":
        if scale != 1:
            raise ValueError(f"baseline 'input' is only defined at scale 1, got scale {scale}")
        return BaselineOutput(x.copy(), info)
    if name in ("bm3d-lanczos", "nlm-lanczos"):
        sigma, how = estimate_noise_sd(x, modality)
        info = {"sigma": sigma, "sigma_estimate": how}
        x = bm3d_denoise(x, sigma) if name == "bm3d-lanczos" else nlm_denoise(x, sigma)
        method = "lanczos"
    elif name in INTERPOLATIONS:
        method = name
    else:
        raise ValueError(f"unknown baseline {name!r}; resolve names with resolve_baselines")
    out = upsample(torch.from_numpy(np.ascontiguousarray(x)), scale, method)
    return BaselineOutput(out.numpy().astype(np.float32), info)
