"""Hostile and careless input: one error boundary (every reader failure is one MedsrIOError
line), the medsr header checked by its schema, header-based size limits and a parse budget."""

from __future__ import annotations

import io
import json
import os
import plistlib
import random
import tarfile
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from medsr.image import Volume
from medsr.io import MedsrIOError, read, read_nifti
from medsr.io.errors import reading
from medsr.io.limits import ReadLimits, read_limits


def _png(path: Path, header: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("medsr", header)
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path, pnginfo=info)
    return path


def _one_line_error(path: str | Path) -> MedsrIOError:
    with pytest.raises(MedsrIOError) as caught:
        read(path)
    assert "\n" not in str(caught.value) and len(caught.value.problem) <= 400
    return caught.value


class _Panic(BaseException):
    """Stands for pyo3's PanicException, a BaseException `except Exception` misses."""


def test_base_exception_from_a_decoder_becomes_one_line(tmp_path: Path, monkeypatch) -> None:
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 4), np.uint16))

    def panic(*args: object, **kwargs: object) -> None:
        raise _Panic("index out of bounds\n" + "  at frame\n" * 290)

    monkeypatch.setattr(tifffile.TiffFile, "asarray", panic)
    error = _one_line_error(tmp_path / "a.tif")
    assert "_Panic: index out of bounds" in str(error)


def test_control_flow_is_not_swallowed(tmp_path: Path) -> None:
    for stop in (KeyboardInterrupt, SystemExit):
        with pytest.raises(stop), reading(tmp_path / "x.png"):
            raise stop()


def test_rle_decoder_panic_is_one_line(testdata: Callable[[str], Path], tmp_path: Path) -> None:
    """Seeded corruptions of an RLE file: every one is a MedsrIOError line (the Rust
    decoder panics on some of them)."""
    pytest.importorskip("rle")
    raw = testdata("MR_small_RLE.dcm").read_bytes()
    start = raw.index(b"\xe0\x7f\x10\x00") + 12
    rng, messages = random.Random(0), []
    for trial in range(12):
        data = bytearray(raw)
        for _ in range(8):
            data[rng.randrange(start, len(data))] = rng.randrange(256)
        path = tmp_path / f"rle{trial}.dcm"
        path.write_bytes(bytes(data))
        try:
            read(path)
        except MedsrIOError as error:
            assert "\n" not in str(error)
            messages.append(str(error))
    assert any("PanicException" in m for m in messages), messages


@pytest.mark.parametrize(
    "header",
    [
        '{"medsr": {"window": 5}}',
        '{"medsr": {"origin": null}}',
        '{"medsr": {"slope": null}}',
        '{"medsr": {"slope": 0, "intercept": 1}}',
        '{"medsr": {"spacing": [1, -2]}}',
        '{"medsr": {"direction": [[1, 0, 0], [0, 1, 0], [0, 0, "x"]]}}',
        '{"medsr": {"intercept": 1e999}}',
        '{"medsr": [1, 2]}',
        '{"medsr": ' + "[" * 50_000 + "]" * 50_000 + "}",
    ],
)
def test_bad_png_header_is_ignored_with_a_warning(tmp_path: Path, header: str) -> None:
    path = _png(tmp_path / "h.png", header)
    with pytest.warns(UserWarning, match="medsr header ignored"):
        volume = read(path)
    assert volume.metadata["spacing_known"] is False and volume.window is None
    np.testing.assert_array_equal(volume.array, np.arange(64).reshape(8, 8))


def test_good_png_header_still_applies(tmp_path: Path) -> None:
    header = {"medsr": {"slope": 2.0, "intercept": -10, "spacing": [0.5, 0.25], "unit": "HU"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        volume = read(_png(tmp_path / "h.png", json.dumps(header)))
    assert volume.spacing == (0.5, 0.25) and volume.unit == "HU"
    assert volume.array[0, 1] == 2.0 * 1 - 10


def test_bad_tiff_description_and_npy_sidecar_are_ignored(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "t.tif", np.ones((4, 4), np.uint16), description='{"medsr": {"window": [1]}}'
    )
    np.save(tmp_path / "a.npy", np.ones((4, 4), np.float32))
    (tmp_path / "a.json").write_text('{"medsr": {"spacing": "1 mm"}}')
    for name in ("t.tif", "a.npy"):
        with pytest.warns(UserWarning, match="medsr header ignored"):
            assert read(tmp_path / name).metadata["spacing_known"] is False


def test_bad_nifti_extension_is_ignored(tmp_path: Path) -> None:
    image = nib.Nifti1Image(np.ones((4, 4, 2), np.float32), np.diag([2.0, 2.0, 3.0, 1.0]))
    content = {"medsr": {"window": [40, -1], "affine_lps": "x", "metadata": {"a": 1}}}
    image.header.extensions.append(nib.nifti1.Nifti1Extension(6, json.dumps(content).encode()))
    nib.save(image, str(tmp_path / "e.nii.gz"))
    with pytest.warns(UserWarning, match="medsr header ignored"):
        volume = read_nifti(tmp_path / "e.nii.gz")
    assert volume.window is None and "a" not in volume.metadata and volume.spacing == (3, 2, 2)


def test_bad_rescale_slope_names_the_attribute(
    testdata: Callable[[str], Path], tmp_path: Path
) -> None:
    raw = testdata("CT_small.dcm").read_bytes()
    tag = raw.index(b"\x28\x00\x53\x10DS") + 8  # RescaleSlope, value "1 "
    (tmp_path / "s.dcm").write_bytes(raw[:tag] + b"ab" + raw[tag + 2 :])
    assert "RescaleSlope 'ab'" in str(_one_line_error(tmp_path / "s.dcm"))


def _inv3(path: Path, plist: dict[str, object], matrix: bytes) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (("p/main.plist", plistlib.dumps(plist)), ("p/matrix.dat", matrix)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_inv3_without_spacing_and_oversized(tmp_path: Path) -> None:
    matrix = {"filename": "matrix.dat", "shape": [2, 4, 4], "dtype": "int16"}
    path = _inv3(tmp_path / "a.inv3", {"matrix": matrix}, np.zeros(32, np.int16).tobytes())
    assert "spacing" in str(_one_line_error(path))
    huge = {"filename": "matrix.dat", "shape": [4096, 4096, 4096], "dtype": "int16"}
    path = _inv3(tmp_path / "b.inv3", {"matrix": huge, "spacing": [1, 1, 1]}, b"\0" * 64)
    assert "exceeds the limit" in str(_one_line_error(path))


def test_zip_named_npy_and_empty_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "z.npz", a=np.zeros(3))
    os.replace(tmp_path / "z.npz", tmp_path / "z.npy")
    assert "zip archive" in str(_one_line_error(tmp_path / "z.npy"))
    np.save(tmp_path / "e.npy", np.zeros((0, 5), np.float32))
    assert "no pixels" in str(_one_line_error(tmp_path / "e.npy"))
    np.save(tmp_path / "c.npy", np.zeros((4, 4), np.complex64))
    assert "real-valued" in str(_one_line_error(tmp_path / "c.npy"))


def test_deeply_nested_folders_do_not_recurse(tmp_path: Path) -> None:
    chain = [tmp_path / "deep"]
    for _ in range(1100):  # os.makedirs and shutil.rmtree recurse: one level at a time
        chain.append(chain[-1] / "a")
    try:
        for folder in chain:
            folder.mkdir()
        (chain[-1] / "x.dcm").write_bytes(b"\0" * 200)
        assert "deeper than" in str(_one_line_error(chain[0]))
        with read_limits(max_depth=2000):  # walked without recursion, to the bottom
            assert "x.dcm" in str(_one_line_error(chain[0]))
    finally:  # pytest's clean-up of old temporary folders would hit the recursion limit
        (chain[-1] / "x.dcm").unlink(missing_ok=True)
        for folder in reversed(chain):
            if folder.exists():
                folder.rmdir()


def test_header_size_limits_refuse_before_decoding(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((4000, 4000), np.uint8), compression="zlib")
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4)), str(tmp_path / "big.nii"))
    raw = bytearray((tmp_path / "big.nii").read_bytes())
    raw[40:48] = np.array([3, 4000, 4000, 100], "<i2").tobytes()  # dim: 1.6 G voxels declared
    (tmp_path / "big.nii").write_bytes(bytes(raw))
    with read_limits(max_pixels=1_000_000):
        for name in ("big.tif", "big.nii"):
            start = time.perf_counter()
            assert "exceeds the limit" in str(_one_line_error(tmp_path / name))
            assert time.perf_counter() - start < 2


def _deflated_dicom(path: Path, elements: int) -> Path:
    """A Deflated Explicit VR file whose data set is `elements` empty private elements:
    a few kilobytes that inflate to megabytes of work for a parser."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, meta)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = b"\x09\x00\x10\x10LO\x00\x00" * elements
    path.write_bytes(out.getvalue() + compressor.compress(body) + compressor.flush())
    return path


def test_dicom_parse_budget_and_inflate_limit(tmp_path: Path) -> None:
    bomb = _deflated_dicom(tmp_path / "bomb.dcm", 400_000)  # 3.2 MB inflated
    assert bomb.stat().st_size < 20_000
    with read_limits(max_reads=50_000):
        assert "data elements" in str(_one_line_error(bomb))
    with read_limits(max_bytes=1_000_000):
        assert "deflated data set" in str(_one_line_error(bomb))
    with read_limits(parse_seconds=0.0):
        assert "longer than 0 s" in str(_one_line_error(bomb))
    (tmp_path / "zeros.dcm").write_bytes(b"\0" * 2_000_000)
    start = time.perf_counter()
    assert "not a DICOM file" in str(_one_line_error(tmp_path / "zeros.dcm"))
    assert time.perf_counter() - start < 1


def test_deflated_dicom_still_reads(testdata: Callable[[str], Path]) -> None:
    volume = read(testdata("image_dfl.dcm"))
    assert volume.shape == (512, 512)
    assert volume.metadata["TransferSyntaxUID"] == pydicom.uid.DeflatedExplicitVRLittleEndian


def test_limits_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("MEDSR_MAX_MEGAPIXELS", "2")
    monkeypatch.setenv("MEDSR_PARSE_SECONDS", "3")
    limits = ReadLimits.from_environment()
    assert limits.max_pixels == 2_000_000 and limits.parse_seconds == 3.0


def test_nan_is_read_but_refused_before_the_model(tmp_path: Path) -> None:
    from medsr.inference.predictor import check_finite

    tifffile.imwrite(tmp_path / "n.tif", np.full((4, 4), np.nan, np.float32))
    volume = read(tmp_path / "n.tif")
    with pytest.raises(ValueError, match="16 NaN or infinite"):
        check_finite(volume.array)
    check_finite(np.zeros((2, 2), np.float32))


def test_info_reports_hostile_input_in_one_line(tmp_path: Path) -> None:
    from medsr.cli import app

    np.save(tmp_path / "v.npy", Volume(np.zeros((3, 3), np.float32), (1.0, 1.0)).array)
    (tmp_path / "v.json").write_text('{"medsr": {"origin": null}}')
    result = CliRunner().invoke(app, ["info", str(tmp_path / "v.npy")])
    assert result.exit_code == 0 and "medsr header ignored" in result.output
    (tmp_path / "z.npy").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    result = CliRunner().invoke(app, ["info", str(tmp_path / "z.npy")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
