"""PET onto the CT grid: coarse-grid alignment, trilinear sampling, refusal without overlap."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from medsr.image import Volume
from medsr.inference.resample import (
    check_overlap,
    coarse_geometry,
    grid_of,
    match_field_of_view,
    resample_onto,
)
from medsr.physics.resize import downsample

ROTATED = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def ct_volume(direction: np.ndarray | None = None) -> Volume:
    rng = np.random.default_rng(0)
    array = rng.normal(size=(3, 32, 40)).astype(np.float32)
    return Volume(
        array,
        (2.5, 0.8, 0.8),
        "CT",
        "HU",
        origin=(-10.0, 5.0, 30.0),
        direction=np.eye(3) if direction is None else direction,
    )


@pytest.mark.parametrize("direction", [np.eye(3), ROTATED])
def test_area_downsample_on_the_coarse_grid_resamples_to_itself(direction: np.ndarray) -> None:
    ct = ct_volume(direction)
    grid = coarse_geometry(ct, 4)
    assert grid.shape == (3, 8, 10) and grid.spacing == (2.5, 3.2, 3.2)
    low = downsample(torch.from_numpy(ct.array), 4, "area").numpy()
    pet = Volume(low, grid.spacing, "PT", "SUV", origin=grid.origin, direction=direction)
    assert np.allclose(resample_onto(pet, grid), low, atol=1e-5)
    # The coarse pixel centre is the mean of the CT pixel centres it covers.
    centre = grid.affine @ [0, 0, 0, 1]
    covered = grid_of(ct).affine @ np.array([[1.5, 1.5, 0, 1]]).T
    assert np.allclose(centre[:3], covered[:3, 0])


def test_shifted_pet_is_sampled_trilinearly_with_zero_outside() -> None:
    ct = ct_volume()
    grid = coarse_geometry(ct, 4)
    ramp = np.broadcast_to(np.arange(10, dtype=np.float32), (3, 8, 10)).copy()
    # PET shifted by 3/4 of a coarse pixel along x (the column axis): CT-grid pixel c sits at
    # PET index c - 0.75, so the ramp interpolates to c - 0.75.
    origin = (grid.origin[0] + 0.75 * 3.2, grid.origin[1], grid.origin[2])
    pet = Volume(ramp, grid.spacing, "PT", "SUV", origin=origin)
    out = resample_onto(pet, grid)
    assert np.allclose(out[:, :, 1:], np.arange(1, 10) - 0.75, atol=1e-5)
    assert np.all(out[:, :, 0] == 0.0)  # its centre lies outside the PET's voxel box


def test_pet_slices_are_interpolated_along_z() -> None:
    ct = ct_volume()
    grid = coarse_geometry(ct, 4)
    values = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((1, 8, 10), np.float32)
    pet = Volume(values, (5.0, 3.2, 3.2), "PT", "SUV", origin=grid.origin)
    out = resample_onto(pet, grid)  # CT slices at z = 30, 32.5, 35: PET index 0, 0.5, 1
    assert np.allclose(out[:, 4, 4], [0.0, 0.5, 1.0], atol=1e-5)


def test_refuses_images_that_do_not_overlap() -> None:
    ct = ct_volume()
    far = replace(ct, origin=(500.0, 5.0, 30.0), modality="PT", unit="SUV")
    with pytest.raises(ValueError, match="do not overlap") as info:
        check_overlap(ct, far)
    assert "499.6..531.6" in str(info.value)  # the PET box is named
    above = replace(ct, origin=(-10.0, 5.0, 300.0))
    with pytest.raises(ValueError, match="do not overlap"):
        check_overlap(ct, above)
    half = replace(ct, origin=(-10.0 + 16.0, 5.0, 30.0))
    assert check_overlap(ct, half) == pytest.approx(0.5)


def test_two_dimensional_images_compare_in_plane_and_fov_matching() -> None:
    ct = Volume(np.zeros((32, 40), np.float32), (0.8, 0.8), "CT", "HU", origin=(0, 0, 7.0))
    pet = Volume(np.ones((8, 10), np.float32), (1.0, 1.0), "PT", "SUV")
    matched = match_field_of_view(pet, ct)
    assert matched.spacing == pytest.approx((3.2, 3.2))
    assert check_overlap(ct, matched) == pytest.approx(1.0)
    out = resample_onto(matched, coarse_geometry(ct, 4))
    assert out.shape == (1, 8, 10) and np.allclose(out, 1.0)
