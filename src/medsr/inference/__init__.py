"""Applying trained models: `Predictor`, tiled inference, consistency maps, ONNX export.

```python
from medsr.inference import Predictor, consistency_map
predictor = Predictor.load("runs/srgan-ct-ldct-x4-pretrain/best.pt")  # name, .pt or .onnx
high = predictor.enhance(volume)            # Volume -> Volume, spacing / scale, provenance
check = consistency_map(volume.array, high.array, predictor.task, predictor.scale)
```

Outputs are for research use only; every enhanced Volume says so in its metadata.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medsr.checkpoint import ModelInfo, sha256_file
from medsr.inference.predictor import Predictor
from medsr.inference.registry import MODELS, ModelEntry, available_models, resolve_model
from medsr.inference.tiling import tiled_apply

if TYPE_CHECKING:
    from medsr.inference.consistency import ConsistencyResult, consistency_map, forward_model

_CONSISTENCY = ("ConsistencyResult", "consistency_map", "forward_model")


def __getattr__(name: str) -> Any:
    """The consistency names load on first use: they need the degradation tasks (PET
    included), which `import medsr.inference` does not load."""
    if name in _CONSISTENCY:
        from medsr.inference import consistency

        return getattr(consistency, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODELS",
    "ConsistencyResult",
    "ModelEntry",
    "ModelInfo",
    "Predictor",
    "available_models",
    "consistency_map",
    "forward_model",
    "resolve_model",
    "sha256_file",
    "tiled_apply",
]
