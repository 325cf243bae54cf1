"""The one checkpoint format, below training and inference: files, `ModelInfo`, `Normalization`.

A checkpoint is a dict saved with `torch.save` (`save_atomic`) and read with
`weights_only=True` (tensors, numbers, strings, lists and dicts only; no pickled classes):

| key | content |
|---|---|
| `format`, `medsr_version`, `step` | `"medsr-checkpoint/1"`, the writer's version, steps done |
| `generator`, `discriminator` | `{"name", "config", "state_dict"}` (no discriminator: None) |
| `ema` | state dict of the EMA generator (the weights validated and used for inference) |
| `optimizers`, `scaler` | optimiser states (`generator`, `discriminator`), fp16 grad scaler |
| `scheduler` | `{"kind": ..., "step": ...}`: the lr is a pure function of the step |
| `rng` | torch CPU (and CUDA) generator states, numpy and python `random` states |
| `config`, `normalization`, `split` | full config dict, intensity mapping, split statement |
| `metrics`, `best_psnr` | last validation metrics, best validation PSNR so far |
| `training` | released files only (`training/release.py`): steps and time for the model card |

```python
checkpoint = read_checkpoint("runs/srgan-ct-ldct-x4-pretrain/best.pt")  # one read of the file
model = checkpoint.generator()        # rebuilt from the file alone (nanoGPT's model_args)
info = checkpoint.info()              # ModelInfo: name, task, scale, Normalization, sha256
bounds = info.normalization.bounds(image)          # the window, or the image's percentiles
x = info.normalization.forward(image, bounds)      # image unit (HU, SUV, a.u.) -> model unit
y = info.normalization.inverse(model_output, bounds)
```

Training writes `normalization` with `Normalization.to_dict()` and maps its images with
`forward`; inference (`Predictor`, `FusionPredictor`, ONNX) maps with the same object, so the
two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from medsr.image import PERCENTILES, Provenance, percentile_range

if TYPE_CHECKING:
    from medsr.models import Configurable

FORMAT = "medsr-checkpoint/1"
MODEL_INFO_FORMAT = "medsr-model-info/1"
NORMALIZATION_KINDS = ("window", "percentile")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_atomic(payload: dict[str, Any], path: str | Path) -> Path:
    """`torch.save` to a temporary file in the same folder, then `os.replace` onto `path`,
    so a crash never leaves a partial checkpoint under the final name (nor a temp file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes 0600 files
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _checked(payload: Any, path: Path) -> dict[str, Any]:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a medsr training checkpoint ({FORMAT})")
    return payload


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint's payload (`weights_only=True`) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return _checked(torch.load(path, map_location=map_location, weights_only=True), path)


def generator_from(payload: dict[str, Any], use_ema: bool = True) -> Configurable:
    """The generator of a checkpoint payload, rebuilt from its spec, in eval mode.

    `use_ema` loads the EMA weights (those validated and kept as best), else the raw ones."""
    from medsr.models import build_generator

    spec = payload["generator"]
    model = build_generator(spec["name"], **spec["config"])
    state = payload["ema"] if use_ema and payload.get("ema") is not None else spec["state_dict"]
    model.load_state_dict(state)
    return model.eval()


def load_generator(path: str | Path, use_ema: bool = True) -> Configurable:
    """Rebuild the generator of a checkpoint file from the file alone, in eval mode.

    The intensity mapping the model expects is `read_checkpoint(path).info().normalization`.
    """
    return generator_from(load_checkpoint(path), use_ema)


@dataclass(frozen=True, eq=False)
class Normalization(Mapping[str, Any]):
    """How a model sees intensities, as stored in a checkpoint's `normalization`.

    `window`: `(x - low) / (high - low)` with fixed `low`, `high` in the image unit (HU for
    CT, SUV for PET); `percentile`: the same with `low`, `high` an image's (a volume's) own
    `percentiles`, so the model unit is [0, 1] between them. Not clipped either way. `unit`
    is the unit of the model's targets; `options` the other stored keys (`noise_level_unit`,
    `noise_level_dose_fraction`, `noise_frequency_unit` and `dose_input` of non-blind models,
    `guide_windows` and `guide_unit` of fusion models). Reads like the stored dict
    (`normalization["kind"]`, `.get("unit")`).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    percentiles: tuple[float, float] = PERCENTILES
    unit: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in NORMALIZATION_KINDS:
            raise ValueError(f"unknown intensity normalisation {self.to_dict()!r}")
        if self.kind == "window" and (self.low is None or self.high is None):
            raise ValueError(f"a window normalisation needs low and high: {self.to_dict()!r}")

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Normalization:
        """From the dict a checkpoint stores; ValueError for an unknown kind."""
        record = dict(record)
        kind = str(record.pop("kind", None))
        low, high = record.pop("low", None), record.pop("high", None)
        percentiles = record.pop("percentiles", PERCENTILES)
        unit = record.pop("unit", None)
        return cls(
            kind,
            None if low is None else float(low),
            None if high is None else float(high),
            (float(percentiles[0]), float(percentiles[1])),
            None if unit is None else str(unit),
            record,
        )

    def to_dict(self) -> dict[str, Any]:
        """The dict a checkpoint stores (plain, JSON-able)."""
        if self.kind == "window":
            record: dict[str, Any] = {"kind": self.kind, "low": self.low, "high": self.high}
        else:
            record = {"kind": self.kind, "percentiles": list(self.percentiles)}
        for key in ("guide_windows", "guide_unit"):
            if key in self.options:
                record[key] = self.options[key]
        if self.unit is not None:
            record["unit"] = self.unit
        return record | dict(self.options)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def bounds(self, reference: np.ndarray | None = None) -> tuple[float, float]:
        """`(low, high)` such that model units are `(x - low) / (high - low)`: the window,
        or the percentiles of `reference` (the image or whole volume being mapped)."""
        if self.kind == "window":
            assert self.low is not None and self.high is not None
            return self.low, self.high
        if reference is None:
            raise ValueError("a percentile normalisation needs the image it maps")
        low, high = percentile_range(reference, self.percentiles)
        return low, max(high, low + 1e-12)

    def forward(self, x: Any, bounds: tuple[float, float] | None = None) -> Any:
        """Image unit -> model unit. A numpy array is mapped in float64 and returned as
        float32; a torch tensor keeps its dtype. `bounds` default to `self.bounds(x)`."""
        if bounds is None:
            bounds = self.bounds(None if self.kind == "window" else np.asarray(x))
        low, high = bounds
        if isinstance(x, torch.Tensor):
            return (x - low) / (high - low)
        return ((np.asarray(x, dtype=np.float64) - low) / (high - low)).astype(np.float32)

    def inverse(self, y: Any, bounds: tuple[float, float]) -> Any:
        """Model unit -> image unit, with the `bounds` the input was mapped with (float32
        for a numpy array; a tensor keeps its dtype)."""
        low, high = bounds
        if isinstance(y, torch.Tensor):
            return y * (high - low) + low
        return np.asarray(y, dtype=np.float32) * np.float32(high - low) + np.float32(low)


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
    normalization: Normalization
    checkpoint_sha256: str
    medsr_version: str
    in_channels: int = 1

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self) | {"normalization": self.normalization.to_dict()}
        return {"format": MODEL_INFO_FORMAT, **record}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        names = cls.__dataclass_fields__
        known = {k: v for k, v in data.items() if k in names}
        known["normalization"] = Normalization.from_dict(known["normalization"])
        return cls(**known)

    def provenance(self, backend: str, **details: Any) -> Provenance:
        """The `Provenance` of an image this model made (`details`: `tiles`, `guide`)."""
        return Provenance(
            model=self.model_name,
            architecture=self.architecture,
            task=self.task,
            scale=self.scale,
            checkpoint_sha256=self.checkpoint_sha256,
            model_medsr_version=self.medsr_version,
            backend=backend,
            **details,
        )


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file read once: its payload and the sha256 of its bytes."""

    path: Path
    payload: dict[str, Any]
    sha256: str

    @property
    def config(self) -> dict[str, Any]:
        return self.payload.get("config") or {}

    @property
    def architecture(self) -> str:
        return str(self.payload["generator"]["name"])

    def generator(self, use_ema: bool = True) -> Configurable:
        """The generator rebuilt from this checkpoint, in eval mode (`generator_from`)."""
        return generator_from(self.payload, use_ema)

    def info(self, default_task: str | None = None) -> ModelInfo:
        """The `ModelInfo` of this checkpoint; ValueError for an unknown normalisation.

        The task is the training config's `data.task`, else `default_task`, else `x<scale>`.
        """
        spec, data = self.payload["generator"], self.config.get("data", {})
        scale = int(spec["config"].get("scale", data.get("scale", 1)))
        record = self.payload.get("normalization") or self.config.get("normalization") or {}
        try:
            normalization = Normalization.from_dict(record)
        except ValueError as error:
            raise ValueError(f"{self.path}: {error}") from None
        return ModelInfo(
            model_name=str(self.config.get("name") or self.path.stem),
            architecture=self.architecture,
            task=str(data.get("task", default_task or f"x{scale}")),
            scale=scale,
            normalization=normalization,
            checkpoint_sha256=self.sha256,
            medsr_version=str(self.payload.get("medsr_version", "unknown")),
            in_channels=int(spec["config"].get("in_channels", 1)),
        )

    def image_model(self, use_ema: bool = True) -> tuple[Configurable, ModelInfo]:
        """The single-input (image -> image) generator and its `ModelInfo`; ValueError for a
        fusion model or an input channel count inference does not feed."""
        from medsr.models import FUSION_GENERATORS

        if self.architecture in FUSION_GENERATORS:
            raise ValueError(
                f"{self.path}: {self.architecture} is a CT + PET fusion model; "
                "use medsr fuse (FusionPredictor)"
            )
        info = self.info()
        expected = 1 + sum(  # the image, then the noise level, frequency and dose channels
            bool(info.normalization.get(key))
            for key in ("noise_level_unit", "noise_frequency_unit", "dose_input")
        )
        if info.in_channels != expected:
            raise ValueError(
                f"{self.path}: {info.in_channels}-channel models are not supported here "
                f"(expected {expected})"
            )
        return self.generator(use_ema), info

    def fusion_model(self, use_ema: bool = True) -> tuple[Configurable, ModelInfo]:
        """The CT-guided PET generator (`models.FUSION_GENERATORS`) and its `ModelInfo`;
        ValueError for another model or a checkpoint without SUV and CT guide windows."""
        from medsr.models import FUSION_GENERATORS

        if self.architecture not in FUSION_GENERATORS:
            raise ValueError(
                f"{self.path}: generator {self.architecture!r} is not a CT + PET fusion "
                f"model ({sorted(FUSION_GENERATORS)}); use medsr enhance"
            )
        record = self.payload.get("normalization") or {}
        if record.get("kind") != "window" or "guide_windows" not in record:
            raise ValueError(f"{self.path}: no SUV window and CT guide windows in the checkpoint")
        return self.generator(use_ema), self.info(default_task="petct")


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint file once: payload (`weights_only=True`, format checked) and the
    sha256 of the same bytes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    content = path.read_bytes()
    payload = torch.load(io.BytesIO(content), map_location=map_location, weights_only=True)
    return Checkpoint(path, _checked(payload, path), hashlib.sha256(content).hexdigest())
