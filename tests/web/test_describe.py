"""What the viewer shows besides pixels: orientation letters, DICOM tags, sizes as W x H;
and through the API: a multi-series upload named as such, the model picked from the image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from medsr.image import Volume
from medsr.io import read
from medsr.web.describe import axis_letters, dicom_tags, orientation, size_text

CT_SMALL = Path(get_testdata_file("CT_small.dcm"))
LOCAL = "http://127.0.0.1"


@pytest.mark.parametrize(
    ("cosines", "letters"),
    [
        ([1, 0, 0], "L"),
        ([-1, 0, 0], "R"),
        ([0, -1, 0], "A"),
        ([0, 0, -1], "I"),
        ([0.8, 0.6, 0.0], "LP"),
        ([0.1, 0.0, 0.995], "S"),
    ],
)
def test_axis_letters(cosines: list[float], letters: str) -> None:
    assert axis_letters(np.array(cosines, dtype=float)) == letters


def test_an_axial_ct_reads_r_left_a_top() -> None:
    letters = orientation(read(CT_SMALL))
    assert letters == {"left": "R", "right": "L", "top": "A", "bottom": "P"}


def test_a_coronal_slice_and_an_image_without_orientation(tmp_path: Path) -> None:
    ds = pydicom.dcmread(CT_SMALL)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    path = tmp_path / "coronal.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert orientation(read(path)) == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    plain = Volume(np.zeros((8, 8), np.float32), (1.0, 1.0))
    assert orientation(plain) is None  # a PNG: no letters rather than guessed ones


def test_sizes_are_width_by_height() -> None:
    assert size_text((1538, 2493)) == "2493 × 1538 px"
    assert size_text([3, 64, 96]) == "96 × 64 px, 3 slices"


def test_dicom_tags_list_the_header_without_pixels(tmp_path: Path) -> None:
    tags = {t["keyword"]: t for t in dicom_tags(CT_SMALL)}
    assert tags["Modality"]["value"] == "CT" and tags["Modality"]["tag"] == "(0008,0060)"
    assert "PixelData" not in tags and tags["Rows"]["vr"] == "US"
    assert all(len(t["value"]) <= 120 for t in tags.values())
    assert dicom_tags(tmp_path / "missing.dcm") == []


pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from medsr.inference import Predictor  # noqa: E402
from medsr.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(checkpoints: dict[str, Path]) -> TestClient:
    models = {k: Predictor.load(str(checkpoints[k])) for k in ("ct", "xray")}
    return TestClient(create_app(models), base_url=LOCAL)


def _series(description: str, count: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    ds = pydicom.dcmread(CT_SMALL)
    ds.SeriesInstanceUID, ds.SeriesDescription = pydicom.uid.generate_uid(), description
    parts = []
    for k in range(count):
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.ImagePositionPatient = [-158.1, -179.0, -75.7 + 2.5 * k]
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        parts.append(("files", (f"{description}{k}.dcm", buffer.getvalue(), "application/dicom")))
    return parts


def test_several_series_are_named_not_called_malformed(client: TestClient) -> None:
    response = client.post("/api/enhance", files=_series("AXIAL", 2) + _series("SCOUT", 1))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "2 DICOM series" in detail and "'AXIAL' (2 files)" in detail
    assert "'SCOUT' (1 file)" in detail and "malformed" not in detail


def test_the_summary_holds_orientation_tags_and_sizes(client: TestClient) -> None:
    files = {"files": ("ct.dcm", CT_SMALL.read_bytes(), "application/dicom")}
    summary = client.post("/api/enhance", files=files).json()
    assert summary["orientation"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert any(t["keyword"] == "Modality" for t in summary["dicom_tags"])
    assert summary["input"]["size"] == "128 × 128 px"
    assert summary["output"]["size"] == "512 × 512 px"


def _png(shape: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    array = np.random.default_rng(0).integers(0, 65535, shape, dtype=np.uint16)
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_model_is_picked_from_the_image_and_says_why(client: TestClient) -> None:
    """No model named: a CT gets the CT model, a radiograph the radiograph model (no more
    422 for a chest X-ray because the default was a CT model)."""
    ct = {"files": ("ct.dcm", CT_SMALL.read_bytes(), "application/dicom")}
    chosen = client.post("/api/enhance", files=ct).json()["model_choice"]
    assert chosen["id"] == "ct" and chosen["auto"] is True
    assert "CT" in chosen["reason"] and "not served here" in chosen["reason"]
    png = {"files": ("cxr.png", _png((40, 60)), "image/png")}
    response = client.post("/api/enhance", files=png, data={"model": "auto"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_choice"]["id"] == "xray" and body["output"]["shape"] == [80, 120]
    assert body["input"]["spacing_known"] is False
    named = client.post("/api/enhance", files=png, data={"model": "xray"}).json()
    assert named["model_choice"] == {"id": "xray", "reason": "chosen by the user", "auto": False}
