"""Training records on rank 0: CSV files, optional TensorBoard scalars, sample grids (PNG)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch


class MetricsLog:
    """Appends rows to `folder/<name>.csv` (header written once, kept on resume) and, when
    the `tensorboard` package is importable, the same scalars to `folder/tensorboard`."""

    def __init__(self, folder: str | Path, use_tensorboard: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writer: Any = None
        if use_tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is the optional extra `medsr[train]`
                pass
            else:
                self.writer = SummaryWriter(str(self.folder / "tensorboard"))

    def write(self, name: str, step: int, values: dict[str, float]) -> None:
        """One row `step, *values` in `<name>.csv`; new columns after the first row raise."""
        path = self.folder / f"{name}.csv"
        row = {"step": step, **values}
        header = list(row)
        if path.exists() and path.stat().st_size:
            with path.open(encoding="utf-8") as stream:
                existing = next(csv.reader(stream), [])
            if existing != header:
                raise ValueError(f"{path} has columns {existing}, this row has {header}")
            mode = "a"
        else:
            mode = "w"
        with path.open(mode, newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=header)
            if mode == "w":
                writer.writeheader()
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{name}/{key}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


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
