from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from medsr.cli import app
from medsr.image import Volume
from medsr.io import read, write

sys.path.insert(0, str(Path(__file__).parent / "inference"))
from conftest import PERCENTILE, save_checkpoint  # noqa: E402

runner = CliRunner()


@pytest.fixture
def xray_model(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "xray.pt", task="xray-x4", normalization=PERCENTILE)


def images(folder: Path, count: int = 3) -> list[Path]:
    rng = np.random.default_rng(0)
    return [
        write(
            Volume(rng.random((12, 10)) * 4000, spacing=(0.5, 0.5), modality="CR"),
            folder / f"img{k}.png",
        )
        for k in range(count)
    ]


def test_batch_folder_and_output_rules(tmp_path: Path, xray_model: Path) -> None:
    inputs = images(tmp_path / "in")
    original = [p.read_bytes() for p in inputs]
    out = tmp_path / "out"
    command = ["enhance", str(tmp_path / "in"), "-o", str(out), "--model", str(xray_model)]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == ["img0_x4.png", "img1_x4.png", "img2_x4.png"]
    back = read(out / "img1_x4.png")
    assert back.shape == (48, 40) and back.spacing == (0.125, 0.125)
    before = (out / "img0_x4.png").read_bytes()
    again = runner.invoke(app, command)  # never replaces an output
    assert again.exit_code == 2 and "will not overwrite" in again.output
    assert (out / "img0_x4.png").read_bytes() == before
    assert len(again.output.strip().splitlines()) == 1
    into_input = ["enhance", str(inputs[0]), "-o", str(tmp_path / "in"), "--model", str(xray_model)]
    refused = runner.invoke(app, into_input)
    assert refused.exit_code == 2 and "input's folder" in refused.output
    allowed = runner.invoke(app, [*into_input, "--overwrite-into-input-folder", "--format", "tiff"])
    assert allowed.exit_code == 0, allowed.output
    assert read(tmp_path / "in" / "img0_x4.tif").shape == (48, 40)
    assert [p.read_bytes() for p in inputs] == original  # inputs never touched


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path, xray_model: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for args in (
        ["--model", str(xray_model), str(tmp_path / "missing.png")],
        ["--model", str(xray_model), str(tmp_path / "bad.png")],
        ["--model", "no-such-model", str(tmp_path / "bad.png")],
        ["--model", str(xray_model), "--format", "jpeg", str(tmp_path / "bad.png")],
    ):
        result = runner.invoke(app, ["enhance", "-o", str(tmp_path / "out"), *args])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: ") and len(result.output.splitlines()) == 1


def test_dicom_series_in_derived_series_out(tmp_path: Path) -> None:
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series = pydicom.uid.generate_uid()
    (tmp_path / "series").mkdir()
    for k in range(3):
        template.SOPInstanceUID, template.SeriesInstanceUID = pydicom.uid.generate_uid(), series
        template.ImagePositionPatient[2] = 10.0 + 2.0 * k
        template.save_as(tmp_path / "series" / f"IM{k}.dcm")
    model = save_checkpoint(tmp_path / "ct.pt", task="ldct-x4")
    result = runner.invoke(
        app,
        [
            "enhance",
            str(tmp_path / "series"),
            "-o",
            str(tmp_path / "out"),
            "--model",
            str(model),
            "--consistency",
        ],
    )
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "out" / "series_x4").iterdir())
    assert [p.name for p in files] == ["IM_0001.dcm", "IM_0002.dcm", "IM_0003.dcm"]
    written = [pydicom.dcmread(p) for p in files]
    assert {ds.StudyInstanceUID for ds in written} == {template.StudyInstanceUID}
    assert len({ds.SeriesInstanceUID for ds in written} | {series}) == 2
    assert all(ds.Rows == 512 and "DERIVED" in ds.ImageType for ds in written)
    assert all(ds.SeriesDescription.startswith("medsr RESEARCH USE ONLY") for ds in written)
    assert np.load(tmp_path / "out" / "series_x4_consistency.npy").shape == (3, 128, 128)
    # a NIfTI volume in, NIfTI out: slice by slice, affine rescaled
    out_nifti = runner.invoke(
        app,
        [
            "enhance",
            str(tmp_path / "series"),
            "-o",
            str(tmp_path / "nii"),
            "--model",
            str(model),
            "--format",
            "nifti",
        ],
    )
    assert out_nifti.exit_code == 0, out_nifti.output
    volume = read(tmp_path / "nii" / "series_x4.nii.gz")
    source = read(tmp_path / "series")
    assert volume.shape == (3, 512, 512)
    np.testing.assert_allclose(volume.spacing, (2.0, source.spacing[1] / 4, source.spacing[2] / 4))
    shift = source.direction @ np.array([source.spacing[2], source.spacing[1], 0]) * (-3 / 8)
    np.testing.assert_allclose(volume.origin, np.asarray(source.origin) + shift, atol=1e-4)


def test_a_folder_of_several_series_gives_one_derived_series_each(tmp_path: Path) -> None:
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    (tmp_path / "study").mkdir()
    for k, (number, count, kernel) in enumerate(((3, 2, "B30f"), (3, 1, "D45f"), (None, 1, ""))):
        template.SeriesInstanceUID = f"1.2.826.0.1.3680043.2.{k + 1}"  # same number: by UID
        template.SeriesNumber, template.ConvolutionKernel = number, kernel
        for z in range(count):
            template.SOPInstanceUID = pydicom.uid.generate_uid()
            template.ImagePositionPatient[2] = 10.0 + 2.0 * z
            template.save_as(tmp_path / "study" / f"IM{template.SOPInstanceUID[-12:]}.dcm")
    model = save_checkpoint(tmp_path / "ct.pt", task="ldct-x4")
    out = tmp_path / "out"
    arguments = ["enhance", str(tmp_path / "study"), "-o", str(out), "--model", str(model)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    # two series share Series Number 3 (told apart by their order), one has none
    # (a one-slice series is read as a 2-D image and written as one file)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["study_series3_1_x4", "study_series3_2_x4.dcm", "study_series_3_x4.dcm"]
    assert len(list((out / names[0]).iterdir())) == 2
    kernels = [pydicom.dcmread(next((out / names[0]).iterdir())), pydicom.dcmread(out / names[1])]
    assert [str(ds.ConvolutionKernel) for ds in kernels] == ["B30f", "D45f"]
    assert "series 3 (D45f, 1 image)" in result.output


def test_export_onnx_then_enhance_with_onnxruntime(tmp_path: Path, xray_model: Path) -> None:
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "m.onnx"
    assert runner.invoke(app, ["export-onnx", str(xray_model), "-o", str(onnx_path)]).exit_code == 0
    again = runner.invoke(app, ["export-onnx", str(xray_model), "-o", str(onnx_path)])
    assert again.exit_code == 2 and "already exists" in again.output
    [image] = images(tmp_path / "in", 1)
    args = [str(image), "--model", str(onnx_path), "--backend", "onnx"]
    result = runner.invoke(app, ["enhance", "-o", str(tmp_path / "onnx"), *args])
    assert result.exit_code == 0, result.output
    torch_out = runner.invoke(
        app, ["enhance", "-o", str(tmp_path / "torch"), str(image), "--model", str(xray_model)]
    )
    assert torch_out.exit_code == 0
    a, b = read(tmp_path / "onnx" / "img0_x4.png"), read(tmp_path / "torch" / "img0_x4.png")
    assert np.abs(a.array - b.array).max() < 1e-3 * 4000


@pytest.mark.parametrize("bits", [8, 16])
def test_integer_png_in_gives_same_depth_and_scale_out(tmp_path: Path, bits: int) -> None:
    """A plain 16-bit (or 8-bit) PNG from another program, enhanced by the shipped x4
    radiograph model, reads in any viewer (Pillow here) with the input's brightness."""
    from PIL import Image

    from medsr.io.samples import load_sample

    crop = load_sample("xray-extremity-rg3").array[800:864, 800:864].astype(np.float64)
    crop = (crop - crop.min()) / (crop.max() - crop.min())
    top, low = (63391, 82) if bits == 16 else (250, 3)
    stored = np.rint(low + crop * (top - low)).astype(np.uint16 if bits == 16 else np.uint8)
    source = tmp_path / "in" / "cxr.png"
    source.parent.mkdir()
    Image.fromarray(stored).save(source)
    out = tmp_path / "out"
    result = runner.invoke(app, ["enhance", str(source), "-o", str(out), "--model", "xray-x4"])
    assert result.exit_code == 0, result.output
    with Image.open(out / "cxr_x4.png") as image:
        written = np.asarray(image)
    assert written.dtype == stored.dtype and written.shape == (256, 256)
    # Same scale: the 4x4 block means of the output match the input to a few grey levels.
    blocks = written.astype(np.float64).reshape(64, 4, 64, 4).mean(axis=(1, 3))
    tolerance = 0.03 * (top - low)
    assert abs(blocks.mean() - stored.mean()) < tolerance
    assert np.median(np.abs(blocks - stored)) < tolerance
    # medsr reads back exactly the integers a viewer sees (intercept 0, slope 1).
    np.testing.assert_array_equal(read(out / "cxr_x4.png").array, written.astype(np.float32))


_OPENED: list[str] | None = None  # files opened while a test watches (audit hook below)


def _record_opens(event: str, args: tuple[object, ...]) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, Path)):
        _OPENED.append(str(Path(args[0]).resolve()))


sys.addaudithook(_record_opens)  # audit hooks stay for the process; idle unless watching


@pytest.mark.parametrize("model", ["ct-ldct-x4", "auto"])
def test_enhance_reads_the_checkpoint_once_and_the_dicom_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """`medsr enhance x.dcm --model ct-ldct-x4`: one open of the shipped checkpoint (payload
    and sha256 from the same bytes) and one of the DICOM file (one parse; the derived DICOM's
    header comes from it). `--model auto` (it picks ct-ldct-x4 here) reads a single input
    once too: the image read to choose is the one enhanced."""
    global _OPENED
    from medsr.inference.registry import MODELS

    source = Path(get_testdata_file("CT_small.dcm")).resolve()
    checkpoint = MODELS["ct-ldct-x4"].path.resolve()
    parses: list[str] = []
    dcmread = pydicom.dcmread

    def counting_dcmread(path: object, *args: object, **kwargs: object) -> object:
        parses.append(str(path))
        return dcmread(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pydicom, "dcmread", counting_dcmread)
    _OPENED = []
    try:
        command = ["enhance", str(source), "-o", str(tmp_path), "--model", model]
        result = runner.invoke(app, command)
        opened = list(_OPENED)
    finally:
        _OPENED = None
    assert result.exit_code == 0, result.output
    assert (tmp_path / "CT_small_x4.dcm").is_file()
    assert opened.count(str(checkpoint)) == 1, opened
    assert opened.count(str(source)) == 1, opened
    assert len(parses) == 1, parses


def test_dose_option_of_the_non_blind_ct_denoiser(tmp_path: Path) -> None:
    # the shipped ct-ldct denoiser on a real CT slice: told a lower dose, it removes more
    # noise (a smoother output); a model without a noise-level input refuses the option
    from medsr.io.samples import load_sample
    from medsr.metrics.noise import mad_noise_sd

    source = write(load_sample("ct-small"), tmp_path / "in" / "ct.npy")
    sds = {}
    for dose in ("0.05", "0.5"):
        out = tmp_path / f"out{dose}"
        result = runner.invoke(
            app, ["enhance", str(source), "-o", str(out), "--model", "ct-ldct", "--dose", dose]
        )
        assert result.exit_code == 0, result.output
        sds[dose] = mad_noise_sd(read(next(out.iterdir())).array)
    assert sds["0.05"] < sds["0.5"]
    refused = runner.invoke(
        app,
        [
            "enhance",
            str(source),
            "-o",
            str(tmp_path / "x"),
            "--model",
            "ct-ldct-x4",
            "--dose",
            "0.1",
        ],
    )
    assert refused.exit_code == 2 and "non-blind" in refused.output


def test_tile_option_defaults_to_auto_whole_image(
    tmp_path: Path, xray_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --tile: a 96 x 80 image (well inside the memory budget) goes through the model in
    one whole-image call, and its time line says so; --tile 48 tiles it; a bad --tile is one
    error line, exit 2."""
    from medsr.inference import predictor as predictor_module

    used: list[int | None] = []
    original = predictor_module.tiled_apply

    def recording(*args: Any, **kwargs: Any) -> np.ndarray:
        used.append(args[3])  # tiled_apply(image, run, scale, tile_size, ...)
        return original(*args, **kwargs)

    monkeypatch.setattr(predictor_module, "tiled_apply", recording)
    rng = np.random.default_rng(1)
    source = write(
        Volume(rng.random((96, 80)) * 4000, spacing=(0.5, 0.5), modality="CR"),
        tmp_path / "in" / "img.png",
    )
    base = ["enhance", str(source), "--model", str(xray_model)]
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "auto")])
    assert result.exit_code == 0, result.output
    tiled = runner.invoke(app, [*base, "-o", str(tmp_path / "tiled"), "--tile", "48"])
    assert tiled.exit_code == 0, tiled.output
    assert used == [None, 48]
    assert "px in" in result.stdout and result.stdout.rstrip().endswith(" s (whole image)")
    assert "(12 tiles of 48 px overlapping by 32, 12 per call)" in tiled.output, tiled.output
    assert read(tmp_path / "auto" / "img_x4.png").shape == (384, 320)
    for bad, message in (("big", "--tile must be auto"), ("16", "larger than --overlap 32")):
        refused = runner.invoke(app, [*base, "-o", str(tmp_path / "bad"), "--tile", bad])
        assert refused.exit_code == 2, refused.output
        assert refused.output.startswith("error: ") and message in refused.output
        assert len(refused.output.splitlines()) == 1
    assert used == [None, 48] and not (tmp_path / "bad").exists()


def test_ensemble_option_averages_the_flips_and_rotations(tmp_path: Path, xray_model: Path) -> None:
    (source,) = images(tmp_path / "in", count=1)
    arrays = {}
    for flag in ([], ["--ensemble"]):
        out = tmp_path / f"out{len(flag)}"
        command = ["enhance", str(source), "-o", str(out), "--model", str(xray_model), *flag]
        result = runner.invoke(app, [*command, "--format", "tiff"])
        assert result.exit_code == 0, result.output
        arrays[len(flag)] = read(next(out.iterdir())).array
    assert arrays[0].shape == arrays[1].shape == (48, 40)
    # the tiny random model is not equivariant: its 8-pass average is another image
    assert not np.allclose(arrays[0], arrays[1])


def test_precision_option_reaches_the_model(tmp_path: Path, xray_model: Path) -> None:
    (source,) = images(tmp_path / "in", count=1)
    arrays = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        command = ["enhance", str(source), "-o", str(out), "--model", str(xray_model)]
        result = runner.invoke(app, [*command, "--precision", precision, "--format", "tiff"])
        assert result.exit_code == 0, result.output
        arrays[precision] = read(next(out.iterdir())).array
    # bf16 really ran (emulated where the CPU lacks it): close to float32, not equal
    assert not np.array_equal(arrays["fp32"], arrays["bf16"])
    np.testing.assert_allclose(arrays["bf16"], arrays["fp32"], atol=0.02 * np.ptp(arrays["fp32"]))
    bad = ["enhance", str(source), "-o", str(tmp_path / "bad"), "--model", str(xray_model)]
    refused = runner.invoke(app, [*bad, "--precision", "fp8"])
    assert refused.exit_code == 2 and "precision must be one of" in refused.output
    assert len(refused.output.splitlines()) == 1 and not (tmp_path / "bad").exists()
