"""`read` and `write`: pick the reader or writer from the suffix, folder or DICOM preamble."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsr.image import Volume
from medsr.io.dicom import is_dicom_file, read_dicom
from medsr.io.dicom_write import write_dicom
from medsr.io.errors import MedsrIOError, reader
from medsr.io.invesalius import read_invesalius
from medsr.io.nifti import read_nifti, write_nifti
from medsr.io.numpy_io import read_npy, write_npy
from medsr.io.raster import read_raster, write_png, write_tiff

READ_SUFFIXES = (
    ".dcm",
    ".dicom",
    ".nii",
    ".nii.gz",
    ".png",
    ".tif",
    ".tiff",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".npy",
    ".inv3",
)


def image_stem(name: str) -> str:
    """A file name without the suffix medsr reads it by (`scan.nii.gz` -> `scan`, any case);
    other names as they are."""
    for suffix in sorted(READ_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


WRITE_SUFFIXES = (".nii", ".nii.gz", ".png", ".tif", ".tiff", ".npy", ".dcm", ".dicom")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


@reader
def read(path: str | Path) -> Volume:
    """Read a medical image file or DICOM series folder into a Volume.

    Folders are read as one DICOM series. Files dispatch on their suffix (see
    READ_SUFFIXES); a file with another suffix (or none) is read as DICOM when it carries
    'DICM' at byte 128. Every failure raises MedsrIOError naming the path, in one line
    (`errors.reader`); sizes and parse time keep to `limits.current_limits()`.
    """
    path = Path(path)
    if path.is_dir():
        return read_dicom(path)
    if not path.is_file():
        raise MedsrIOError(path, "no such file or folder")
    suffix = _suffix(path)
    if suffix in (".nii", ".nii.gz"):
        return read_nifti(path)
    if suffix in (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"):
        return read_raster(path)
    if suffix == ".npy":
        return read_npy(path)
    if suffix == ".inv3":
        return read_invesalius(path)
    if suffix in (".dcm", ".dicom") or is_dicom_file(path):
        return read_dicom(path)
    raise MedsrIOError(
        path,
        f"unknown format {suffix or '(no suffix)'}; medsr reads {', '.join(READ_SUFFIXES)}, "
        "DICOM files with the DICM preamble and DICOM folders",
    )


def write(volume: Volume, path: str | Path, **options: Any) -> Path:
    """Write `volume` to `path`, choosing the format from the suffix (WRITE_SUFFIXES).

    Options go to the writer: `overwrite=True` (all formats; otherwise an existing file
    raises FileExistsError), `value_range=(low, high)` and `bits=8|16` (PNG, TIFF),
    `float32=True` (TIFF), `sidecar=False` (.npy). `.dcm` writes one derived DICOM
    image (`dicom_write.write_dicom`; 2-D only). Returns the written path.
    """
    path = Path(path)
    suffix = _suffix(path)
    writers = {
        ".nii": write_nifti,
        ".nii.gz": write_nifti,
        ".png": write_png,
        ".tif": write_tiff,
        ".tiff": write_tiff,
        ".npy": write_npy,
        ".dcm": write_dicom,
        ".dicom": write_dicom,
    }
    if suffix not in writers:
        raise MedsrIOError(
            path,
            f"cannot write {suffix or '(no suffix)'}; medsr writes {', '.join(WRITE_SUFFIXES)}",
        )
    try:
        return writers[suffix](volume, path, **options)  # type: ignore[operator]
    except TypeError as error:
        if "unexpected keyword" in str(error):
            raise MedsrIOError(path, f"unsupported option for {suffix}: {error}") from error
        raise
