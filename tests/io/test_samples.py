"""Named samples: each loads with its stated shape, spacing and modality; missing ones say
how to install them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from medsr.io import samples
from medsr.io.samples import SAMPLES, SampleNotAvailable, list_samples, load_sample

SPACING = {
    "invesalius-head-ct": (1.5, 0.9570312, 0.9570312),
    "ct-head-693": (0.478516, 0.478516),
    "ct-abdomen": (0.859375, 0.859375),
    "xray-chest-rg1": (1.0, 1.0),  # not recorded in the file
    "xray-extremity-rg3": (1.0, 1.0),  # not recorded in the file
    "ct-small": (0.661468, 0.661468),
}


def test_names() -> None:
    assert [s.name for s in list_samples()] == list(SPACING)
    assert all(s.install and s.licence and s.source_package for s in SAMPLES.values())


@pytest.mark.parametrize("name", list(SPACING))
def test_sample_loads(name: str) -> None:
    if not samples.is_available(name):
        pytest.skip(SAMPLES[name].install)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # radiographs warn about unknown spacing
        volume = load_sample(name)
    info = SAMPLES[name]
    assert volume.shape == info.shape
    assert volume.modality == info.modality
    np.testing.assert_allclose(volume.spacing, SPACING[name])
    assert volume.metadata["sample"] == name
    assert volume.unit == ("HU" if info.modality == "CT" else "a.u.")
    assert float(volume.array.std()) > 10  # a real image, not a blank


def test_missing_pydicom_data_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import pydicom.data

    monkeypatch.setattr(pydicom.data, "get_testdata_file", lambda *a, **k: None)
    with pytest.raises(SampleNotAvailable, match="pip install pydicom-data pylibjpeg"):
        load_sample("ct-head-693")
    assert issubclass(SampleNotAvailable, RuntimeError)


def test_missing_invesalius_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEDSR_INVESALIUS_PATH", str(tmp_path / "absent.inv3"))
    with pytest.raises(SampleNotAvailable, match="apt-get install -y invesalius-examples"):
        load_sample("invesalius-head-ct")


def test_invesalius_path_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not samples.INVESALIUS_DEFAULT.is_file():
        pytest.skip("apt-get install -y invesalius-examples")
    link = tmp_path / "elsewhere.inv3"
    link.symlink_to(samples.INVESALIUS_DEFAULT)
    monkeypatch.setenv("MEDSR_INVESALIUS_PATH", str(link))
    assert samples.sample_path("invesalius-head-ct") == link


def test_unknown_sample_name() -> None:
    with pytest.raises(ValueError, match="no-such-sample"):
        load_sample("no-such-sample")
