"""CT+PET mode of `medsr serve` (POST /api/fuse) through FastAPI's TestClient."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from medsr.image import Window  # noqa: E402
from medsr.inference import Predictor  # noqa: E402
from medsr.inference.fusion import FusionPredictor  # noqa: E402
from medsr.io import read  # noqa: E402
from medsr.physics.resize import upsample  # noqa: E402
from medsr.viz.overlays import fused_overlay  # noqa: E402
from medsr.web.app import create_app  # noqa: E402
from medsr.web.limits import Settings  # noqa: E402

# medsr's PT DICOM carries Units GML, read back as SUV: fuse must not warn about the unit.
pytestmark = pytest.mark.filterwarnings("error:the model expects PET in SUV")
Files = list[tuple[str, tuple[str, bytes, str]]]
MakeCtPet = Callable[..., tuple[list[Path], list[Path]]]


@pytest.fixture(scope="module")
def fusion(checkpoints: dict[str, Path]) -> FusionPredictor:
    return FusionPredictor.load(str(checkpoints["fusion"]))


@pytest.fixture(scope="module")
def client(checkpoints: dict[str, Path], fusion: FusionPredictor) -> TestClient:
    return TestClient(
        create_app({"ct": Predictor.load(str(checkpoints["ct"])), "petct": fusion}),
        base_url="http://127.0.0.1",
    )


def _files(ct: list[Path], pet: list[Path]) -> Files:
    return [
        (field, (p.name, p.read_bytes(), "application/dicom"))
        for field, paths in (("ct", ct), ("pet", pet))
        for p in paths
    ]


def _array(client: TestClient, url: str, k: int = 0) -> np.ndarray:
    response = client.get(url, params={"slice": k})
    h, w = map(int, response.headers["x-shape"].split(","))
    return np.frombuffer(response.content, dtype="<f4").reshape(h, w)


def test_models_say_which_model_is_a_fusion_model(client: TestClient) -> None:
    models = {m["id"]: m for m in client.get("/api/models").json()["models"]}
    assert (models["petct"]["kind"], models["petct"]["inputs"]) == ("fusion", ["ct", "pet"])
    assert (models["ct"]["kind"], models["ct"]["inputs"]) == ("single", ["image"])
    assert models["petct"]["scale"] == 4 and models["petct"]["task"] == "petct"


def test_fuse_gives_the_model_output_bicubic_input_and_downloads(
    client: TestClient, fusion: FusionPredictor, make_ct_pet: MakeCtPet
) -> None:
    ct_paths, pet_paths = make_ct_pet()
    response = client.post("/api/fuse", files=_files(ct_paths, pet_paths))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["research_use_only"] is True and body["kind"] == "fusion"
    assert body["model"]["id"] == "petct"  # the only fusion model is the default
    assert body["input"]["shape"] == [8, 12] and body["output"]["shape"] == [32, 48]
    assert body["fusion"]["alpha"] == 0.5 and body["fusion"]["coverage"] == pytest.approx(1.0)
    ct, pet = read(ct_paths[0]), read(pet_paths[0])
    expected = fusion.fuse(ct, pet).enhanced.array
    output = _array(client, body["data"]["output"])
    assert np.allclose(output, expected, atol=1e-5)
    bicubic = upsample(torch.from_numpy(pet.array), 4).numpy()
    assert np.abs(output - bicubic).max() > 1e-3  # the model, not interpolation
    assert np.allclose(_array(client, body["data"]["input"]), bicubic, atol=1e-4)
    assert np.allclose(_array(client, body["data"]["ct"]), ct.array)
    assert _array(client, body["data"]["consistency"]).shape == (8, 12)

    dicom = client.get(body["downloads"]["dicom"])
    assert dicom.headers["content-disposition"] == 'attachment; filename="pet_0001_x4.dcm"'
    ds = pydicom.dcmread(io.BytesIO(dicom.content))
    assert ds.Modality == "PT" and "DERIVED" in ds.ImageType and (ds.Rows, ds.Columns) == (32, 48)
    suv = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.abs(suv - output).max() < 1e-3 * np.ptp(output)  # 16-bit quantisation
    png = Image.open(io.BytesIO(client.get(body["downloads"]["png"]).content))
    assert png.size == (48, 32) and png.mode.startswith("I")

    fused = client.get(body["downloads"]["fused"])
    assert fused.headers["content-type"] == "image/png"
    rgb = np.asarray(Image.open(io.BytesIO(fused.content)))
    window = Window(**body["fusion"]["ct_window"])
    assert np.array_equal(
        rgb, fused_overlay(ct.array, output, window, 0.5, body["fusion"]["suv_max"])
    )
    grey = np.asarray(
        Image.open(io.BytesIO(client.get(body["downloads"]["fused"], params={"alpha": 0}).content))
    )
    assert grey.shape == (32, 48, 3) and np.ptp(grey.astype(int), axis=2).max() == 0
    assert np.ptp(rgb.astype(int), axis=2).max() > 0  # coloured where alpha > 0
    assert client.get(body["downloads"]["fused"], params={"alpha": 1.5}).status_code == 422
    assert client.get(body["downloads"]["png"], params={"alpha": 0.5}).status_code == 422
    assert client.delete(f"/api/results/{body['id']}").json()["deleted"] is True
    assert client.get(body["downloads"]["fused"]).status_code == 404


def test_series_alpha_and_direct_download(client: TestClient, make_ct_pet: MakeCtPet) -> None:
    ct_paths, pet_paths = make_ct_pet(slices=3)
    body = client.post(
        "/api/fuse", files=_files(ct_paths, pet_paths), data={"alpha": "0.25"}
    ).json()
    assert body["output"]["shape"] == [3, 32, 48] and body["fusion"]["alpha"] == 0.25
    archive = zipfile.ZipFile(io.BytesIO(client.get(body["downloads"]["fused"]).content))
    names = sorted(archive.namelist())
    assert names == [f"pet_0001_x4_fused/pet_0001_x4_fused_z{k:04d}.png" for k in range(3)]
    assert np.asarray(Image.open(archive.open(names[2]))).shape == (32, 48, 3)
    response = client.post(
        "/api/fuse", files=_files(ct_paths, pet_paths), data={"download": "fused"}
    )
    assert response.headers["content-type"] == "application/zip"
    response = client.post("/api/fuse", files=_files(ct_paths, pet_paths), data={"alpha": "2"})
    assert response.status_code == 422 and "alpha" in response.json()["detail"]


def test_pet_that_misses_the_ct_is_422_with_the_fuse_refusal(
    client: TestClient, make_ct_pet: MakeCtPet
) -> None:
    ct_paths, pet_paths = make_ct_pet(pet_shift_mm=900.0)
    response = client.post("/api/fuse", files=_files(ct_paths, pet_paths))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("CT and PET do not overlap: CT spans [-20.5..27.5, ")
    assert "not of the same patient position" in detail


def test_missing_or_wrong_inputs_and_models_are_refused(
    client: TestClient, checkpoints: dict[str, Path], make_ct_pet: MakeCtPet
) -> None:
    ct_paths, pet_paths = make_ct_pet()
    response = client.post("/api/fuse", files=_files(ct_paths, []))
    assert response.status_code == 422
    assert response.json()["detail"] == "invalid request: body.pet: Field required"
    text = [("pet", ("pet.png", b"not an image" * 20, "image/png"))]
    response = client.post("/api/fuse", files=_files(ct_paths, []) + text)
    assert response.status_code == 415 and "'pet.png'" in response.json()["detail"]
    response = client.post("/api/fuse", files=_files(ct_paths, pet_paths), data={"model": "ct"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "model 'ct' is not a CT+PET fusion model: it runs on POST /api/enhance"
    )
    one = {"files": ("pet.dcm", pet_paths[0].read_bytes(), "application/dicom")}
    enhance = client.post("/api/enhance", files=one, data={"model": "petct"})
    assert enhance.status_code == 422 and "runs on POST /api/fuse" in enhance.json()["detail"]
    single = TestClient(create_app([str(checkpoints["ct"])]), base_url="http://127.0.0.1")
    response = single.post("/api/fuse", files=_files(ct_paths, pet_paths))
    assert response.status_code == 422
    assert "no CT+PET fusion model loaded" in response.json()["detail"]
    small = TestClient(
        create_app([str(checkpoints["fusion"])], Settings(max_upload_bytes=2000)),
        base_url="http://127.0.0.1",
    )
    assert small.post("/api/fuse", files=_files(ct_paths, pet_paths)).status_code == 413
    kinds = [m["kind"] for m in small.get("/api/models").json()["models"]]
    assert kinds == ["fusion"]  # a fusion checkpoint path loads as a fusion model
    few = TestClient(
        create_app([str(checkpoints["fusion"])], Settings(max_pixels=1000)),
        base_url="http://127.0.0.1",
    )
    response = few.post("/api/fuse", files=_files(ct_paths, pet_paths))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("CT has 1,536 pixels, more than the limit")
