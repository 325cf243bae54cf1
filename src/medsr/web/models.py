"""The models `medsr serve` runs: single-image `Predictor`s (POST /api/enhance) and CT+PET
`FusionPredictor`s (POST /api/fuse), loaded by name or checkpoint and described for the page.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, TypeVar

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
