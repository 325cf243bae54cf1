"""Named models shipped inside the package, resolving a model name or checkpoint path, and
choosing a model for an image.

`MODELS` lists the shipped names with their file under `src/medsr/weights/` and a model card
under `docs/models/`; a name whose file is absent gives a clear error saying so. Nothing is
ever downloaded: a model is a file in the package or a path the user gives.
`auto_model(volume)` picks an installed model from the image's modality, size and noise and
says why (`medsr enhance --model auto`, the web page's default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medsr.image import Volume

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class ModelEntry:
    """A shipped model: its file under `WEIGHTS_DIR`, the task it was trained for, a line
    of description."""

    name: str
    filename: str
    task: str
    description: str

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.filename

    @property
    def installed(self) -> bool:
        return self.path.is_file()


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            "ct-ldct-x4",
            "ct-ldct-x4.pt",
            "ldct-x4",
            "RRDBNet (nearest-neighbour + conv upsampling), low-dose CT (5-50 % dose, smooth "
            "to sharp kernels) -> normal dose at x4 (PSNR-oriented); head and body CT",
        ),
        ModelEntry(
            "ct-ldct-x2",
            "ct-ldct-x2.pt",
            "ldct-x2",
            "RRDBNet (nearest-neighbour + conv upsampling), low-dose CT (5-50 % dose, smooth "
            "to sharp kernels) -> normal dose at x2 (PSNR-oriented); head and body CT",
        ),
        ModelEntry(
            "ct-ldct",
            "ct-ldct.pt",
            "ldct",
            "SRResNet on FFDNet's 2x2-unshuffled grid, low-dose CT (5-90 % dose, smooth to "
            "sharp kernels) -> normal dose at x1, non-blind and kernel-aware (the noise to "
            "remove and its NPS mean frequency as extra channels; PSNR-oriented); head and "
            "body CT",
        ),
        ModelEntry(
            "ct-ldct-gan",
            "ct-ldct-gan.pt",
            "ldct",
            "SRGAN fine-tune of ct-ldct (600 CPU steps; keeps more of the full dose's noise "
            "texture, stays above BM3D on real quarter doses)",
        ),
        ModelEntry(
            "xray-x4",
            "xray-x4.pt",
            "xray-blind-x4",
            "SRResNet (sub-pixel output), radiograph x4 from a low image made by an unknown "
            "resize, noise, 8-bit or JPEG (PSNR-oriented); NIH chest X-rays",
        ),
        ModelEntry(
            "xray-x4-gan",
            "xray-x4-gan.pt",
            "xray-blind-x4",
            "SRGAN fine-tune of xray-x4 (500 CPU steps; adversarial texture)",
        ),
        ModelEntry(
            "xray-x2",
            "xray-x2.pt",
            "xray-blind-x2",
            "SRResNet (sub-pixel output), radiograph x2 from a low image made by an unknown "
            "resize, noise, 8-bit or JPEG (PSNR-oriented); NIH chest X-rays",
        ),
        ModelEntry(
            "fusion-petct-x4",
            "fusion-petct-x4.pt",
            "petct",
            "CT-guided PET x4 (PetCtFusion), 25 %-count simulated FDG PET; medsr fuse",
        ),
    )
}


def available_models() -> list[str]:
    """Names in `MODELS` whose weight file is installed."""
    return [name for name, entry in MODELS.items() if entry.installed]


def resolve_model(name_or_path: str | Path) -> Path:
    """The checkpoint file for a registered model name or an existing file path.

    Raises FileNotFoundError naming the installed models when `name_or_path` is neither an
    existing file nor a registered name whose weights are installed.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    entry = MODELS.get(str(name_or_path))
    if entry is not None and entry.installed:
        return entry.path
    installed = available_models()
    listed = ", ".join(installed) if installed else "none installed yet"
    name = str(name_or_path)
    if name in MODELS:
        raise FileNotFoundError(
            f"model {name!r} is registered but its weights are not installed "
            f"(expected {MODELS[name].path}); installed models: {listed}. "
            "Pass the path of a checkpoint (medsr train) or an .onnx file instead"
        )
    raise FileNotFoundError(
        f"model {name!r} is neither a file nor a registered model name; installed models: "
        f"{listed}; registered names: {', '.join(MODELS)}"
    )


@dataclass(frozen=True)
class ModelChoice:
    """What `auto_model` picked: a registered model `name` and, in words, `reason`."""

    name: str
    reason: str


CT_TARGET_SIDE = 1024
"""CT: the largest scale whose output side stays within this (a 256 px slice goes x4, a 512 px
one x2, or x1 when no x2 model is installed)."""
RADIOGRAPH_TARGET_SIDE = 4096
"""Radiographs: the same rule (a 1024 px image goes x4, a 2000 px one x2)."""
NOISY_CT_HU = 15.0
"""CT noise SD (HU, uniform soft-tissue ROIs) above which a full-size (>= 512 px) slice is
denoised at its own size rather than enlarged: about half a normal dose (normal-dose body
CT measures near 10 HU, a quarter dose near 20)."""
_RADIOGRAPHS = ("CR", "DX")
_SCALED_TASK = re.compile(r"(?P<family>ldct|xray-blind)(?:-x(?P<scale>\d+))?$")


def _candidates(family: str) -> dict[int, str]:
    """Installed models of a task family by scale; the PSNR-oriented one where a scale has
    also a GAN fine-tune (more faithful to the input, the safer default)."""
    chosen: dict[int, str] = {}
    for name, entry in MODELS.items():
        match = _SCALED_TASK.match(entry.task)
        if not entry.installed or match is None or match["family"] != family:
            continue
        scale = int(match["scale"] or 1)
        if scale not in chosen or chosen[scale].endswith("-gan"):
            chosen[scale] = name
    return chosen


def _pick_scale(scales: list[int], side: int, target: int) -> int:
    """The largest scale whose output side stays within `target`, else the smallest."""
    fitting = [s for s in scales if side * s <= target]
    return max(fitting) if fitting else min(scales)


def _looks_like_hu(volume: Volume) -> bool:
    low = float(volume.array.min()) if volume.array.size else 0.0
    return -1100.0 <= low <= -900.0


def auto_model(volume: Volume) -> ModelChoice:
    """The installed model that fits `volume`, and why.

    CT in HU: the low-dose CT models; a noisy full-size slice (>= 512 px, noise SD >=
    `NOISY_CT_HU`) is denoised at its size (x1), any other gets the largest scale whose output
    stays within `CT_TARGET_SIDE`. CR/DX, and 2-D OT images not in HU: the radiograph models
    by the same rule within `RADIOGRAPH_TARGET_SIDE`. PSNR-oriented models are preferred to
    their GAN fine-tunes. Noise is measured on the middle slice (`estimate_noise_sd`).

    Raises ValueError, in one line saying what to do, when no installed model fits: PET (it
    needs its CT: `medsr fuse`), MR, CT not in HU, an image read as OT whose values look like
    HU (declare it CT in HU), a 3-D volume that is not CT.
    """
    import numpy as np

    from medsr.metrics.noise import estimate_noise_sd

    modality, unit = volume.modality, volume.unit
    plane = volume.array[volume.num_slices // 2] if volume.is_volume else volume.array
    height, width = plane.shape
    side = max(height, width)
    # width x height, as image viewers and the web page give sizes
    size = f"{width} x {height} px" + (f", {volume.num_slices} slices" if volume.is_volume else "")
    if modality in ("PT", "NM"):
        raise ValueError(
            f"no shipped model enhances {modality} on its own: fusion-petct-x4 enhances a PET "
            "guided by its CT (medsr fuse --ct CT --pet PET)"
        )
    if modality == "CT":
        if unit != "HU":
            raise ValueError(f"the CT models take CT in HU, this image is in {unit!r}")
        family, target, what = "ldct", CT_TARGET_SIDE, "image"
    elif modality == "OT" and (unit == "HU" or _looks_like_hu(volume)):
        raise ValueError(
            f"this image reads as {modality} in {unit!r} but its values look like CT in HU "
            "(minimum near -1000): declare it with --modality CT --unit HU"
        )
    elif modality in _RADIOGRAPHS or (modality == "OT" and not volume.is_volume):
        family, target, what = "xray-blind", RADIOGRAPH_TARGET_SIDE, "radiograph"
    else:
        kind = "3-D " if volume.is_volume else ""
        raise ValueError(
            f"no shipped model for {kind}{modality} images in {unit!r}; the models are for CT "
            "in HU and radiographs (a CT from another tool: --modality CT --unit HU)"
        )
    models = _candidates(family)
    if not models:
        raise ValueError(f"no model for {modality} is installed; installed: {available_models()}")
    sd, _ = estimate_noise_sd(np.asarray(plane, dtype=np.float32), modality)
    noise = f"noise SD {sd:.3g} {unit}"
    if family == "ldct" and 1 in models and side >= 512 and sd >= NOISY_CT_HU:
        scale = 1
        why = f"a full-size slice with {noise} (>= {NOISY_CT_HU:g}): denoised at its own size"
    else:
        scale = _pick_scale(sorted(models), side, target)
        out = side * scale
        if out > target:
            why = f"{noise}; x{scale}, the smallest scale installed ({out} px output)"
        elif scale == 1:
            why = f"{noise}; x1: no installed scale keeps the output within {target} px"
        else:
            why = f"{noise}; x{scale}, the largest scale within {target} px ({out} px output)"
    return ModelChoice(models[scale], f"{modality} {what}, {size}, {why}")
