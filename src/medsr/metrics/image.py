"""Full-reference image metrics on batches: MSE, L1, PSNR and SSIM.

Every function takes `prediction` and `target` of the same shape, `(B, C, H, W)` or a single
`(H, W)` image, and returns one value per image `(B,)` (`reduction="none"`) or their mean
(`reduction="mean"`, the default). PSNR and SSIM need `data_range`, the width of the
intensity range the images live in (1 for images mapped to [0, 1]); it has no default on
purpose: a PSNR without its range is meaningless (full-range CT PSNR reads 15-30 dB higher
than PSNR on a clinical window, see PHYSICS.md).

SSIM follows Wang et al., "Image quality assessment: from error visibility to structural
similarity", IEEE TIP 2004: Gaussian window of 11 taps, sigma 1.5, K1 = 0.01, K2 = 0.03,
statistics over the valid region only (no padding) and population (not sample) covariances,
the mean over pixels and channels. Equals `skimage.metrics.structural_similarity` with
`gaussian_weights=True, use_sample_covariance=False`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
REDUCTIONS = ("mean", "none")


def _as_batch(prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ"
        )
    if prediction.ndim == 2:
        prediction, target = prediction[None, None], target[None, None]
    if prediction.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W) or (H, W), got {tuple(prediction.shape)}")
    # float64 so that the metric does not depend on the precision the model ran in
    return prediction.double(), target.double()


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return values.mean() if reduction == "mean" else values


def _check_range(data_range: float) -> float:
    if isinstance(data_range, bool) or not (math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    return float(data_range)


def mse(prediction: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error per image, in the images' unit squared."""
    p, t = _as_batch(prediction, target)
    return _reduce((p - t).square().mean(dim=(1, 2, 3)), reduction)


def l1(prediction: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error per image, in the images' unit."""
    p, t = _as_batch(prediction, target)
    return _reduce((p - t).abs().mean(dim=(1, 2, 3)), reduction)


def psnr(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float,
    reduction: str = "mean",
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, `10 log10(data_range^2 / MSE)`, per image.

    Identical images give `inf`. The mean over a batch is the mean of per-image PSNRs.
    """
    peak = _check_range(data_range)
    error = mse(prediction, target, reduction="none")
    return _reduce(10.0 * torch.log10(peak**2 / error), reduction)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian of `size` taps (float64), centred."""
    if size < 1 or size % 2 == 0 or not sigma > 0:
        raise ValueError(f"window size must be odd and positive, sigma > 0: {size}, {sigma}")
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _filter(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable valid-region Gaussian filter of `(N, 1, H, W)`."""
    x = F.conv2d(x, window.view(1, 1, 1, -1))
    return F.conv2d(x, window.view(1, 1, -1, 1))


def ssim(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float,
    reduction: str = "mean",
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004, constants in the module doc), per image.

    Images must be at least 11 x 11. 1 for identical images, < 1 otherwise.
    """
    peak = _check_range(data_range)
    p, t = _as_batch(prediction, target)
    batch, channels, height, width = p.shape
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}^2, got {(height, width)}")
    window = gaussian_window().to(p.device)
    p = p.reshape(batch * channels, 1, height, width)
    t = t.reshape(batch * channels, 1, height, width)
    mu_p, mu_t = _filter(p, window), _filter(t, window)
    var_p = _filter(p * p, window) - mu_p**2
    var_t = _filter(t * t, window) - mu_t**2
    cov = _filter(p * t, window) - mu_p * mu_t
    c1, c2 = (SSIM_K1 * peak) ** 2, (SSIM_K2 * peak) ** 2
    numerator = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
    denominator = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    per_image = (numerator / denominator).reshape(batch, -1).mean(dim=1)
    return _reduce(per_image, reduction)
