"""medsr.image: the helpers written once for every layer above."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr.image import (
    NUM_DIHEDRAL,
    PROVENANCE_KEY,
    Provenance,
    Volume,
    body_mask,
    dihedral,
    gaussian_blur,
    rescaled_in_plane,
    thick_slabs,
    undo_dihedral,
)


def test_rescaled_in_plane_coarser_then_finer_returns_to_the_grid() -> None:
    direction = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    volume = Volume(np.zeros((2, 8, 8)), (2.0, 0.5, 0.6), origin=(10, 20, 30), direction=direction)
    spacing, origin = rescaled_in_plane(volume, 4)
    # the first low pixel's centre: 1.5 input pixels along columns (0.6 mm) and rows (0.5 mm)
    assert spacing == (2.0, 2.0, 2.4)
    assert origin == pytest.approx((10 + 1.5 * 0.5, 20 + 1.5 * 0.6, 30))
    coarse = Volume(np.zeros((2, 2, 2)), spacing, origin=origin, direction=direction)
    back_spacing, back_origin = rescaled_in_plane(coarse, 4, finer=True)
    assert back_spacing == pytest.approx((2.0, 0.5, 0.6))
    assert back_origin == pytest.approx((10, 20, 30))


def test_provenance_round_trips_through_metadata() -> None:
    made = Provenance("m", "srresnet", "x4", 4, "ab" * 32, "0.1", tiles=(256, 32))
    metadata = made.stamp({"source": "png"})
    assert metadata["research_use_only"] is True and metadata["source"] == "png"
    assert metadata[PROVENANCE_KEY]["tile_size"] == 256 and "guide" not in metadata[PROVENANCE_KEY]
    assert Provenance.from_metadata(metadata) == made
    assert Provenance.from_metadata({}) is None


def test_the_eight_symmetries_are_distinct_and_undone() -> None:
    batch = np.arange(2 * 1 * 3 * 5, dtype=np.float32).reshape(2, 1, 3, 5)  # not square
    seen = set()
    for index in range(NUM_DIHEDRAL):
        moved = dihedral(batch, index)
        assert moved.shape[-2:] == ((3, 5) if index % 2 == 0 else (5, 3))
        seen.add(np.ascontiguousarray(moved).tobytes() + bytes(moved.shape))
        np.testing.assert_array_equal(undo_dihedral(moved, index), batch)
    assert len(seen) == NUM_DIHEDRAL
    # torch tensors the same way, and the same images as numpy's
    tensor = torch.from_numpy(batch)
    for index in range(NUM_DIHEDRAL):
        moved = dihedral(tensor, index)
        np.testing.assert_array_equal(moved.numpy(), dihedral(batch, index))
        assert torch.equal(undo_dihedral(moved, index), tensor)
    with pytest.raises(ValueError, match="op must be in 0..7"):
        undo_dihedral(batch, 8)


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.5])
def test_gaussian_blur_has_the_stated_sigma(sigma: float) -> None:
    impulse = torch.zeros(1, 41, 41)
    impulse[0, 20, 20] = 1.0
    blurred = gaussian_blur(impulse, sigma)
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-5)
    x = torch.arange(41, dtype=torch.float64)
    for profile in (blurred[0].sum(0).double(), blurred[0].sum(1).double()):
        mean = (profile * x).sum() / profile.sum()
        spread = float(((profile * (x - mean) ** 2).sum() / profile.sum()).sqrt())
        assert spread == pytest.approx(sigma, rel=0.02)
    assert torch.equal(gaussian_blur(impulse, 0.0), impulse)
    with pytest.raises(ValueError, match="sigma_px must be finite and >= 0"):
        gaussian_blur(impulse, -1.0)


def test_body_mask_is_the_largest_region_with_its_holes() -> None:
    hu = np.full((64, 64), -1000.0)
    hu[10:50, 10:50] = 40.0  # the patient
    hu[25:35, 25:35] = -800.0  # a lung inside it
    hu[56:60, 5:60] = 200.0  # the table: a separate, smaller region
    mask = body_mask(hu)
    assert mask[10:50, 10:50].all()  # the lung's hole filled
    assert mask.sum() == 40 * 40  # nothing of the table
    assert not body_mask(np.full((8, 8), -1000.0)).any()


def test_thick_slabs_average_adjacent_slices_and_quiet_the_noise() -> None:
    direction = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # coronal
    noise = np.random.default_rng(0).normal(0.0, 10.0, (7, 64, 64)).astype(np.float32)
    volume = Volume(noise, (1.5, 0.5, 0.5), "CT", "HU", origin=(1, 2, 3), direction=direction)
    slabs = thick_slabs(volume, 3)
    assert slabs.shape == (2, 64, 64) and slabs.spacing == (4.5, 0.5, 0.5)  # slice 7 dropped
    np.testing.assert_allclose(slabs.array[1], noise[3:6].mean(axis=0), atol=1e-5)
    assert slabs.origin == pytest.approx((1, 2 - 1.5, 3))  # the first 3 slices' centre (normal -y)
    assert slabs.array.std() == pytest.approx(10 / np.sqrt(3), rel=0.05)
    assert slabs.metadata["thick_slab"] == 3 and slabs.modality == "CT"
    with pytest.raises(ValueError, match="3-D volume"):
        thick_slabs(Volume(noise[0], (0.5, 0.5)), 2)
