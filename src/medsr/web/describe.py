"""What the viewer shows about an image besides its pixels: the orientation letters at the
edges, the DICOM tags of the upload, and the sizes in one order (width x height).

Orientation follows the DICOM patient system (LPS: +x towards the patient's left, +y
posterior, +z superior). The letter at an image's right edge names the direction of
increasing column index (`Volume.direction[:, 0]`), at its bottom edge the direction of
increasing row index (`direction[:, 1]`); left and top get the opposites. An oblique axis
gets up to three letters, the strongest component first (as OHIF and Slicer write them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsr.image import Volume

_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))
OBLIQUE_MIN = 0.3
"""A direction-cosine component below this (in absolute value) gives no letter."""
MAX_TAGS = 400
MAX_VALUE_CHARS = 120


def axis_letters(cosines: np.ndarray) -> str:
    """The patient direction of an image axis: `[1, 0, 0]` -> "L", `[0, -1, 0]` -> "A",
    an oblique `[0.8, 0.6, 0]` -> "LP"."""
    order = np.argsort(-np.abs(cosines), kind="stable")
    letters = [
        _LETTERS[k][0 if cosines[k] > 0 else 1] for k in order if abs(cosines[k]) >= OBLIQUE_MIN
    ]
    return "".join(letters)


def orientation(volume: Volume) -> dict[str, str] | None:
    """Letters at the image edges (`left`, `right`, `top`, `bottom`) from the DICOM
    orientation; None when the file recorded none (PNG, TIFF, a radiograph without
    ImageOrientationPatient): the viewer then shows no letters rather than guessed ones."""
    slices = volume.metadata.get("slices")
    if not slices or not isinstance(slices, list) or slices[0].get("orientation") is None:
        return None
    right, bottom = volume.direction[:, 0], volume.direction[:, 1]
    return {
        "right": axis_letters(right),
        "left": axis_letters(-right),
        "bottom": axis_letters(bottom),
        "top": axis_letters(-bottom),
    }


def size_text(shape: tuple[int, ...] | list[int]) -> str:
    """`(D, H, W)` or `(H, W)` as "W × H px" (", D slices"): width first, as the page says."""
    height, width = shape[-2], shape[-1]
    text = f"{width} × {height} px"
    return text + (f", {shape[0]} slices" if len(shape) == 3 else "")


def _value(element: Any) -> str:
    if element.VR == "SQ":
        return f"(sequence of {len(element.value)} item(s))"
    value = element.value
    if isinstance(value, (bytes, bytearray)):
        return f"({len(value)} bytes)"
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def dicom_tags(path: Path) -> list[dict[str, str]]:
    """The top-level header elements of a DICOM file (pixel data left out, values cut at
    MAX_VALUE_CHARS, at most MAX_TAGS) as `{"tag", "keyword", "vr", "value"}`; [] when the
    header cannot be read (it was read once already to decode the image)."""
    from medsr.io.dicom import read_dataset

    try:
        dataset = read_dataset(path, stop_before_pixels=True)
    except Exception:  # shown for information only: never the reason a request fails
        return []
    tags = []
    for element in dataset:
        if element.tag == 0x7FE00010:  # PixelData
            continue
        tags.append(
            {
                "tag": f"({element.tag.group:04X},{element.tag.element:04X})",
                "keyword": element.keyword or "(private)",
                "vr": str(element.VR),
                "value": _value(element),
            }
        )
        if len(tags) >= MAX_TAGS:
            break
    return tags
