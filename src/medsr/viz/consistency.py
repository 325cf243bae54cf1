"""The picture of a consistency map (`medsr enhance --consistency`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def consistency_picture(
    residual: np.ndarray, noise_sd: float, score: float, path: Path, unit: str, where: str = ""
) -> Path:
    """PNG of `residual` (input - degraded output, `unit`) on +-4 noise SD with a colour bar,
    titled with the `score` (noise SD units) and `where` (e.g. "slice 3, ")."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    limit = 4.0 * noise_sd
    figure, axes = plt.subplots(figsize=(6.4, 5.4), dpi=120)
    image = axes.imshow(residual, cmap="RdBu_r", vmin=-limit, vmax=limit)
    bar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    bar.set_label(f"input - degraded output ({unit}); +-4 noise SD")
    axes.set_title(f"consistency: {where}score {score:.3g} (noise SD units)", fontsize=9)
    axes.set_axis_off()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
