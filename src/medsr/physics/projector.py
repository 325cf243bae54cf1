"""Parallel-beam CT projector and filtered back-projection in pure PyTorch.

Differentiable (built on `grid_sample`), runs on the CPU or a GPU, batched over images.

Geometry, all in pixel units: pixel centres at `x = j - (W - 1) / 2`, `y = i - (H - 1) / 2`
(rows point down); view angles `theta_v = pi * v / V`, `v = 0..V-1`; detector bins of one pixel
at `t_k = k - (D - 1) / 2`, with `D = ceil(sqrt(H^2 + W^2))` so the rays cover the whole
rectangle, not only its inscribed circle. The ray of bin `t` at angle `theta` is
`(x, y) = t (cos theta, sin theta) + s (-sin theta, cos theta)`, sampled every pixel in `s`
with bilinear interpolation, so `forward` returns line integrals in (image unit x pixel).
`fbp` is its inverse: `fbp(forward(f)) ~ f`. Convert to physical units by multiplying the
sinogram by the pixel size (e.g. in cm for attenuation in 1/cm).

Reconstruction kernels (`RECONSTRUCTION_KERNELS`): the ramp |f| times a window W(f), with f
in cycles per detector bin = cycles per pixel of the grid the image is reconstructed on
(`f_N = 1/2`, Nyquist). `FILTER_WINDOWS` are the classical roll-off windows (W <= 1); the
parametric family `KernelShape` adds

    W(f) = (1 + boost (f / f_N)^2) * exp(-(f / rolloff)^2 / 2)

whose boost lifts high frequencies above the ramp (edge-enhancing kernels such as Siemens
D45f) and whose Gaussian roll-off smooths (B30f). `MATCHED_KERNELS` are its members fitted to
the noise of real scans (`benchmarks/ct_noise.py`). The kernel lives in cycles/pixel, because
the projector does: a scanner kernel is a fixed function of cycles/mm, so its noise texture in
cycles/pixel shifts with the pixel size; `medsr.physics.low_dose_task` reaches other pixel
sizes by resampling the noise (`zoom`), which keeps the texture in cycles/mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

FILTER_WINDOWS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")


@dataclass(frozen=True)
class KernelShape:
    """A member of the parametric kernel family (module doc):
    `W(f) = (1 + boost (f / f_N)^2) * exp(-(f / rolloff)^2 / 2)`, f in cycles/pixel.

    Args:
        boost: high-frequency lift at Nyquist (W(f_N) = 1 + boost without roll-off); 0 = none.
        rolloff: Gaussian roll-off width in cycles/pixel; None = none.
        matched_to: what the shape was fitted to (for the record).
    """

    boost: float = 0.0
    rolloff: float | None = None
    matched_to: str = ""

    def __post_init__(self) -> None:
        if not self.boost >= 0:
            raise ValueError(f"boost must be >= 0, got {self.boost}")
        if self.rolloff is not None and not self.rolloff > 0:
            raise ValueError(f"rolloff must be > 0 cycles/pixel or None, got {self.rolloff}")

    def window(self, frequency: torch.Tensor) -> torch.Tensor:
        """W(f) for frequencies in cycles/pixel."""
        window = 1 + self.boost * (frequency / 0.5) ** 2
        if self.rolloff is not None:
            window = window * torch.exp(-0.5 * (frequency / self.rolloff) ** 2)
        return window


# Fitted to real quarter-minus-full-dose noise of the AAPM/Mayo patient L143 (Siemens
# SOMATOM Definition AS+, 512^2, 0.82 mm pixels): `benchmarks/ct_noise.py`'s second table.
MATCHED_KERNELS = {
    "b30f-like": KernelShape(0.0, 0.29, "Siemens B30f (smooth), L143, 0.82 mm"),
    "d45f-like": KernelShape(1.5, None, "Siemens D45f (sharp, edge-enhancing), L143, 0.82 mm"),
}
RECONSTRUCTION_KERNELS = FILTER_WINDOWS + tuple(MATCHED_KERNELS)
"""Every kernel `filter`, `fbp` and `LowDoseCT` accept: the windows, then the matched family."""

# Views per grid_sample call: bounds the sampling grid to a few hundred MB at 512^2.
_VIEWS_PER_CHUNK = 30


class ParallelBeamProjector:
    """Radon transform `R` and FBP for `(B, H, W)` images on a fixed geometry.

    Args:
        height, width: image size in pixels.
        num_views: projection angles over 180 degrees.
    """

    def __init__(self, height: int, width: int, num_views: int = 720) -> None:
        if height < 2 or width < 2:
            raise ValueError(f"image must be at least 2x2 pixels, got {height}x{width}")
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        self.height = height
        self.width = width
        self.num_views = num_views
        self.num_bins = math.ceil(math.hypot(height, width))
        self.angles = torch.arange(num_views, dtype=torch.float64) * math.pi / num_views

    def _bin_positions(self, device: torch.device) -> torch.Tensor:
        return (
            torch.arange(self.num_bins, device=device, dtype=torch.float32)
            - (self.num_bins - 1) / 2
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Line integrals: `(B, H, W) -> (B, V, D)`, unit = image unit x pixel."""
        self._check_image(images)
        device = images.device
        positions = self._bin_positions(device)  # used for both t (bins) and s (ray steps)
        # grid_sample treats the batch as channels so one grid serves every image.
        source = images.float().unsqueeze(0)  # (1, B, H, W)
        half_w, half_h = (self.width - 1) / 2, (self.height - 1) / 2
        chunks = []
        for angles in self.angles.split(_VIEWS_PER_CHUNK):
            cos = torch.cos(angles).float().to(device).view(-1, 1, 1)
            sin = torch.sin(angles).float().to(device).view(-1, 1, 1)
            t = positions.view(1, 1, -1)
            s = positions.view(1, -1, 1)
            x = t * cos - s * sin  # (V, S, D)
            y = t * sin + s * cos
            grid = torch.stack((x / half_w, y / half_h), dim=-1)
            grid = grid.reshape(1, -1, self.num_bins, 2)
            samples = F.grid_sample(
                source, grid, mode="bilinear", padding_mode="zeros", align_corners=True
            )  # (1, B, V*S, D)
            samples = samples.view(images.shape[0], len(angles), self.num_bins, self.num_bins)
            chunks.append(samples.sum(dim=2))
        return torch.cat(chunks, dim=1)

    def filter(self, sinogram: torch.Tensor, window: str = "ram-lak") -> torch.Tensor:
        """Ramp-filter each projection (Kak & Slaney's spatial ramp, then a window or a
        kernel of `RECONSTRUCTION_KERNELS`)."""
        if window not in RECONSTRUCTION_KERNELS:
            raise ValueError(
                f"filter window must be one of {RECONSTRUCTION_KERNELS}, got {window!r}"
            )
        length = 2 ** math.ceil(math.log2(2 * self.num_bins))
        response = ramp_filter_response(length, window, sinogram.device)
        spectrum = torch.fft.rfft(sinogram.float(), n=length, dim=-1) * response
        return torch.fft.irfft(spectrum, n=length, dim=-1)[..., : self.num_bins]

    def backproject(self, sinogram: torch.Tensor) -> torch.Tensor:
        """Adjoint-like smearing with linear interpolation: `(B, V, D) -> (B, H, W)`."""
        if sinogram.shape[-2:] != (self.num_views, self.num_bins):
            expected = f"(B, {self.num_views}, {self.num_bins})"
            raise ValueError(f"sinogram must be {expected}, got {tuple(sinogram.shape)}")
        device = sinogram.device
        batch = sinogram.shape[0]
        x = torch.arange(self.width, device=device, dtype=torch.float32) - (self.width - 1) / 2
        y = torch.arange(self.height, device=device, dtype=torch.float32) - (self.height - 1) / 2
        x, y = x.view(1, 1, -1), y.view(1, -1, 1)
        half_d = (self.num_bins - 1) / 2
        image = torch.zeros(batch, self.height, self.width, device=device)
        for start in range(0, self.num_views, _VIEWS_PER_CHUNK):
            angles = self.angles[start : start + _VIEWS_PER_CHUNK]
            cos = torch.cos(angles).float().to(device).view(-1, 1, 1)
            sin = torch.sin(angles).float().to(device).view(-1, 1, 1)
            t = (x * cos + y * sin) / half_d  # (V, H, W), normalised bin coordinate
            # Each view is one row of a (1, D) image, so the grid's y coordinate is fixed.
            rows = sinogram[:, start : start + len(angles)].float()  # (B, V, D)
            source = rows.permute(1, 0, 2).unsqueeze(2)  # (V, B, 1, D)
            grid = torch.stack((t, torch.zeros_like(t)), dim=-1)  # (V, H, W, 2)
            smeared = F.grid_sample(
                source, grid, mode="bilinear", padding_mode="zeros", align_corners=True
            )  # (V, B, H, W)
            image += smeared.sum(dim=0)
        return image

    def fbp(self, sinogram: torch.Tensor, window: str = "ram-lak") -> torch.Tensor:
        """Filtered back-projection, the inverse of `forward`: `(B, V, D) -> (B, H, W)`."""
        filtered = self.filter(sinogram, window)
        return self.backproject(filtered) * (math.pi / self.num_views)

    def _check_image(self, images: torch.Tensor) -> None:
        if images.ndim != 3 or images.shape[-2:] != (self.height, self.width):
            raise ValueError(
                f"images must be (B, {self.height}, {self.width}), got {tuple(images.shape)}"
            )


def ramp_filter_response(length: int, window: str, device: torch.device) -> torch.Tensor:
    """Frequency response (rfft layout) of the discrete ramp filter for unit bin spacing.

    The ramp comes from the band-limited spatial kernel h(0) = 1/4, h(n odd) = -1/(pi n)^2,
    h(n even) = 0 (Kak & Slaney, eq. 61), which gets the DC term right, unlike |f| sampled in
    frequency; the window then rolls off high frequencies (f in cycles per bin, |f| <= 1/2),
    or a `MATCHED_KERNELS` shape lifts or rolls them off (module doc).
    """
    n = torch.cat((torch.arange(0, length // 2 + 1), torch.arange(-(length // 2) + 1, 0)))
    kernel = torch.zeros(length, dtype=torch.float64)
    kernel[0] = 0.25
    odd = n % 2 == 1
    kernel[odd] = -1.0 / (math.pi * n[odd].double()) ** 2
    ramp = torch.fft.rfft(kernel).real
    frequency = torch.fft.rfftfreq(length, dtype=torch.float64)
    windows = {
        "ram-lak": torch.ones_like(frequency),
        "shepp-logan": torch.special.sinc(frequency),
        "cosine": torch.cos(math.pi * frequency),
        "hamming": 0.54 + 0.46 * torch.cos(2 * math.pi * frequency),
        "hann": 0.5 + 0.5 * torch.cos(2 * math.pi * frequency),
    }
    shape = windows[window] if window in windows else MATCHED_KERNELS[window].window(frequency)
    return (ramp * shape).float().to(device)
