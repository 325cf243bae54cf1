"""The medsr geometry header that formats without one (PNG, TIFF, `.npy`) carry alongside.

PNG stores it in a tEXt chunk, TIFF in ImageDescription, `.npy` in a sidecar JSON: always a
JSON object `{"medsr": {...}}` with spacing, modality, unit, window, origin and direction.

A header read back is checked against `FIELDS` (`parse_header`, `validate_header`): a file
whose header is not JSON, or holds a field of the wrong type or an impossible value (a
window of 5, a null origin, a zero slope), is read without it, with a warning, as a file
from elsewhere would be. Unknown fields are ignored (newer writers may add some).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medsr.image import MODALITIES, Volume, Window

HEADER_KEY = "medsr"
MAX_HEADER_CHARS = 1_000_000


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)  # OverflowError for a huge integer
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not finite")
    return number


def _numbers(value: Any, counts: tuple[int, ...]) -> list[float]:
    if not isinstance(value, list) or len(value) not in counts:
        raise ValueError(f"expected a list of {' or '.join(map(str, counts))} numbers")
    return [_number(v) for v in value]


def _spacing(value: Any) -> list[float] | None:
    if value is None:
        return None
    spacing = _numbers(value, (2, 3))
    if any(s <= 0 for s in spacing):
        raise ValueError(f"spacing {spacing} must be positive")
    return spacing


def _window(value: Any) -> list[float] | None:
    if value is None:
        return None
    center, width = _numbers(value, (2,))
    if width <= 0:
        raise ValueError(f"window width {width} must be positive")
    return [center, width]


def matrix(size: int) -> Callable[[Any], list[list[float]]]:
    def check(value: Any) -> list[list[float]]:
        if not isinstance(value, list) or len(value) != size:
            raise ValueError(f"expected a {size} x {size} matrix")
        rows = [_numbers(row, (size,)) for row in value]
        if abs(np.linalg.det(np.array(rows)[:3, :3])) < 1e-6:
            raise ValueError("matrix is singular")
        return rows

    return check


def _text(limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise ValueError(f"expected a string of at most {limit} characters")
        return value

    return check


def _slope(value: Any) -> float:
    slope = _number(value)
    if slope == 0:
        raise ValueError("slope is 0")
    return slope


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


FIELDS: dict[str, Callable[[Any], Any]] = {
    "version": _version,
    "spacing": _spacing,
    "modality": _text(16),
    "unit": _text(32),
    "window": _window,
    "origin": lambda value: _numbers(value, (3,)),
    "direction": matrix(3),
    "slope": _slope,
    "intercept": _number,
}
"""The medsr header's fields and their checks (each returns the clean value or raises)."""


def validate_header(
    fields: Any, where: str | Path, extra: Mapping[str, Callable[[Any], Any]] | None = None
) -> dict[str, Any]:
    """The header `fields` with every known field checked (`FIELDS`, plus `extra` for a
    format's own fields); `{}` with a warning naming the first bad field when any is wrong."""
    if not isinstance(fields, dict):
        warnings.warn(f"{where}: medsr header ignored (not a JSON object)", stacklevel=3)
        return {}
    checks, clean = {**FIELDS, **(extra or {})}, {}
    for key, value in fields.items():
        if key not in checks:
            continue
        try:
            clean[key] = checks[key](value)
        except (ValueError, TypeError, OverflowError, np.linalg.LinAlgError) as error:
            warnings.warn(f"{where}: medsr header ignored (field {key!r}: {error})", stacklevel=3)
            return {}
    return clean


def parse_header(
    text: str | bytes | None,
    where: str | Path,
    extra: Mapping[str, Callable[[Any], Any]] | None = None,
) -> dict[str, Any]:
    """The checked fields of a header text `{"medsr": {...}}`; `{}` when there is none
    (text of another writer: no warning) or when it is malformed (with a warning)."""
    if not text:
        return {}
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if len(text) > MAX_HEADER_CHARS:
            raise ValueError(f"longer than {MAX_HEADER_CHARS:,} characters")
        content = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        if HEADER_KEY in str(text)[:200]:
            warnings.warn(f"{where}: medsr header ignored (not valid JSON: {error})", stacklevel=3)
        return {}
    if not isinstance(content, dict) or HEADER_KEY not in content:
        return {}
    return validate_header(content[HEADER_KEY], where, extra)


def header_fields(volume: Volume) -> dict[str, Any]:
    """The geometry and intensity fields of `volume`, JSON-ready; spacing None when it is
    unknown (`metadata["spacing_known"] is False`), so that it reads back as unknown."""
    window = None if volume.window is None else [volume.window.center, volume.window.width]
    known = volume.metadata.get("spacing_known") is not False
    return {
        "spacing": list(volume.spacing) if known else None,
        "modality": volume.modality,
        "unit": volume.unit,
        "window": window,
        "origin": list(volume.origin),
        "direction": volume.direction.tolist(),
    }


def volume_from_header(
    array: np.ndarray, header: dict[str, Any], metadata: dict[str, Any]
) -> Volume:
    """A Volume from an array and its (possibly empty) header, checked by `validate_header`;
    spacing 1.0 mm when unknown, recorded as `metadata["spacing_known"] = False`."""
    spacing = list(header.get("spacing") or [])
    known = len(spacing) == array.ndim
    window = header.get("window")
    modality = str(header.get("modality", "OT"))
    return Volume(
        array=array.astype(np.float32, copy=False),
        spacing=tuple(spacing) if known else (1.0,) * array.ndim,
        modality=modality if modality in MODALITIES else "OT",
        unit=str(header.get("unit", "a.u.")),
        window=None if window is None else Window(float(window[0]), float(window[1])),
        origin=tuple(header.get("origin", (0.0, 0.0, 0.0))),
        direction=np.asarray(header.get("direction", np.eye(3)), dtype=np.float64),
        metadata={**metadata, "spacing_known": known},
    )
