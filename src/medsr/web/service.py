"""What `medsr serve` does with an upload, free of HTTP: decode, check, enhance, package.

`enhance_upload` runs in a worker thread. Uploads live in a request-scoped temporary folder
(files named by position, never by the client's name) that is deleted before it returns;
the result (arrays for the viewer, PNG / DICOM downloads as bytes) stays in memory.
"""

from __future__ import annotations

import io
import math
import re
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsr.apps.enhance import output_tag
from medsr.image import Volume, Window
from medsr.inference import Predictor, consistency_map
from medsr.inference.tiling import tile_count
from medsr.io.errors import MedsrIOError, one_line
from medsr.io.limits import read_limits
from medsr.web.describe import dicom_tags, orientation, size_text
from medsr.web.jobs import Job
from medsr.web.limits import Settings, Unprocessable, UnsupportedType, check_pixels
from medsr.web.models import AUTO, describe_model, pick_model

NOTICE = "Research use only: not for diagnosis or treatment decisions."
SUFFIXES = {"dicom": ".dcm", "png": ".png", "jpeg": ".jpg", "tiff": ".tif"}
MEDIA = {".png": "image/png", ".dcm": "application/dicom", ".zip": "application/zip"}


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the client's name (used for download names only) and its bytes."""

    name: str
    data: bytes


@dataclass
class Result:
    """An enhanced upload: JSON `summary`, viewer `arrays` `(D, h, w)` float32 by name
    (input, output, consistency, reference), `downloads` by format: (filename, bytes), and
    the client that may see it (`owner`, `clients.ClientCookie`)."""

    summary: dict[str, Any]
    arrays: dict[str, np.ndarray]
    downloads: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    owner: str = ""

    @property
    def nbytes(self) -> int:
        """Memory the result holds: its arrays and its downloads."""
        arrays = sum(int(a.nbytes) for a in self.arrays.values())
        return arrays + sum(len(data) for _, data in self.downloads.values())


def sniff(upload: Upload) -> str:
    """The kind of upload from its content: "dicom", "png", "jpeg" or "tiff" (DICOM
    without the Part 10 preamble is recognised by a .dcm name)."""
    head = upload.data[:132]
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if upload.name.lower().endswith((".dcm", ".dicom")):
        return "dicom"  # no Part 10 preamble: the reader decides
    raise UnsupportedType(
        f"{upload.name!r} is not a DICOM, PNG, JPEG or TIFF file (checked its content); "
        "medsr serve accepts those four"
    )


MIN_SIDE = 4
"""Smallest image side (pixels) the server takes: smaller ones are not images to enhance."""


def _pixels(path: Path, kind: str) -> tuple[int, str]:
    """Pixel count from the header alone (no pixel data decoded), and for DICOM the series
    it belongs to (its description and UID; "" otherwise); MedsrIOError when the header
    cannot be read."""
    from medsr.io.errors import reading

    with reading(path, "cannot read the header"):
        return _header_pixels(path, kind)


def _header_pixels(path: Path, kind: str) -> tuple[int, str]:
    if kind == "dicom":
        from medsr.io.dicom import read_dataset

        ds = read_dataset(path, stop_before_pixels=True)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        series = f"{ds.get('SeriesDescription', '') or ''}|{ds.get('SeriesInstanceUID', '')}"
        return int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0) * frames, series
    if kind == "tiff":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return sum(int(np.prod(p.shape[:2])) for p in tif.pages), ""
    from PIL import Image

    with Image.open(path) as image:
        return int(image.size[0] * image.size[1]), ""


def check_one_series(series: list[str], what: str) -> None:
    """Unprocessable (422) saying so when the uploaded DICOM files hold several series
    (`series`: one "description|uid" per file), naming each with its file count."""
    counts = Counter(series)
    if len(counts) < 2:
        return
    named = ", ".join(
        f"{(key.split('|', 1)[0] or 'no description')!r} ({n} file{'s' * (n > 1)})"
        for key, n in counts.most_common(5)
    )
    more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
    raise Unprocessable(
        f"{what}: the files hold {len(counts)} DICOM series, {named}{more}; "
        "upload the slices of one series at a time"
    )


def decode(
    uploads: list[Upload],
    folder: Path,
    max_pixels: int,
    what: str,
    settings: Settings | None = None,
) -> Volume:
    """Write `uploads` under `folder` and read them as one Volume (a series when several),
    within the read limits of a server (`io.limits`: `max_pixels`, decoded bytes for it,
    the DICOM parse budget `settings.parse_seconds`, `settings.max_files` files).

    Raises UnsupportedType (415), Unprocessable (422: malformed file, too many pixels,
    several files that are not DICOM slices of one series, an image smaller than
    MIN_SIDE pixels a side).
    """
    settings = settings or Settings()
    limits = {
        "max_pixels": max_pixels,
        "max_bytes": max(max_pixels * 8, settings.max_upload_bytes),
        "parse_seconds": settings.parse_seconds,
        "max_reads": 200_000,
        "max_files": settings.max_files,
    }
    with read_limits(**limits):
        volume = _decode(uploads, folder, max_pixels, what)
    if min(volume.shape[-2:]) < MIN_SIDE:
        raise Unprocessable(
            f"{what} is {' x '.join(map(str, volume.shape))} pixels; the server takes images "
            f"of at least {MIN_SIDE} x {MIN_SIDE}"
        )
    return volume


def _decode(uploads: list[Upload], folder: Path, max_pixels: int, what: str) -> Volume:
    from medsr.io import read
    from medsr.io.dicom import read_dicom_series

    kinds = [sniff(u) for u in uploads]
    series: list[str] = []
    if len(uploads) > 1 and set(kinds) != {"dicom"}:
        raise Unprocessable(
            f"{what}: several files must all be DICOM slices of one series (got "
            f"{', '.join(sorted(set(kinds)))}); upload other images one at a time"
        )
    folder.mkdir()
    paths = [folder / f"{what}_{k:04d}{SUFFIXES[kind]}" for k, kind in enumerate(kinds)]
    try:
        total = 0
        for upload, path, kind in zip(uploads, paths, kinds, strict=True):
            path.write_bytes(upload.data)
            pixels, uid = _pixels(path, kind)
            total += pixels
            series.append(uid)
        check_one_series(series, what)
        check_pixels(total, max_pixels, what)
        return read_dicom_series(folder) if len(paths) > 1 else read(paths[0])
    except MedsrIOError as error:
        name = uploads[paths.index(error.path)].name if error.path in paths else what
        label = f"{kinds[0].upper()} " if kinds[0] == "dicom" else ""
        raise Unprocessable(f"malformed {label}file {name!r}: {error.problem}") from None
    except (OSError, SyntaxError, ValueError) as error:  # PIL / tifffile on corrupt data
        raise Unprocessable(
            f"malformed {kinds[0].upper()} {what}: {one_line(str(error))}"
        ) from None


def stack(volume: Volume) -> np.ndarray:
    return volume.array if volume.is_volume else volume.array[None]


def reference_metrics(output: Volume, baseline: np.ndarray, reference: Volume) -> dict[str, Any]:
    """PSNR / SSIM of the model output and of bicubic upsampling against `reference`.

    CT in HU is scored on the neuro, abdomen and chest windows (data range 1 after
    windowing, `medsr.metrics.ct`); other images on the reference's own range (max - min).
    """
    from medsr.metrics.ct import CT_WINDOWS, window_to_unit
    from medsr.metrics.image import psnr, ssim

    if reference.shape != output.shape:
        raise Unprocessable(
            f"reference is {'x'.join(map(str, reference.shape))} but the result is "
            f"{'x'.join(map(str, output.shape))}: upload the full-resolution image of the "
            "same slice(s)"
        )
    target = torch.from_numpy(stack(reference))[:, None]
    images = {
        "model": torch.from_numpy(stack(output))[:, None],
        "bicubic": torch.from_numpy(baseline)[:, None],
    }
    rows = []
    if output.unit == "HU" and reference.unit == "HU":
        for name, window in CT_WINDOWS.items():
            t = window_to_unit(target, window)
            for method, x in images.items():
                x = window_to_unit(x, window)
                rows.append(
                    {
                        "method": method,
                        "range": f"{name} C{window.center:g}/W{window.width:g}",
                        "psnr_db": float(psnr(x, t, data_range=1.0)),
                        "ssim": float(ssim(x, t, data_range=1.0)),
                    }
                )
    else:
        span = float(target.max() - target.min()) or 1.0
        for method, x in images.items():
            rows.append(
                {
                    "method": method,
                    "range": f"reference range {span:.4g}",
                    "psnr_db": float(psnr(x, target, data_range=span)),
                    "ssim": float(ssim(x, target, data_range=span)),
                }
            )
    return {"rows": rows, "note": "data range stated per row; bicubic is the baseline"}


def zip_files(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def package(output: Volume, folder: Path, stem: str) -> dict[str, tuple[str, bytes]]:
    """16-bit PNG and derived DICOM downloads; several files come as one zip."""
    from medsr.io.dicom_write import write_dicom_series
    from medsr.io.raster import write_png

    out = folder / "out"
    out.mkdir()
    slices = [output.slice(k) for k in range(output.num_slices)] if output.is_volume else [output]
    pngs = [write_png(s, out / f"{stem}_z{k:04d}.png") for k, s in enumerate(slices)]
    dicoms = write_dicom_series(output, out / "dicom", prefix=stem)
    downloads = {}
    for fmt, paths in (("png", pngs), ("dicom", dicoms)):
        if len(paths) == 1:
            downloads[fmt] = (f"{stem}{paths[0].suffix}", paths[0].read_bytes())
        else:
            zipped = zip_files({f"{stem}/{p.name}": p.read_bytes() for p in paths})
            downloads[fmt] = (f"{stem}_{fmt}.zip", zipped)
    return downloads


def value_range(array: np.ndarray) -> list[float]:
    return [float(array.min()), float(array.max())]


def input_summary(
    volume: Volume, low: np.ndarray, window: Window | None, modality: str | None = None
) -> dict[str, Any]:
    """The `input` part of a result's summary: `volume` as the model saw it (`low`)."""
    return {
        "shape": list(volume.shape),
        "size": size_text(volume.shape),
        "slices": len(low),
        "modality": modality or volume.modality,
        "unit": volume.unit,
        "spacing_mm": list(volume.spacing),
        "spacing_known": volume.metadata.get("spacing_known") is not False,
        "range": value_range(low),
        "window": None if window is None else {"center": window.center, "width": window.width},
    }


def output_summary(output: Volume, high: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(output.shape),
        "size": size_text(output.shape),
        "spacing_mm": list(output.spacing),
        "spacing_known": output.metadata.get("spacing_known") is not False,
        "range": value_range(high),
    }


def consistency_summary(checks: Sequence[Any]) -> dict[str, Any]:
    """The consistency of every slice, and the worst one's score and description."""
    worst = max(range(len(checks)), key=lambda k: checks[k].score)
    return {
        "score": checks[worst].score,
        "worst_slice": worst,
        "scores": [c.score for c in checks],
        "noise_sd": [c.noise_sd for c in checks],
        "description": checks[worst].description,
    }


def safe_stem(name: str, default: str = "image") -> str:
    """A download name from the client's file name: safe characters only, at most 64."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:64] or default


def in_steps(
    predictor: Predictor, volume: Volume, settings: Settings
) -> tuple[Predictor, int | None]:
    """The tile side for `volume` (`settings.tile_size`, "auto" resolved by the Predictor's
    plan for this image: None when the whole image fits its memory budget) and `predictor`
    with its memory budget lowered, when needed, so that the model runs the image in at
    least `settings.progress_steps` calls (the Predictor batches tiles up to its budget;
    each call ends with a progress report and a chance to cancel). The tiles stay as they
    are and a budget is never raised, so the output does not change; a whole image is one
    call per slice (bounded by the budget, so each call stays short)."""
    height, width = volume.shape[-2:]
    tile, _ = predictor.plan((height, width), settings.tile_size, settings.overlap)
    if tile is None:
        return predictor, None
    tiles = tile_count((height, width), tile, settings.overlap)
    calls_per_slice = max(1, math.ceil(settings.progress_steps / volume.num_slices))
    batch = max(1, math.ceil(tiles / calls_per_slice))
    pixels = min(tile, height) * min(tile, width)
    budget = math.ceil(predictor.bytes_per_pixel() * pixels * batch) + 1
    if budget >= predictor.memory_budget:
        return predictor, tile
    return replace(predictor, memory_budget=budget), tile


def choose_for(
    models: Mapping[str, Predictor],
    requested: str | None,
    volume: Volume,
    settings: Settings,
) -> tuple[str, Predictor, dict[str, Any]]:
    """The model for `volume`: `requested`, or picked from the image (`models.pick_model`)
    when it is None, "" or "auto"; with `{"id", "reason", "auto"}` for the summary. The
    image is then held to that model's input cap (422 above it)."""
    auto = requested in (None, "", AUTO)
    if auto:
        key, reason = pick_model(models, volume)
    else:
        key, reason = str(requested), "chosen by the user"
    predictor = models[key]
    pixels = int(np.prod(volume.shape))
    check_pixels(pixels, settings.input_pixels(predictor.scale), "input")
    return key, predictor, {"id": key, "reason": reason, "auto": auto}


def enhance_upload(
    models: Mapping[str, Predictor],
    requested: str | None,
    uploads: list[Upload],
    reference: list[Upload],
    settings: Settings,
    ensemble: bool,
    job: Job,
) -> Result:
    """Decode, choose the model (`choose_for`), enhance (`ensemble`: averaged over the 8
    flips / rotations, `Predictor.with_geometric_ensemble`), check consistency, score against
    a reference, package downloads; `job` is told each phase and every batch of tiles (and
    stops the work by raising from them when cancelled)."""
    from medsr.physics.resize import upsample

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medsr-web-") as scratch:
        folder = Path(scratch)
        job.enter("reading")
        scales = [p.scale for p in models.values()] if requested in (None, "", AUTO) else []
        scale = min(scales) if scales else models[str(requested)].scale
        volume = decode(uploads, folder / "input", settings.input_pixels(scale), "input", settings)
        tags = dicom_tags(next((folder / "input").glob("input_0000.dcm"), folder / "none"))
        job.enter("choosing")
        key, predictor, choice = choose_for(models, requested, volume, settings)
        predictor = predictor.with_geometric_ensemble(ensemble)
        job.model = choice
        ref_cap = min(settings.max_pixels * predictor.scale**2, settings.max_output_pixels)
        ref = (
            decode(reference, folder / "ref", ref_cap, "reference", settings) if reference else None
        )
        try:
            predictor.check_volume(volume)
        except ValueError as error:
            raise Unprocessable(str(error)) from None
        job.enter("enhancing")
        stepped, tile = in_steps(predictor, volume, settings)
        output = stepped.enhance(
            volume, tile_size=tile, overlap=settings.overlap, on_tile=job.on_tile
        )
        job.enter("checking")
        low, high = stack(volume), stack(output)
        checks = [
            consistency_map(lo, hi, predictor.task, predictor.scale)
            for lo, hi in zip(low, high, strict=True)
        ]
        metrics = None
        if ref is not None:
            with torch.no_grad():
                baseline = upsample(torch.from_numpy(low), predictor.scale).numpy()
            metrics = reference_metrics(output, baseline, ref)
        job.enter("packaging")
        stem = f"{safe_stem(uploads[0].name)}_{output_tag(predictor.scale)}"
        downloads = package(output, folder, stem)
    arrays = {"input": low, "output": high, "consistency": np.stack([c.map for c in checks])}
    if ref is not None:
        arrays["reference"] = stack(ref)
    summary = {
        "research_use_only": True,
        "notice": NOTICE,
        "model": describe_model(key, predictor),
        "model_choice": choice,
        "ensemble": ensemble,
        "input": input_summary(volume, low, volume.window),
        "output": output_summary(output, high),
        "orientation": orientation(volume),
        "dicom_tags": tags,
        "consistency": consistency_summary(checks),
        "metrics": metrics,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return Result(summary, arrays, downloads)


def new_id() -> str:
    return uuid.uuid4().hex
