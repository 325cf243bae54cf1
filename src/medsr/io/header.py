"""The medsr geometry header that formats without one (PNG, TIFF, `.npy`) carry alongside.

PNG stores it in a tEXt chunk, TIFF in ImageDescription, `.npy` in a sidecar JSON: always a
JSON object `{"medsr": {...}}` with spacing, modality, unit, window, origin and direction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medsr.image import MODALITIES, Volume, Window

HEADER_KEY = "medsr"


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
    """A Volume from an array and its (possibly empty) header; spacing 1.0 mm when unknown,
    recorded as `metadata["spacing_known"] = False`."""
    spacing = list(header.get("spacing") or [])
    known = len(spacing) == array.ndim
    window = header.get("window")
    modality = str(header.get("modality", "OT"))
    return Volume(
        array=array.astype(np.float32),
        spacing=tuple(spacing) if known else (1.0,) * array.ndim,
        modality=modality if modality in MODALITIES else "OT",
        unit=str(header.get("unit", "a.u.")),
        window=None if window is None else Window(float(window[0]), float(window[1])),
        origin=tuple(header.get("origin", (0.0, 0.0, 0.0))),
        direction=np.asarray(header.get("direction", np.eye(3)), dtype=np.float64),
        metadata={**metadata, "spacing_known": known},
    )
