from __future__ import annotations

import math

import pytest
import torch

from medsr.physics.resize import (
    DOWNSAMPLE_METHODS,
    SCALES,
    UPSAMPLE_METHODS,
    crop_to_multiple,
    downsample,
    lanczos_kernel,
    upsample,
)


def smooth_image(size: int = 96) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    blob = 100 * torch.exp(-((y - 40) ** 2 + (x - 50) ** 2) / (2 * 12**2))
    return blob + 20 * torch.cos(2 * math.pi * x / 48) + 10 * torch.sin(2 * math.pi * y / 64)


@pytest.mark.parametrize("method", DOWNSAMPLE_METHODS)
@pytest.mark.parametrize("scale", SCALES)
def test_downsample_crops_and_keeps_leading_dims(method: str, scale: int) -> None:
    image = torch.rand(2, 3, 37, 50)
    low = downsample(image, scale, method)
    assert low.shape == (2, 3, 37 // scale, 50 // scale)
    assert crop_to_multiple(image, scale).shape[-2:] == (37 // scale * scale, 50 // scale * scale)


def test_area_is_the_exact_block_mean() -> None:
    image = torch.rand(1, 24, 36, dtype=torch.float64)
    expected = image.reshape(1, 8, 3, 12, 3).mean(dim=(2, 4))
    torch.testing.assert_close(downsample(image, 3, "area"), expected)


def test_crop_keeps_the_first_pixels() -> None:
    image = torch.arange(7 * 9.0).reshape(7, 9)
    torch.testing.assert_close(crop_to_multiple(image, 4), image[:4, :8])


@pytest.mark.parametrize("method", DOWNSAMPLE_METHODS)
def test_constant_image_stays_constant(method: str) -> None:
    low = downsample(torch.full((16, 16), 42.0), 4, method)
    torch.testing.assert_close(low, torch.full((4, 4), 42.0))


def amplitude(low: torch.Tensor) -> float:
    """Largest Fourier amplitude along W of the first row (mean removed)."""
    row = low[0] - low[0].mean()
    return float((torch.fft.rfft(row).abs() * 2 / row.numel()).max())


def test_antialiasing_removes_frequencies_above_the_lr_nyquist() -> None:
    # 0.219 cycles/pixel: above the x4 Nyquist (0.125) but below the HR one (0.5).
    x = torch.arange(128.0)
    image = torch.cos(2 * math.pi * 28 / 128 * x + 0.3).expand(32, 128).clone()
    assert amplitude(downsample(image, 4, "area")) < 0.2  # sinc(0.875) = 0.14
    assert amplitude(downsample(image, 4, "bicubic-antialias")) < 0.05
    # Without antialiasing the pattern survives at full amplitude, folded to 4/32 cycles/px.
    aliased = downsample(image, 4, "nearest-legacy")
    assert amplitude(aliased) > 0.99
    spectrum = torch.fft.rfft(aliased[0] - aliased[0].mean()).abs()
    assert int(spectrum.argmax()) == 4
    assert amplitude(downsample(image, 4, "bicubic-legacy")) > 0.9


@pytest.mark.parametrize("method", UPSAMPLE_METHODS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upsample_shape(method: str, scale: int) -> None:
    assert upsample(torch.rand(2, 5, 7), scale, method).shape == (2, 5 * scale, 7 * scale)


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upsampling_a_downsampled_smooth_image_reproduces_it(method: str, scale: int) -> None:
    image = smooth_image()
    restored = upsample(downsample(image, scale), scale, method)
    rmse = float(((restored - image) ** 2).mean().sqrt())
    value_range = float(image.max() - image.min())
    assert rmse < 0.005 * value_range
    # Nearest replication is much worse: the test can tell interpolators apart.
    nearest = upsample(downsample(image, scale), scale, "nearest")
    assert float(((nearest - image) ** 2).mean().sqrt()) > 3 * rmse


def test_lanczos_beats_bicubic_on_smooth_content() -> None:
    image = smooth_image()
    low = downsample(image, 4)
    errors = {m: float((upsample(low, 4, m) - image).pow(2).mean()) for m in ("bicubic", "lanczos")}
    assert errors["lanczos"] < errors["bicubic"]


def test_bilinear_upsample_is_aligned_with_area_downsample() -> None:
    # A linear ramp survives area downsampling as samples at the LR pixel centres; bilinear
    # interpolation on the same grid convention gives the ramp back away from the borders.
    ramp = torch.arange(64.0).expand(8, 64).clone()
    restored = upsample(downsample(ramp, 4), 4, "bilinear")
    torch.testing.assert_close(restored[:, 4:-4], ramp[:, 4:-4])


def test_lanczos_kernel_values() -> None:
    x = torch.tensor([0.0, 1.0, 2.0, -1.0, 3.0, 3.5, 0.5])
    values = lanczos_kernel(x)
    torch.testing.assert_close(values[:6], torch.tensor([1.0, 0, 0, 0, 0, 0]), atol=1e-6, rtol=0)
    expected = math.sin(math.pi / 2) / (math.pi / 2) * math.sin(math.pi / 6) / (math.pi / 6)
    assert float(values[6]) == pytest.approx(expected, rel=1e-5)


def test_lanczos_keeps_constants_and_dtype() -> None:
    image = torch.full((3, 6, 5), 7.0, dtype=torch.float64)
    out = upsample(image, 3, "lanczos")
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, torch.full((3, 18, 15), 7.0, dtype=torch.float64))


@pytest.mark.parametrize("scale", [1, 5, 2.0, True])
def test_downsample_rejects_bad_scale(scale: object) -> None:
    with pytest.raises(ValueError, match="scale"):
        downsample(torch.rand(16, 16), scale, "area")  # type: ignore[arg-type]


def test_rejects_bad_methods_and_tiny_images() -> None:
    with pytest.raises(ValueError, match="method"):
        downsample(torch.rand(16, 16), 2, "bilinear")
    with pytest.raises(ValueError, match="method"):
        upsample(torch.rand(16, 16), 2, "area")
    with pytest.raises(ValueError, match="smaller than the scale"):
        downsample(torch.rand(3, 16), 4)
