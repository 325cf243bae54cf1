"""Medical image I/O: DICOM, NIfTI, PNG/TIFF, .npy and InVesalius, all to one `Volume`.

`read(path)` and `write(volume, path, **options)` dispatch on the suffix; every failure
raises `MedsrIOError` (a ValueError) naming the file and the problem in one line, whatever
a decoder raised (`errors.reader`). Reads keep to `limits.ReadLimits` (pixels and bytes
from the header before decoding, a DICOM parse budget); `read_limits(...)` tightens them
around a block. `read_source(source)` also takes `sample:NAME`, a bundled sample.
"""

from __future__ import annotations

from medsr.io.dicom import read_dicom, read_dicom_series
from medsr.io.errors import MedsrIOError
from medsr.io.invesalius import read_invesalius
from medsr.io.limits import ReadLimits, read_limits
from medsr.io.nifti import read_nifti, write_nifti
from medsr.io.numpy_io import read_npy, write_npy
from medsr.io.raster import read_raster, write_png, write_tiff
from medsr.io.read import read, write
from medsr.io.samples import SampleNotAvailable, load_sample, read_source

__all__ = [
    "MedsrIOError",
    "ReadLimits",
    "SampleNotAvailable",
    "load_sample",
    "read",
    "read_dicom",
    "read_dicom_series",
    "read_invesalius",
    "read_limits",
    "read_nifti",
    "read_npy",
    "read_raster",
    "read_source",
    "write",
    "write_nifti",
    "write_npy",
    "write_png",
    "write_tiff",
]
