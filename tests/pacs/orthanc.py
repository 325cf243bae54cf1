"""Helpers for the Orthanc fixture (conftest.py): finding Orthanc and its DICOMweb plugin,
talking to its REST API, and real CT series to seed it with."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

REQUIRED = bool(os.environ.get("MEDSR_REQUIRE_PACS"))
INSTALL = "apt-get install -y orthanc orthanc-dicomweb (or make pacs-server)"


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason}: {INSTALL}; MEDSR_REQUIRE_PACS is set", pytrace=False)
    pytest.skip(f"{reason}: {INSTALL}; set MEDSR_REQUIRE_PACS=1 to make this a failure")


def orthanc_binary() -> Path | None:
    found = os.environ.get("MEDSR_ORTHANC") or shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    return Path(found) if Path(found).is_file() else None


def dicomweb_plugin() -> Path | None:
    """The plugin's shared library, as the orthanc-dicomweb package lists it."""
    if os.environ.get("MEDSR_ORTHANC_DICOMWEB"):
        return Path(os.environ["MEDSR_ORTHANC_DICOMWEB"])
    listed: list[str] = []
    if shutil.which("dpkg"):
        done = subprocess.run(
            ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, check=False
        )
        listed = done.stdout.splitlines() if done.returncode == 0 else []
    candidates = [Path(p) for p in listed if ".so" in Path(p).name and "DicomWeb" in p]
    candidates += sorted(Path("/usr/share/orthanc/plugins").glob("*DicomWeb*.so*"))
    return next((p for p in candidates if p.is_file()), None)


def free_ports(count: int) -> list[int]:
    """Ports free on the loopback now (all probes held open at once, so they differ)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@dataclass
class Orthanc:
    """A running Orthanc: REST at `url`, DICOMweb at `dicomweb`, basic auth `auth`."""

    url: str
    auth: tuple[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a `medsr pacs` subprocess: the credentials, one thread."""
        user, password = self.auth
        return {
            **os.environ,
            "MEDSR_PACS_USERNAME": user,
            "MEDSR_PACS_PASSWORD": password,
            "OMP_NUM_THREADS": "1",
        }

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        response = requests.request(method, self.url + path, auth=self.auth, timeout=60, **kwargs)
        response.raise_for_status()
        kind = response.headers.get("content-type", "")
        return response.json() if kind.startswith("application/json") else response.content

    def upload(self, dataset: Dataset | Path) -> str:
        """POST /instances; returns Orthanc's instance id."""
        if isinstance(dataset, Path):
            data = dataset.read_bytes()
        else:
            buffer = io.BytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
            data = buffer.getvalue()
        answer = self.rest("POST", "/instances", data=data)
        assert answer["Status"] == "Success", answer
        return str(answer["ID"])

    def snapshot(self) -> dict[str, str]:
        """Every stored instance id -> the MD5 of its DICOM file."""
        return {
            uid: self.rest("GET", f"/instances/{uid}/attachments/dicom/md5").decode()
            for uid in self.rest("GET", "/instances")
        }

    def study_uids(self) -> list[str]:
        return [
            self.rest("GET", f"/studies/{study}")["MainDicomTags"]["StudyInstanceUID"]
            for study in self.rest("GET", "/studies")
        ]

    def series_uids(self, study_uid: str | None = None) -> dict[str, int]:
        """SeriesInstanceUID -> number of instances (of one study, or all)."""
        found: dict[str, int] = {}
        for series_id in self.rest("GET", "/series"):
            series = self.rest("GET", f"/series/{series_id}")
            study = self.rest("GET", f"/studies/{series['ParentStudy']}")
            if study_uid is None or study["MainDicomTags"]["StudyInstanceUID"] == study_uid:
                found[series["MainDicomTags"]["SeriesInstanceUID"]] = len(series["Instances"])
        return found

    def datasets(self, series_uid: str) -> list[Dataset]:
        """The stored files of a series, sorted by InstanceNumber."""
        (series_id,) = self.rest(
            "POST", "/tools/lookup", data=series_uid.encode()
        )  # [{"ID": ..., "Type": "Series"}]
        ids = self.rest("GET", f"/series/{series_id['ID']}")["Instances"]
        read = [pydicom.dcmread(io.BytesIO(self.rest("GET", f"/instances/{i}/file"))) for i in ids]
        return sorted(read, key=lambda ds: int(ds.get("InstanceNumber", 0)))


def wait_until_up(server: Orthanc) -> None:
    import requests

    deadline = time.monotonic() + 60
    while True:
        if server.process.poll() is not None:
            pytest.fail(f"Orthanc exited ({server.process.returncode}):\n{server.log.read_text()}")
        try:
            plugins = server.rest("GET", "/plugins")
            if "dicom-web" in plugins:
                return
            pytest.fail(f"Orthanc runs without its DICOMweb plugin (plugins: {plugins})")
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"Orthanc did not start:\n{server.log.read_text()}"
        time.sleep(0.2)


def ct_small() -> Dataset:
    return pydicom.dcmread(get_testdata_file("CT_small.dcm"))


def ct_series(slices: int, study: Dataset | None = None, seed: int = 0) -> list[Dataset]:
    """A new series of `slices` real CT_small images stacked along z (new series and SOP
    UIDs, positions 5 mm apart), in CT_small's study (or `study`'s)."""
    series_uid = generate_uid(entropy_srcs=[f"medsr-test-series-{seed}"])
    out = []
    for k in range(slices):
        ds = ct_small()
        if study is not None:
            ds.StudyInstanceUID = study.StudyInstanceUID
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 10 + seed
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"medsr-test-{seed}-{k}"])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 5.0 * k]
        ds.SliceLocation = z + 5.0 * k
        out.append(ds)
    return out
