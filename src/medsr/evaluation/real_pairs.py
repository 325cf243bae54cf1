"""Evaluation pairs from a user's own real low / high images (`medsr evaluate --low --high`).

A user with real pairs (quarter- and full-dose scans of the same patient, or a low- and a
high-resolution acquisition) gives two files or two folders. Files are matched by name (the
same file stem in both folders), else by DICOM slice position (ImagePositionPatient along the
slice normal, or SliceLocation) within half a slice; anything left unmatched is an error that
names it, never silently dropped. Each pair must have the same field of view: the high image
is `s` times the low image in both axes (`s` in 1, 2, 4, 8), and the same modality and unit.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from medsr.evaluation.pairs import EvalPair, describe_volume
from medsr.image import Volume
from medsr.io import read

SCALES = (1, 2, 4, 8)
_SKIP = {".json", ".txt", ".md", ".csv"}


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() not in _SKIP)
    files = [p for p in files if not p.name.startswith(".")]
    if not files:
        raise ValueError(f"no image files in {path}")
    return files


def _read_2d(path: Path) -> Volume:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spacing warnings are repeated per file otherwise
        volume = read(path)
    if volume.is_volume:
        if volume.num_slices != 1:
            raise ValueError(f"{path} holds {volume.num_slices} slices; give one image per file")
        volume = volume.slice(0)
    volume.metadata.setdefault("path", str(path))
    return volume


def slice_position(volume: Volume) -> float | None:
    """Position of a DICOM slice along its normal (mm): its origin (ImagePositionPatient)
    projected on the slice normal; None for files without patient geometry."""
    if volume.metadata.get("source") != "dicom":
        return None
    return float(np.dot(np.asarray(volume.direction)[:, 2], np.asarray(volume.origin, float)))


def _match(low: list[Path], high: list[Path]) -> list[tuple[Path, Path]]:
    by_stem = {p.stem: p for p in high}
    if len(low) == len(high) == 1:
        return [(low[0], high[0])]
    if all(p.stem in by_stem for p in low):
        return [(p, by_stem[p.stem]) for p in low]
    return []


def _match_by_position(
    low: list[tuple[Path, Volume]], high: list[tuple[Path, Volume]]
) -> list[tuple[int, int]]:
    lows = [slice_position(v) for _, v in low]
    highs = [slice_position(v) for _, v in high]
    if any(z is None for z in [*lows, *highs]):
        entries = zip([*low, *high], [*lows, *highs], strict=True)
        names = [p.name for (p, _), z in entries if z is None]
        raise ValueError(
            f"cannot match low and high images: file names differ and {names[:3]} carry no "
            "DICOM slice position; give files with the same names in both folders"
        )
    known = [float(z) for z in highs if z is not None]
    gaps = np.diff(sorted(known)) if len(known) > 1 else np.array([np.inf])
    tolerance = 0.5 * float(np.min(gaps[gaps > 0])) if np.any(gaps > 0) else 0.5
    pairs = []
    for i, z in enumerate(lows):
        distances = [abs(z - h) for h in highs]  # type: ignore[operator]
        j = int(np.argmin(distances))
        if distances[j] > tolerance:
            raise ValueError(
                f"{low[i][0].name} at {z:.2f} mm has no high image within {tolerance:.2f} mm"
            )
        pairs.append((i, j))
    if len({j for _, j in pairs}) != len(pairs):
        raise ValueError("two low images matched the same high image; check the folders")
    return pairs


def read_real_pairs(low: str | Path, high: str | Path, task: str | None = None) -> list[EvalPair]:
    """Pairs from files or folders `low` and `high` (module doc). `task` names what the low
    images are (a model's task, e.g. `ldct`; default `x<s>`): it decides the baselines."""
    low_files, high_files = _files(Path(low)), _files(Path(high))
    matched = _match(low_files, high_files)
    lows: list[tuple[Path, Volume]]
    highs: list[tuple[Path, Volume]]
    if matched:
        lows = [(a, _read_2d(a)) for a, _ in matched]
        highs = [(b, _read_2d(b)) for _, b in matched]
    else:
        all_low = [(p, _read_2d(p)) for p in low_files]
        all_high = [(p, _read_2d(p)) for p in high_files]
        index = _match_by_position(all_low, all_high)
        lows, highs = [all_low[i] for i, _ in index], [all_high[j] for _, j in index]
    pairs = []
    for (low_path, low_volume), (high_path, high_volume) in zip(lows, highs, strict=True):
        pairs.append(_pair(low_path, low_volume, high_path, high_volume, task))
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"evaluation images must have distinct names, got {names}")
    return pairs


def _pair(low_path: Path, low: Volume, high_path: Path, high: Volume, task: str | None) -> EvalPair:
    (h, w), (H, W) = low.shape[-2:], high.shape[-2:]
    scale = H // h if h else 0
    if scale not in SCALES or (h * scale, w * scale) != (H, W):
        raise ValueError(
            f"{high_path.name} {H}x{W} is not 1, 2, 4 or 8 times {low_path.name} {h}x{w}"
        )
    if (low.modality, low.unit) != (high.modality, high.unit):
        raise ValueError(
            f"{low_path.name} is {low.modality} in {low.unit} but {high_path.name} is "
            f"{high.modality} in {high.unit}"
        )
    return EvalPair(
        name=low_path.stem,
        source=str(high_path),
        low=np.asarray(low.array, dtype=np.float32),
        high=np.asarray(high.array, dtype=np.float32),
        modality=high.modality,
        unit=high.unit,
        spacing_mm=float(high.spacing[-1]),
        task=task or f"x{scale}",
        scale=scale,
        seed=0,
        params={"real_pair": True, "low_file": str(low_path), "high_file": str(high_path)},
        description=describe_volume(high, str(high_path)),
    )
