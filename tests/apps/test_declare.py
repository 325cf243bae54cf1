"""`Declared`: modality, unit and spacing set on inputs whose files do not record them."""

from __future__ import annotations

import numpy as np
import pytest

from medsr.apps.declare import Declared, parse_spacing
from medsr.image import Volume


def test_parse_spacing() -> None:
    assert parse_spacing("0.7") == (0.7, 0.7)
    assert parse_spacing("0.5,0.6") == (0.5, 0.6)
    assert parse_spacing("2.5x0.7x0.7") == (2.5, 0.7, 0.7)
    for bad in ("", "a", "0", "-1", "1,2,3,4"):
        with pytest.raises(ValueError, match="--spacing"):
            parse_spacing(bad)


def test_a_file_without_them_takes_the_declared_values() -> None:
    volume = Volume(np.zeros((3, 8, 8)), spacing=(1.0, 1.0, 1.0), metadata={"source": "nifti"})
    declared = Declared("CT", "HU", (0.5, 0.4)).apply(volume)
    assert (declared.modality, declared.unit) == ("CT", "HU")
    assert declared.spacing == (1.0, 0.5, 0.4)  # the slice spacing as read
    assert declared.metadata["declared"] == {"modality": "CT", "unit": "HU", "spacing": (0.5, 0.4)}
    assert Declared().apply(volume) is volume
    with pytest.raises(ValueError, match="three sizes for a 2-D image"):
        Declared(spacing=(1.0, 1.0, 1.0)).apply(volume.slice(0))
    with pytest.raises(ValueError, match="--modality 'XR'"):
        Declared("XR")


def test_a_dicom_file_keeps_what_it_records() -> None:
    meta = {"source": "dicom", "spacing_known": True}
    ct = Volume(np.zeros((8, 8)), spacing=(0.5, 0.5), modality="CT", unit="HU", metadata=meta)
    assert Declared("CT", "HU").apply(ct).modality == "CT"  # agreeing is fine
    with pytest.raises(ValueError, match="records modality CT"):
        Declared("CR").apply(ct)
    with pytest.raises(ValueError, match="records a pixel spacing"):
        Declared(spacing=(0.2, 0.2)).apply(ct)
    unknown = Volume(
        np.zeros((8, 8)), (1.0, 1.0), "CR", metadata={"source": "dicom", "spacing_known": False}
    )
    given = Declared(spacing=(0.15, 0.15)).apply(unknown)
    assert given.spacing == (0.15, 0.15) and given.metadata["spacing_known"] is True
