"""`medsr serve` under hostile requests: Host and Origin checks, a JSON 500 with the
research-use header, no server paths in messages, inputs capped by output size, results
counted in bytes, header and body timeouts of the real server."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from medsr.inference import Predictor  # noqa: E402
from medsr.web.app import create_app, scrub  # noqa: E402
from medsr.web.limits import ResultStore, Settings  # noqa: E402

LOCAL = "http://127.0.0.1"


def _png(shape: tuple[int, int] = (40, 48)) -> bytes:
    buffer = io.BytesIO()
    array = np.random.default_rng(0).integers(0, 65535, shape, dtype=np.uint16)
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def xray(checkpoints: dict[str, Path]) -> Predictor:
    return Predictor.load(str(checkpoints["xray"]))


def _client(xray: Predictor, **settings: object) -> TestClient:
    return TestClient(create_app({"xray": xray}, Settings(**settings)), base_url=LOCAL)  # type: ignore[arg-type]


def test_only_loopback_hosts_by_default(xray: Predictor) -> None:
    client = _client(xray)
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
        assert client.get("/api/models", headers={"host": host}).status_code == 200
    refused = client.get("/api/models", headers={"host": "attacker.example:8000"})
    assert refused.status_code == 400 and "DNS rebinding" in refused.json()["detail"]
    assert refused.headers["x-research-use-only"] == "true"
    anywhere = _client(xray, allowed_hosts=("*",))
    assert anywhere.get("/api/models", headers={"host": "a.example"}).status_code == 200
    named = _client(xray, allowed_hosts=("scanner.lan",))
    assert named.get("/api/models", headers={"host": "scanner.lan:80"}).status_code == 200


def test_cross_origin_posts_are_refused(xray: Predictor) -> None:
    client = _client(xray)
    files = {"files": ("a.png", _png(), "image/png")}
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999"):
        response = client.post("/api/enhance", files=files, headers={"origin": origin})
        assert response.status_code == 403, origin
    same = client.post("/api/enhance", files=files, headers={"origin": LOCAL})
    assert same.status_code == 200, same.text
    assert client.post("/api/enhance", files=files).status_code == 200  # curl sends no Origin
    deleted = client.delete(f"/api/results/{same.json()['id']}", headers={"origin": "http://x"})
    assert deleted.status_code == 403


def test_a_fault_is_a_json_500_with_the_header(xray: Predictor, monkeypatch) -> None:
    import medsr.web.service as service

    def broken(*args: object) -> None:
        raise RuntimeError("bug at /srv/medsr/secret/path.py")

    monkeypatch.setattr(service.Predictor, "enhance", broken)
    response = _client(xray).post("/api/enhance", files={"files": ("a.png", _png(), "x")})
    assert response.status_code == 500 and response.headers["x-research-use-only"] == "true"
    body = response.json()
    assert body["research_use_only"] is True and "/srv" not in body["detail"]


def test_messages_name_no_server_path(xray: Predictor) -> None:
    text = "cannot read ('/tmp/medsr-web-x1/input/input_0000.dcm') on POST /api/enhance"
    assert scrub(text) == "cannot read ('input_0000.dcm') on POST /api/enhance"
    client = _client(xray)
    bad = [("bad.dcm", b"\0" * 300), ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 50)]
    for name, data in bad:
        response = client.post("/api/enhance", files={"files": (name, data, "x")})
        assert response.status_code == 422, response.text
        assert "/tmp" not in response.text and "medsr-web" not in response.text


def test_input_cap_follows_the_output_size(xray: Predictor) -> None:
    client = _client(xray, max_output_pixels=4 * 40 * 48 - 1)  # x2: a 40 x 48 input is too big
    response = client.post("/api/enhance", files={"files": ("a.png", _png(), "x")})
    assert response.status_code == 422 and "--max-output-megapixels" in response.text
    assert Settings(max_output_pixels=2**26).input_pixels(4) == 2048 * 2048
    tiny = _client(xray).post("/api/enhance", files={"files": ("t.png", _png((2, 9)), "x")})
    assert tiny.status_code == 422 and "at least 4 x 4" in tiny.text


def test_results_are_counted_in_bytes() -> None:
    store: ResultStore[str] = ResultStore(capacity=10, ttl_s=60, max_bytes=100)
    for key in "abc":
        store.put(key, key, 40)
    assert store.nbytes == 80
    with pytest.raises(KeyError):
        store.get("a")
    store.put("huge", "huge", 1000)  # the newest is kept alone
    assert store.get("huge") == "huge" and store.nbytes == 1000


@pytest.fixture
def server(xray: Predictor) -> Iterator[int]:
    """The app under uvicorn with `medsr serve`'s options, short timeouts, on a free port."""
    import uvicorn

    from medsr.web.server import uvicorn_options

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(header_timeout_s=0.5, body_timeout_s=0.5, max_connections=8)
    app = create_app({"xray": xray}, settings)
    options = uvicorn_options(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield port
    instance.should_exit = True
    thread.join(10)


def _exchange(port: int, data: bytes, wait: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(data)
        time.sleep(wait)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_slow_headers_are_cut_and_stalled_bodies_get_408(server: int) -> None:
    ok = _exchange(
        server, b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 0
    )
    assert ok.startswith(b"HTTP/1.1 200")
    start = time.monotonic()
    assert _exchange(server, b"GET /api/models HTTP/1.1\r\nHost: 127", 0) == b""  # closed
    assert time.monotonic() - start < 4
    head = b"POST /api/enhance HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
    head += b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n"
    answer = _exchange(server, head, 0)
    assert answer.startswith(b"HTTP/1.1 408") and b"stalled" in answer
