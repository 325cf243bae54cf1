"""`medsr serve` JSON API through FastAPI's TestClient: success paths and every refusal."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import tempfile
import threading
import time
import zipfile
from importlib.resources import files as package_files
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from medsr.web.app import create_app  # noqa: E402
from medsr.web.limits import Busy, Settings, TimedOut, WorkerPool  # noqa: E402

CT_SMALL = Path(get_testdata_file("CT_small.dcm"))  # 128 x 128 CT, HU


@pytest.fixture(scope="module")
def client(checkpoints: dict[str, Path]) -> TestClient:
    return TestClient(
        create_app({"ct": _load(checkpoints["ct"]), "xray": _load(checkpoints["xray"])}),
        base_url="http://127.0.0.1",
    )


def _load(path: Path):  # type: ignore[no-untyped-def]
    from medsr.inference import Predictor

    return Predictor.load(str(path))


def _dicom(name: str = "ct.dcm") -> tuple[str, bytes, str]:
    return (name, CT_SMALL.read_bytes(), "application/dicom")


def _raster(fmt: str, shape: tuple[int, int] = (40, 48), seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 50000, shape[1])[None] + 4000 * rng.standard_normal(shape)
    array = np.clip(ramp, 0, 65535).astype(np.uint16)
    if fmt == "JPEG":
        array = (array // 256).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def _series(count: int = 3) -> list[tuple[str, tuple[str, bytes, str]]]:
    """`count` slices of one series: CT_small with positions 2.5 mm apart."""
    ds = pydicom.dcmread(CT_SMALL)
    parts = []
    for k in range(count):
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-158.1, -179.0, -75.7 + 2.5 * k]
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        parts.append(("files", (f"slice{k}.dcm", buffer.getvalue(), "application/dicom")))
    return parts


def test_models_lists_each_model_with_task_scale_and_research_flag(client: TestClient) -> None:
    response = client.get("/api/models")
    assert response.status_code == 200
    body = response.json()
    assert body["research_use_only"] is True
    assert response.headers["x-research-use-only"] == "true"
    assert {(m["id"], m["task"], m["scale"]) for m in body["models"]} == {
        ("ct", "ldct-x4", 4),
        ("xray", "x2", 2),
    }
    assert body["limits"]["max_upload_bytes"] == 64 * 2**20


def test_enhance_dicom_returns_x4_result_arrays_and_derived_dicom(client: TestClient) -> None:
    response = client.post("/api/enhance", files={"files": _dicom()}, data={"model": "ct"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["research_use_only"] is True
    assert body["input"]["shape"] == [128, 128] and body["output"]["shape"] == [512, 512]
    assert body["input"]["unit"] == "HU"
    assert body["output"]["spacing_mm"][0] == pytest.approx(body["input"]["spacing_mm"][0] / 4)
    assert np.isfinite(body["consistency"]["score"])
    data = client.get(body["data"]["output"], params={"slice": 0})
    assert data.headers["x-shape"] == "512,512"
    output = np.frombuffer(data.content, dtype="<f4").reshape(512, 512)
    assert output.min() == pytest.approx(body["output"]["range"][0])
    dicom = client.get(body["downloads"]["dicom"])
    assert dicom.headers["content-disposition"] == 'attachment; filename="ct_x4.dcm"'
    ds = pydicom.dcmread(io.BytesIO(dicom.content))
    source = pydicom.dcmread(CT_SMALL, stop_before_pixels=True)
    assert (ds.Rows, ds.Columns) == (512, 512)
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert "RESEARCH USE ONLY" in ds.SeriesDescription
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    # Integer HU (RescaleSlope 1), clipped to the physically possible -1024..3071 HU.
    assert float(ds.RescaleSlope) == 1.0
    assert np.array_equal(hu, np.clip(np.rint(output), -1024, 3071))
    png = Image.open(io.BytesIO(client.get(body["downloads"]["png"]).content))
    assert png.size == (512, 512) and png.mode.startswith("I")  # 16-bit


def test_ensemble_field_averages_the_model_over_flips_and_rotations(
    client: TestClient, checkpoints: dict[str, Path]
) -> None:
    from medsr.io.read import read

    def output_of(body: dict) -> np.ndarray:  # type: ignore[type-arg]
        data = client.get(body["data"]["output"], params={"slice": 0}).content
        return np.frombuffer(data, dtype="<f4").reshape(512, 512)

    plain, averaged = (
        client.post("/api/enhance", files={"files": _dicom()}, data=fields).json()
        for fields in ({"model": "ct"}, {"model": "ct", "ensemble": "true"})
    )
    assert (plain["ensemble"], averaged["ensemble"]) == (False, True)
    image = read(CT_SMALL)
    expected = _load(checkpoints["ct"]).with_geometric_ensemble().enhance(image).array
    np.testing.assert_allclose(output_of(averaged), expected, atol=1e-2)
    assert np.abs(output_of(averaged) - output_of(plain)).max() > 0.1


def test_dicom_series_is_enhanced_slice_by_slice_and_downloads_zip(client: TestClient) -> None:
    response = client.post("/api/enhance", files=_series(3), data={"model": "ct"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["input"]["shape"] == [3, 128, 128] and body["output"]["shape"] == [3, 512, 512]
    assert len(body["consistency"]["scores"]) == 3
    assert client.get(body["data"]["input"], params={"slice": 2}).headers["x-shape"] == "128,128"
    assert client.get(body["data"]["input"], params={"slice": 3}).status_code == 404
    archives = {}
    for fmt, suffix in (("dicom", ".dcm"), ("png", ".png")):
        archives[fmt] = zipfile.ZipFile(io.BytesIO(client.get(body["downloads"][fmt]).content))
        names = archives[fmt].namelist()
        assert len(names) == 3 and all(n.endswith(suffix) for n in names)
    slices = [
        pydicom.dcmread(io.BytesIO(archives["dicom"].read(n)))
        for n in sorted(archives["dicom"].namelist())
    ]
    assert len({ds.SeriesInstanceUID for ds in slices}) == 1
    z = [float(ds.ImagePositionPatient[2]) for ds in slices]
    assert np.diff(z) == pytest.approx([2.5, 2.5], abs=1e-3)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_raster_upload_with_radiograph_model_doubles_the_size(client: TestClient, fmt: str) -> None:
    name = f"image.{fmt.lower()}"
    response = client.post(
        "/api/enhance", files={"files": (name, _raster(fmt), "image/x")}, data={"model": "xray"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["output"]["shape"] == [80, 96]


def test_unknown_spacing_stays_unknown(client: TestClient) -> None:
    """A PNG and a DICOM without PixelSpacing: the summary says the spacing is unknown (the
    page shows "spacing unknown", not "0.250 mm") and the derived DICOM has none."""
    png = client.post(
        "/api/enhance",
        files={"files": ("x.png", _raster("PNG"), "image/png")},
        data={"model": "xray"},
    )
    assert png.status_code == 200, png.text
    assert png.json()["output"]["spacing_known"] is False
    ds = pydicom.dcmread(CT_SMALL)
    del ds.PixelSpacing
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    upload = ("ct.dcm", buffer.getvalue(), "application/dicom")
    response = client.post("/api/enhance", files={"files": upload}, data={"model": "ct"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert any("spacing unknown" in line for line in body["warnings"]), body["warnings"]
    assert body["output"]["spacing_known"] is False
    derived = pydicom.dcmread(io.BytesIO(client.get(body["downloads"]["dicom"]).content))
    assert "PixelSpacing" not in derived and "ImagePositionPatient" not in derived
    known = client.post("/api/enhance", files={"files": _dicom()}, data={"model": "ct"})
    assert known.json()["output"]["spacing_known"] is True
    script = (package_files("medsr.web") / "static" / "viewer.js").read_text()
    assert "spacing_known === false" in script and '"spacing unknown"' in script


def test_download_field_answers_with_the_png_file(client: TestClient) -> None:
    response = client.post(
        "/api/enhance", files={"files": _dicom()}, data={"model": "ct", "download": "png"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (512, 512)


def test_reference_gives_psnr_ssim_for_model_and_bicubic(client: TestClient) -> None:
    files = [
        ("files", ("low.png", _raster("PNG", (40, 48)), "image/png")),
        ("reference", ("ref.png", _raster("PNG", (80, 96), seed=1), "image/png")),
    ]
    body = client.post("/api/enhance", files=files, data={"model": "xray"}).json()
    rows = {row["method"]: row for row in body["metrics"]["rows"]}
    assert set(rows) == {"model", "bicubic"}
    assert all(0 < r["psnr_db"] < 60 and -1 <= r["ssim"] <= 1 for r in rows.values())
    assert body["data"]["reference"].endswith("/data/reference")
    wrong = [files[0], ("reference", ("ref.png", _raster("PNG", (40, 48)), "image/png"))]
    response = client.post("/api/enhance", files=wrong, data={"model": "xray"})
    assert response.status_code == 422 and "80x96" in response.json()["detail"]


def test_upload_over_the_size_limit_is_413(checkpoints: dict[str, Path]) -> None:
    client = TestClient(
        create_app([str(checkpoints["ct"])], Settings(max_upload_bytes=10_000)),
        base_url="http://127.0.0.1",
    )
    response = client.post("/api/enhance", files={"files": _dicom()})  # ~39 kB
    assert response.status_code == 413
    assert "exceeds the limit of 10,000 bytes" in response.json()["detail"]
    assert response.json()["research_use_only"] is True

    def chunks():  # no Content-Length: counted while streaming
        yield b"x" * 8000
        yield b"x" * 8000

    headers = {"content-type": "multipart/form-data; boundary=abc"}
    assert client.post("/api/enhance", content=chunks(), headers=headers).status_code == 413


def test_too_many_pixels_is_422_with_the_limit(checkpoints: dict[str, Path]) -> None:
    client = TestClient(
        create_app([str(checkpoints["ct"])], Settings(max_pixels=10_000)),
        base_url="http://127.0.0.1",
    )
    response = client.post("/api/enhance", files={"files": _dicom()})
    assert response.status_code == 422
    assert "16,384 pixels" in response.json()["detail"]
    assert "limit of 10,000 pixels" in response.json()["detail"]


@pytest.mark.parametrize(
    ("name", "data"),
    [("notes.png", b"hello, not an image" * 20), ("volume.nii", b"\x5c\x01" + bytes(400))],
)
def test_unsupported_type_is_415(client: TestClient, name: str, data: bytes) -> None:
    response = client.post("/api/enhance", files={"files": (name, data, "image/png")})
    assert response.status_code == 415
    assert "DICOM, PNG, JPEG or TIFF" in response.json()["detail"]


def test_malformed_dicom_is_422_naming_the_problem(client: TestClient) -> None:
    garbage = bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7f" + bytes(20)
    response = client.post(
        "/api/enhance", files={"files": ("bad.dcm", garbage, "application/dicom")}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail == (
        "malformed DICOM file 'bad.dcm': has no pixel data (not an image, or the file is truncated)"
    )
    truncated = CT_SMALL.read_bytes()[:-1000]  # header intact, pixel data cut short
    response = client.post("/api/enhance", files={"files": ("cut.dcm", truncated, "x")})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(
        "malformed DICOM file 'cut.dcm': cannot decode pixel data"
    )


def test_hu_model_refuses_a_png_and_unknown_model_is_422(client: TestClient) -> None:
    png = {"files": ("image.png", _raster("PNG"), "image/png")}
    response = client.post("/api/enhance", files=png, data={"model": "ct"})
    assert response.status_code == 422 and "expects CT in HU" in response.json()["detail"]
    response = client.post("/api/enhance", files=png, data={"model": "nope"})
    assert response.status_code == 422 and "['ct', 'xray']" in response.json()["detail"]
    assert client.get("/api/results/0123/data/output").status_code == 404


def test_timeout_is_504(checkpoints: dict[str, Path]) -> None:
    client = TestClient(
        create_app([str(checkpoints["ct"])], Settings(timeout_s=1e-4)), base_url="http://127.0.0.1"
    )
    response = client.post("/api/enhance", files={"files": _dicom()})
    assert response.status_code == 504
    assert "longer than 0.0001 s" in response.json()["detail"]


def test_worker_pool_refuses_beyond_capacity_and_times_out() -> None:
    release = threading.Event()

    async def scenario() -> None:
        pool = WorkerPool(workers=1, queue=0, timeout_s=5.0)
        first = asyncio.ensure_future(pool.run(release.wait))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy, match="limit 1"):
            await pool.run(time.sleep, 0)
        release.set()
        assert await first is True
        quick = WorkerPool(workers=1, queue=0, timeout_s=0.05)
        with pytest.raises(TimedOut):
            await quick.run(time.sleep, 0.3)
        assert quick.in_flight == 1  # the slot is held until the thread returns
        await asyncio.sleep(0.4)
        assert quick.in_flight == 0

    asyncio.run(scenario())


def test_logs_hold_no_file_names_or_patient_data(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="medsr.web")
    response = client.post("/api/enhance", files={"files": _dicom("Doe_John_1970.dcm")})
    assert response.status_code == 200
    text = caplog.text
    assert "request" in text and "bytes" in text
    patient = pydicom.dcmread(CT_SMALL, stop_before_pixels=True)
    for secret in (
        "Doe_John",
        str(patient.PatientName),
        str(patient.PatientID),
        "CompressedSamples",
    ):
        assert secret not in text


def test_nothing_left_on_disk_unless_store_dir(
    checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    client = TestClient(create_app([str(checkpoints["ct"])]), base_url="http://127.0.0.1")
    assert client.post("/api/enhance", files={"files": _dicom()}).status_code == 200
    assert list(scratch.iterdir()) == []
    store = tmp_path / "store"
    client = TestClient(
        create_app([str(checkpoints["ct"])], Settings(store_dir=store)), base_url="http://127.0.0.1"
    )
    body = client.post("/api/enhance", files={"files": _dicom()}).json()
    assert sorted(p.name for p in (store / body["id"]).iterdir()) == ["ct_x4.dcm", "ct_x4.png"]


def test_openapi_documents_the_api_and_the_page_is_packaged(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert (
        "multipart/form-data" in schema["paths"]["/api/enhance"]["post"]["requestBody"]["content"]
    )
    assert "/api/models" in schema["paths"]
    static = package_files("medsr.web") / "static"
    for name in ("index.html", "app.js", "viewer.js", "app.css"):
        text = (static / name).read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text  # offline: no CDN
    page = client.get("/")
    assert page.status_code == 200 and "RESEARCH USE ONLY" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/viewer.js").status_code == 200
    assert json.loads(client.get("/api/models").text)["research_use_only"] is True


def test_serve_command_takes_several_models_and_limits(
    checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from medsr.cli import app as cli

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, **options))
    arguments = [
        "serve",
        "--models",
        str(checkpoints["ct"]),
        str(checkpoints["xray"]),
        "--port",
        "8123",
        "--max-upload-mb",
        "1",
        "--max-megapixels",
        "0.01",
    ]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    assert served["port"] == 8123 and served["host"] == "127.0.0.1"
    body = TestClient(served["app"], base_url="http://127.0.0.1").get("/api/models").json()
    assert [m["scale"] for m in body["models"]] == [4, 2]
    assert body["limits"]["max_upload_bytes"] == 2**20 and body["limits"]["max_pixels"] == 10_000
    missing = CliRunner().invoke(cli, ["serve", "--models", "no-such-model.pt"])
    assert missing.exit_code == 2 and "no-such-model.pt" in missing.output
