from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from medsr.inference import Predictor  # noqa: E402
from medsr.inference.onnx import OnnxRunner, export_onnx, read_onnx_info  # noqa: E402
from medsr.inference.predictor import load_torch_model  # noqa: E402

RRDB = {"num_features": 8, "num_blocks": 1, "growth_channels": 4, "global_residual": True}


@pytest.mark.parametrize("name, kwargs", [("srresnet", {}), ("rrdbnet", RRDB)])
def test_onnx_matches_torch_on_two_sizes(
    make_checkpoint: Callable[..., Path], tmp_path: Path, name: str, kwargs: dict
) -> None:
    checkpoint = make_checkpoint(name=name, **kwargs)
    path = export_onnx(checkpoint, tmp_path / "model.onnx")
    model, info = load_torch_model(checkpoint)
    runner = OnnxRunner(path)
    generator = torch.Generator().manual_seed(0)
    for shape in ((1, 1, 24, 40), (2, 1, 37, 19)):  # dynamic batch, height and width
        x = torch.rand(shape, generator=generator)
        with torch.no_grad():
            expected = model(x).numpy()
        got = runner(x.numpy())
        assert got.shape == expected.shape == (shape[0], 1, shape[2] * 4, shape[3] * 4)
        assert np.abs(got - expected).max() < 1e-3
    assert read_onnx_info(path) == info


def test_onnx_predictor_and_export_rules(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    checkpoint = make_checkpoint(task="ldct-x4")
    path = export_onnx(checkpoint, tmp_path / "model.onnx")
    with pytest.raises(FileExistsError):
        export_onnx(checkpoint, path)
    with pytest.raises(ValueError, match="backend='onnx'"):
        Predictor.load(str(path))
    image = np.random.default_rng(0).normal(0, 300, (40, 30)).astype(np.float32)
    torch_predictor = Predictor.load(str(checkpoint), precision="fp32")
    reference = torch_predictor.enhance_array(image, tile_size=24, overlap=8)
    for source in (path, checkpoint):  # an .onnx file, or a checkpoint exported in memory
        predictor = Predictor.load(str(source), backend="onnx")
        assert predictor.task == "ldct-x4"
        assert predictor.checkpoint_sha256 == torch_predictor.checkpoint_sha256
        result = predictor.enhance_array(image, tile_size=24, overlap=8)
        assert np.abs(result - reference).max() / 4095 < 1e-4  # [0, 1] units


def test_onnx_non_blind_model_gets_the_noise_level_too(
    make_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    from tests.inference.conftest import CT_WINDOW, TINY

    norm = {**CT_WINDOW, "noise_level_unit": 50.0}
    checkpoint = make_checkpoint(task="ldct", scale=1, normalization=norm, in_channels=2, **TINY)
    onnx = Predictor.load(str(export_onnx(checkpoint, tmp_path / "m.onnx")), backend="onnx")
    torch_model = Predictor.load(str(checkpoint), precision="fp32")
    assert onnx.info.normalization["noise_level_unit"] == 50.0
    image = (40 + np.random.default_rng(3).normal(0, 25, (48, 56))).astype(np.float32)
    assert np.abs(onnx.enhance_array(image) - torch_model.enhance_array(image)).max() < 0.05
