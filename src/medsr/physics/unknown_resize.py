"""Low-resolution images as users really have them: an unknown resize, noise, 8-bit, JPEG.

A user's low-resolution radiograph was rarely made by the detector model of `xray.py`: it
was resized by some program (Pillow, OpenCV, ImageMagick, a PACS export) with some kernel,
perhaps saved as 8-bit or JPEG. Following Real-ESRGAN's randomised degradations (Wang et
al. 2021), `UnknownResizeTask` draws per item (`sample`) a resize kernel, an optional
detector blur, noise, quantisation and JPEG, and applies them in the order a real pipeline
would (`forward` = blur + resize, `noise` = noise, then quantisation, then JPEG).

Kernels (all antialiased, all on pixel centres, so every low pixel `i` sits at the centre of
high pixels `s*i .. s*i + s - 1`, the convention of `downsample` and of bicubic upsampling):
    bicubic, bilinear, lanczos, box   Pillow's resampling filters widened by the scale
                                      (what `Image.resize` does: PIL, many viewers, Matlab)
    gaussian                          Gaussian blur of SD `gaussian_sigma_px` high pixels,
                                      then sampling at the block centres (scikit-image's
                                      `rescale(anti_aliasing=True)` does this)
    bicubic-aliased, bilinear-aliased the kernel at its own width, not widened: sampling
                                      without antialiasing, what OpenCV's INTER_CUBIC /
                                      INTER_LINEAR and torch's `interpolate` do when they
                                      shrink (at x4 they see 4 / 2 of every 4 pixels)

Values are in the image's normalised unit (the training pipeline maps radiographs to about
[0, 1] first): `noise_sd` is a Gaussian SD in that unit, `poisson_peak` the quanta at value 1
for signal-dependent noise (0 = none), `quantize_levels` the number of grey levels over
[0, 1] (255 for 8-bit; 0 = none), `jpeg_quality` Pillow's quality (0 = none).
`contrast_gain` / `contrast_offset` map both images by `gain * x + offset` first: another
window or detector gain, so the model does not learn one fixed intensity mapping.
`inverted` maps both by `1 - x` before that: a radiograph whose grey scale runs the other way
(a MONOCHROME1 image read without its inversion, a "negative" export), which a model trained
on one polarity restores worse (`invert_probability`; at 0 no number is drawn for it, so
the other draws stay those of a task without the option).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from medsr.image import gaussian_blur
from medsr.physics.degradation import (
    DegradedPair,
    SampledDegradation,
    draw_bernoulli,
    draw_choice,
    draw_uniform,
)
from medsr.physics.resize import crop_to_multiple

PIL_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
ALIASED_MODES = {"bicubic-aliased": "bicubic", "bilinear-aliased": "bilinear"}
KERNELS = (*PIL_FILTERS, "gaussian", *ALIASED_MODES)


def resize_only(kernel: str) -> dict[str, object]:
    """`UnknownResizeTask` overrides that keep one resize `kernel` and switch every other
    step off (no blur, noise, 8-bit, JPEG or contrast change): how an evaluation or a demo
    states "the low image was made by this resize"."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return {
        "kernels": [kernel],
        "detector_blur_probability": 0.0,
        "noise_probability": 0.0,
        "poisson_probability": 0.0,
        "quantize_probability": 0.0,
        "jpeg_probability": 0.0,
        "contrast_gain_range": [1.0, 1.0],
        "contrast_offset_range": [0.0, 0.0],
        "invert_probability": 0.0,
    }


@dataclass(frozen=True)
class ResizeParams:
    """One draw of `UnknownResizeTask.sample` (JSON-able; see the module doc for units)."""

    kernel: str
    gaussian_sigma_px: float
    detector_blur_px: float
    noise_sd: float
    poisson_peak: float
    quantize_levels: int
    jpeg_quality: int
    contrast_gain: float
    contrast_offset: float
    inverted: bool = False


def resize_down(
    image: torch.Tensor, scale: int, kernel: str, sigma_px: float = 0.0
) -> torch.Tensor:
    """`(C, H, W)` -> `(C, H//s, W//s)` with `kernel` (one of `KERNELS`), after cropping to
    multiples of `scale`; float32 in, float32 out, no clipping (Pillow's float mode)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    x = crop_to_multiple(image, scale).float()
    h, w = x.shape[-2] // scale, x.shape[-1] // scale
    if kernel == "gaussian":
        if not sigma_px > 0:
            raise ValueError(f"the gaussian kernel needs sigma_px > 0, got {sigma_px}")
        blurred = gaussian_blur(x, sigma_px)[None]
        # Block centres: the mean of the central 2 x 2 pixels (even s) or the centre pixel.
        start, size = (scale - 1) // 2, 2 - scale % 2
        centre = blurred[..., start:, start:]
        return F.avg_pool2d(centre, size, stride=scale)[0, :, :h, :w]
    if kernel in ALIASED_MODES:  # half-pixel centres: low pixel i samples s*i + (s - 1) / 2
        mode = ALIASED_MODES[kernel]
        return F.interpolate(x[None], size=(h, w), mode=mode, align_corners=False)[0]
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(c.numpy()), mode="F").resize(
                (w, h), PIL_FILTERS[kernel]
            )
        )
        for c in x
    ]
    return torch.from_numpy(np.stack(channels).astype(np.float32))


def jpeg_roundtrip(image: torch.Tensor, quality: int, levels: int = 255) -> torch.Tensor:
    """Encode each channel of `(C, H, W)` (unit: [0, 1]) as 8-bit JPEG and decode it."""
    out = []
    for channel in image:
        grey = np.clip(np.rint(channel.numpy() * levels), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(grey, mode="L").save(buffer, format="JPEG", quality=int(quality))
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32)
        out.append(decoded / levels)
    return torch.from_numpy(np.stack(out))


@dataclass(frozen=True)
class UnknownResizeTask(SampledDegradation):
    """x`scale` super-resolution from a low image made by an unknown resize (module doc).

    Each probability is that of applying a step; each range is `(low, high)` of a uniform draw
    (log-uniform for `noise_sd_range` and `poisson_peak_range`). `kernels` are drawn with
    equal probability. Deterministic given the generator: `sample` draws everything.
    `border` low pixels are cut from each side of the pair (and `scale` times as many high
    pixels) so that a patch's edges, where a resize sees only part of its kernel, are not
    trained on: a `(C, H, W)` patch gives `(C, H/s - 2b, W/s - 2b)` and its target.
    """

    task: str = "xray-blind-x4"
    scale: int = 4
    kernels: tuple[str, ...] = KERNELS
    gaussian_sigma_range: tuple[float, float] = (0.35, 0.65)  # times the scale, in high pixels
    detector_blur_probability: float = 0.3
    detector_blur_range: tuple[float, float] = (0.3, 1.2)
    noise_probability: float = 0.5
    noise_sd_range: tuple[float, float] = (1e-3, 2e-2)
    poisson_probability: float = 0.2
    poisson_peak_range: tuple[float, float] = (3e3, 1e5)
    quantize_probability: float = 0.5
    jpeg_probability: float = 0.1
    jpeg_quality_range: tuple[int, int] = (70, 95)
    contrast_gain_range: tuple[float, float] = (0.7, 1.3)
    contrast_offset_range: tuple[float, float] = (-0.15, 0.15)
    invert_probability: float = 0.0
    border: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or self.scale not in (2, 3, 4, 8):
            raise ValueError(f"scale must be one of (2, 3, 4, 8), got {self.scale!r}")
        unknown = set(self.kernels) - set(KERNELS)
        if not self.kernels or unknown:
            raise ValueError(f"kernels must be a non-empty subset of {KERNELS}, got {self.kernels}")
        for name in (
            "detector_blur_probability",
            "noise_probability",
            "poisson_probability",
            "quantize_probability",
            "jpeg_probability",
            "invert_probability",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in (
            "gaussian_sigma_range",
            "detector_blur_range",
            "noise_sd_range",
            "poisson_peak_range",
            "jpeg_quality_range",
            "contrast_gain_range",
        ):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
                raise ValueError(
                    f"{name} must be (low, high) with 0 < low <= high, got {(low, high)}"
                )

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair:
        pair = super().__call__(high, spacing_mm, generator)
        if not self.border:
            return pair
        b, hb = self.border, self.border * self.scale
        if min(pair.low.shape[-2:]) <= 2 * b:
            raise ValueError(f"a border of {b} leaves nothing of a {tuple(pair.low.shape)} image")
        low, target = pair.low[:, b:-b, b:-b], pair.high[:, hb:-hb, hb:-hb]
        record = {**pair.params, "border": b, "low_shape": list(low.shape)}
        record["high_shape"] = list(target.shape)
        return DegradedPair(low.contiguous(), target.contiguous(), record)

    def sample(self, generator: torch.Generator) -> ResizeParams:
        kernel = draw_choice(self.kernels, generator)
        sigma = self.scale * draw_uniform(*self.gaussian_sigma_range, generator)
        blur = draw_uniform(*self.detector_blur_range, generator)
        blur = blur if draw_bernoulli(self.detector_blur_probability, generator) else 0.0
        noise = draw_uniform(*self.noise_sd_range, generator, log=True)
        noise = noise if draw_bernoulli(self.noise_probability, generator) else 0.0
        peak = draw_uniform(*self.poisson_peak_range, generator, log=True)
        peak = peak if draw_bernoulli(self.poisson_probability, generator) else 0.0
        levels = 255 if draw_bernoulli(self.quantize_probability, generator) else 0
        quality = round(draw_uniform(*self.jpeg_quality_range, generator))
        quality = quality if draw_bernoulli(self.jpeg_probability, generator) else 0
        gain = draw_uniform(*self.contrast_gain_range, generator)
        offset = draw_uniform(*self.contrast_offset_range, generator)
        inverted = self.invert_probability > 0 and draw_bernoulli(
            self.invert_probability, generator
        )
        return ResizeParams(
            kernel=kernel,
            gaussian_sigma_px=round(sigma, 4) if kernel == "gaussian" else 0.0,
            detector_blur_px=round(blur, 4),
            noise_sd=noise,
            poisson_peak=peak,
            quantize_levels=levels,
            jpeg_quality=quality,
            contrast_gain=gain,
            contrast_offset=offset,
            inverted=inverted,
        )

    def target(self, high: torch.Tensor, params: ResizeParams) -> torch.Tensor:
        cropped = crop_to_multiple(high, self.scale).float()
        if params.inverted:
            cropped = 1.0 - cropped
        return params.contrast_gain * cropped + params.contrast_offset

    def forward(self, high: torch.Tensor, spacing_mm: float, params: ResizeParams) -> torch.Tensor:
        blurred = gaussian_blur(high, params.detector_blur_px) if params.detector_blur_px else high
        return resize_down(blurred, self.scale, params.kernel, params.gaussian_sigma_px)

    def noise(
        self,
        clean: torch.Tensor,
        params: ResizeParams,
        generator: torch.Generator,
        *,
        high: torch.Tensor,
        spacing_mm: float,
    ) -> torch.Tensor:
        low = clean
        if params.poisson_peak > 0:
            counts = (clean.clamp_min(0) * params.poisson_peak).double()
            low = (torch.poisson(counts, generator=generator) / params.poisson_peak).float()
        if params.noise_sd > 0:
            low = low + params.noise_sd * torch.randn(low.shape, generator=generator)
        if params.quantize_levels:
            low = torch.round(low * params.quantize_levels) / params.quantize_levels
        if params.jpeg_quality:
            low = jpeg_roundtrip(low.clamp(0, 1), params.jpeg_quality)
        return low
