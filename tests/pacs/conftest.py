"""A real PACS for the tests: Debian's Orthanc with its DICOMweb plugin, one per test.

The fixture starts `/usr/sbin/Orthanc` itself (the Debian service need not run) on free
loopback HTTP and DICOM ports, with a temporary storage folder and a generated
configuration that enables the DICOMweb plugin and one user, and stops it afterwards.
Without Orthanc the tests that need it are skipped, unless MEDSR_REQUIRE_PACS is set
(`make test` sets it after `make pacs-server` installed Orthanc): then they fail.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pacs.orthanc import (
    Orthanc,
    dicomweb_plugin,
    free_ports,
    orthanc_binary,
    unavailable,
    wait_until_up,
)


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    """A fresh Orthanc with DICOMweb on free loopback ports; stopped at teardown."""
    binary, plugin = orthanc_binary(), dicomweb_plugin()
    if binary is None:
        unavailable("Orthanc not found")
    if plugin is None:
        unavailable("the Orthanc DICOMweb plugin (orthanc-dicomweb) not found")
    try:
        import dicomweb_client  # noqa: F401
        import requests  # noqa: F401
    except ImportError:
        unavailable("dicomweb-client not installed (pip install -e '.[pacs]')")
    assert binary is not None and plugin is not None
    folder = tmp_path / "orthanc"
    (folder / "storage").mkdir(parents=True)
    http_port, dicom_port = free_ports(2)
    auth = ("medsr-test", secrets.token_hex(8))
    config = {
        "Name": "medsr-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "MEDSRTEST",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {auth[0]: auth[1]},
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Host": f"127.0.0.1:{http_port}"},
        "SaveJobs": False,
        "StorageCompression": False,
        "OverwriteInstances": False,
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=2))
    log = folder / "orthanc.log"
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [str(binary), str(folder / "orthanc.json")],
            cwd=folder,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    server = Orthanc(f"http://127.0.0.1:{http_port}", auth, process, log)
    try:
        wait_until_up(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
