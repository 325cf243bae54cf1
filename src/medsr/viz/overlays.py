"""The fused display of `medsr fuse` and the web page: PET in a colour map over the CT."""

from __future__ import annotations

import numpy as np

from medsr.image import Window

DEFAULT_CT_WINDOW = Window(center=40.0, width=400.0)


def fused_overlay(
    ct_hu: np.ndarray,
    pet_suv: np.ndarray,
    ct_window: Window = DEFAULT_CT_WINDOW,
    alpha: float = 0.5,
    suv_max: float = 10.0,
) -> np.ndarray:
    """RGB uint8 `(H, W, 3)`: `(1 - alpha) * grey(CT in window) + alpha * hot(PET / suv_max)`.

    `ct_hu` and `pet_suv` are `(H, W)` on the same grid; `alpha` in [0, 1]; `suv_max` > 0.
    """
    import matplotlib

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not suv_max > 0:
        raise ValueError(f"suv_max must be > 0, got {suv_max}")
    if np.shape(ct_hu) != np.shape(pet_suv) or np.ndim(ct_hu) != 2:
        raise ValueError(
            f"CT and PET must be (H, W) on one grid, got {np.shape(ct_hu)} and {np.shape(pet_suv)}"
        )
    grey = ct_window.apply(ct_hu)[..., None]
    hot = matplotlib.colormaps["hot"](np.clip(np.asarray(pet_suv) / suv_max, 0.0, 1.0))[..., :3]
    rgb = (1.0 - alpha) * grey + alpha * hot
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def default_suv_max(pet_suv: np.ndarray) -> float:
    """SUV at the top of the colour map when none is given: the 99.5th percentile, >= 1."""
    return max(1.0, float(np.percentile(pet_suv, 99.5)))
