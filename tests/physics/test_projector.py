import math

import pytest
import torch

from medsr.physics.projector import FILTER_WINDOWS, ParallelBeamProjector


def disk(size: int, radius: float, centre: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    coordinates = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(coordinates, coordinates, indexing="ij")
    return (((x - centre[0]) ** 2 + (y - centre[1]) ** 2) < radius**2).float()


def test_line_integral_through_centre_of_a_disk_is_its_diameter() -> None:
    projector = ParallelBeamProjector(64, 64, num_views=8)
    sinogram = projector.forward(disk(64, 20.0)[None])
    centre_bin = (projector.num_bins - 1) // 2
    # The bin grid is centred on the image centre only for an odd bin count.
    assert projector.num_bins % 2 == 1
    assert sinogram[0, :, centre_bin] == pytest.approx(torch.full((8,), 40.0), rel=0.03)


def test_fbp_inverts_forward_projection_inside_the_object() -> None:
    image = disk(96, 34.0) + 0.5 * disk(96, 8.0, centre=(10.0, -5.0))
    projector = ParallelBeamProjector(96, 96, num_views=180)
    reconstruction = projector.fbp(projector.forward(image[None]))[0]
    interior = disk(96, 28.0).bool()
    error = (reconstruction - image)[interior]
    assert error.abs().mean() < 0.03
    assert abs(float(error.mean())) < 0.01


def test_rectangular_images_and_batches_reconstruct() -> None:
    images = torch.stack((disk(40, 12.0)[:, :40], 2 * disk(40, 12.0)))[:, 4:36, :]
    projector = ParallelBeamProjector(32, 40, num_views=90)
    reconstruction = projector.fbp(projector.forward(images))
    assert reconstruction.shape == (2, 32, 40)
    # Linearity across the batch: the second image is twice the first.
    assert torch.allclose(reconstruction[1], 2 * reconstruction[0], atol=1e-4)


def test_projector_is_differentiable() -> None:
    image = disk(32, 10.0)[None].requires_grad_(True)
    projector = ParallelBeamProjector(32, 32, num_views=16)
    projector.fbp(projector.forward(image)).square().sum().backward()
    assert image.grad is not None and torch.isfinite(image.grad).all()
    assert image.grad.abs().sum() > 0


@pytest.mark.parametrize("window", FILTER_WINDOWS)
def test_smoother_windows_pass_less_high_frequency_noise(window: str) -> None:
    projector = ParallelBeamProjector(48, 48, num_views=60)
    noise = torch.randn(1, 60, projector.num_bins, generator=torch.Generator().manual_seed(0))
    sd = projector.fbp(noise, window).std()
    ramp_sd = projector.fbp(noise, "ram-lak").std()
    assert sd <= ramp_sd * (1 + 1e-6)
    assert math.isfinite(float(sd))


def test_finer_detector_bins_reconstruct_the_same_image() -> None:
    image = disk(96, 34.0) + 0.5 * disk(96, 8.0, centre=(10.0, -5.0))
    coarse = ParallelBeamProjector(96, 96, num_views=180)
    fine = coarse.finer(2)
    assert fine.num_bins == 2 * (coarse.num_bins - 1) + 1
    sinogram = fine.forward(image[None])
    # every other fine bin is a coarse bin: the same line integrals
    assert torch.allclose(sinogram[..., ::2], coarse.forward(image[None]), atol=1e-3)
    interior = disk(96, 28.0).bool()
    error = (fine.fbp(sinogram)[0] - image)[interior]
    assert error.abs().mean() < 0.03
    assert abs(float(error.mean())) < 0.01


def spectrum_corner_share(image: torch.Tensor) -> float:
    """Power share at |f_x|, |f_y| > 0.35 cycles/pixel (white noise: 0.09)."""
    power = torch.fft.fft2(image - image.mean(dim=(-2, -1), keepdim=True)).abs().square()
    frequency = torch.fft.fftfreq(image.shape[-1]).abs()
    corners = (frequency[:, None] > 0.35) & (frequency[None, :] > 0.35)
    return float(power[..., corners].sum() / power.sum())


def test_finer_bins_change_noise_mostly_above_the_pixel_nyquist() -> None:
    # ray noise of variance b per bin of 1/b pixel (the same photons per pixel width): a
    # window confined below the pixel Nyquist gives about the same noise (one-pixel bins'
    # linear interpolation smooths it a little more); a sharp kernel that passes up to the
    # bins' Nyquist puts aliased grain into the spectrum's corners, as real D45f noise has
    coarse = ParallelBeamProjector(64, 64, num_views=180)
    fine = coarse.finer(2)
    generator = torch.Generator().manual_seed(0)
    one = torch.randn(8, 180, coarse.num_bins, generator=generator)
    two = torch.randn(8, 180, fine.num_bins, generator=generator) * math.sqrt(2)
    for window in ("hann", "cosine"):
        ratio = float(fine.fbp(two, window).std() / coarse.fbp(one, window).std())
        assert 1.0 < ratio < 1.2, window
    centre = slice(16, 48)
    ramp_share = spectrum_corner_share(coarse.fbp(one, "ram-lak")[:, centre, centre])
    sharp_share = spectrum_corner_share(fine.fbp(two, "d45f-like")[:, centre, centre])
    assert ramp_share < 0.025
    assert sharp_share > 2 * ramp_share


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="num_views"):
        ParallelBeamProjector(8, 8, num_views=0)
    with pytest.raises(ValueError, match="bins_per_pixel"):
        ParallelBeamProjector(8, 8, bins_per_pixel=0)
    projector = ParallelBeamProjector(8, 8, num_views=4)
    with pytest.raises(ValueError, match="filter window"):
        projector.filter(torch.zeros(1, 4, projector.num_bins), "gauss")
    with pytest.raises(ValueError, match=r"\(B, 8, 8\)"):
        projector.forward(torch.zeros(1, 9, 8))


def test_signal_transfer_lifts_a_sharp_kernels_frequencies_and_keeps_the_mean() -> None:
    from medsr.physics.projector import SIGNAL_MAX_GAIN, kernel_window, signal_transfer

    generator = torch.Generator().manual_seed(0)
    image = 40.0 + 10.0 * torch.randn(2, 64, 64, generator=generator)
    assert signal_transfer(image, "b30f-like", "b30f-like") is image
    sharp = signal_transfer(image, "b30f-like", "d45f-like")
    assert sharp.shape == image.shape and sharp.dtype == image.dtype
    torch.testing.assert_close(sharp.mean(dim=(-2, -1)), image.mean(dim=(-2, -1)))
    # each frequency's amplitude times W_d45 / W_b30 (capped), checked on two bins
    spectrum, lifted = torch.fft.rfft2(image.double()), torch.fft.rfft2(sharp.double())
    for (row, col), frequency in (((0, 16), 0.25), ((0, 31), 31 / 64)):
        f = torch.tensor([frequency], dtype=torch.float64)
        ratio = kernel_window("d45f-like", f) / kernel_window("b30f-like", f)
        expected = float(ratio.clamp(max=SIGNAL_MAX_GAIN))
        measured = (lifted[:, row, col].abs() / spectrum[:, row, col].abs()).tolist()
        assert measured == pytest.approx([expected] * 2, rel=1e-4)
    # back to a smoother kernel: lower high frequencies; an unknown kernel is refused
    smooth = signal_transfer(image, "ram-lak", "hann")
    assert float(smooth.std()) < float(image.std())
    with pytest.raises(ValueError, match="filter window must be one of"):
        signal_transfer(image, "b30f-like", "b99f")
