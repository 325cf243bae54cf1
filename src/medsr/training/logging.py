"""Training records on rank 0: CSV files and optional TensorBoard scalars (pictures: `viz`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


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
