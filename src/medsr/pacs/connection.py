"""A DICOMweb client (the `dicomweb-client` package) with credentials and TLS settings.

Credentials never come from the command line, where `ps` and shell histories show them:
a JSON file (`{"username": ..., "password": ...}` or `{"token": ...}`, readable by its owner
only) named by `--credentials` or `MEDSR_PACS_CREDENTIALS`, else the environment variables
`MEDSR_PACS_USERNAME` + `MEDSR_PACS_PASSWORD` (HTTP basic) or `MEDSR_PACS_TOKEN` (bearer).
TLS: a CA bundle for a hospital's own certificate authority, a client certificate (PEM,
key included) for mutual TLS, or, for a test server only, no verification at all.
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient

CREDENTIALS_ENV = "MEDSR_PACS_CREDENTIALS"
USERNAME_ENV, PASSWORD_ENV, TOKEN_ENV = (
    "MEDSR_PACS_USERNAME",
    "MEDSR_PACS_PASSWORD",
    "MEDSR_PACS_TOKEN",
)
INSTALL_HINT = "install the pacs extra: pip install 'medsr[pacs]'"


@dataclass(frozen=True)
class Credentials:
    """HTTP basic (username, password), a bearer token, or nothing (an open server)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return "token" if self.token else "basic" if self.username else "none"


@dataclass(frozen=True)
class TlsOptions:
    """`ca_bundle`: PEM file of trusted authorities; `verify=False` skips the server check
    (test servers only); `client_cert`: PEM certificate and key for mutual TLS."""

    ca_bundle: str | None = None
    verify: bool = True
    client_cert: str | None = None


def load_credentials(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Credentials:
    """Credentials from `path` (or `$MEDSR_PACS_CREDENTIALS`), else the environment."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(CREDENTIALS_ENV)
    if path:
        return _read_file(Path(path))
    token = environ.get(TOKEN_ENV)
    username, password = environ.get(USERNAME_ENV), environ.get(PASSWORD_ENV)
    if token:
        return Credentials(token=token)
    if username or password:
        if not (username and password):
            raise ValueError(f"set both {USERNAME_ENV} and {PASSWORD_ENV}, or neither")
        return Credentials(username, password)
    return Credentials()


def _read_file(path: Path) -> Credentials:
    try:
        mode = path.stat().st_mode
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"credentials file {path} is not JSON ({error.msg})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f"credentials file {path} is readable by other users (chmod 600 {path})",
            stacklevel=3,
        )
    if not isinstance(data, dict) or not (
        data.get("token") or (data.get("username") and data.get("password"))
    ):
        raise ValueError(
            f"credentials file {path} needs {{'username': ..., 'password': ...}} or "
            "{'token': ...}"
        )
    if data.get("token"):
        return Credentials(token=str(data["token"]))
    return Credentials(str(data["username"]), str(data["password"]))


def check_url(url: str) -> str:
    """The DICOMweb root URL without a trailing slash; refuses credentials inside it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"DICOMweb URL must be http(s)://host[:port]/path, got {url!r}")
    if parts.username or parts.password:
        raise ValueError(
            "credentials in the URL would show in process lists; use a credentials file "
            f"or {USERNAME_ENV} / {PASSWORD_ENV}"
        )
    return url.rstrip("/")


def connect(
    url: str,
    credentials: Credentials | None = None,
    tls: TlsOptions | None = None,
    timeout_s: float = 120.0,
) -> DICOMwebClient:
    """A `DICOMwebClient` for the server's DICOMweb root, e.g. http://host:8042/dicom-web."""
    try:
        from dicomweb_client.api import DICOMwebClient
        from dicomweb_client.session_utils import add_certs_to_session, create_session
    except ImportError as error:
        raise ImportError(f"{error}; {INSTALL_HINT}") from None
    url = check_url(url)
    credentials, tls = credentials or Credentials(), tls or TlsOptions()
    session = create_session()
    headers: dict[str, str] = {}
    if credentials.token:
        headers["Authorization"] = f"Bearer {credentials.token}"
    elif credentials.username:
        session.auth = (credentials.username, credentials.password or "")
    loopback = urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1")
    if url.startswith("http:") and credentials.kind != "none" and not loopback:
        warnings.warn(f"sending credentials over plain http to {url}", stacklevel=2)
    add_certs_to_session(session, ca_bundle=tls.ca_bundle, cert=tls.client_cert)
    if not tls.verify:
        warnings.warn("TLS certificate verification is off (test servers only)", stacklevel=2)
        session.verify = False
    return DICOMwebClient(url, session=session, headers=headers or None, timeout=timeout_s)
