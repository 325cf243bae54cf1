"""What a user states about an input whose file does not record it: `--modality`, `--unit`,
`--spacing`.

A NIfTI, PNG, TIFF or .npy file carries no modality (it reads as OT in a.u.) and a PNG no
pixel size: a CT in HU exported by another tool is then refused by every CT model. `Declared`
sets these on the image read. A DICOM (or InVesalius) file records them: a declaration that
contradicts it is refused rather than applied, except a pixel spacing the file lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medsr.image import MODALITIES, Volume

RECORDING_SOURCES = ("dicom", "invesalius")
"""Readers whose files record modality, unit and (usually) spacing."""


def parse_spacing(text: str) -> tuple[float, ...]:
    """`--spacing` in mm: `0.7` (square pixels), `0.7,0.8` (row, column) or `2.5,0.7,0.7`
    (slice, row, column)."""
    try:
        values = tuple(float(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--spacing {text!r}: give mm as 0.7, 0.7,0.8 or 2.5,0.7,0.7") from None
    if not 1 <= len(values) <= 3 or not all(0 < v < 1e4 for v in values):
        raise ValueError(f"--spacing {text!r}: give 1 to 3 positive sizes in mm")
    return values * 2 if len(values) == 1 else values


@dataclass(frozen=True)
class Declared:
    """Modality (DICOM code), unit and spacing (mm, `parse_spacing`) to set on inputs; None:
    as read."""

    modality: str | None = None
    unit: str | None = None
    spacing: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.modality is not None and self.modality not in MODALITIES:
            raise ValueError(f"--modality {self.modality!r}: choose one of {', '.join(MODALITIES)}")
        if self.unit is not None and not self.unit.strip():
            raise ValueError("--unit is empty")

    @property
    def empty(self) -> bool:
        return self.modality is None and self.unit is None and self.spacing is None

    def apply(self, volume: Volume, source: str = "the input") -> Volume:
        """`volume` with the declared values; ValueError when it records others (module doc)
        or the spacing has more entries than the image has axes."""
        if self.empty:
            return volume
        meta = volume.metadata
        records = meta.get("source") in RECORDING_SOURCES
        changes: dict[str, object] = {}
        for field, value in (("modality", self.modality), ("unit", self.unit)):
            if value is None or value == getattr(volume, field):
                continue
            if records:
                raise ValueError(
                    f"{source} records {field} {getattr(volume, field)} ({meta['source']}); "
                    f"--{field} applies to files that record none (NIfTI, PNG, TIFF, .npy)"
                )
            changes[field] = value
        metadata = dict(meta)
        if self.spacing is not None:
            spacing = self._spacing_for(volume)
            if spacing != volume.spacing:
                known = meta.get("spacing_known") is not False
                if records and known:
                    raise ValueError(
                        f"{source} records a pixel spacing of {volume.spacing} mm; --spacing "
                        "applies to files without one"
                    )
                changes["spacing"] = spacing
            metadata["spacing_known"] = True
        metadata["declared"] = {
            key: value
            for key, value in (
                ("modality", self.modality),
                ("unit", self.unit),
                ("spacing", self.spacing),
            )
            if value is not None
        }
        return replace(volume, metadata=metadata, **changes)  # type: ignore[arg-type]

    def _spacing_for(self, volume: Volume) -> tuple[float, ...]:
        assert self.spacing is not None
        spacing = self.spacing
        if len(spacing) == 3 and not volume.is_volume:
            raise ValueError(f"--spacing {spacing}: three sizes for a 2-D image; give row, column")
        if volume.is_volume and len(spacing) == 2:
            return (volume.spacing[0], *spacing)  # the slice spacing as read
        return spacing
