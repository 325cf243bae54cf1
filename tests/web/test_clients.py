"""Result and job ids are not bearer tokens (issue 13): only the client that made them, by
its HttpOnly SameSite=Strict cookie, sees them; anyone else gets the 404 of an unknown id."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from medsr.inference import Predictor  # noqa: E402
from medsr.web.app import create_app  # noqa: E402
from medsr.web.clients import COOKIE, new_client_id  # noqa: E402

LOCAL = "http://127.0.0.1"


def _png() -> bytes:
    buffer = io.BytesIO()
    array = np.random.default_rng(0).integers(0, 65535, (40, 48), dtype=np.uint16)
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def app(checkpoints: dict[str, Path]) -> FastAPI:
    return create_app({"xray": Predictor.load(str(checkpoints["xray"]))})


def test_the_cookie_is_random_httponly_and_strict(app: FastAPI) -> None:
    first = TestClient(app, base_url=LOCAL).get("/api/models")
    second = TestClient(app, base_url=LOCAL).get("/api/models")
    header = first.headers["set-cookie"]
    assert header.startswith(f"{COOKIE}=") and "HttpOnly" in header
    assert "SameSite=Strict" in header and "Path=/" in header
    assert first.cookies[COOKIE] != second.cookies[COOKIE]
    assert len(first.cookies[COOKIE]) == 43  # 256 random bits
    client = TestClient(app, base_url=LOCAL)
    client.get("/api/models")
    assert "set-cookie" not in client.get("/api/models").headers  # kept, not reissued


def test_results_and_jobs_are_served_only_to_their_client(app: FastAPI) -> None:
    owner, other = TestClient(app, base_url=LOCAL), TestClient(app, base_url=LOCAL)
    other.get("/api/models")  # a client with its own cookie
    summary = owner.post("/api/enhance", files={"files": ("a.png", _png(), "x")}).json()
    urls = [
        f"/api/results/{summary['id']}",
        summary["data"]["output"],
        summary["downloads"]["png"],
        f"/api/jobs/{summary['id']}",
    ]
    for url in urls:
        assert owner.get(url).status_code == 200, url
        response = other.get(url)
        assert response.status_code == 404, url
        assert "expired or unknown" in response.json()["detail"]
    assert other.post(f"/api/jobs/{summary['id']}/cancel").status_code == 404
    assert other.delete(f"/api/results/{summary['id']}").status_code == 404
    assert owner.get(f"/api/results/{summary['id']}").status_code == 200  # still there

    forged = TestClient(app, base_url=LOCAL, cookies={COOKIE: new_client_id()})
    assert forged.get(f"/api/results/{summary['id']}").status_code == 404
    bare = TestClient(app, base_url=LOCAL, cookies={COOKIE: "not-a-valid-id"})
    response = bare.get(f"/api/results/{summary['id']}")
    assert response.status_code == 404 and COOKIE in response.headers["set-cookie"]
    assert owner.delete(f"/api/results/{summary['id']}").json()["deleted"] is True


def test_a_job_started_by_one_client_is_not_seen_by_another(app: FastAPI) -> None:
    owner, other = TestClient(app, base_url=LOCAL), TestClient(app, base_url=LOCAL)
    job = owner.post("/api/jobs/enhance", files={"files": ("a.png", _png(), "x")}).json()
    assert other.get(f"/api/jobs/{job['id']}").status_code == 404
    deadline = time.monotonic() + 30
    while (status := owner.get(f"/api/jobs/{job['id']}").json())["state"] != "done":
        assert time.monotonic() < deadline and status["state"] in ("queued", "running"), status
        time.sleep(0.02)
    assert other.get(status["result"]).status_code == 404
    assert owner.get(status["result"]).status_code == 200
