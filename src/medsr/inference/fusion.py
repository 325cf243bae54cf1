"""`FusionPredictor`: a CT-guided PET super-resolution model applied in physical units.

```python
predictor = FusionPredictor.load("fusion-petct-x4")       # registered name or checkpoint
result = predictor.fuse(ct, pet)        # CT (HU) and PET (SUV) Volumes, any overlapping grids
result.enhanced                         # PET (SUV) on the CT grid, with provenance
array = predictor.fuse_array(ct_hu, pet_low)   # (H, W) HU + (H/s, W/s) SUV -> (H, W) SUV
```

`fuse` resamples the PET onto the CT grid made `scale` times coarser (`resample.py`;
trilinear, from spacing, origin and direction), refuses a PET whose box does not meet the
CT's, and runs the model slice by slice on the whole slice (no tiling: a 512^2 slice needs
~100 MB). Intensities as in training (the checkpoint's `normalization`): PET and output
SUV / `high`, CT through each of `guide_windows` to [0, 1].
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from medsr._version import __version__
from medsr.data.pet_bank import guide_channels
from medsr.image import Volume
from medsr.inference.predictor import ModelInfo, _device, sha256_file
from medsr.inference.registry import resolve_model
from medsr.inference.resample import (
    check_overlap,
    coarse_geometry,
    match_field_of_view,
    resample_onto,
)
from medsr.models import FUSION_GENERATORS, pack_inputs
from medsr.physics.pet_task import SUV_WINDOW

METADATA_KEY = "inference"


@dataclass
class FusionResult:
    """What `FusionPredictor.fuse` returns: `enhanced` PET (SUV) on the (cropped) CT grid,
    `pet_low` the PET resampled onto the coarse CT grid (the model input), `ct` the CT
    cropped to a multiple of the scale, `coverage` the share of the CT plane the PET covers."""

    enhanced: Volume
    pet_low: Volume
    ct: Volume
    coverage: float


def _unknown_spacing(volume: Volume) -> bool:
    return volume.metadata.get("spacing_known") is False


@dataclass
class FusionPredictor:
    """A `FUSION_GENERATORS` model on `device` with its `ModelInfo` and source file."""

    model: torch.nn.Module
    info: ModelInfo
    device: str = "cpu"
    source: str = ""

    @classmethod
    def load(cls, name_or_path: str, device: str = "cpu", use_ema: bool = True) -> FusionPredictor:
        """Load a registered model name or a checkpoint (.pt) of a fusion generator."""
        from medsr.training.checkpoint import load_checkpoint, load_generator

        path = resolve_model(name_or_path)
        payload = load_checkpoint(path)
        spec, config = payload["generator"], payload.get("config") or {}
        if spec["name"] not in FUSION_GENERATORS:
            raise ValueError(
                f"{path}: generator {spec['name']!r} is not a CT + PET fusion "
                f"model ({sorted(FUSION_GENERATORS)}); use medsr enhance"
            )
        normalization = dict(payload.get("normalization") or {})
        if normalization.get("kind") != "window" or "guide_windows" not in normalization:
            raise ValueError(f"{path}: no SUV window and CT guide windows in the checkpoint")
        info = ModelInfo(
            model_name=str(config.get("name") or path.stem),
            architecture=str(spec["name"]),
            task=str(config.get("data", {}).get("task", "petct")),
            scale=int(spec["config"]["scale"]),
            normalization=normalization,
            checkpoint_sha256=sha256_file(path),
            medsr_version=str(payload.get("medsr_version", "unknown")),
        )
        device = _device(device)
        model = load_generator(path, use_ema=use_ema).to(device)
        return cls(model, info, device, str(path))

    @property
    def scale(self) -> int:
        return self.info.scale

    def fuse_array(self, ct_hu: np.ndarray, pet_low: np.ndarray) -> np.ndarray:
        """CT `(H, W)` in HU and PET `(H/s, W/s)` in SUV on the aligned coarse grid ->
        PET `(H, W)` float32 in SUV."""
        s, norm = self.scale, self.info.normalization
        ct_hu, pet_low = np.asarray(ct_hu, np.float32), np.asarray(pet_low, np.float32)
        if (
            ct_hu.ndim != 2
            or pet_low.shape != (ct_hu.shape[0] // s, ct_hu.shape[1] // s)
            or (ct_hu.shape[0] % s or ct_hu.shape[1] % s)
        ):
            raise ValueError(
                f"need CT (H, W) with H, W multiples of {s} and PET (H/{s}, W/{s}),"
                f" got {ct_hu.shape} and {pet_low.shape}"
            )
        low, high = float(norm["low"]), float(norm["high"])
        pet = (torch.from_numpy(pet_low)[None, None] - low) / (high - low)
        guide = guide_channels(torch.from_numpy(ct_hu), norm["guide_windows"])[None]
        with torch.inference_mode():
            out = self.model(pack_inputs(pet, guide, s).to(self.device)).float().cpu()
        return (out[0, 0].numpy() * (high - low) + low).astype(np.float32)

    def provenance(self) -> dict[str, Any]:
        """What `fuse` records in `metadata["inference"]` (as `Predictor.provenance`)."""
        return {
            "model": self.info.model_name,
            "architecture": self.info.architecture,
            "task": self.info.task,
            "scale": self.scale,
            "checkpoint_sha256": self.info.checkpoint_sha256,
            "model_medsr_version": self.info.medsr_version,
            "medsr_version": __version__,
            "backend": "torch",
            "guide": "CT",
            "research_use_only": True,
        }

    def fuse(self, ct: Volume, pet: Volume, progress: bool = False) -> FusionResult:
        """Enhance `pet` onto the grid of `ct` (module doc). ValueError when the CT is not in
        HU, a 2-D PET comes with a 3-D CT, or the two do not overlap."""
        from tqdm import tqdm

        if ct.unit != "HU":
            raise ValueError(f"the CT must be in HU, got {ct.unit!r} (modality {ct.modality})")
        if pet.unit not in ("SUV", "a.u."):
            warnings.warn(f"the model expects PET in SUV, got {pet.unit!r}", stacklevel=2)
        if ct.is_volume and not pet.is_volume:
            raise ValueError(f"a 3-D CT {ct.shape} needs a 3-D PET, got a 2-D image {pet.shape}")
        if _unknown_spacing(pet) or _unknown_spacing(ct):
            warnings.warn(
                "an image has no known spacing: the PET is taken to span the CT's field of view",
                stacklevel=2,
            )
            pet = match_field_of_view(pet, ct)
        coverage = check_overlap(ct, pet)
        s = self.scale
        grid = coarse_geometry(ct, s)
        low = resample_onto(pet, grid)
        depth, h, w = grid.shape
        ct_slices = (ct.array if ct.is_volume else ct.array[None])[:, : h * s, : w * s]
        out = np.empty(ct_slices.shape, np.float32)
        for k in tqdm(range(depth), desc="fuse", unit="slice", disable=not progress):
            out[k] = self.fuse_array(ct_slices[k], low[k])
        squeeze = (lambda a: a) if ct.is_volume else (lambda a: a[0])
        cropped = ct.with_array(np.ascontiguousarray(squeeze(ct_slices)))
        metadata = {**pet.metadata, METADATA_KEY: self.provenance(), "research_use_only": True}
        enhanced = replace(
            cropped,
            array=squeeze(out),
            modality="PT",
            unit="SUV",
            window=SUV_WINDOW,
            metadata=metadata,
        )
        spacing = grid.spacing if ct.is_volume else grid.spacing[1:]
        pet_low = replace(
            enhanced,
            array=squeeze(low),
            spacing=spacing,
            origin=grid.origin,
            metadata=dict(pet.metadata),
        )
        return FusionResult(enhanced, pet_low, cropped, coverage)
