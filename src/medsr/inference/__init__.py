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

from medsr.checkpoint import ModelInfo, sha256_file
from medsr.inference.consistency import ConsistencyResult, consistency_map, forward_model
from medsr.inference.predictor import Predictor
from medsr.inference.registry import MODELS, ModelEntry, available_models, resolve_model
from medsr.inference.tiling import tiled_apply

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
