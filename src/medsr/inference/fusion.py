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

import numpy as np
import torch

from medsr.checkpoint import ModelInfo, read_checkpoint
from medsr.data.pet_bank import guide_channels
from medsr.image import Provenance, Volume
from medsr.inference.fusion_checks import check_regular_grids, check_same_patient, pet_in_suv
from medsr.inference.predictor import _device, check_finite
from medsr.inference.registry import resolve_model
from medsr.inference.resample import (
    check_overlap,
    coarse_geometry,
    match_field_of_view,
    resample_onto,
)
from medsr.models import pack_inputs
from medsr.physics.pet_task import SUV_WINDOW


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
        path = resolve_model(name_or_path)
        model, info = read_checkpoint(path).fusion_model(use_ema)
        return cls(model.to(_device(device)), info, device, str(path))

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
        bounds = norm.bounds()  # the SUV window
        pet = norm.forward(torch.from_numpy(pet_low)[None, None], bounds)
        guide = guide_channels(torch.from_numpy(ct_hu), norm["guide_windows"])[None]
        with torch.inference_mode():
            out = self.model(pack_inputs(pet, guide, s).to(self.device)).float().cpu()
        return norm.inverse(out[0, 0].numpy(), bounds)

    def provenance(self) -> Provenance:
        """What `fuse` records in `metadata[PROVENANCE_KEY]` (as `Predictor.provenance`)."""
        return self.info.provenance("torch", guide="CT")

    def fuse(
        self, ct: Volume, pet: Volume, progress: bool = False, allow_mismatch: bool = False
    ) -> FusionResult:
        """Enhance `pet` onto the grid of `ct` (module doc). ValueError when the CT is not in
        HU, a 2-D PET comes with a 3-D CT, the two do not overlap, either is a tilted or
        unevenly spaced series, or they differ in PatientID or FrameOfReferenceUID (unless
        `allow_mismatch`: then the output's `derivation_notes` say so). A PET in Bq/mL is
        converted to SUVbw (`fusion_checks.pet_in_suv`); the output is labelled SUV only
        when the PET was in SUV."""
        from tqdm import tqdm

        if ct.unit != "HU":
            raise ValueError(f"the CT must be in HU, got {ct.unit!r} (modality {ct.modality})")
        check_finite(ct.array, "the CT")
        check_finite(pet.array, "the PET")
        check_regular_grids(ct, pet)
        notes = check_same_patient(ct, pet, allow_mismatch)
        pet = pet_in_suv(pet)
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
        # The PET's per-slice records do not describe the CT's grid the output is on.
        pet_metadata = {k: v for k, v in pet.metadata.items() if k != "slices"}
        pet_metadata["spacing_known"] = ct.metadata.get("spacing_known") is not False
        pet_metadata["derivation_notes"] = [*pet.metadata.get("derivation_notes", []), *notes]
        metadata = self.provenance().stamp(pet_metadata)
        enhanced = replace(
            cropped,
            array=squeeze(out),
            modality="PT",
            unit=pet.unit,  # SUV only when the PET was (or was converted to) SUV
            window=SUV_WINDOW if pet.unit == "SUV" else pet.window,
            metadata=metadata,
        )
        spacing = grid.spacing if ct.is_volume else grid.spacing[1:]
        pet_low = replace(
            enhanced,
            array=squeeze(low),
            spacing=spacing,
            origin=grid.origin,
            metadata=pet_metadata,
        )
        return FusionResult(enhanced, pet_low, cropped, coverage)
