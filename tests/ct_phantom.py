"""A small body-like CT phantom shared by the PET bank and fusion training tests."""

from __future__ import annotations

import numpy as np

from medsr.image import Volume


def body_phantom(slices: int = 2, size: int = 64) -> Volume:
    """CT in HU, 2 x 1 x 1 mm: soft tissue (40 HU) in a bone rim, an enhancing insert."""
    rows, cols = np.mgrid[:size, :size] - size / 2
    ellipse = (rows / (0.42 * size)) ** 2 + (cols / (0.35 * size)) ** 2
    ct = np.full((size, size), -1000.0, np.float32)
    ct[ellipse < 1] = 800.0
    ct[ellipse < 0.8] = 40.0
    ct[rows**2 + (cols + 6) ** 2 < 30] = 150.0
    return Volume(np.stack([ct] * slices), (2.0, 1.0, 1.0), "CT", "HU")
