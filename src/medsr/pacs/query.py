"""Which series to process: a QIDO-RS search for series by patient, study, modality, date.

medsr's own outputs (SeriesDescription starting "medsr RESEARCH USE ONLY", as the derived
DICOM writer names them) and non-image series (structured reports, presentation states,
segmentations, RT objects) never match, so a watch loop does not enhance its own results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient

DERIVED_PREFIX = "medsr RESEARCH USE ONLY"
NON_IMAGE = frozenset({"SR", "PR", "KO", "SEG", "REG", "RTSTRUCT", "RTPLAN", "RTDOSE", "DOC"})
_DATE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")
_TAGS = {
    "StudyInstanceUID": "0020000D",
    "SeriesInstanceUID": "0020000E",
    "Modality": "00080060",
    "PatientID": "00100020",
    "StudyDate": "00080020",
    "SeriesDescription": "0008103E",
    "SeriesNumber": "00200011",
    "NumberOfSeriesRelatedInstances": "00201209",
}


@dataclass(frozen=True)
class Selection:
    """QIDO-RS matching keys; `date` is a StudyDate `YYYYMMDD` or a range `YYYYMMDD-YYYYMMDD`
    (either end may be left open)."""

    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    modality: str | None = None
    date: str | None = None

    def __post_init__(self) -> None:
        if self.date is not None and (not self.date or not _DATE.match(self.date)):
            raise ValueError(f"--date must be YYYYMMDD or YYYYMMDD-YYYYMMDD, got {self.date!r}")
        if self.is_empty:
            raise ValueError(
                "select what to process: --patient-id, --study, --series, --modality or --date"
            )

    @property
    def is_empty(self) -> bool:
        keys = (self.patient_id, self.study_uid, self.series_uid, self.modality, self.date)
        return all(value is None for value in keys)

    def filters(self) -> dict[str, str]:
        """Matching keys other than the study (which goes into the QIDO path). A lone `*`
        matches everything, so it is left out: some servers (Orthanc's DICOMweb plugin 1.7)
        do not decode the escaped `%2A` a client sends."""
        pairs = {
            "PatientID": self.patient_id,
            "SeriesInstanceUID": self.series_uid,
            "Modality": self.modality,
            "StudyDate": self.date,
        }
        return {key: value for key, value in pairs.items() if value not in (None, "*")}


@dataclass(frozen=True)
class SeriesRef:
    """A series found on the PACS."""

    study_uid: str
    series_uid: str
    modality: str = ""
    patient_id: str = ""
    study_date: str = ""
    description: str = ""
    instances: int | None = None


def _value(item: dict[str, Any], keyword: str) -> Any:
    values = item.get(_TAGS[keyword], {}).get("Value") or [None]
    return values[0]


def _ref(item: dict[str, Any], study_uid: str | None) -> SeriesRef:
    """A QIDO-RS result; some servers leave the study out of a study's series."""
    count = _value(item, "NumberOfSeriesRelatedInstances")
    return SeriesRef(
        study_uid=str(_value(item, "StudyInstanceUID") or study_uid),
        series_uid=str(_value(item, "SeriesInstanceUID")),
        modality=str(_value(item, "Modality") or ""),
        patient_id=str(_value(item, "PatientID") or ""),
        study_date=str(_value(item, "StudyDate") or ""),
        description=str(_value(item, "SeriesDescription") or ""),
        instances=None if count is None else int(count),
    )


def find_series(client: DICOMwebClient, selection: Selection) -> list[SeriesRef]:
    """Matching image series, medsr's outputs left out, sorted by (study, series) UID so
    every process of a torchrun job sees the same order."""
    found = client.search_for_series(
        study_instance_uid=selection.study_uid,
        search_filters=selection.filters(),
        fields=list(_TAGS),
        get_remaining=True,
    )
    refs = {ref.series_uid: ref for ref in (_ref(item, selection.study_uid) for item in found)}
    return sorted(
        (
            ref
            for ref in refs.values()
            if ref.modality.upper() not in NON_IMAGE
            and not ref.description.startswith(DERIVED_PREFIX)
        ),
        key=lambda ref: (ref.study_uid, ref.series_uid),
    )


def instance_uids(client: DICOMwebClient, study_uid: str, series_uid: str) -> set[str]:
    """SOP Instance UIDs the server holds in a series (empty when it has none)."""
    from requests import HTTPError

    try:
        found = client.search_for_instances(
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            fields=["00080018"],
            get_remaining=True,
        )
    except HTTPError as error:
        if error.response is not None and error.response.status_code == 404:
            return set()
        raise
    return {str(item["00080018"]["Value"][0]) for item in found if "00080018" in item}
