"""Credentials from a file or the environment, never the command line; TLS settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsr.pacs.connection import (
    Credentials,
    TlsOptions,
    check_url,
    connect,
    load_credentials,
)


def write_secret(path: Path, content: dict[str, str], mode: int = 0o600) -> Path:
    path.write_text(json.dumps(content))
    path.chmod(mode)
    return path


def test_credentials_from_file_then_environment(tmp_path: Path) -> None:
    basic = write_secret(tmp_path / "basic.json", {"username": "ana", "password": "s3cret"})
    assert load_credentials(basic, {}) == Credentials("ana", "s3cret")
    token = write_secret(tmp_path / "token.json", {"token": "abc"})
    assert load_credentials(None, {"MEDSR_PACS_CREDENTIALS": str(token)}).token == "abc"
    env = {"MEDSR_PACS_USERNAME": "bo", "MEDSR_PACS_PASSWORD": "pw"}
    assert load_credentials(None, env) == Credentials("bo", "pw")
    assert load_credentials(None, {"MEDSR_PACS_TOKEN": "t"}).kind == "token"
    assert load_credentials(None, {}).kind == "none"
    # the file wins over the environment; secrets never show in a repr
    assert load_credentials(basic, env).username == "ana"
    assert "s3cret" not in repr(load_credentials(basic, {}))


def test_bad_credentials_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both"):
        load_credentials(None, {"MEDSR_PACS_USERNAME": "bo"})
    with pytest.raises(ValueError, match="username"):
        load_credentials(write_secret(tmp_path / "c.json", {"user": "x"}), {})
    (tmp_path / "bad.json").write_text("user=x")
    with pytest.raises(ValueError, match="not JSON"):
        load_credentials(tmp_path / "bad.json", {})
    with pytest.raises(FileNotFoundError):
        load_credentials(tmp_path / "missing.json", {})
    shared = write_secret(tmp_path / "s.json", {"token": "t"}, mode=0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        load_credentials(shared, {})


def test_url_checks() -> None:
    assert check_url("https://pacs.example.org/dicom-web/") == "https://pacs.example.org/dicom-web"
    with pytest.raises(ValueError, match="process lists"):
        check_url("https://ana:pw@pacs.example.org/dicom-web")
    with pytest.raises(ValueError, match="http"):
        check_url("pacs.example.org/dicom-web")


def test_connect_passes_auth_and_tls(tmp_path: Path) -> None:
    pytest.importorskip("dicomweb_client")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    client = connect(
        "https://pacs.example.org/dicom-web",
        Credentials("ana", "pw"),
        TlsOptions(ca_bundle=str(bundle)),
    )
    assert client._session.auth == ("ana", "pw")
    assert client._session.verify == str(bundle)
    with pytest.warns(UserWarning, match="verification is off"):
        insecure = connect("https://pacs.example.org/dicom-web", tls=TlsOptions(verify=False))
    assert insecure._session.verify is False
    with pytest.warns(UserWarning, match="plain http"):
        bearer = connect("http://pacs.example.org/dicom-web", Credentials(token="t"))
    assert bearer._session.headers["Authorization"] == "Bearer t"
    with pytest.raises(OSError, match="CA bundle"):
        connect("https://x.org/dicom-web", tls=TlsOptions(ca_bundle=str(tmp_path / "no.pem")))
