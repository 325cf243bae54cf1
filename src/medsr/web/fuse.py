"""The CT+PET mode of `medsr serve`, free of HTTP: what `medsr fuse` does, for uploads.

`fuse_upload` runs in a worker thread like `enhance_upload`: it decodes the CT and the PET
(each one image or the DICOM slices of one series), runs `FusionPredictor.fuse` (the PET
resampled onto the CT grid from spacing, origin and orientation; refused when the two do
not overlap), and keeps for the viewer the PET input on the CT grid (bicubic), the enhanced
PET, the CT and the consistency map. Downloads: the enhanced PET as 16-bit PNG and derived
DICOM (as /api/enhance), and `fused`, the PET colour map over the CT (`fused_overlay`).
The CT and the PET are each held to `Settings.max_pixels`.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsr.apps.enhance import output_tag
from medsr.image import Volume, Window
from medsr.inference import consistency_map
from medsr.inference.fusion import FusionPredictor
from medsr.viz.overlays import DEFAULT_CT_WINDOW, default_suv_max, fused_overlay
from medsr.web.describe import dicom_tags, orientation
from medsr.web.jobs import Job
from medsr.web.limits import Settings, Unprocessable
from medsr.web.models import describe_model
from medsr.web.service import (
    NOTICE,
    Result,
    Upload,
    consistency_summary,
    decode,
    input_summary,
    output_summary,
    package,
    safe_stem,
    stack,
    zip_files,
)

DEFAULT_ALPHA = 0.5
"""Weight of the PET colour map over the CT, as `medsr fuse --alpha`."""


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def overlay_download(result: Result, alpha: float) -> tuple[str, bytes]:
    """The fused image of a CT+PET result at `alpha`: one RGB PNG, or a zip of one PNG per
    slice named as `medsr fuse` names them (`<stem>_fused_z0000.png`, ...)."""
    if not 0.0 <= alpha <= 1.0:
        raise Unprocessable(f"alpha must be in [0, 1], got {alpha}")
    info = result.summary["fusion"]
    window, stem = Window(**info["ct_window"]), f"{info['stem']}_fused"
    pairs = zip(result.arrays["ct"], result.arrays["output"], strict=True)
    pngs = [_png(fused_overlay(ct, pet, window, alpha, info["suv_max"])) for ct, pet in pairs]
    if len(pngs) == 1:
        return f"{stem}.png", pngs[0]
    return f"{stem}.zip", zip_files({f"{stem}/{stem}_z{k:04d}.png": p for k, p in enumerate(pngs)})


def _notes(ct: Volume, pet: Volume) -> list[str]:
    """What the user should know about how the two images were put together."""
    notes = []
    if False in (ct.metadata.get("spacing_known"), pet.metadata.get("spacing_known")):
        notes.append(
            "an image has no geometry (e.g. PNG): the PET is taken to span the CT's field of view"
        )
    if pet.unit not in ("SUV", "a.u.", "BQML"):  # BQML is converted to SUV by the fusion
        notes.append(f"the PET is in {pet.unit!r}; the model expects SUV")
    return notes


def _volume_summary(volume: Volume) -> dict[str, Any]:
    return {
        "shape": list(volume.shape),
        "modality": volume.modality,
        "unit": volume.unit,
        "spacing_mm": list(volume.spacing),
    }


def fuse_upload(
    key: str,
    predictor: FusionPredictor,
    ct_uploads: list[Upload],
    pet_uploads: list[Upload],
    alpha: float,
    settings: Settings,
    job: Job,
) -> Result:
    """Decode the CT and PET, fuse, check consistency, package downloads (module doc).

    Raises UnsupportedType (415) / Unprocessable (422) as `decode`, and Unprocessable with
    `medsr fuse`'s refusal (CT not in HU, 3-D CT with a 2-D PET, no overlap). `job` is told
    each phase (the fusion model runs whole slices: a cancel stops it between phases)."""
    from medsr.physics.resize import upsample

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medsr-web-") as scratch:
        folder = Path(scratch)
        job.enter("reading")
        # the output lies on the CT's grid: the CT is held to the output cap as well
        ct_cap = min(settings.max_pixels, settings.max_output_pixels)
        ct = decode(ct_uploads, folder / "CT", ct_cap, "CT", settings)
        pet = decode(pet_uploads, folder / "PET", settings.max_pixels, "PET", settings)
        tags = dicom_tags(next((folder / "CT").glob("CT_0000.dcm"), folder / "none"))
        job.model = {"id": key, "reason": "the CT+PET fusion model", "auto": False}
        job.enter("enhancing")
        try:
            fused = predictor.fuse(ct, pet)
        except ValueError as error:
            raise Unprocessable(str(error)) from None
        job.enter("packaging")
        stem = f"{safe_stem(pet_uploads[0].name, 'pet')}_{output_tag(predictor.scale)}"
        downloads = package(fused.enhanced, folder, stem)
    job.enter("checking")
    low, high, s = stack(fused.pet_low), stack(fused.enhanced), predictor.scale
    with torch.no_grad():  # the viewer's "input": what bicubic interpolation makes of the PET
        bicubic = upsample(torch.from_numpy(low), s).numpy()
    checks = [
        consistency_map(lo, hi, predictor.info.task, s) for lo, hi in zip(low, high, strict=True)
    ]
    ct_window = ct.window or DEFAULT_CT_WINDOW
    summary = {
        "research_use_only": True,
        "notice": NOTICE,
        "kind": "fusion",
        "model": describe_model(key, predictor),
        "model_choice": job.model,
        "input": input_summary(fused.pet_low, low, fused.enhanced.window, modality="PT"),
        "pet": _volume_summary(pet),
        "ct": _volume_summary(ct),
        "output": output_summary(fused.enhanced, high),
        "orientation": orientation(ct),
        "dicom_tags": tags,
        "consistency": consistency_summary(checks),
        "fusion": {
            "alpha": alpha,
            "suv_max": default_suv_max(high),
            "stem": stem,
            "ct_window": {"center": ct_window.center, "width": ct_window.width},
            "coverage": fused.coverage,
            "notes": [*_notes(ct, pet), *fused.enhanced.metadata.get("derivation_notes", [])],
        },
        "metrics": None,
        "seconds": None,
    }
    arrays = {
        "input": bicubic,
        "output": high,
        "ct": stack(fused.ct),
        "consistency": np.stack([c.map for c in checks]),
    }
    result = Result(summary, arrays, downloads)
    result.downloads["fused"] = overlay_download(result, alpha)
    summary["seconds"] = round(time.perf_counter() - start, 3)
    return result
