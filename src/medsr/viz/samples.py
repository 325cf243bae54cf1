"""Training pictures: the validation samples `train()` writes at each sample step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def save_sample_grid(
    path: str | Path,
    upsampled: torch.Tensor,
    output: torch.Tensor,
    target: torch.Tensor,
    display: tuple[float, float],
    title: str,
    max_rows: int = 4,
) -> Path:
    """PNG of rows `LR upsampled | output | target | |output - target|` for `(B, 1, H, W)`
    images, shown on `display = (low, high)`; the error map is that of both images clipped to
    `display`, shown on `[0, (high - low) / 4]`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = min(max_rows, output.shape[0])
    low, high = display
    fig, axes = plt.subplots(rows, 4, figsize=(10, 2.6 * rows), squeeze=False)
    names = ("LR upsampled (bicubic)", "output", "target", "|output - target|")
    for r in range(rows):
        images = [t[r, 0].detach().float().cpu().numpy() for t in (upsampled, output, target)]
        # the error as the metric sees it: both images clipped to the display window
        images.append(np.abs(np.clip(images[1], low, high) - np.clip(images[2], low, high)))
        for c, (image, name) in enumerate(zip(images, names, strict=True)):
            ax = axes[r, c]
            vmax = high if c < 3 else (high - low) / 4
            ax.imshow(
                image,
                cmap="gray" if c < 3 else "magma",
                vmin=low if c < 3 else 0,
                vmax=vmax,
                interpolation="nearest",
            )
            ax.set_axis_off()
            if r == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
