"""ONNX export of a checkpoint's generator and an onnxruntime runner.

`export_onnx(checkpoint, "model.onnx")` writes the generator (EMA weights by default) with
dynamic batch, height and width (opset 17, TorchScript-based exporter `dynamo=False`, which
needs no packages beyond `onnx`), and stores what inference needs to use the file alone
(task, scale, intensity normalisation, model name, checkpoint sha256, medsr versions) as
JSON in the model's metadata under the key "medsr". Needs the `onnx` extra:
`pip install "medsr[onnx]"` (onnx, onnxruntime).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsr.checkpoint import ModelInfo, read_checkpoint
from medsr.io.errors import check_can_write

OPSET = 17
METADATA_KEY = "medsr"
INPUT_NAME, OUTPUT_NAME = "low", "high"


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as error:
        raise ImportError(
            f"{module} is not installed; install the ONNX extra: pip install 'medsr[onnx]'"
        ) from error


def onnx_bytes(model: torch.nn.Module, info: ModelInfo, opset: int = OPSET) -> bytes:
    """Serialised ONNX model of `model` (`(B, C, H, W) -> (B, C, sH, sW)`, float32, dynamic
    B/H/W) with `info` as JSON metadata."""
    onnx = _require("onnx")
    model = model.eval().cpu()
    channels = int(getattr(model, "in_channels", 1))
    example = torch.rand(1, channels, 32, 32)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Tracing warns about the models' Python shape checks, which are constant for export.
        warnings.simplefilter("ignore")
        torch.onnx.export(  # the TorchScript exporter writes to a BytesIO too
            model,
            (example,),
            buffer,  # type: ignore[arg-type]
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"},
            },
        )
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(info.to_dict())
    proto.producer_name = "medsr"
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


def export_onnx(
    checkpoint: str | Path,
    path: str | Path,
    use_ema: bool = True,
    opset: int = OPSET,
    overwrite: bool = False,
) -> Path:
    """Export a training checkpoint's generator to an ONNX file; returns the path.

    Raises FileExistsError when `path` exists and `overwrite` is False.
    """
    if opset < OPSET:
        raise ValueError(f"opset must be >= {OPSET}, got {opset}")
    path = check_can_write(path, overwrite)
    model, info = read_checkpoint(checkpoint).image_model(use_ema)
    path.write_bytes(onnx_bytes(model, info, opset))
    return path


def read_onnx_info(path: str | Path) -> ModelInfo:
    """The `ModelInfo` stored in an ONNX file written by `export_onnx`."""
    onnx = _require("onnx")
    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return ModelInfo.from_dict(json.loads(entry.value))
    raise ValueError(f"{path}: not a medsr ONNX model (no '{METADATA_KEY}' metadata)")


class OnnxRunner:
    """An onnxruntime session as a tile runner: `(B, C, h, w)` float32 -> `(B, C, sh, sw)`.

    `device` "cpu" uses the CPU provider; "cuda..." adds the CUDA provider when onnxruntime
    has it. `num_threads` defaults to torch's thread count, so both backends use the same.
    """

    def __init__(
        self, model: bytes | str | Path, device: str = "cpu", num_threads: int | None = None
    ) -> None:
        ort = _require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=providers)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        feed = {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}
        return np.asarray(self.session.run([OUTPUT_NAME], feed)[0])
