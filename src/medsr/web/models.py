"""The models `medsr serve` runs: single-image `Predictor`s (POST /api/enhance) and CT+PET
`FusionPredictor`s (POST /api/fuse), loaded by name or checkpoint and described for the page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from medsr.image import Volume
from medsr.inference import Predictor, available_models
from medsr.inference.fusion import FusionPredictor

log = logging.getLogger("medsr.web")
Model = Predictor | FusionPredictor
M = TypeVar("M", Predictor, FusionPredictor)


def _load(item: str, device: str) -> Model:
    try:
        return Predictor.load(item, device=device)
    except ValueError as error:  # Predictor refuses fusion checkpoints: try them as such
        try:
            return FusionPredictor.load(item, device=device)
        except ValueError:
            raise error from None


def load_models(names_or_paths: list[str], device: str = "cpu") -> dict[str, Model]:
    """Models by id: the given names / checkpoint paths, else every installed model
    (skipping, with a warning, those neither predictor can run).

    The id is the registered name, or the checkpoint's model name (suffixed `-2`, `-3` on a
    clash). Raises FileNotFoundError / ValueError for a model that cannot be loaded.
    """
    models: dict[str, Model] = {}
    for item in names_or_paths or available_models():
        try:
            model = _load(item, device)
        except ValueError as error:
            if names_or_paths:
                raise
            log.warning("not serving installed model %s: %s", item, error)
            continue
        base = item if "/" not in item and not Path(item).is_file() else model.info.model_name
        key, n = base, 1
        while key in models:
            n += 1
            key = f"{base}-{n}"
        models[key] = model
    return models


def describe_model(key: str, model: Model) -> dict[str, Any]:
    """What `GET /api/models` lists for one model; `kind` "fusion" (inputs CT and PET, POST
    /api/fuse) or "single" (one image, POST /api/enhance)."""
    from medsr.physics.tasks import TASKS

    info = model.info
    fusion = isinstance(model, FusionPredictor)
    modalities = (
        ["CT", "PT"] if fusion else list(getattr(TASKS.get(info.task), "modalities", ()) or ())
    )
    return {
        "id": key,
        "name": info.model_name,
        "task": info.task,
        "scale": info.scale,
        "architecture": info.architecture,
        "modalities": modalities,
        "unit": info.normalization.get("unit"),
        "checkpoint_sha256": info.checkpoint_sha256,
        "kind": "fusion" if fusion else "single",
        "inputs": ["ct", "pet"] if fusion else ["image"],
    }


def choose_model(
    models: dict[str, M], name: str | None, fusion: bool, other_mode: dict[str, Any]
) -> tuple[str, M]:
    """The model `name` of `models` (the fusion or the single-image ones; default: the
    first), else Unprocessable (422) saying what to do instead."""
    from medsr.web.limits import Unprocessable

    kind = "CT+PET fusion model" if fusion else "model"
    key = name or next(iter(models), None)
    if key is not None and key in other_mode:
        route = "POST /api/enhance" if fusion else "POST /api/fuse"
        raise Unprocessable(f"model {key!r} is not a {kind}: it runs on {route}")
    if key is None:
        hint = "fusion-petct-x4" if fusion else "CHECKPOINT"
        raise Unprocessable(f"no {kind} loaded: start medsr serve with --models {hint}")
    if key not in models:
        raise Unprocessable(f"unknown {kind} {key!r}; this server runs {list(models)}")
    return key, models[key]


AUTO = "auto"
"""The model field's value (or no value) that lets the server pick from the image."""


def misfit(predictor: Predictor, volume: Volume) -> str | None:
    """Why `predictor` cannot take `volume` (a CT-in-HU model and an image not in HU, a
    task for other modalities), or None when it fits."""
    from medsr.physics.tasks import TASKS

    normalization = predictor.info.normalization
    hu_model = normalization["kind"] == "window" and normalization.get("unit") == "HU"
    if hu_model and volume.unit != "HU":
        return f"takes CT in HU, the image is {volume.modality} in {volume.unit!r}"
    modalities = tuple(getattr(TASKS.get(predictor.task), "modalities", ()) or ())
    if modalities and volume.modality not in modalities:
        return f"is for {'/'.join(modalities)}, the image is {volume.modality}"
    return None


def pick_model(models: Mapping[str, Predictor], volume: Volume) -> tuple[str, str]:
    """The served model for `volume` and why: `registry.auto_model`'s choice (modality,
    size, noise) when this server runs it, else the served model that fits the image and
    is closest to that choice (same task, then one made for the image's modality).

    Raises Unprocessable (422) with auto_model's reason when no shipped model is for such
    an image (PET alone, MR, CT not in HU), or naming the served models when none fits."""
    from medsr.inference.registry import MODELS, auto_model
    from medsr.physics.tasks import TASKS
    from medsr.web.limits import Unprocessable

    try:
        choice = auto_model(volume)
    except ValueError as error:
        raise Unprocessable(f"no model fits this image: {error}") from None
    if choice.name in models:
        return choice.name, choice.reason
    fitting = [k for k, p in models.items() if misfit(p, volume) is None]
    if not fitting:
        raise Unprocessable(
            f"no model served here takes this {volume.modality} image in {volume.unit!r} "
            f"({choice.name} would: {choice.reason}); this server runs {list(models)}"
        )
    task = MODELS[choice.name].task

    def rank(key: str) -> tuple[bool, bool]:
        declared = getattr(TASKS.get(models[key].task), "modalities", ()) or ()
        return models[key].task != task, volume.modality not in declared

    key = min(fitting, key=rank)  # min is stable: the first served among equals
    served = (
        f"{choice.name} is not served here: {key} (task {models[key].task}, x{models[key].scale})"
    )
    return key, f"{choice.reason}; {served}"
