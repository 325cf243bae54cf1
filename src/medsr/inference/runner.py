"""Running a torch generator on host tiles fast: precision, memory format, memory estimate.

What `Predictor.load` picks by default (`precision="auto"`), measured in
`benchmarks/speed.py` (BENCHMARKS.md):

* channels-last memory format (NHWC) for the model and its input: oneDNN's direct
  convolutions run without reordering every activation (1.2-1.6x on AVX-512 CPUs, same
  float32 arithmetic up to summation order);
* bf16 autocast where the device computes bf16 in hardware (`medsr.hardware.native_bf16`:
  a CPU with AVX512-BF16 or AMX, a CUDA GPU with bf16): on such a CPU about 2x the float32
  speed. Convolutions run in bf16 except the first, which sees the unquantised input
  (the generators' own `medsr.models.blocks.float32_conv`, in training too); the global
  residual (bicubic of the input) and the output stay float32; the largest differences
  from float32 on the shipped models are stated and tested in `tests/inference/test_precision.py`
  (a few HU on CT, < 0.5 % of the intensity range on radiographs). Without hardware bf16 it
  would be emulated and slower, so `auto` keeps float32 there. So a shipped model must work
  in both: one trained in bf16 autocast on the bf16-rounded input did worse in float32 on
  images unlike its training data (`xray-x4` before session 18: 0.66 dB lower in float32
  than in bf16 on RG3 with its stored grey scale, streaks on the flat white background; the
  same training with the float32 input convolution, session 19, did not); the radiograph
  cards report RG3 in both precisions (`benchmarks/quality.py`), `ct_real_dose.py --fp32`
  the CT models.

ONNX Runtime ran at the float32 channels-last speed (no gain), `torch.compile` took 30 s to
compile for a 10-15 % gain, and PyTorch's dynamic int8 quantisation does not cover Conv2d:
none of them is a default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from medsr import hardware

PRECISIONS = ("auto", "fp32", "bf16")


def select_precision(requested: str, device: str) -> str:
    """ "fp32" or "bf16" for `requested` ("auto", "fp32" or "bf16") on `device`: `auto` is
    `medsr.hardware.auto_precision` (bf16 where the device computes it natively), as in
    training."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested != "auto":
        return requested
    return hardware.auto_precision(device)


class TorchRunner:
    """A module on `device` as a tile runner: host `(B, C, h, w)` -> host `(B, C, sh, sw)`
    float32.

    Args:
        model: the generator (put in eval mode and moved to `device`).
        device: where tiles run.
        precision: "fp32" or "bf16" (autocast; `select_precision` resolves "auto").
        channels_last: NHWC memory format for the model and each batch.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str = "cpu",
        precision: str = "fp32",
        channels_last: bool = True,
    ) -> None:
        self.device = torch.device(device)
        self.precision = select_precision(precision, device)
        self.channels_last = channels_last
        self.model = model.eval().to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._bytes_per_pixel: float | None = None

    @contextlib.contextmanager
    def _mode(self) -> Iterator[None]:
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    yield
            else:
                yield

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._mode():
            result = self.model(x)
        return np.ascontiguousarray(result.float().cpu().numpy())

    def bytes_per_pixel(self) -> float:
        """Estimated peak activation memory per input pixel of one call (bytes): twice the
        largest input + output of any layer, measured once on a 32 x 32 probe. Tiling uses
        it to keep a call within a memory budget."""
        if self._bytes_per_pixel is None:
            self._bytes_per_pixel = activation_bytes_per_pixel(self.model, self.device)
        return self._bytes_per_pixel

    def describe(self) -> str:
        """One line: backend, device, precision, memory format, threads."""
        precision = "float32"
        if self.precision == "bf16":
            # medsr's generators say so (`float32_input`): they run their input convolution
            # in float32 inside autocast (medsr.models.blocks.float32_conv)
            first = getattr(self.model, "float32_input", False)
            precision = "bf16 autocast" + (" (first convolution float32)" if first else "")
        layout = "channels-last" if self.channels_last else "NCHW"
        threads = f", {torch.get_num_threads()} threads" if self.device.type == "cpu" else ""
        return f"torch on {self.device}, {precision}, {layout}{threads}"


def activation_bytes_per_pixel(
    model: torch.nn.Module, device: torch.device | str = "cpu", probe: int = 32
) -> float:
    """Twice the largest (input + output) bytes of any leaf module over a `probe`-square
    float32 input, per input pixel: the live tensors of a layer and of the skip
    connection around it, which bounds what a forward pass holds at once."""
    largest = 0

    def hook(_: torch.nn.Module, inputs: tuple[object, ...], output: object) -> None:
        nonlocal largest
        tensors = [t for t in (*inputs, output) if isinstance(t, torch.Tensor)]
        largest = max(largest, sum(t.numel() * 4 for t in tensors))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        channels = int(getattr(model, "in_channels", 1))
        with torch.inference_mode():
            model(torch.zeros(1, channels, probe, probe, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return 2.0 * largest / probe**2
