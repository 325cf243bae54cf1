"""PET intensities in body-weight SUV: from Bq/mL, with the decay of the injected dose.

    SUVbw = C[Bq/mL] * weight[g] / (injected dose[Bq] * 2^(-dt / T_half))

`C` the activity concentration of a voxel (DICOM Units BQML), `weight` PatientWeight
(kg x 1000), the injected dose RadionuclideTotalDose and `T_half` RadionuclideHalfLife (s),
both from the first Radiopharmaceutical Information item, and `dt` the seconds from the
injection (RadiopharmaceuticalStartDateTime, else RadiopharmaceuticalStartTime on the scan's
date) to the time the image is decay-corrected to. With DecayCorrection START (assumed when
absent) that is the scan start: SeriesDate/SeriesTime, or the series' earliest
AcquisitionDate/AcquisitionTime when that is earlier (a series time rewritten by later
processing); with ADMIN the image is already corrected to the injection, `dt = 0`. SUVbw is
in g/mL (DICOM Units GML), as QIBA's vendor-neutral SUV computation.

`suv_bw_factor` refuses (ValueError naming them) when a tag it needs is missing, and
`to_suv_bw` refuses anything not in Bq/mL: values are never labelled SUV unless they are.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from typing import Any

from medsr.image import Volume, Window

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class SuvFactor:
    """`factor` (SUVbw per Bq/mL) and how it was made (`dt_s` seconds from injection to the
    decay-correction time, the `decayed_dose_bq`, the `weight_g`)."""

    factor: float
    dt_s: float
    decayed_dose_bq: float
    weight_g: float
    decay_correction: str

    def describe(self) -> str:
        return (
            f"converted from Bq/mL to SUVbw = C * {self.weight_g:g} g / ({self.decayed_dose_bq:.6g}"
            f" Bq decayed over {self.dt_s:.0f} s, DecayCorrection {self.decay_correction})"
        )


def _time(value: str) -> datetime.timedelta:
    """DICOM TM (HH, HHMM, HHMMSS, HHMMSS.FFFFFF; colons tolerated) as time of day."""
    text = value.strip().replace(":", "")
    whole, _, fraction = text.partition(".")
    hours, minutes, seconds = int(whole[0:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    return datetime.timedelta(
        hours=hours, minutes=minutes, seconds=seconds + float(f"0.{fraction or 0}")
    )


def _elapsed(start: tuple[str | None, str], end: tuple[str | None, str]) -> float:
    """Seconds from `start` to `end`, each a (DA or None, TM) pair; with a date missing,
    times of day, taking an end earlier in the day to be on the next day."""
    if start[0] and end[0]:
        days = datetime.datetime.strptime(end[0][:8], "%Y%m%d") - datetime.datetime.strptime(
            start[0][:8], "%Y%m%d"
        )
        return (days + _time(end[1]) - _time(start[1])).total_seconds()
    seconds = (_time(end[1]) - _time(start[1])).total_seconds()
    return seconds + SECONDS_PER_DAY if seconds < 0 else seconds


def _injection(tags: dict[str, Any], scan_date: str | None) -> tuple[str | None, str] | None:
    """(date, time) of the injection: RadiopharmaceuticalStartDateTime (DT, offset ignored),
    else RadiopharmaceuticalStartTime on the scan's date."""
    if value := tags.get("RadiopharmaceuticalStartDateTime"):
        text = str(value).strip().split("+")[0]
        text = text[:8] + text[8:].split("-")[0]
        return (text[:8], text[8:] or "00") if len(text) > 8 else None
    if value := tags.get("RadiopharmaceuticalStartTime"):
        return scan_date, str(value)
    return None


def _scan_time(tags: dict[str, Any]) -> tuple[str | None, str] | None:
    """(date, time) of the scan start: SeriesTime, or the earliest AcquisitionTime when it
    comes first on the same date (or the series time is missing)."""
    series = (tags.get("SeriesDate"), tags["SeriesTime"]) if tags.get("SeriesTime") else None
    acquisition = None
    if tags.get("AcquisitionTime"):
        acquisition = (
            tags.get("AcquisitionDate") or tags.get("SeriesDate"),
            tags["AcquisitionTime"],
        )
    if series is None or acquisition is None:
        return series or acquisition
    if (series[0] or "") == (acquisition[0] or "") and _time(acquisition[1]) < _time(series[1]):
        return acquisition
    return series


def suv_bw_factor(tags: dict[str, Any]) -> SuvFactor:
    """The factor turning Bq/mL into SUVbw (module doc) from `tags`, the plain values that
    `medsr.io.dicom.pet_suv_tags` reads; ValueError naming every missing tag."""
    decay = str(tags.get("DecayCorrection") or "START").upper()
    if decay not in ("START", "ADMIN"):
        raise ValueError(
            f"cannot compute SUV: DecayCorrection is {decay!r} (only START and ADMIN are handled)"
        )
    needed = ["PatientWeight", "RadionuclideTotalDose", "RadionuclideHalfLife"]
    missing = [name for name in needed if not tags.get(name) or float(tags[name]) <= 0]
    scan = _scan_time(tags)
    injection = _injection(tags, scan[0] if scan else tags.get("SeriesDate"))
    if injection is None:
        missing.append("RadiopharmaceuticalStartTime")
    if scan is None and decay == "START":
        missing.append("SeriesTime or AcquisitionTime")
    if missing:
        raise ValueError(
            "cannot convert the PET from Bq/mL to SUV: missing or zero "
            + ", ".join(missing)
            + " (PatientWeight, RadiopharmaceuticalInformationSequence and the series time "
            "are needed)"
        )
    dt = 0.0
    if decay == "START" and scan is not None and injection is not None:
        dt = _elapsed(injection, scan)
        if dt < 0:
            raise ValueError(f"cannot compute SUV: the injection is {-dt:.0f} s after the scan")
    weight_g = float(tags["PatientWeight"]) * 1000.0
    half_life = float(tags["RadionuclideHalfLife"])
    decayed = float(tags["RadionuclideTotalDose"]) * 2.0 ** (-dt / half_life)
    return SuvFactor(weight_g / decayed, dt, decayed, weight_g, decay)


def to_suv_bw(volume: Volume) -> Volume:
    """`volume` (PET in Bq/mL, with `metadata["pet_suv_tags"]` from the DICOM reader) in
    SUVbw; the conversion is added to `metadata["derivation_notes"]`. ValueError for any
    other unit or when a needed tag is missing."""
    if volume.unit != "BQML":
        raise ValueError(f"only a PET in Bq/mL (BQML) converts to SUV, got {volume.unit!r}")
    suv = suv_bw_factor(dict(volume.metadata.get("pet_suv_tags") or {}))
    window = volume.window
    if window is not None:
        window = Window(window.center * suv.factor, window.width * suv.factor)
    notes = [*volume.metadata.get("derivation_notes", []), suv.describe()]
    return replace(
        volume,
        array=volume.array * suv.factor,
        unit="SUV",
        window=window,
        metadata={**volume.metadata, "derivation_notes": notes, "suv_factor": suv.factor},
    )
