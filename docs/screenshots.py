"""Screenshots of the `medsr serve` page for the README: a CT, a chest radiograph, a CT+PET.

    python docs/screenshots.py [--out docs] [--radiograph-side 0]

Serves every installed model (as `medsr serve` does) on a free loopback port, drives
Debian's Chromium with Playwright (`make browser`; nothing is downloaded) and, leaving the
model to the server ("auto"), uploads:

* `web_ct.png`: the abdomen CT slice of pydicom-data (`ct-abdomen`, 512 x 512, HU), with
  the value under the cursor and a soft-tissue ROI;
* `web_radiograph.png`: the chest radiograph RG1 (`xray-chest-rg1`, 1955 x 1841 CR DICOM,
  no pixel spacing: the page says "spacing unknown"); `--radiograph-side N` area-reduces it
  to about N px (a 16-bit PNG, read as OT) for a quicker run;
* `web_ct_pet.png`: a PET simulated from that CT (`medsr.physics.pet.PetFromCT`, the `petct`
  task's defaults, seed 0) on the CT grid made 4 times coarser, both written as DICOM with
  one PatientID and FrameOfReferenceUID, enhanced and overlaid by `fusion-petct-x4`.

Needs the samples (`make sample-data`; pydicom-data) and the `web` and `e2e` extras.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}


@contextmanager
def serve() -> Iterator[str]:
    """The app with every installed model on a free loopback port; yields its URL."""
    import uvicorn

    from medsr.web.app import create_app
    from medsr.web.limits import Settings

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(None, Settings(timeout_s=1800))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def radiograph(folder: Path, side: int) -> Path:
    """RG1 as DICOM (the original), or area-reduced to about `side` px as a 16-bit PNG."""
    from PIL import Image

    from medsr.io.samples import load_sample, sample_path

    if side <= 0:
        return sample_path("xray-chest-rg1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "spacing unknown"
        image = load_sample("xray-chest-rg1").array
    factor = max(1, round(max(image.shape) / side))
    h, w = (s // factor * factor for s in image.shape)
    small = image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    path = folder / "chest_rg1.png"
    Image.fromarray(np.clip(small, 0, 65535).astype(np.uint16)).save(path)
    return path


def ct_pet(folder: Path) -> tuple[list[Path], list[Path]]:
    """The abdomen CT and a PET simulated from it, as two DICOM files (module doc)."""
    from pydicom.uid import generate_uid

    from medsr.image import Volume
    from medsr.inference.resample import coarse_geometry
    from medsr.io.dicom_write import write_dicom_series
    from medsr.io.samples import load_sample
    from medsr.physics.pet import PetFromCT

    source = load_sample("ct-abdomen")
    spacing = source.spacing[-1]
    sim = PetFromCT()(
        torch.from_numpy(source.array), spacing, torch.Generator().manual_seed(0), full_count=False
    )
    identity = {"PatientID": "SIMULATED-PETCT", "FrameOfReferenceUID": generate_uid()}
    ct = Volume(
        sim.ct.numpy(), (spacing, spacing), "CT", "HU", origin=source.origin, metadata=identity
    )
    grid = coarse_geometry(ct, 4)
    pet = Volume(
        sim.pet_low.numpy(),
        grid.spacing[1:],
        "PT",
        "SUV",
        origin=grid.origin,
        metadata=dict(identity),
    )
    return (
        write_dicom_series(ct, folder / "ct", prefix="ct"),
        write_dicom_series(pet, folder / "pet", prefix="pet"),
    )


def run(page, button: str = "#run") -> None:  # type: ignore[no-untyped-def]
    page.click(button)
    page.locator("#status").filter(has_text="Done").wait_for(timeout=1_800_000)
    page.wait_for_timeout(300)


def drag_roi(page, canvas: str, start: tuple[float, float], end: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
    box = page.locator(canvas).bounding_box()
    page.check("#tool-roi")
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=5)
    page.mouse.up()
    page.mouse.move(box["x"] + 0.62 * box["width"], box["y"] + 0.42 * box["height"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--radiograph-side", type=int, default=0)
    arguments = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from medsr.io.samples import sample_path

    arguments.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, serve() as url, sync_playwright() as pw:
        folder = Path(scratch)
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
        page.goto(url)

        page.set_input_files("#files", str(sample_path("ct-abdomen")))
        run(page)
        page.select_option("#preset", "50,400")
        drag_roi(page, "#right", (0.27, 0.5), (0.37, 0.58))  # liver
        page.screenshot(path=str(arguments.out / "web_ct.png"))
        print("web_ct.png:", page.locator("#model-choice").inner_text())

        page.check("#tool-pan")
        page.set_input_files("#files", str(radiograph(folder, arguments.radiograph_side)))
        run(page)
        box = page.locator("#right").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 0.35 * box["width"], box["y"] + 0.45 * box["height"])
        page.screenshot(path=str(arguments.out / "web_radiograph.png"))
        print("web_radiograph.png:", page.locator("#model-choice").inner_text())

        ct_files, pet_files = ct_pet(folder)
        page.check("#task-fusion")
        page.set_input_files("#ct-files", [str(p) for p in ct_files])
        page.set_input_files("#pet-files", [str(p) for p in pet_files])
        run(page)
        page.screenshot(path=str(arguments.out / "web_ct_pet.png"))
        print("web_ct_pet.png:", page.locator("#model-choice").inner_text())
        browser.close()


if __name__ == "__main__":
    main()
