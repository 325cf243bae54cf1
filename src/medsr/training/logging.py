"""Training records on rank 0: CSV files and optional TensorBoard scalars (pictures: `viz`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from medsr.io.atomic import write_bytes_atomic


def truncate_rows(path: Path, last_step: int) -> int:
    """Drop the rows of CSV `path` logged after step `last_step` (a resumed run logs those
    steps again); returns how many were dropped. The file is rewritten atomically."""
    with path.open(encoding="utf-8", newline="") as stream:
        lines = list(csv.reader(stream))
    if len(lines) < 2:
        return 0

    def kept(row: list[str]) -> bool:
        if len(row) != len(lines[0]):
            return False  # the half-written last row of a killed run
        try:
            return int(float(row[0])) <= last_step
        except ValueError:
            return False

    rows = [row for row in lines[1:] if kept(row)]
    if len(rows) == len(lines) - 1:
        return 0
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([lines[0], *rows])
    write_bytes_atomic(path, buffer.getvalue().encode("utf-8"), overwrite=True)
    return len(lines) - 1 - len(rows)


class MetricsLog:
    """Appends rows to `folder/<name>.csv` (header written once, kept on resume) and, when
    the `tensorboard` package is importable, the same scalars to `folder/tensorboard`.

    `resume_step`: the step the run starts from; rows of every CSV logged after it (by a run
    that went further before it was stopped) are dropped, so no step is logged twice."""

    def __init__(
        self, folder: str | Path, use_tensorboard: bool = True, resume_step: int | None = None
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            for path in sorted(self.folder.glob("*.csv")):
                truncate_rows(path, resume_step)
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
