"""Parallel-beam CT projector and filtered back-projection in pure PyTorch.

Differentiable (built on `grid_sample`), runs on the CPU or a GPU, batched over images.

Geometry, all in pixel units: pixel centres at `x = j - (W - 1) / 2`, `y = i - (H - 1) / 2`
(rows point down); view angles `theta_v = pi * v / V`, `v = 0..V-1`; detector bins of one pixel
at `t_k = k - (D - 1) / 2`, with `D = ceil(sqrt(H^2 + W^2))` so the rays cover the whole
rectangle, not only its inscribed circle; with `bins_per_pixel` b > 1, `b (D - 1) + 1` bins
of 1/b pixel at `t_k = (k - (D_b - 1) / 2) / b` (every b-th at a one-pixel bin's centre).
The ray of bin `t` at angle `theta` is
`(x, y) = t (cos theta, sin theta) + s (-sin theta, cos theta)`, sampled every pixel in `s`
with bilinear interpolation, so `forward` returns line integrals in (image unit x pixel).
`fbp` is its inverse: `fbp(forward(f)) ~ f`. Convert to physical units by multiplying the
sinogram by the pixel size (e.g. in cm for attenuation in 1/cm).

Reconstruction kernels (`RECONSTRUCTION_KERNELS`): the ramp |f| times a window W(f), with f
in cycles per pixel of the grid the image is reconstructed on (`f_N = 1/2`, the pixel grid's
Nyquist; with one-pixel bins also the detector's). `FILTER_WINDOWS` are the classical
roll-off windows (W <= 1, zero above f_N); the parametric family `KernelShape` adds

    W(f) = (1 + boost (f / f_N)^2) * exp(-(f / rolloff)^2 / 2)

whose boost lifts high frequencies above the ramp (edge-enhancing kernels such as Siemens
D45f) and whose Gaussian roll-off smooths (B30f). `MATCHED_KERNELS` are its members fitted to
the noise of real scans (`benchmarks/ct_noise.py`). The kernel lives in cycles/pixel, because
the projector does: a scanner kernel is a fixed function of cycles/mm, so its noise texture in
cycles/pixel shifts with the pixel size; `medsr.physics.low_dose_task` reaches other pixel
sizes by resampling the noise (`zoom`), which keeps the texture in cycles/mm.

Finer detector sampling: real scanners sample the projections finer than the image pixels
(a flying focal spot doubles the in-plane samples), so a sharp kernel passes noise above the
pixel grid's Nyquist and the reconstruction, which evaluates the image at the pixel centres,
aliases it into the whole square spectrum, corners included: the diagonal grain at the pixel
limit of sharp-kernel images. A `KernelShape` fitted with `bins_per_pixel` b > 1 is
reconstructed from bins of 1/b pixel, with W(f) up to the bins' Nyquist b/2.
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
        bins_per_pixel: detector bins per pixel the shape is reconstructed from (module doc).
    """

    boost: float = 0.0
    rolloff: float | None = None
    matched_to: str = ""
    bins_per_pixel: int = 1

    def __post_init__(self) -> None:
        if not self.boost >= 0:
            raise ValueError(f"boost must be >= 0, got {self.boost}")
        if self.rolloff is not None and not self.rolloff > 0:
            raise ValueError(f"rolloff must be > 0 cycles/pixel or None, got {self.rolloff}")
        if self.bins_per_pixel < 1:
            raise ValueError(f"bins_per_pixel must be >= 1, got {self.bins_per_pixel}")

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
    # on detector bins of half a pixel: D45f's noise reaches above the pixel Nyquist, and its
    # aliases fill the spectrum's corners as the real noise's do (ct_noise.py's fourth table)
    "d45f-like": KernelShape(
        2.0, 0.33, "Siemens D45f (sharp, edge-enhancing), L143, 0.82 mm", bins_per_pixel=2
    ),
}
RECONSTRUCTION_KERNELS = FILTER_WINDOWS + tuple(MATCHED_KERNELS)
"""Every kernel `filter`, `fbp` and `LowDoseCT` accept: the windows, then the matched family."""


def kernel_bins_per_pixel(kernel: str) -> int:
    """The detector bins per pixel `kernel` is reconstructed from (1 for the windows)."""
    return MATCHED_KERNELS[kernel].bins_per_pixel if kernel in MATCHED_KERNELS else 1


# Views per grid_sample call: bounds the sampling grid to a few hundred MB at 512^2.
_VIEWS_PER_CHUNK = 30


class ParallelBeamProjector:
    """Radon transform `R` and FBP for `(B, H, W)` images on a fixed geometry.

    Args:
        height, width: image size in pixels.
        num_views: projection angles over 180 degrees.
        bins_per_pixel: detector bins per pixel (module doc: geometry).
    """

    def __init__(
        self, height: int, width: int, num_views: int = 720, bins_per_pixel: int = 1
    ) -> None:
        if height < 2 or width < 2:
            raise ValueError(f"image must be at least 2x2 pixels, got {height}x{width}")
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        if bins_per_pixel < 1:
            raise ValueError(f"bins_per_pixel must be >= 1, got {bins_per_pixel}")
        self.height = height
        self.width = width
        self.num_views = num_views
        self.bins_per_pixel = bins_per_pixel
        self.num_samples = math.ceil(math.hypot(height, width))  # ray steps of one pixel
        self.num_bins = bins_per_pixel * (self.num_samples - 1) + 1
        self.angles = torch.arange(num_views, dtype=torch.float64) * math.pi / num_views

    def _positions(self, count: int, step: float, device: torch.device) -> torch.Tensor:
        return (torch.arange(count, device=device, dtype=torch.float32) - (count - 1) / 2) * step

    def finer(self, bins_per_pixel: int) -> ParallelBeamProjector:
        """The same geometry with `bins_per_pixel` detector bins per pixel (itself if so)."""
        if bins_per_pixel == self.bins_per_pixel:
            return self
        return ParallelBeamProjector(self.height, self.width, self.num_views, bins_per_pixel)

    def resample_bins(self, sinogram: torch.Tensor, bins_per_pixel: int) -> torch.Tensor:
        """`(B, V, D)` of this projector on the bins of `finer(bins_per_pixel)`, linearly
        interpolated (the bins of both share the end points)."""
        if bins_per_pixel == self.bins_per_pixel:
            return sinogram
        bins = self.finer(bins_per_pixel).num_bins
        batch, views, _ = sinogram.shape
        rows = sinogram.reshape(batch * views, 1, -1)
        resampled = F.interpolate(rows, size=bins, mode="linear", align_corners=True)
        return resampled.reshape(batch, views, bins)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Line integrals: `(B, H, W) -> (B, V, D)`, unit = image unit x pixel."""
        self._check_image(images)
        device = images.device
        bins = self._positions(self.num_bins, 1 / self.bins_per_pixel, device)
        steps = self._positions(self.num_samples, 1.0, device)
        # grid_sample treats the batch as channels so one grid serves every image.
        source = images.float().unsqueeze(0)  # (1, B, H, W)
        half_w, half_h = (self.width - 1) / 2, (self.height - 1) / 2
        chunks = []
        for angles in self.angles.split(_VIEWS_PER_CHUNK):
            cos = torch.cos(angles).float().to(device).view(-1, 1, 1)
            sin = torch.sin(angles).float().to(device).view(-1, 1, 1)
            t = bins.view(1, 1, -1)
            s = steps.view(1, -1, 1)
            x = t * cos - s * sin  # (V, S, D)
            y = t * sin + s * cos
            grid = torch.stack((x / half_w, y / half_h), dim=-1)
            grid = grid.reshape(1, -1, self.num_bins, 2)
            samples = F.grid_sample(
                source, grid, mode="bilinear", padding_mode="zeros", align_corners=True
            )  # (1, B, V*S, D)
            samples = samples.view(images.shape[0], len(angles), self.num_samples, self.num_bins)
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
        response = ramp_filter_response(length, window, sinogram.device, self.bins_per_pixel)
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
            # (V, H, W): the bin coordinate, normalised to [-1, 1] over the detector
            t = (x * cos + y * sin) * self.bins_per_pixel / half_d
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


def ramp_filter_response(
    length: int, window: str, device: torch.device, bins_per_pixel: int = 1
) -> torch.Tensor:
    """Frequency response (rfft layout) of the discrete ramp filter for bins of
    1 / `bins_per_pixel` pixel, in image units per pixel.

    The ramp comes from the band-limited spatial kernel h(0) = 1/4, h(n odd) = -1/(pi n)^2,
    h(n even) = 0 (Kak & Slaney, eq. 61), which gets the DC term right, unlike |f| sampled in
    frequency, times the bin spacing's 1 / b; the window then rolls off high frequencies (f in
    cycles per pixel, zero above the pixel Nyquist 1/2), or a `MATCHED_KERNELS` shape lifts or
    rolls them off up to the bins' Nyquist b/2 (module doc).
    """
    n = torch.cat((torch.arange(0, length // 2 + 1), torch.arange(-(length // 2) + 1, 0)))
    kernel = torch.zeros(length, dtype=torch.float64)
    kernel[0] = 0.25
    odd = n % 2 == 1
    kernel[odd] = -1.0 / (math.pi * n[odd].double()) ** 2
    ramp = torch.fft.rfft(kernel).real * bins_per_pixel  # h scales as 1 / spacing^2, sum x spacing
    frequency = torch.fft.rfftfreq(length, dtype=torch.float64) * bins_per_pixel  # cycles/pixel
    return (ramp * kernel_window(window, frequency)).float().to(device)


def kernel_window(window: str, frequency: torch.Tensor) -> torch.Tensor:
    """The window W(f) of reconstruction kernel `window` (module doc) at `frequency` (cycles
    per pixel): a classical window is zero above the pixel Nyquist 1/2, a `MATCHED_KERNELS`
    shape is its formula."""
    if window in MATCHED_KERNELS:
        return MATCHED_KERNELS[window].window(frequency)
    windows = {
        "ram-lak": torch.ones_like(frequency),
        "shepp-logan": torch.special.sinc(frequency),
        "cosine": torch.cos(math.pi * frequency),
        "hamming": 0.54 + 0.46 * torch.cos(2 * math.pi * frequency),
        "hann": 0.5 + 0.5 * torch.cos(2 * math.pi * frequency),
    }
    if window not in windows:
        raise ValueError(f"filter window must be one of {RECONSTRUCTION_KERNELS}, got {window!r}")
    return torch.where(frequency <= 0.5, windows[window], torch.zeros_like(frequency))


SIGNAL_MAX_GAIN = 4.0
"""The largest factor `signal_transfer` lifts a frequency by: W_to / W_from grows without bound
where the source's smooth window has rolled off, and what is left there is mostly noise."""


def signal_transfer(
    image: torch.Tensor, from_kernel: str, to_kernel: str, max_gain: float = SIGNAL_MAX_GAIN
) -> torch.Tensor:
    """`image` (`(..., H, W)`, reconstructed with `from_kernel`) as `to_kernel` would have
    reconstructed it: its 2-D spectrum times `min(W_to(f) / W_from(f), max_gain)` at the
    radial frequency f (cycles/pixel). In FBP the window multiplies the projections' spectrum
    and so, by the central slice theorem, the image's radial spectrum: a sharper kernel's
    image is the smoother kernel's with its edges (and its own noise) lifted, as a scanner
    reconstructing the same raw data with both would give. A DC gain of 1 keeps the HU."""
    if from_kernel == to_kernel:
        return image
    height, width = image.shape[-2:]
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    radius = torch.sqrt(fy**2 + fx**2)
    before, after = kernel_window(from_kernel, radius), kernel_window(to_kernel, radius)
    gain = torch.where(before > 0, after / before.clamp_min(1e-12), torch.zeros_like(before))
    gain = gain.clamp(0.0, max_gain)
    spectrum = torch.fft.rfft2(image.double()) * gain
    return torch.fft.irfft2(spectrum, s=(height, width)).to(image.dtype)
