import numpy as np
import pytest
from scipy import ndimage

from medsr.metrics.contrast import NothingToMeasure, band_pass, contrast_retention, soft_tissue_mask


def textured_phantom(seed: int = 0, size: int = 128) -> np.ndarray:
    """Soft tissue (40 HU) with low-contrast blobs (+-20 HU, 1.5 px) inside air."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size), -1000.0)
    image[16:-16, 16:-16] = 40.0
    texture = ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.5)
    image[16:-16, 16:-16] += 20.0 * texture[16:-16, 16:-16] / texture.std()
    return image


def test_identical_image_keeps_all_structure() -> None:
    image = textured_phantom()
    mask = soft_tissue_mask(image)
    assert contrast_retention(image, image, mask) == pytest.approx(1.0)


def test_uncorrelated_noise_leaves_retention_near_one() -> None:
    image = textured_phantom()
    noisy = image + np.random.default_rng(1).normal(0.0, 30.0, image.shape)
    assert contrast_retention(noisy, image, soft_tissue_mask(image)) == pytest.approx(1.0, abs=0.1)


def test_blur_flattens_structure_more_the_wider_it_is() -> None:
    image = textured_phantom()
    mask = soft_tissue_mask(image)
    mild = contrast_retention(ndimage.gaussian_filter(image, 0.7), image, mask)
    strong = contrast_retention(ndimage.gaussian_filter(image, 1.5), image, mask)
    assert 0.2 < strong < mild < 0.95


def test_constant_offset_is_not_structure() -> None:
    image = textured_phantom()
    mask = soft_tissue_mask(image)
    assert contrast_retention(image + 25.0, image, mask) == pytest.approx(1.0)


def test_mask_keeps_away_from_air_and_bone() -> None:
    image = textured_phantom()
    mask = soft_tissue_mask(image, margin=8)
    assert mask.any()
    rows, columns = np.nonzero(mask)
    assert rows.min() >= 16 + 8 and columns.max() < 128 - 16 - 8


def test_band_pass_of_a_constant_is_zero() -> None:
    assert np.abs(band_pass(np.full((32, 32), 7.0), (1.0, 3.0))).max() < 1e-9


def test_bad_arguments_say_what_is_wrong() -> None:
    image = textured_phantom()
    mask = soft_tissue_mask(image)
    with pytest.raises(ValueError, match="0 < s1 < s2"):
        band_pass(image, (3.0, 1.0))
    with pytest.raises(ValueError, match="one shape") as mismatch:
        contrast_retention(image[:64], image, mask)
    assert not isinstance(mismatch.value, NothingToMeasure)  # a mistake, never a silent NaN
    with pytest.raises(NothingToMeasure, match="mask is empty"):
        contrast_retention(image, image, np.zeros_like(mask))
    with pytest.raises(NothingToMeasure, match="no structure"):
        contrast_retention(image, np.full_like(image, 40.0), mask)
    with pytest.raises(ValueError, match="2-D"):
        soft_tissue_mask(image[None])
