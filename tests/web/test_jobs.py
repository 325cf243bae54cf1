"""Jobs of `medsr serve`: progress that advances, an estimate, and a cancel or a timeout
that really stops the model (no more tiles run after it)."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from medsr.inference import Predictor  # noqa: E402
from medsr.web.app import create_app  # noqa: E402
from medsr.web.jobs import Cancelled, Job, JobStore, collecting_warnings  # noqa: E402
from medsr.web.limits import Settings, TimedOut  # noqa: E402

LOCAL = "http://127.0.0.1"
TILES = {"tile_size": 32, "overlap": 8}  # a 128 x 128 image: 5 x 5 = 25 tiles


class SlowRun:
    """A tile runner that takes `seconds` per tile and counts its calls and tiles."""

    def __init__(self, run: Any, seconds: float) -> None:
        self.run, self.seconds, self.calls, self.tiles = run, seconds, 0, 0
        self.lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds * len(batch))
        with self.lock:
            self.calls += 1
            self.tiles += len(batch)
        return np.asarray(self.run(batch))


def _png(shape: tuple[int, int] = (128, 128)) -> bytes:
    buffer = io.BytesIO()
    array = np.random.default_rng(0).integers(0, 65535, shape, dtype=np.uint16)
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def slow(checkpoints: dict[str, Path]) -> tuple[Predictor, SlowRun]:
    predictor = Predictor.load(str(checkpoints["xray"]))
    run = SlowRun(predictor.run, 0.04)
    return replace(predictor, run=run), run


def _wait(client: TestClient, job_id: str, until: Any, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status = client.get(f"/api/jobs/{job_id}").json()
        if until(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.02)


def test_a_job_reports_progress_then_its_result(slow: tuple[Predictor, SlowRun]) -> None:
    predictor, run = slow
    client = TestClient(create_app({"xray": predictor}, Settings(**TILES)), base_url=LOCAL)
    response = client.post("/api/jobs/enhance", files={"files": ("a.png", _png(), "image/png")})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] in ("queued", "running") and job["research_use_only"] is True
    middle = _wait(client, job["id"], lambda s: 5 <= s["tiles_done"] < 25)
    assert middle["tiles_total"] == 25 and middle["phase"] == "enhancing"
    assert 0 < middle["fraction"] < 1 and middle["remaining_s"] is not None
    assert middle["remaining_s"] > 0 and middle["elapsed_s"] > 0
    assert middle["model"]["id"] == "xray" and middle["model"]["auto"] is True
    done = _wait(client, job["id"], lambda s: s["state"] != "running")
    assert done["state"] == "done" and done["fraction"] == 1.0 and done["error"] is None
    summary = client.get(done["result"]).json()
    assert summary["output"]["shape"] == [256, 256] and summary["id"] == job["id"]
    assert run.tiles == 25 and run.calls >= 13  # >= progress_steps (20) calls: 2 tiles each


def test_cancel_stops_the_model_at_its_next_tiles(slow: tuple[Predictor, SlowRun]) -> None:
    predictor, run = slow
    client = TestClient(create_app({"xray": predictor}, Settings(**TILES)), base_url=LOCAL)
    job = client.post("/api/jobs/enhance", files={"files": ("a.png", _png(), "x")}).json()
    _wait(client, job["id"], lambda s: s["tiles_done"] >= 3)
    cancel = client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancel.status_code == 200 and cancel.json()["cancelling"] is True
    ended = _wait(client, job["id"], lambda s: s["state"] != "running")
    assert ended["state"] == "cancelled" and ended["result"] is None
    tiles = run.tiles
    time.sleep(0.3)
    assert run.tiles == tiles < 25  # nothing ran after the cancel took effect
    assert client.post(f"/api/jobs/{job['id']}/cancel").json()["cancelling"] is False
    again = client.post("/api/jobs/enhance", files={"files": ("a.png", _png(), "x")}).json()
    assert _wait(client, again["id"], lambda s: s["state"] != "running")["state"] == "done"


def test_a_timeout_stops_the_model_and_frees_the_worker(slow: tuple[Predictor, SlowRun]) -> None:
    predictor, run = slow
    settings = Settings(timeout_s=0.4, **TILES)  # type: ignore[arg-type]
    client = TestClient(create_app({"xray": predictor}, settings), base_url=LOCAL)
    response = client.post("/api/enhance", files={"files": ("a.png", _png(), "x")})
    assert response.status_code == 504 and "longer than 0.4 s" in response.json()["detail"]
    time.sleep(0.3)
    tiles = run.tiles
    time.sleep(0.3)
    assert run.tiles == tiles < 25


def test_a_failed_job_carries_the_status_and_message(checkpoints: dict[str, Path]) -> None:
    client = TestClient(create_app([str(checkpoints["ct"])]), base_url=LOCAL)
    png = {"files": ("a.png", _png((40, 48)), "x")}
    job = client.post("/api/jobs/enhance", files=png).json()
    ended = _wait(client, job["id"], lambda s: s["state"] not in ("queued", "running"))
    assert ended["state"] == "failed" and ended["error"]["status"] == 422
    assert "no model" in ended["error"]["detail"]
    assert client.get("/api/jobs/0123").status_code == 404


def _rgb_png(shape: tuple[int, int] = (128, 128)) -> bytes:
    buffer = io.BytesIO()
    array = np.random.default_rng(1).integers(0, 255, (*shape, 3), dtype=np.uint8)
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_jobs_warnings_reach_its_status_without_server_paths(
    checkpoints: dict[str, Path],
) -> None:
    # a colour upload is converted to grey with a warning (medsr.io.raster), each time: the
    # second job sees it too, though Python shows a warning once per code location
    client = TestClient(create_app([str(checkpoints["xray"])]), base_url=LOCAL)
    for _ in range(2):
        job = client.post("/api/jobs/enhance", files={"files": ("c.png", _rgb_png(), "x")})
        ended = _wait(client, job.json()["id"], lambda s: s["state"] not in ("queued", "running"))
        assert ended["state"] == "done", ended
        assert len(ended["warnings"]) == 1, ended["warnings"]
        line = ended["warnings"][0]
        assert "converted to grey" in line and "medsr-web" not in line and "/tmp" not in line
    grey = client.post("/api/jobs/enhance", files={"files": ("g.png", _png(), "x")}).json()
    assert _wait(client, grey["id"], lambda s: s["state"] == "done")["warnings"] == []


def test_warnings_go_to_the_job_of_the_thread_that_raised_them() -> None:
    import warnings

    jobs = [Job(str(i) * 32, "owner", "enhance") for i in range(2)]
    ready = threading.Barrier(2)

    def work(job: Job) -> None:
        with collecting_warnings(job):
            ready.wait()  # both threads collect at the same time
            warnings.warn(f"only for {job.id[:1]}", stacklevel=1)
            ready.wait()

    threads = [threading.Thread(target=work, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [job.warnings for job in jobs] == [["only for 0"], ["only for 1"]]
    with pytest.warns(UserWarning, match="outside any job"):  # other threads: as before
        warnings.warn("outside any job", stacklevel=1)
    assert all(len(job.warnings) == 1 for job in jobs)


def test_job_checks_cancel_and_deadline() -> None:
    job = Job("a" * 32, "owner", "enhance", timeout_s=60)
    job.start()
    job.enter("enhancing")
    job.on_tile(1, 4)
    assert job.status()["fraction"] == 0.25 and job.status()["remaining_s"] is not None
    assert job.cancel() is True
    with pytest.raises(Cancelled):
        job.on_tile(2, 4)
    late = Job("b" * 32, "owner", "enhance", timeout_s=1e-6)
    time.sleep(0.01)
    with pytest.raises(TimedOut):
        late.start()
    with pytest.raises(ValueError, match="phase"):
        job.enter("dreaming")


def test_job_store_drops_finished_jobs_first() -> None:
    store = JobStore(capacity=2, ttl_s=60)
    running, first, second = (Job(k * 32, "o", "enhance") for k in "abc")
    store.put(running)
    first.end("done", result_id="x")
    store.put(first)
    store.put(second)
    assert store.get(running.id) is running and store.get(second.id) is second
    with pytest.raises(KeyError):
        store.get(first.id)


@pytest.mark.parametrize(("steps", "batch"), [(5, 5), (20, 2), (25, 1), (100, 1)])
def test_in_steps_lowers_the_batch_not_the_tiles(
    checkpoints: dict[str, Path], steps: int, batch: int
) -> None:
    from medsr.image import Volume
    from medsr.web.service import in_steps

    predictor = Predictor.load(str(checkpoints["xray"]))
    volume = Volume(np.zeros((128, 128), np.float32), (1.0, 1.0))
    settings = Settings(progress_steps=steps, **TILES)  # type: ignore[arg-type]
    stepped, tile = in_steps(predictor, volume, settings)
    assert tile == 32 and stepped.plan((128, 128), 32, 8) == (32, batch)
    assert stepped.memory_budget <= predictor.memory_budget
    frugal = replace(predictor, memory_budget=1)
    assert in_steps(frugal, volume, settings) == (frugal, 32)  # a budget is never raised


def test_in_steps_resolves_auto_tiles_once(checkpoints: dict[str, Path]) -> None:
    """The default "auto": an image within the memory budget runs whole (one call per
    slice); a larger one gets the tile the full budget plans, kept while the budget is
    lowered for progress steps (re-planning under the lower budget would pick smaller
    tiles and change the output)."""
    from medsr.image import Volume
    from medsr.web.service import in_steps

    predictor = Predictor.load(str(checkpoints["xray"]))
    volume = Volume(np.zeros((128, 128), np.float32), (1.0, 1.0))
    settings = Settings()
    assert settings.tile_size == "auto"
    assert in_steps(predictor, volume, settings) == (predictor, None)
    tight = replace(predictor, memory_budget=int(predictor.bytes_per_pixel() * 64 * 64))
    planned, _ = tight.plan((128, 128), "auto", settings.overlap)
    stepped, tile = in_steps(tight, volume, settings)
    assert tile == planned is not None and tile < 128
    assert stepped.memory_budget <= tight.memory_budget
    assert stepped.plan((128, 128), tile, settings.overlap)[0] == tile


@pytest.mark.parametrize("tile", [32, 0, "big"])
def test_settings_refuse_a_bad_tile_size(tile: object) -> None:
    with pytest.raises(ValueError, match="tile_size must be"):
        Settings(tile_size=tile)  # type: ignore[arg-type]
