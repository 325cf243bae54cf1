"""The page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Uploads a DICOM, waits for the result, checks its size and pixels on the page, toggles the
swipe slider and the consistency map, downloads the derived DICOM; on a CT reads the HU value
under the cursor, draws an ROI (mean/SD checked against numpy), checks the scale bar, the
orientation letters and the tag panel; uploads a ~2000 px radiograph, sees the progress bar
advance, cancels (the model stops), uploads again and finishes; in CT+PET mode uploads a CT
and a PET, checks the fused overlay and its alpha slider, downloads the fused PNG. Every
upload leaves the model to the server (auto), and the test checks the pick fits the image.
The served models are tiny random-weight ones under the shipped names, so `auto_model`'s
choice is served; the radiograph model sleeps per tile so that there is time to cancel.
Saves screenshots to `$MEDSR_TEST_ARTIFACTS` (default `out/test-artifacts/`). Skipped only
when Chromium is absent and MEDSR_REQUIRE_E2E is unset (`make test` sets it, so CI fails
without the browser).
"""

from __future__ import annotations

import io
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

CHROMIUM = Path(os.environ.get("MEDSR_CHROMIUM", "/usr/bin/chromium"))
REQUIRED = bool(os.environ.get("MEDSR_REQUIRE_E2E"))
ARTIFACTS = Path(os.environ.get("MEDSR_TEST_ARTIFACTS", "out/test-artifacts"))
TIMEOUT_MS = 300_000  # a result takes seconds alone; minutes on a CPU shared with trainings
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists() and not REQUIRED:
    pytest.skip(
        f"{CHROMIUM} not found (apt-get install chromium; set MEDSR_REQUIRE_E2E=1 to "
        "make this a failure)",
        allow_module_level=True,
    )
if not REQUIRED:
    pytest.importorskip("playwright", reason="pip install -e '.[e2e]'")
    pytest.importorskip("uvicorn", reason="pip install -e '.[web]'")
import uvicorn  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from medsr.inference import Predictor  # noqa: E402
from medsr.inference.fusion import FusionPredictor  # noqa: E402
from medsr.web.app import create_app  # noqa: E402
from medsr.web.limits import Settings  # noqa: E402


class SlowRun:
    """A tile runner that sleeps `seconds` per tile (time to see progress and cancel) and
    counts its calls."""

    def __init__(self, run: Any, seconds: float) -> None:
        self.run, self.seconds, self.calls = run, seconds, 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds * len(batch))
        self.calls += 1
        return np.asarray(self.run(batch))


@pytest.fixture(scope="module")
def slow_run(checkpoints: dict[str, Path]) -> SlowRun:
    return SlowRun(Predictor.load(str(checkpoints["radiograph"])).run, 0.08)


@pytest.fixture(scope="module")
def server(checkpoints: dict[str, Path], slow_run: SlowRun) -> Iterator[str]:
    """The app on a free loopback port, in a thread; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fusion = FusionPredictor.load(str(checkpoints["fusion"]))
    radiograph = replace(Predictor.load(str(checkpoints["radiograph"])), run=slow_run)
    app = create_app(
        {
            "ct-ldct-x4": Predictor.load(str(checkpoints["ct"])),
            "xray-x2": radiograph,
            "fusion-petct-x4": fusion,
        },
        # no 504 on a CPU shared with trainings; 256 px tiles (not the default "auto",
        # which runs this radiograph in 4 tiles) so the per-tile sleep leaves time to
        # watch the bar advance and to cancel between tiles
        Settings(timeout_s=3600, tile_size=256),
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    assert CHROMIUM.exists(), f"{CHROMIUM} missing: apt-get install -y chromium (CI requires it)"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            accept_downloads=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _pixel(page: Page, canvas: str, fx: float, fy: float) -> list[int]:
    """RGBA of `canvas` at fractions (fx, fy) of its size."""
    script = """([id, fx, fy]) => { const c = document.getElementById(id);
        return Array.from(c.getContext('2d').getImageData(Math.floor(fx * c.width),
            Math.floor(fy * c.height), 1, 1).data); }"""
    result: Any = page.evaluate(script, [canvas, fx, fy])
    return list(result)


def test_upload_dicom_view_swipe_and_download(server: str, page: Page, tmp_path: Path) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    assert "RESEARCH USE ONLY" in page.locator("#banner").inner_text()
    models = page.locator("#model option").all_inner_texts()  # single-image models only
    assert models[0] == "auto: picked from the image" and len(models) == 3

    page.set_input_files("#files", get_testdata_file("CT_small.dcm"))
    page.click("#run")
    size = page.locator("#result-size")
    size.filter(has_text="512 × 512").wait_for(timeout=TIMEOUT_MS)
    assert size.get_attribute("data-width") == "512" and size.get_attribute("data-height") == "512"
    assert "Done" in page.locator("#status").inner_text()
    _check_auto_model(page, "ct-ldct-x4", "CT")
    assert page.locator("#task-switch").is_visible()  # a fusion model is served
    assert not page.locator("#fused-pane").is_visible()
    centre = _pixel(page, "right", 0.5, 0.5)
    assert centre[3] == 255 and max(centre[:3]) > 0  # the result is drawn, not black
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_side_by_side.png"))

    page.select_option("#preset", "400,1800")  # bone window
    assert page.input_value("#center") == "400" and page.input_value("#width") == "1800"
    page.check("#mode-swipe")
    assert page.locator("#swipe-pane").is_visible() and not page.locator("#left").is_visible()
    page.locator("#swipe-position").fill("250")
    assert _pixel(page, "swipe", 0.25, 0.5)[:3] == [255, 213, 79]  # the divider moved there
    assert _pixel(page, "swipe", 0.5, 0.5)[:3] != [255, 213, 79]
    page.check("#show-consistency")
    assert page.locator("#swipe-caption").inner_text() == "consistency | result"
    page.locator("#swipe-position").fill("470")  # the divider inside the image
    assert "Consistency score" in page.locator("#consistency-info").inner_text()
    page.screenshot(path=str(ARTIFACTS / "web_swipe_consistency.png"))

    with page.expect_download() as info:
        page.click("#download-dicom")
    download = info.value
    assert download.suggested_filename == "CT_small_x4.dcm"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    ds = pydicom.dcmread(target)
    assert (ds.Rows, ds.Columns) == (512, 512) and "DERIVED" in ds.ImageType
    assert errors == []


def _coloured(page: Page, canvas: str) -> float:
    """The share of `canvas` pixels that are not grey (channels differ by more than 2)."""
    script = """(id) => { const c = document.getElementById(id);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) {
            if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 2) n++; }
        return n / (c.width * c.height); }"""
    return float(page.evaluate(script, canvas))


def _download_rgb(page: Page, link: str) -> np.ndarray:
    with page.expect_download() as info:
        page.click(link)
    path = info.value.path()
    return np.asarray(Image.open(io.BytesIO(Path(path).read_bytes())))


def test_ct_pet_mode_fuses_and_shows_the_overlay(
    server: str, page: Page, make_ct_pet: Callable[..., tuple[list[Path], list[Path]]]
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    assert not page.locator("#fusion-controls").is_visible()
    page.check("#task-fusion")
    assert page.locator("#fusion-controls").is_visible() and not page.locator("#drop").is_visible()
    assert page.locator("#model option").all_inner_texts() == ["fusion-petct-x4 (petct, x4)"]
    assert page.locator("#run").inner_text() == "Fuse"
    ct_paths, pet_paths = make_ct_pet(shape=(64, 96))
    page.set_input_files("#ct-files", [str(p) for p in ct_paths])
    assert page.locator("#run").is_disabled()  # no PET yet
    page.set_input_files("#pet-files", [str(p) for p in pet_paths])
    page.locator("#alpha").fill("0.6")
    page.click("#run")
    page.locator("#result-size").filter(has_text="96 × 64").wait_for(timeout=TIMEOUT_MS)
    assert "Done" in page.locator("#status").inner_text()
    _check_auto_model(page, "fusion-petct-x4", "PT")
    assert "RESEARCH USE ONLY" in page.locator("#banner").inner_text()
    assert page.locator("#fused-pane").is_visible()
    assert page.locator("#right-caption").inner_text() == "enhanced PET"
    assert "bicubic" in page.locator("#left-caption").inner_text()
    assert max(_pixel(page, "left", 0.5, 0.5)[:3]) > 0  # the PET input is drawn
    assert _coloured(page, "fused") > 0.2  # the hot PET over the CT fills the image
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_ct_pet.png"))
    fused = _download_rgb(page, "#download-fused")
    assert fused.shape == (64, 96, 3)
    assert (np.ptp(fused.astype(int), axis=2) > 0).mean() > 0.9  # coloured at alpha 0.6

    page.locator("#alpha").fill("0")  # CT alone: the view and the download turn grey
    assert page.locator("#alpha-value").inner_text() == "0.00"
    assert _coloured(page, "fused") == 0.0
    grey = _download_rgb(page, "#download-fused")
    assert grey.shape == (64, 96, 3) and np.ptp(grey.astype(int), axis=2).max() == 0
    page.check("#mode-swipe")
    caption = page.locator("#swipe-caption").inner_text()
    assert caption == "PET input on the CT grid (bicubic) | enhanced PET"
    assert page.locator("#fused-pane").is_visible() and not page.locator("#left").is_visible()
    assert errors == []


def test_unknown_spacing_is_shown_as_unknown(server: str, page: Page, tmp_path: Path) -> None:
    """A CT without PixelSpacing: the page says "spacing unknown", never a made-up "mm"."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelSpacing
    ds.save_as(tmp_path / "no_spacing.dcm", enforce_file_format=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    page.set_input_files("#files", str(tmp_path / "no_spacing.dcm"))
    page.click("#run")
    page.locator("#result-size").filter(has_text="512 × 512").wait_for(timeout=TIMEOUT_MS)
    info = page.locator("#result-info").inner_text()
    assert "spacing unknown" in info and " mm" not in info
    assert errors == []


def test_a_warning_of_the_job_is_shown_on_the_page(server: str, page: Page, tmp_path: Path) -> None:
    """A colour PNG is made grey with a warning: the page lists it, without server paths."""
    rgb = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    page.goto(server)
    page.set_input_files("#files", str(tmp_path / "colour.png"))
    page.click("#run")
    page.locator("#warnings li").filter(has_text="converted to grey").wait_for(timeout=TIMEOUT_MS)
    text = page.locator("#warnings").inner_text()
    assert "/tmp" not in text and "medsr-web" not in text


def _check_auto_model(page: Page, expected: str, modality: str) -> None:
    """The model the server picked is `expected`, is said on the page with its reason, and
    is made for the image's modality."""
    summary: Any = page.evaluate("() => state.summary")
    assert summary["model"]["id"] == expected, summary["model_choice"]
    assert modality in summary["model"]["modalities"] and summary["input"]["modality"] == modality
    text = page.locator("#model-choice").inner_text()
    assert f"Model: {expected}" in text
    assert "picked from the image" in text or expected.startswith("fusion")


def _radiograph(tmp_path: Path) -> tuple[Path, tuple[int, int]]:
    """The ~2000 px chest radiograph sample (RG1, 1955 x 1841, CR), else a 16-bit PNG of
    that size; its path and (height, width)."""
    from medsr.io.samples import is_available, sample_path

    if is_available("xray-chest-rg1"):
        return sample_path("xray-chest-rg1"), (1955, 1841)
    yy, xx = np.mgrid[:1955, :1841]
    array = (30000 + 20000 * np.sin(xx / 90.0) * np.cos(yy / 70.0)).astype(np.uint16)
    Image.fromarray(array).save(tmp_path / "chest.png")
    return tmp_path / "chest.png", (1955, 1841)


def _fraction(page: Page) -> float:
    return float(page.locator("#progress").get_attribute("data-fraction") or 0)


def test_radiograph_progress_cancel_and_run_again(
    server: str, page: Page, slow_run: SlowRun, tmp_path: Path
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    path, (height, width) = _radiograph(tmp_path)
    page.set_input_files("#files", str(path))
    page.click("#run")
    fraction = "(f) => Number(document.getElementById('progress').dataset.fraction) > f"
    page.wait_for_function(fraction, arg=0.05, timeout=TIMEOUT_MS)
    first = _fraction(page)
    page.wait_for_function(fraction, arg=first, timeout=TIMEOUT_MS)  # the bar advances
    assert 0 < first < _fraction(page) < 1
    text = page.locator("#progress-text").inner_text()
    assert "tiles" in text and "elapsed" in text and "left" in text, text
    assert "Model: xray-x2 (picked from the image" in page.locator("#model-choice").inner_text()
    page.click("#cancel")
    page.locator("#status").filter(has_text="Cancelled").wait_for(timeout=TIMEOUT_MS)
    assert not page.locator("#progress-box").is_visible()
    calls = slow_run.calls
    time.sleep(0.5)
    assert slow_run.calls == calls  # the model stopped, not just the page
    assert not page.locator("#run").is_disabled()

    page.click("#run")  # the same upload again, to the end
    status = page.locator("#status")
    status.filter(has_text=re.compile("Done|Failed")).wait_for(timeout=3 * TIMEOUT_MS)
    assert "Done" in status.inner_text(), status.inner_text()
    size = f"{2 * width} × {2 * height}"
    page.locator("#result-size").filter(has_text=size).wait_for(timeout=TIMEOUT_MS)
    _check_auto_model(page, "xray-x2", "CR" if path.suffix == ".dcm" else "OT")
    info = page.locator("#result-info").inner_text()
    assert f"input {width} × {height} px" in info  # width x height on both sides
    assert "spacing unknown" in info and " mm" not in info  # RG1 records no spacing
    assert page.locator("#right").get_attribute("data-scale-bar") == "spacing unknown"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_radiograph.png"))
    assert errors == []


def _hover(page: Page, canvas: str, fx: float, fy: float) -> None:
    box = page.locator(f"#{canvas}").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def test_ct_value_under_the_cursor_roi_scale_bar_letters_and_tags(server: str, page: Page) -> None:
    from medsr.io import read

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    page.set_input_files("#files", get_testdata_file("CT_small.dcm"))
    page.click("#run")
    page.locator("#result-size").filter(has_text="512 × 512").wait_for(timeout=TIMEOUT_MS)
    hu = read(get_testdata_file("CT_small.dcm")).array

    _hover(page, "right", 0.5, 0.45)
    readout = page.locator("#readout")
    assert "HU" in readout.inner_text()
    i, j = (
        int(readout.get_attribute("data-input-x") or -1),
        int(readout.get_attribute("data-input-y") or -1),
    )
    assert 0 <= i < 128 and 0 <= j < 128
    assert float(readout.get_attribute("data-input") or "nan") == pytest.approx(hu[j, i], abs=1e-3)
    assert f"input ({i}, {j}): " in readout.inner_text()

    right = page.locator("#right")
    assert right.get_attribute("data-orientation") == "R,L,A,P"
    bar = right.get_attribute("data-scale-bar") or ""
    assert bar.endswith((" mm", " cm")), bar
    width = float(page.evaluate("() => document.getElementById('right').width"))
    assert width / 12.5 <= float(right.get_attribute("data-scale-bar-px") or 0) <= width / 5

    page.check("#tool-roi")
    box = right.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 0.35 * box["width"], box["y"] + 0.35 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.55 * box["height"], steps=4)
    page.mouse.up()
    stats = page.locator("#roi-stats")
    assert (
        "mean" in stats.inner_text() and "SD" in stats.inner_text() and "HU" in stats.inner_text()
    )
    i0, j0, i1, j1 = map(int, (stats.get_attribute("data-input-box") or "").split(","))
    region = hu[j0:j1, i0:i1].astype(np.float64)
    assert region.size > 100
    assert float(stats.get_attribute("data-input-mean") or 0) == pytest.approx(
        region.mean(), rel=1e-4
    )
    assert float(stats.get_attribute("data-input-sd") or 0) == pytest.approx(
        region.std(ddof=1), rel=1e-3
    )

    assert page.locator("#tags-panel").is_visible()
    page.click("#tags-summary")
    page.fill("#tags-filter", "modality")
    rows = page.locator("#tags-table tr").all_inner_texts()
    assert any("(0008,0060)" in r and "CT" in r for r in rows), rows
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_ct_tools.png"))
    assert errors == []


def test_an_error_does_not_stay_after_switching_mode(
    server: str, page: Page, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    page.goto(server)
    page.set_input_files("#files", str(tmp_path / "notes.txt"))
    page.click("#run")
    status = page.locator("#status")
    status.filter(has_text="Failed: 415").wait_for(timeout=TIMEOUT_MS)
    page.check("#task-fusion")
    assert status.inner_text() == ""
