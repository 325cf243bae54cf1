"""Named models shipped inside the package, and resolving a model name or checkpoint path.

`MODELS` lists the shipped names with their file under `src/medsr/weights/` and a model card
under `docs/models/`; a name whose file is absent gives a clear error saying so. Nothing is
ever downloaded: a model is a file in the package or a path the user gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
            "SRResNet, 25 % dose CT -> normal dose at x4 (PSNR-oriented); head CT",
        ),
        ModelEntry(
            "ct-ldct-x4-gan",
            "ct-ldct-x4-gan.pt",
            "ldct-x4",
            "SRGAN fine-tune of ct-ldct-x4 (sharper texture, lower PSNR)",
        ),
        ModelEntry(
            "ct-ldct",
            "ct-ldct.pt",
            "ldct",
            "SRResNet, 25 % dose CT -> normal dose at x1, non-blind (its input's noise "
            "level as a second channel; PSNR-oriented); head CT",
        ),
        ModelEntry(
            "ct-ldct-gan",
            "ct-ldct-gan.pt",
            "ldct",
            "SRGAN fine-tune of ct-ldct (non-blind; texture from the GAN loss)",
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
