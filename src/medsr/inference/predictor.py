"""`Predictor`: a trained generator applied to images in their own units (HU for CT).

```python
predictor = Predictor.load("runs/srgan-ct-ldct-x4-pretrain/best.pt")   # or a name, or .onnx
high = predictor.enhance(volume)                     # Volume in, Volume out (slice by slice)
array = predictor.enhance_array(low_hu)              # (H, W) HU -> (sH, sW) HU
```

The checkpoint states how the model saw intensities (`normalization`): `window` maps
`[low, high]` (HU) linearly to [0, 1]; `percentile` maps each image's (a volume's) own
0.5 / 99.5 percentiles to [0, 1], as training did before the degradation. Inference applies
the same map to the input and its inverse to the output, so the output is in the input's
unit. Images are processed by `tiling.tiled_apply`: only tiles go to the device.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsr._version import __version__
from medsr.image import Volume, rescaled_in_plane
from medsr.inference.registry import resolve_model
from medsr.inference.tiling import Runner, tiled_apply

BACKENDS = ("torch", "onnx")
METADATA_KEY = "inference"
"""`Volume.metadata[METADATA_KEY]`: how an enhanced volume was made (see `Predictor.enhance`)."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    """What inference needs to know about a model besides its weights.

    `medsr_version` is the version that wrote the checkpoint; `checkpoint_sha256` the full
    hex sha256 of the checkpoint file (ONNX files carry their source checkpoint's).
    """

    model_name: str
    architecture: str
    task: str
    scale: int
    normalization: dict[str, Any]
    checkpoint_sha256: str
    medsr_version: str
    in_channels: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"format": "medsr-model-info/1", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def load_torch_model(path: str | Path, use_ema: bool = True) -> tuple[torch.nn.Module, ModelInfo]:
    """Rebuild a checkpoint's generator (eval mode, CPU) and read its `ModelInfo`."""
    from medsr.training.checkpoint import load_checkpoint, load_generator

    path = Path(path)
    payload = load_checkpoint(path)
    config = payload.get("config") or {}
    spec = payload["generator"]
    from medsr.models import FUSION_GENERATORS

    if spec["name"] in FUSION_GENERATORS:
        raise ValueError(
            f"{path}: {spec['name']} is a CT + PET fusion model; use medsr fuse (FusionPredictor)"
        )
    data = config.get("data", {})
    normalization = dict(payload.get("normalization") or config.get("normalization") or {})
    if normalization.get("kind") not in ("window", "percentile"):
        raise ValueError(f"{path}: unknown intensity normalisation {normalization!r}")
    info = ModelInfo(
        model_name=str(config.get("name") or path.stem),
        architecture=str(spec["name"]),
        task=str(data.get("task", f"x{spec['config'].get('scale', 1)}")),
        scale=int(spec["config"].get("scale", data.get("scale", 1))),
        normalization=normalization,
        checkpoint_sha256=sha256_file(path),
        medsr_version=str(payload.get("medsr_version", "unknown")),
        in_channels=int(spec["config"].get("in_channels", 1)),
    )
    expected = 2 if normalization.get("noise_level_unit") else 1  # image (+ noise level)
    if info.in_channels != expected:
        raise ValueError(
            f"{path}: {info.in_channels}-channel models are not supported here "
            f"(expected {expected})"
        )
    return load_generator(path, use_ema=use_ema), info


def with_noise_level(run: Runner, level: float) -> Runner:
    """`run` with a constant noise-level channel appended to every tile (FFDNet-style input,
    Zhang et al. 2018): the model sees how noisy the whole image is, not just the tile."""

    def run_with_level(batch: np.ndarray) -> np.ndarray:
        channel = np.full_like(batch[:, :1], np.float32(level))
        return run(np.concatenate([batch, channel], axis=1))

    return run_with_level


class TorchRunner:
    """A module on `device` as a tile runner: host `(B, C, h, w)` -> host `(B, C, sh, sw)`."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            result = self.model(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device))
            return result.float().cpu().numpy()


def _device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    torch.device(device)  # raises on a malformed name
    return device


def percentile_range(array: np.ndarray, percentiles: list[float]) -> tuple[float, float]:
    """`(low, high)` percentiles of `array`, on at most ~2 M values (as training does)."""
    values = np.asarray(array).ravel()[:: max(1, np.asarray(array).size // 2_000_000)]
    low, high = np.percentile(values, percentiles)
    return float(low), float(high)


@dataclass
class Predictor:
    """A generator, its normalisation and provenance; see the module doc.

    Attributes:
        run: the model on host tiles (`tiling.Runner`), torch or onnxruntime.
        info: `ModelInfo` (task, scale, normalisation, name, checkpoint hash, version).
        backend: "torch" or "onnx"; device: where tiles run; source: the model file.
    """

    run: Runner
    info: ModelInfo
    backend: str = "torch"
    device: str = "cpu"
    source: str = ""

    @classmethod
    def load(
        cls, name_or_path: str, device: str = "cpu", backend: str = "torch", use_ema: bool = True
    ) -> Predictor:
        """Load a registered model name, a checkpoint (.pt) or an exported .onnx file.

        `backend="onnx"` runs through onnxruntime: an .onnx file directly, a checkpoint after
        exporting it in memory. An .onnx file needs `backend="onnx"`.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        device = _device(device)
        path = resolve_model(name_or_path)
        from medsr.inference import onnx as onnx_backend

        if path.suffix.lower() == ".onnx":
            if backend != "onnx":
                raise ValueError(f"{path} is an ONNX file: use backend='onnx'")
            info = onnx_backend.read_onnx_info(path)
            return cls(onnx_backend.OnnxRunner(path, device), info, backend, device, str(path))
        model, info = load_torch_model(path, use_ema=use_ema)
        if backend == "onnx":
            runner: Runner = onnx_backend.OnnxRunner(onnx_backend.onnx_bytes(model, info), device)
        else:
            runner = TorchRunner(model, device)
        return cls(runner, info, backend, device, str(path))

    @property
    def scale(self) -> int:
        return self.info.scale

    @property
    def task(self) -> str:
        return self.info.task

    @property
    def model_name(self) -> str:
        return self.info.model_name

    @property
    def checkpoint_sha256(self) -> str:
        """Full hex sha256 of the checkpoint file (DICOM shows the first 12 characters)."""
        return self.info.checkpoint_sha256

    @property
    def medsr_version(self) -> str:
        """The medsr version that wrote the checkpoint."""
        return self.info.medsr_version

    def _forward_map(self, reference: np.ndarray) -> tuple[float, float]:
        """`(low, high)` such that model units are `(x - low) / (high - low)`."""
        norm = self.info.normalization
        if norm["kind"] == "window":
            return float(norm["low"]), float(norm["high"])
        low, high = percentile_range(reference, list(norm.get("percentiles", [0.5, 99.5])))
        return low, max(high, low + 1e-12)

    def _enhance_mapped(
        self, image: np.ndarray, low: float, high: float, tile_size: int | None, overlap: int
    ) -> np.ndarray:
        x = ((np.asarray(image, dtype=np.float32) - low) / (high - low)).astype(np.float32)
        run = self.run
        if unit := self.info.normalization.get("noise_level_unit"):
            run = with_noise_level(self.run, self.noise_level(image) / float(unit))
        y = tiled_apply(x, run, self.scale, tile_size, overlap)
        y *= np.float32(high - low)
        y += np.float32(low)
        return y

    def noise_level(self, image: np.ndarray) -> float:
        """A non-blind model's noise level for a whole 2-D image, in its unit, as its
        training items measured it: the input's noise SD (`medsr.metrics.noise.
        estimate_noise_sd`, CT uniform ROIs) or, for models told the noise to remove, that SD
        times sqrt(1 - d), d the dose fraction the model was trained for."""
        from medsr.metrics.noise import estimate_noise_sd

        sd = estimate_noise_sd(np.asarray(image, dtype=np.float32), "CT")[0]
        dose = self.info.normalization.get("noise_level_dose_fraction")
        return sd if dose is None else sd * float(np.sqrt(1.0 - float(dose)))

    def enhance_array(
        self, image: np.ndarray, tile_size: int | None = 256, overlap: int = 32
    ) -> np.ndarray:
        """`(H, W)` in image units (HU for CT) -> `(sH, sW)` float32 in the same units.

        A `percentile` model maps this image by its own percentiles (see the module doc).
        """
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 2:
            raise ValueError(f"image must be 2-D (H, W), got shape {image.shape}")
        low, high = self._forward_map(image)
        return self._enhance_mapped(image, low, high, tile_size, overlap)

    def check_volume(self, volume: Volume) -> None:
        """ValueError when a model trained on HU gets an image not in HU; warning when the
        modality is not one the model's task is for."""
        from medsr.physics.tasks import TASKS

        expected = self.info.normalization.get("unit")
        if self.info.normalization["kind"] == "window" and expected == "HU" and volume.unit != "HU":
            raise ValueError(
                f"model {self.model_name!r} expects CT in HU, got an image in {volume.unit!r} "
                f"(modality {volume.modality})"
            )
        spec = TASKS.get(self.task)
        if spec is not None and spec.modalities and volume.modality not in spec.modalities:
            warnings.warn(
                f"model {self.model_name!r} was trained for {'/'.join(spec.modalities)} "
                f"({self.task}); this image is {volume.modality}",
                stacklevel=3,
            )

    def provenance(self, tile_size: int | None, overlap: int) -> dict[str, Any]:
        """What `enhance` records in `metadata["inference"]`."""
        return {
            "model": self.model_name,
            "architecture": self.info.architecture,
            "task": self.task,
            "scale": self.scale,
            "checkpoint_sha256": self.checkpoint_sha256,
            "model_medsr_version": self.medsr_version,
            "medsr_version": __version__,
            "backend": self.backend,
            "tile_size": tile_size,
            "overlap": overlap,
            "research_use_only": True,
        }

    def enhance(
        self, volume: Volume, progress: bool = False, tile_size: int | None = 256, overlap: int = 32
    ) -> Volume:
        """Enhance a 2-D image or every slice of a 3-D volume; returns a new Volume.

        In-plane spacing is divided by the scale and the origin moved to the centre of the
        first output pixel (slice spacing unchanged). `metadata` keeps the source's entries
        and adds `metadata["inference"]` (`provenance`: model, architecture, task, scale,
        checkpoint sha256, versions, backend, tiles, `research_use_only: True`) and
        `metadata["research_use_only"] = True`.
        """
        from tqdm import tqdm

        self.check_volume(volume)
        slices = volume.array if volume.is_volume else volume.array[None]
        low, high = self._forward_map(volume.array)
        s = self.scale
        out = np.empty((slices.shape[0], slices.shape[1] * s, slices.shape[2] * s), np.float32)
        for k in tqdm(range(slices.shape[0]), desc="enhance", unit="slice", disable=not progress):
            out[k] = self._enhance_mapped(slices[k], low, high, tile_size, overlap)
        spacing, origin = rescaled_in_plane(volume, s, finer=True)
        metadata = {
            **volume.metadata,
            METADATA_KEY: self.provenance(tile_size, overlap),
            "research_use_only": True,
        }
        return replace(
            volume,
            array=out if volume.is_volume else out[0],
            spacing=spacing,
            origin=origin,
            metadata=metadata,
        )

