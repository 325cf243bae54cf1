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


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="num_views"):
        ParallelBeamProjector(8, 8, num_views=0)
    projector = ParallelBeamProjector(8, 8, num_views=4)
    with pytest.raises(ValueError, match="filter window"):
        projector.filter(torch.zeros(1, 4, projector.num_bins), "gauss")
    with pytest.raises(ValueError, match=r"\(B, 8, 8\)"):
        projector.forward(torch.zeros(1, 9, 8))
