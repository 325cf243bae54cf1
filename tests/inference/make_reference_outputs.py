"""Stored reference outputs of the shipped models, and the script that (re)writes them.

`tests/inference/test_reference_outputs.py` runs every case below and compares the result with
`tests/inference/reference_outputs/<model>.npz` (1e-5 of the reference's value range), so a
refactoring that changes what a shipped model outputs fails. Inputs are small crops of the
bundled samples (`sample:` names, pydicom-data), run through the public inference API exactly
as a user would: `Predictor.enhance_array` (one tile, and small blended tiles),
`Predictor.enhance` (a 2-slice Volume: the percentile map is the volume's), and
`FusionPredictor.fuse_array` (a CT crop with a PET made from it by a fixed formula).

Regenerate the file of a model only when its weights or its inference change on purpose (a
newly shipped model, a new post-processing), never to make a failing refactoring pass:

    .venv/bin/python tests/inference/make_reference_outputs.py xray-x4 xray-x4-gan
    .venv/bin/python tests/inference/make_reference_outputs.py          # every shipped model

and commit the rewritten `.npz` files with the new weights.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from medsr.image import Volume

REFERENCE_DIR = Path(__file__).resolve().parent / "reference_outputs"
CT_SAMPLE = "sample:ct-head-693"  # 512 x 512 head CT slice, HU
XRAY_SAMPLE = "sample:xray-extremity-rg3"  # 1760 x 1760 extremity radiograph, a.u.
# (row, column) of the crops' top-left corners: skull edge and brain; bone and soft tissue.
CT_CORNERS = ((150, 150), (256, 256))
XRAY_CORNERS = ((640, 1120), (480, 960))

Case = Callable[[], np.ndarray]


@cache
def _sample(source: str) -> Volume:
    import warnings

    from medsr.io.samples import read_source

    with warnings.catch_warnings():  # the radiograph records no pixel spacing
        warnings.simplefilter("ignore")
        return read_source(source)


def _crop(source: str, corner: tuple[int, int], size: int) -> np.ndarray:
    row, column = corner
    return np.ascontiguousarray(_sample(source).array[row : row + size, column : column + size])


def _single_input_cases(name: str) -> dict[str, Case]:
    from medsr.inference import Predictor

    predictor = Predictor.load(name, precision="fp32")  # the float32 path, exactly
    xray = predictor.task.startswith("xray")
    source, corners = (XRAY_SAMPLE, XRAY_CORNERS) if xray else (CT_SAMPLE, CT_CORNERS)
    # x4 outputs are 16 times the input: smaller crops keep the stored files small.
    size = 24 if predictor.scale > 1 else 64
    first, second = (_crop(source, corner, size) for corner in corners)

    def volume() -> np.ndarray:
        half = size // 2
        stack = np.stack([first[:half, :half], second[:half, :half]])
        template = _sample(source)
        spacing = (2.0, *template.spacing[-2:])
        return predictor.enhance(replace(template, array=stack, spacing=spacing)).array

    return {
        "one_tile": lambda: predictor.enhance_array(first),
        "blended_tiles": lambda: predictor.enhance_array(second, tile_size=16, overlap=4),
        "volume": volume,
    }


def _fusion_cases(name: str) -> dict[str, Case]:
    from medsr.inference.fusion import FusionPredictor

    predictor = FusionPredictor.load(name)
    s = predictor.scale

    def case(corner: tuple[int, int]) -> Case:
        ct = _crop(CT_SAMPLE, corner, 64)
        blocks = ct.reshape(64 // s, s, 64 // s, s).mean(axis=(1, 3))
        # A fixed PET-like map of the CT (SUV 0.5 in air, 5 in dense tissue): no simulator,
        # so the reference depends on the model and its input mapping only.
        pet = (0.5 + 4.5 * np.clip((blocks + 100.0) / 200.0, 0.0, 1.0)).astype(np.float32)
        return lambda: predictor.fuse_array(ct, pet)

    return {f"fuse_{k}": case(corner) for k, corner in enumerate(CT_CORNERS)}


def reference_cases(name: str) -> dict[str, Case]:
    """The cases of shipped model `name`: case name -> function computing its output."""
    from medsr.inference.registry import MODELS

    if MODELS[name].task == "petct":
        return _fusion_cases(name)
    return _single_input_cases(name)


def reference_path(name: str) -> Path:
    return REFERENCE_DIR / f"{name}.npz"


def write_references(name: str) -> Path:
    """Run every case of model `name` and store the outputs (float32) in its `.npz` file."""
    import torch

    torch.set_num_threads(1)
    outputs = {case: np.asarray(run(), np.float32) for case, run in reference_cases(name).items()}
    REFERENCE_DIR.mkdir(exist_ok=True)
    path = reference_path(name)
    np.savez_compressed(path, **outputs)
    return path


def main(names: list[str]) -> None:
    from medsr.inference.registry import MODELS

    for name in names or list(MODELS):
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; shipped: {', '.join(MODELS)}")
        path = write_references(name)
        print(f"{name}: {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main(sys.argv[1:])
