"""Read and write PNG (Pillow) and TIFF (tifffile) images, 8- and 16-bit, without loss.

Reading gives the stored integers exactly as float32 (a uint16 PNG keeps 0..65535).

Writing chooses the stored integers so that reading back restores the values:

* integer-valued data in [0, 255] is stored as uint8, in [0, 65535] as uint16, unchanged;
* other integer-valued data spanning at most 65535 (e.g. CT in HU) is stored as uint16 with an
  integer offset (for CT: -1024 when the data allow it), still exact;
* an enhanced image written with `like_input=True` (what `medsr enhance` does) keeps the
  integer scale of the PNG/TIFF it came from: same bit depth, same stored integers for the
  same values, so any viewer shows the input's brightness (values outside are clipped, with
  a warning);
* anything else is mapped linearly from `value_range` to 0..65535 (or 0..255 with `bits=8`):
  `value = stored * slope + intercept`, `slope = (high - low) / 65535`. The default range is
  the data's min/max, or for CT [-1024, 3071] HU widened to include the data (a step of
  0.0625 HU). Values outside an explicit range are clipped, with a warning.

The intercept, slope, unit, modality, spacing, window and geometry are stored as JSON under the
key "medsr" in a PNG tEXt chunk or the TIFF ImageDescription, so a medsr-written file reads
back with its values (to within half a quantisation step), spacing and modality. Files from
elsewhere read with spacing 1.0 and `metadata["spacing_known"] = False`. TIFF can also hold
float32 exactly (`float32=True`) and 3-D volumes (one page per slice); PNG holds one 2-D image.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image, PngImagePlugin

from medsr.image import Volume
from medsr.io.atomic import atomic_write
from medsr.io.errors import MedsrIOError, check_can_write, reader
from medsr.io.header import HEADER_KEY, header_fields, parse_header, volume_from_header
from medsr.io.limits import check_pixels

CT_RANGE_HU = (-1024.0, 3071.0)


def _gray(rgb: np.ndarray, path: Path) -> np.ndarray:
    """One channel of an RGB(A) array: exact when the channels agree, else luminance."""
    rgb = rgb[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    warnings.warn(f"{path}: colour image converted to grey (ITU-R 601 luma)", stacklevel=3)
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _read_pillow(path: Path) -> tuple[np.ndarray, str | None]:
    with Image.open(path) as image:
        width, height = image.size
        colour = image.mode in ("P", "RGB", "RGBA", "CMYK", "YCbCr")
        check_pixels(path, (height, width), 8 if colour else 4)  # before decoding a pixel
        text = getattr(image, "text", {}).get(HEADER_KEY)
        if image.mode in ("P", "RGB", "RGBA", "CMYK", "YCbCr"):
            return _gray(np.asarray(image.convert("RGB")), path), text
        if image.mode == "LA":
            return np.asarray(image)[..., 0], text
        return np.asarray(image), text


def _read_tiff(path: Path) -> tuple[np.ndarray, str | None]:
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        check_pixels(path, series.shape, max(series.dtype.itemsize, 4))
        array = tif.asarray()
        page = tif.pages[0]
        description = getattr(page, "description", None)
        if getattr(page, "photometric", None) == tifffile.PHOTOMETRIC.RGB:
            array = _gray(array, path)
    return array, description


@reader
def read_raster(path: str | Path) -> Volume:
    """Read a PNG or TIFF (or any Pillow-readable 2-D image) into a Volume."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            array, text = _read_tiff(path)
        else:
            array, text = _read_pillow(path)
    except MedsrIOError:
        raise
    except Exception as error:  # Pillow and tifffile raise many types on bad files
        raise MedsrIOError(path, f"cannot read image ({error})") from error
    array = np.squeeze(array)
    if array.ndim not in (2, 3):
        raise MedsrIOError(path, f"expected a 2-D image or 3-D stack, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.floating):
        raise MedsrIOError(path, f"pixels of type {array.dtype} are not supported")
    header: dict[str, Any] = parse_header(text, path)
    slope, intercept = header.get("slope", 1.0), header.get("intercept", 0.0)
    values = array.astype(np.float32)  # one float32 copy; float64 only where a scale applies
    if slope != 1.0 or intercept != 0.0:
        for index in np.ndindex(values.shape[:-2]):  # slice by slice: no whole float64 copy
            values[index] = array[index].astype(np.float64) * slope + intercept
    metadata = {
        "source": path.suffix.lower().lstrip("."),
        "paths": [str(path)],
        "stored_dtype": str(array.dtype),
        "quantisation_step": float(slope),
        "stored_intercept": float(intercept),
    }
    return volume_from_header(values, header, metadata)


BLOCK_PIXELS = 1 << 20
"""Pixels converted at a time: float64 temporaries of 8 MB, not of the image's size (an
8192 x 8192 output would need 0.5 GB for each)."""


def map_blocks(
    array: np.ndarray, function: Callable[[np.ndarray], np.ndarray], dtype: Any
) -> np.ndarray:
    """`function(block as float64)` over `array` in blocks of BLOCK_PIXELS, into a new array
    of `dtype` and `array`'s shape: the same numbers as one float64 pass, less memory."""
    flat = np.ascontiguousarray(array).reshape(-1)
    out = np.empty(flat.shape, dtype=dtype)
    for start in range(0, flat.size, BLOCK_PIXELS):
        block = flat[start : start + BLOCK_PIXELS].astype(np.float64)
        out[start : start + BLOCK_PIXELS] = function(block)
    return out.reshape(array.shape)


def _finite_range(array: np.ndarray) -> tuple[float, float]:
    """min and max (exact in float64); ValueError for NaN or infinite values."""
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("image holds NaN or infinite values; they cannot be stored as integers")
    return low, high


def _integer_valued(array: np.ndarray) -> bool:
    flat = np.ascontiguousarray(array).reshape(-1)
    return all(
        np.array_equal(block, np.round(block))
        for block in (flat[i : i + BLOCK_PIXELS] for i in range(0, flat.size, BLOCK_PIXELS))
    )


def encode(
    volume: Volume, value_range: tuple[float, float] | None = None, bits: int = 16
) -> tuple[np.ndarray, float, float]:
    """Stored unsigned integers for `volume` and the (intercept, slope) that restore it
    (computed in float64, block by block: `map_blocks`)."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    data = volume.array
    low, high = _finite_range(data)
    top = 2**bits - 1
    if value_range is None and _integer_valued(data):
        if low >= 0 and high <= 255:
            return map_blocks(data, lambda b: b, np.uint8), 0.0, 1.0
        # A fixed -1024 offset for CT keeps every CT file on the same integer mapping.
        ct_offset = CT_RANGE_HU[0] if volume.modality == "CT" and low >= CT_RANGE_HU[0] else low
        for offset in (0.0, ct_offset, low):
            if bits == 16 and low >= offset and high - offset <= top:
                shifted = map_blocks(data, lambda block: block - offset, np.uint16)  # noqa: B023
                return shifted, offset, 1.0
    if value_range is None:
        if volume.modality == "CT" and volume.unit == "HU":
            value_range = (min(CT_RANGE_HU[0], low), max(CT_RANGE_HU[1], high))
        else:
            value_range = (low, high)
    elif low < value_range[0] or high > value_range[1]:
        warnings.warn(
            f"values {low:g}..{high:g} clipped to value_range {value_range}", stacklevel=3
        )
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi >= lo:
        raise ValueError(f"value_range must be (low, high) with low <= high, got {value_range}")
    slope = (hi - lo) / top if hi > lo else 1.0
    dtype = np.uint8 if bits == 8 else np.uint16
    stored = map_blocks(data, lambda b: np.clip(np.round((b - lo) / slope), 0, top), dtype)
    return stored, lo, slope


INTEGER_DTYPES: dict[str, type[np.unsignedinteger[Any]]] = {
    "uint8": np.uint8,
    "uint16": np.uint16,
}


IntegerScale = tuple[type[np.unsignedinteger[Any]], float, float]


def input_integer_scale(volume: Volume) -> IntegerScale | None:
    """`(dtype, intercept, slope)` of the integer PNG/TIFF `volume` was read from (kept in
    its metadata through `medsr enhance`), or None when it came from elsewhere."""
    meta = volume.metadata
    dtype = INTEGER_DTYPES.get(str(meta.get("stored_dtype")))
    if dtype is None or meta.get("source") not in ("png", "tif", "tiff"):
        return None
    intercept = float(meta.get("stored_intercept", 0.0))
    return dtype, intercept, float(meta.get("quantisation_step", 1.0))


def encode_like_input(volume: Volume) -> tuple[np.ndarray, float, float] | None:
    """Stored integers on the input's own integer scale (same dtype, intercept and slope),
    rounded and clipped to the dtype's range, with a warning saying how many pixels were
    clipped; None when `volume` did not come from an integer PNG/TIFF."""
    scale = input_integer_scale(volume)
    if scale is None:
        return None
    dtype, intercept, slope = scale
    _finite_range(volume.array)
    # float32 holds every rounded value (|stored| < 2**24 is all an integer PNG/TIFF needs)
    stored = map_blocks(volume.array, lambda b: np.rint((b - intercept) / slope), np.float32)
    top = np.iinfo(dtype).max
    clipped = int(np.count_nonzero((stored < 0) | (stored > top)))
    if clipped:
        warnings.warn(
            f"{clipped} pixel(s) ({clipped / stored.size:.3%}) outside the input's "
            f"{np.dtype(dtype).name} range 0..{top} were clipped to it",
            stacklevel=3,
        )
    return np.clip(stored, 0, top).astype(dtype), intercept, slope


def _header(volume: Volume, intercept: float, slope: float) -> str:
    fields = {"version": 1, "intercept": intercept, "slope": slope, **header_fields(volume)}
    return json.dumps({HEADER_KEY: fields})


def write_png(
    volume: Volume,
    path: str | Path,
    value_range: tuple[float, float] | None = None,
    bits: int = 16,
    overwrite: bool = False,
    like_input: bool = False,
) -> Path:
    """Write a 2-D `volume` as a grey PNG (8- or 16-bit, see the module docstring).

    `like_input`: when `volume` came from an integer PNG/TIFF (an enhanced image keeps its
    source's metadata), store it in the input's bit depth and integer scale, so any viewer
    shows the input's brightness (`encode_like_input`); else as without it."""
    if volume.is_volume:
        raise MedsrIOError(
            path,
            f"PNG holds one 2-D image, got shape {volume.shape}; "
            "write volume.slice(i) or use .tif/.nii.gz",
        )
    path = check_can_write(path, overwrite)
    matched = encode_like_input(volume) if like_input and value_range is None else None
    stored, intercept, slope = matched or encode(volume, value_range, bits)
    info = PngImagePlugin.PngInfo()
    info.add_text(HEADER_KEY, _header(volume, intercept, slope))
    with atomic_write(path, overwrite) as temp:
        Image.fromarray(stored).save(temp, format="PNG", pnginfo=info)
    return path


def write_tiff(
    volume: Volume,
    path: str | Path,
    value_range: tuple[float, float] | None = None,
    bits: int = 16,
    float32: bool = False,
    overwrite: bool = False,
    like_input: bool = False,
) -> Path:
    """Write a 2-D image or a 3-D stack as TIFF; `float32=True` stores the values exactly;
    `like_input` as for `write_png`."""
    path = check_can_write(path, overwrite)
    matched = encode_like_input(volume) if like_input and not float32 else None
    if matched is not None:
        stored, intercept, slope = matched
    elif float32:
        stored, intercept, slope = volume.array.astype(np.float32), 0.0, 1.0
    else:
        stored, intercept, slope = encode(volume, value_range, bits)
    description = _header(volume, intercept, slope)
    with atomic_write(path, overwrite) as temp:
        tifffile.imwrite(
            temp, stored, description=description, metadata=None, photometric="minisblack"
        )
    return path
