"""bf16 autocast (the default on CPUs with hardware bf16) against the float32 path, for every
shipped single-input model, on crops of the bundled samples (CT in HU, a radiograph).

Stated tolerance, in the model's own units (its window or its image's 0.5-99.5 percentile
spread = 1): max |bf16 - fp32| <= 0.5 % (20 HU on the CT SR window [-1024, 3071] HU), 0.6 %
for the x1 CT denoiser, whose window is ten times narrower ([-160, 240] HU: 2.4 HU), and 0.1 %
for the radiograph models (0.15 grey levels of 8 bits); mean |bf16 - fp32| <= 0.05 % (2 HU on
the SR window, 0.2 HU for the denoiser), 0.015 % for the radiographs. Measured (64-pixel
crops, session 18, the first convolution in float32, `models.blocks.float32_conv`): CT x4
max 6.5 HU, mean 0.64 HU; CT x2 max 4.1 HU, mean 0.47 HU; CT x1 max 0.86 HU, mean 0.10 HU;
radiographs max 0.04 %, mean 0.006 % of the spread. With every convolution in bf16 the same
weights give CT x4 max 10.7 HU, CT x1 max 1.24 HU, mean 0.14 HU, and radiographs max 0.22-0.32
%, mean 0.03 %: the radiographs' limits would fail that.
The float32 path
itself is what `test_reference_outputs.py` compares with the stored outputs (1e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr.inference import Predictor
from medsr.inference.registry import MODELS
from tests.inference.make_reference_outputs import CT_SAMPLE, XRAY_SAMPLE, _crop

MAX_DIFFERENCE = 5e-3
MAX_DIFFERENCE_DENOISER = 6e-3  # the x1 CT window is 400 HU wide: 2.4 HU
MEAN_DIFFERENCE_DENOISER = 5e-4  # 0.2 HU
MEAN_DIFFERENCE = 5e-4
# radiographs: the input image near white is what bf16 rounded most (blocks.float32_conv)
MAX_DIFFERENCE_RADIOGRAPH = 1e-3
MEAN_DIFFERENCE_RADIOGRAPH = 1.5e-4
SINGLE_INPUT = [name for name, entry in MODELS.items() if entry.task != "petct"]


@pytest.mark.parametrize("name", SINGLE_INPUT)
def test_bf16_output_is_within_the_stated_tolerance_of_float32(name: str) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fp32 = Predictor.load(name, precision="fp32")
        bf16 = Predictor.load(name, precision="bf16")
        assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
        xray = fp32.task.startswith("xray")
        source, corner = (XRAY_SAMPLE, (480, 960)) if xray else (CT_SAMPLE, (150, 150))
        image = _crop(source, corner, 64)
        reference = fp32.enhance_array(image, tile_size=None)
        result = bf16.enhance_array(image, tile_size=None)
    finally:
        torch.set_num_threads(threads)
    low, high = fp32.info.normalization.bounds(image)
    difference = np.abs(result - reference) / (high - low)  # in model units
    limit, mean_limit = {
        "ldct": (MAX_DIFFERENCE_DENOISER, MEAN_DIFFERENCE_DENOISER),
        "xray": (MAX_DIFFERENCE_RADIOGRAPH, MEAN_DIFFERENCE_RADIOGRAPH),
    }.get("xray" if xray else fp32.task, (MAX_DIFFERENCE, MEAN_DIFFERENCE))
    assert difference.max() <= limit, f"{name}: max {difference.max():.2e}"
    assert difference.mean() <= mean_limit, f"{name}: mean {difference.mean():.2e}"
    assert difference.max() > 0  # bf16 really ran


def test_auto_precision_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    from medsr import hardware
    from medsr.inference import runner

    monkeypatch.setattr(hardware, "native_bf16", lambda device="cpu": True)
    assert runner.select_precision("auto", "cpu") == "bf16"
    assert runner.select_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(hardware, "native_bf16", lambda device="cpu": False)
    assert runner.select_precision("auto", "cpu") == "fp32"
    assert runner.select_precision("bf16", "cpu") == "bf16"  # as asked
    with pytest.raises(ValueError, match="precision must be one of"):
        runner.select_precision("fp16", "cpu")


def test_bf16_runs_the_first_convolution_on_the_unquantised_input() -> None:
    """The runner's bf16 path keeps the generators' float32 input convolution
    (`medsr.models.blocks.float32_conv`; what it changes: `tests/models/test_generators.py`)."""
    from medsr.inference.runner import TorchRunner
    from medsr.models.srresnet import SRResNet

    torch.manual_seed(0)
    generator = SRResNet(
        num_features=8, num_blocks=1, scale=2, batch_norm=False, upsampler="subpixel"
    )
    # near white, a 0.1 % ramp: below bf16's step there (2 ** -8 = 0.4 %)
    image = (0.9 + 1e-3 * np.linspace(0, 1, 32 * 32)).reshape(1, 1, 32, 32).astype(np.float32)
    with torch.no_grad():
        exact = generator.conv_first(torch.from_numpy(image)).numpy()
    run = TorchRunner(generator, precision="bf16")
    seen: list[torch.Tensor] = []
    handle = run.model.conv_first.register_forward_hook(lambda m, i, o: seen.append(o))
    run(image)
    handle.remove()
    assert seen[0].dtype == torch.float32
    np.testing.assert_allclose(seen[0].numpy(), exact, atol=1e-5)
    assert "first convolution float32" in run.describe()


def test_describe_claims_a_float32_input_convolution_only_for_generators_that_have_one() -> None:
    from medsr.inference.runner import TorchRunner

    plain = TorchRunner(torch.nn.Conv2d(1, 1, 3, padding=1), precision="bf16")
    assert plain.describe().startswith("torch on cpu, bf16 autocast, ")
    assert "float32" not in plain.describe()
    assert "float32" in TorchRunner(torch.nn.Conv2d(1, 1, 3), precision="fp32").describe()


def test_float32_variants_compute_the_same_model_in_float32() -> None:
    """The benchmarks' `--fp32` rows: `NAME@fp32` is what `Predictor.load(precision="fp32")`
    gives, and the bf16 predictor it came from stays bf16."""
    from dataclasses import replace

    from medsr.inference.predictor import float32_variants

    image = _crop(XRAY_SAMPLE, (480, 960), 48)
    bf16 = Predictor.load("xray-x2", precision="bf16")
    fp32 = Predictor.load("xray-x2", precision="fp32")
    variants = float32_variants({"xray-x2": bf16, "already": fp32})
    assert list(variants) == ["xray-x2@fp32"]
    assert variants["xray-x2@fp32"].precision == "fp32" and bf16.precision == "bf16"
    np.testing.assert_array_equal(
        variants["xray-x2@fp32"].enhance_array(image), fp32.enhance_array(image)
    )
    with pytest.raises(ValueError, match="torch backend"):
        replace(bf16, run=lambda batch: batch, backend="onnx").with_precision("fp32")
