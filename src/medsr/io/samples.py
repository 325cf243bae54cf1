"""Named real images that install offline from package registries (see DATA.md).

`load_sample("invesalius-head-ct")` returns a Volume; `list_samples()` lists them all with
where they come from. A sample whose package is missing raises `SampleNotAvailable`, whose
message is the exact install command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from medsr.image import Volume
from medsr.io.errors import MedsrIOError
from medsr.io.read import read

INVESALIUS_DEFAULT = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")
INVESALIUS_ENV = "MEDSR_INVESALIUS_PATH"
PYDICOM_DATA_INSTALL = "pip install pydicom-data pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg"
_CLUNIE_LICENCE = (
    "pydicom-data (MIT package); image from the public DICOM compressed-image test set "
    "(anonymised), for testing and research only"
)


class SampleNotAvailable(RuntimeError):
    """The package holding a sample is not installed; the message says how to install it."""


@dataclass(frozen=True)
class SampleInfo:
    """Where a sample comes from and what it holds.

    Attributes:
        name: the name `load_sample` takes.
        modality: DICOM modality code.
        description: anatomy, scanner and size in words.
        source_package: the package that ships the file.
        install: the shell command that installs it.
        licence: licence and usage note.
        shape: array shape `load_sample` returns, `(H, W)` or `(D, H, W)`.
        filename: the file name inside the package.
    """

    name: str
    modality: str
    description: str
    source_package: str
    install: str
    licence: str
    shape: tuple[int, ...]
    filename: str


def _pydicom_sample(
    name: str, modality: str, filename: str, shape: tuple[int, ...], description: str
) -> SampleInfo:
    return SampleInfo(
        name,
        modality,
        description,
        "pydicom-data",
        PYDICOM_DATA_INSTALL,
        _CLUNIE_LICENCE,
        shape,
        filename,
    )


SAMPLES: dict[str, SampleInfo] = {
    info.name: info
    for info in (
        SampleInfo(
            "invesalius-head-ct",
            "CT",
            "Head CT volume, 108 x 256 x 256, int16 HU, spacing 1.5 x 0.957 x 0.957 mm",
            "invesalius-examples (Debian)",
            "apt-get install -y invesalius-examples",
            "GPL-2 (InVesalius example data)",
            (108, 256, 256),
            "Cranium.inv3",
        ),
        _pydicom_sample(
            "ct-head-693",
            "CT",
            "693_UNCR.dcm",
            (512, 512),
            "Head CT slice, 512 x 512, 0.479 mm pixels, HU",
        ),
        _pydicom_sample(
            "ct-abdomen",
            "CT",
            "explicit_VR-UN.dcm",
            (512, 512),
            "Abdomen CT slice, 512 x 512, 0.859 mm pixels, HU",
        ),
        _pydicom_sample(
            "xray-chest-rg1",
            "CR",
            "RG1_UNCR.dcm",
            (1955, 1841),
            "Chest CR radiograph, 15-bit, MONOCHROME1 (inverted on read); "
            "pixel spacing not recorded",
        ),
        _pydicom_sample(
            "xray-extremity-rg3",
            "CR",
            "RG3_UNCR.dcm",
            (1760, 1760),
            "Extremity CR radiograph, 10-bit, MONOCHROME1 (inverted on read); "
            "pixel spacing not recorded",
        ),
        SampleInfo(
            "ct-small",
            "CT",
            "Small CT slice, 128 x 128, 0.661 mm pixels, HU",
            "pydicom",
            "pip install pydicom",
            "pydicom test file (MIT package)",
            (128, 128),
            "CT_small.dcm",
        ),
    )
}


def list_samples() -> list[SampleInfo]:
    """Every sample, in a stable order."""
    return list(SAMPLES.values())


def _info(name: str) -> SampleInfo:
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLES)}")
    return SAMPLES[name]


def sample_path(name: str) -> Path:
    """The file of sample `name`; SampleNotAvailable with the install command if missing."""
    info = _info(name)
    if name == "invesalius-head-ct":
        path = Path(os.environ.get(INVESALIUS_ENV) or INVESALIUS_DEFAULT)
        if not path.is_file():
            raise SampleNotAvailable(
                f"sample {name!r} needs {path}: install it with `{info.install}` "
                f"or set {INVESALIUS_ENV} to a Cranium.inv3 file"
            )
        return path
    try:
        from pydicom.data import get_testdata_file

        found = get_testdata_file(info.filename, download=False)
    except Exception:  # pydicom missing, or its data manager failing
        found = None
    if not isinstance(found, str) or not Path(found).is_file():
        raise SampleNotAvailable(
            f"sample {name!r} ({info.filename}) is not installed: run `{info.install}`"
        )
    return Path(found)


def is_available(name: str) -> bool:
    """True when sample `name` can be loaded without installing anything."""
    try:
        sample_path(name)
    except SampleNotAvailable:
        return False
    return True


def load_sample(name: str) -> Volume:
    """Load sample `name` (see SAMPLES) as a Volume, with `metadata["sample"] = name`."""
    path = sample_path(name)
    try:
        volume = read(path)
    except MedsrIOError as error:
        if "decode" not in error.problem:
            raise
        # Compressed samples need the pylibjpeg decoders.
        raise SampleNotAvailable(
            f"{error}; install the decoders: `{PYDICOM_DATA_INSTALL}`"
        ) from error
    volume.metadata["sample"] = name
    return volume


SAMPLE_PREFIX = "sample:"


def read_source(source: str) -> Volume:
    """`sample:NAME` loads a named sample; anything else is a path read by `medsr.io.read`."""
    if source.startswith(SAMPLE_PREFIX):
        return load_sample(source.removeprefix(SAMPLE_PREFIX))
    return read(source)
