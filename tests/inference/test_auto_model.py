"""`auto_model`: a shipped model that accepts each sample, and the rules it follows."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from medsr.image import Volume
from medsr.inference.predictor import Predictor
from medsr.inference.registry import MODELS, ModelChoice, ModelEntry, auto_model
from medsr.io.samples import is_available, list_samples, load_sample


@pytest.mark.parametrize("sample", [info.name for info in list_samples()])
def test_each_sample_gets_a_model_that_accepts_it(sample: str) -> None:
    if not is_available(sample):
        pytest.skip(f"sample {sample} is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "spacing unknown" on the CR samples
        volume = load_sample(sample)
    choice = auto_model(volume)
    assert isinstance(choice, ModelChoice)
    assert choice.name in MODELS and not choice.name.endswith("-gan")
    assert volume.modality in choice.reason and "noise SD" in choice.reason
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a modality warning would mean a poor fit
        Predictor.load(choice.name).check_volume(volume)


def _ct(side: int, noise_sd: float, seed: int = 0) -> Volume:
    """A water disc in air with white noise of `noise_sd` HU."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side] - side / 2
    image = np.where(yy**2 + xx**2 < (0.4 * side) ** 2, 40.0, -1000.0)
    image = image + rng.normal(0.0, noise_sd, image.shape)
    return Volume(image.astype(np.float32), spacing=(0.7, 0.7), modality="CT", unit="HU")


def test_ct_by_size_and_noise() -> None:
    assert auto_model(_ct(128, 10.0)).name == "ct-ldct-x4"
    noisy = auto_model(_ct(512, 30.0))
    assert noisy.name == "ct-ldct" and "denoised at its own size" in noisy.reason


def test_a_registered_ct_x2_is_picked_for_a_quiet_full_size_slice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("medsr.inference.registry.WEIGHTS_DIR", tmp_path)
    for entry in MODELS.values():
        (tmp_path / entry.filename).write_bytes(b"x")
    x2 = ModelEntry("ct-ldct-x2", "ct-ldct-x2.pt", "ldct-x2", "x2 low-dose CT")
    gan = ModelEntry("ct-ldct-x2-gan", "ct-ldct-x2-gan.pt", "ldct-x2", "its GAN fine-tune")
    monkeypatch.setitem(MODELS, gan.name, gan)  # registered first: still not preferred
    monkeypatch.setitem(MODELS, x2.name, x2)
    for entry in (x2, gan):
        (tmp_path / entry.filename).write_bytes(b"x")
    assert auto_model(_ct(512, 3.0)).name == "ct-ldct-x2"
    assert auto_model(_ct(512, 30.0)).name == "ct-ldct"
    assert auto_model(_ct(256, 3.0)).name == "ct-ldct-x4"


def test_radiographs_by_size() -> None:
    rng = np.random.default_rng(0)
    small = Volume(rng.random((600, 500), dtype=np.float32), spacing=(0.2, 0.2), modality="DX")
    choice = auto_model(small)
    assert choice.name == "xray-x4"
    assert "500 x 600 px" in choice.reason  # width x height, as viewers give it
    png = Volume(rng.random((2500, 1500), dtype=np.float32) * 255, spacing=(1.0, 1.0))
    big = auto_model(png)  # an OT image (e.g. a PNG) not in HU is taken as a radiograph
    assert big.name == "xray-x2" and "smallest scale" in big.reason


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (Volume(np.ones((64, 64), np.float32), (4.0, 4.0), modality="PT", unit="SUV"), "fuse"),
        (Volume(np.ones((64, 64), np.float32), (1.0, 1.0), modality="MR"), "no shipped model"),
        (Volume(np.ones((64, 64), np.float32), (1.0, 1.0), modality="CT"), "in HU"),
        (Volume(np.full((4, 64, 64), -1024.0, np.float32), (1.0, 1.0, 1.0)), "--modality CT"),
        (Volume(np.ones((4, 64, 64), np.float32), (1.0, 1.0, 1.0)), "3-D OT"),
    ],
)
def test_no_fitting_model_is_one_line_saying_what_to_do(volume: Volume, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        auto_model(volume)
    assert "\n" not in str(error.value)
