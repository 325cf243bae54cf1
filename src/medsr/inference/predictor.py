"""`Predictor`: a trained generator applied to images in their own units (HU for CT).

```python
predictor = Predictor.load("runs/srgan-ct-ldct-x4-pretrain/best.pt")   # or a name, or .onnx
high = predictor.enhance(volume)                     # Volume in, Volume out (slice by slice)
array = predictor.enhance_array(low_hu)              # (H, W) HU -> (sH, sW) HU
```

The checkpoint states how the model saw intensities (`medsr.checkpoint.Normalization`):
`window` maps `[low, high]` (HU) linearly to [0, 1]; `percentile` maps each image's (a
volume's) own 0.5 / 99.5 percentiles to [0, 1], as training did before the degradation.
Inference applies the same object's `forward` to the input and its `inverse` to the output,
so the output is in the input's unit. Images are processed by `tiling.tiled_apply`: only
tiles go to the device, in batches; by default (`tile_size="auto"`) an image that fits the
memory budget goes in one call, a larger one in the largest tiles that fit. The torch model
runs channels-last, in bf16 autocast on CPUs with hardware bf16 (`runner`; the choice is
logged once per load). The checkpoint file is read once (`read_checkpoint`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from medsr.checkpoint import Checkpoint, ModelInfo, read_checkpoint
from medsr.image import Provenance, Volume, rescaled_in_plane
from medsr.inference.ensemble import self_ensemble
from medsr.inference.registry import resolve_model
from medsr.inference.runner import TorchRunner, select_precision
from medsr.inference.tiling import Runner, TileHook, plan_tiles, tile_count, tiled_apply
from medsr.metrics.ct import PADDING_HU

BACKENDS = ("torch", "onnx")
TileSize = int | Literal["auto"] | None
"""A tile side in input pixels, None for one whole-image call, or "auto" (`plan_tiles`)."""

AIR_HU = -1000.0
"""What a CT model sees where its input holds padding (`medsr.metrics.ct.PADDING_HU`); the
output keeps the input's padding. Fed as it is, the 2000 HU step at the field-of-view circle,
which no training image had, left a bright rim (x2) or a speckled band (x1) beside it."""

MEMORY_BUDGET = 768 * 2**20
"""Bytes of activations one model call may take under `tile_size="auto"` (whole image when
it fits, else tiles; with the float32 output this keeps a 4096^2 result under 2 GB RSS)."""

log = logging.getLogger("medsr.inference")


def load_torch_model(
    checkpoint: str | Path | Checkpoint, use_ema: bool = True
) -> tuple[torch.nn.Module, ModelInfo]:
    """Rebuild a checkpoint's single-input generator (eval mode, CPU) and read its `ModelInfo`
    (`Checkpoint.image_model`; a path is read once)."""
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = read_checkpoint(checkpoint)
    return checkpoint.image_model(use_ema)


def with_noise_channels(run: Runner, values: Sequence[float]) -> Runner:
    """`run` with one constant channel per value appended to every tile (FFDNet-style noise
    level input, Zhang et al. 2018): the model sees how noisy the whole image is, not just
    the tile."""

    def run_with_channels(batch: np.ndarray) -> np.ndarray:
        channels = [np.full_like(batch[:, :1], np.float32(value)) for value in values]
        return run(np.concatenate([batch, *channels], axis=1))

    return run_with_channels


def check_finite(array: np.ndarray, what: str = "the image") -> None:
    """ValueError when `array` holds NaN or infinite values: a model would spread them over
    whole tiles, and no output format stores them. Checked without a copy of the array."""
    low, high = (float(np.min(array)), float(np.max(array))) if array.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(
            f"{what} holds {bad:,} NaN or infinite value(s); medsr refuses them before the "
            "model runs (replace them first, e.g. with numpy.nan_to_num)"
        )


def _device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    torch.device(device)  # raises on a malformed name
    return device


LOW_FREQUENCY_CONSISTENCY = {
    "xray-blind-x2": 1.0,
    "xray-blind-x4": 1.0,
    "ldct-x2": 1.0,
    "ldct-x4": 1.0,
}
"""Tasks whose models' outputs are made consistent with their input at low frequencies, and
the Gaussian SD (low-grid pixels) that defines "low" (`low_frequency_consistency`).

1 low pixel: the Gaussian passes > 60 % below 0.16 cycles per low pixel, where every resize
kernel the blind tasks draw (box, bicubic, Lanczos, a Gaussian of SD (s - 1) / 2 high pixels)
passes >= 93 %, so the block mean stands for any of them there. Against 4 (the earlier
value), on 12 NIH training images and the extremity CR RG3 (never trained on, a 10-bit
detector image much smoother per pixel than the 8-bit NIH PNGs), x4: NIH +0.00 to +0.03 dB,
RG3 +0.64 (bicubic low image) and +0.39 (Gaussian); x2: NIH +0.00 to +0.07, RG3 +0.50 /
+0.36. Smaller is not safer: 0.5 fed the low image's noise back (NIH with noise SD 0.005:
-0.05 dB at x4, -0.18 at x2).

Low-dose CT x2 / x4 (the low image a block mean of the low-dose slice, as a scanner's larger
pixels integrate it): the low image's noise below 0.16 cycles per low pixel is little, and
the models' errors there were larger. Chosen on simulated 25 % doses of 4 InVesalius head
slices (a training source; b30f-like / d45f-like kernels; C40/W400): against none, ct-ldct-x2
+0.15 / +0.20 dB, ct-ldct-x4 +0.04 / +0.05 (SD 2: +0.03 / +0.03, +0.00 / +0.00); then
checked on the real L143 pairs (B30f / D45f): x2 +0.16 / +0.03, x4 +0.17 / +0.04."""


def low_frequency_consistency(
    low: np.ndarray, high: np.ndarray, scale: int, sigma_px: float, in_place: bool = False
) -> np.ndarray:
    """`high` corrected so that its area-downsampled image agrees with `low` at low spatial
    frequencies: `high + U(G_sigma * (low - D(high)))` (D: `scale x scale` block mean, U:
    bicubic upsampling, G: Gaussian of SD `sigma_px` low pixels). One step of iterative
    back-projection (Irani and Peleg 1991) restricted to what no resize kernel changes: it
    leaves the model's detail alone and removes the drift and the errors a few low pixels
    wide that the models leave on images unlike their training's (the radiograph models on
    smooth detector images, the CT models on real low doses; `LOW_FREQUENCY_CONSISTENCY`
    has the tasks and the measurements). `in_place`: a
    float32 `high` is corrected in place and returned (one output-sized array fewer)."""
    from scipy.ndimage import gaussian_filter

    from medsr.physics.resize import upsample

    h, w = low.shape[-2:]
    # the block mean D(high) by torch's pooling: 0.2 ms where numpy's reshape-mean took 1.2
    # (512^2 output, 2 threads); xray-x4 128 -> 512 interleaved: 60.3 -> 59.5 ms
    cropped = torch.from_numpy(np.asarray(high, dtype=np.float32)[: h * scale, : w * scale])
    block = torch.nn.functional.avg_pool2d(cropped[None, None], scale)[0, 0].numpy()
    correction = gaussian_filter((low - block).astype(np.float64), sigma_px, mode="nearest")
    tensor = torch.from_numpy(correction.astype(np.float32))[None, None]
    out = high if in_place and high.dtype == np.float32 else high.astype(np.float32)
    out += upsample(tensor, scale, "bicubic").numpy()[0, 0]
    return out


@dataclass
class Predictor:
    """A generator, its normalisation and provenance; see the module doc.

    Attributes:
        run: the model on host tiles (`tiling.Runner`), torch or onnxruntime.
        info: `ModelInfo` (task, scale, normalisation, name, checkpoint hash, version).
        backend: "torch" or "onnx"; device: where tiles run; source: the model file.
        dose_fraction, strength: a non-blind denoiser's noise level options
            (`with_noise_options`); None and 1: as the model was trained.
        memory_budget: bytes of activations per model call under `tile_size="auto"`.
        geometric_ensemble: average the model over the 8 flips / rotations of each tile
            (`with_geometric_ensemble`, `medsr.inference.ensemble`): 8x the time.
    """

    run: Runner
    info: ModelInfo
    backend: str = "torch"
    device: str = "cpu"
    source: str = ""
    dose_fraction: float | None = None
    strength: float = 1.0
    memory_budget: int = MEMORY_BUDGET
    geometric_ensemble: bool = False

    @classmethod
    def load(
        cls,
        name_or_path: str,
        device: str = "cpu",
        backend: str = "torch",
        use_ema: bool = True,
        precision: str = "auto",
    ) -> Predictor:
        """Load a registered model name, a checkpoint (.pt) or an exported .onnx file.

        `backend="onnx"` runs through onnxruntime: an .onnx file directly, a checkpoint after
        exporting it in memory. An .onnx file needs `backend="onnx"`. `precision` ("auto",
        "fp32", "bf16") applies to the torch backend (`runner.select_precision`: "auto" is
        bf16 autocast where the device computes bf16 in hardware, else float32). The choice
        is logged in one line (logger "medsr.inference", INFO) and kept in `engine`.
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
            predictor = cls(onnx_backend.OnnxRunner(path, device), info, backend, device, str(path))
        else:
            model, info = read_checkpoint(path).image_model(use_ema)
            if backend == "onnx":
                model_bytes = onnx_backend.onnx_bytes(model, info)
                runner: Runner = onnx_backend.OnnxRunner(model_bytes, device)
            else:
                runner = TorchRunner(model, device, select_precision(precision, device))
            predictor = cls(runner, info, backend, device, str(path))
        log.info("%s: %s", predictor.model_name, predictor.engine)
        return predictor

    @property
    def engine(self) -> str:
        """How tiles run, in one line: backend, device, precision, memory format, threads,
        and the largest image done in one call."""
        describe = getattr(self.run, "describe", None)
        how = describe() if callable(describe) else f"{self.backend} on {self.device}"
        pixels = self.memory_budget / self.bytes_per_pixel()
        return f"{how}; whole image per call up to {pixels / 1e6:.2g} MP input, else tiles"

    @property
    def precision(self) -> str:
        """ "bf16" or "fp32": what the model computes in."""
        return str(getattr(self.run, "precision", "fp32"))

    def bytes_per_pixel(self) -> float:
        """Estimated activation bytes per input pixel of one model call (torch: measured by
        `runner.activation_bytes_per_pixel`; else 64 float32 channels at the output grid,
        twice)."""
        measure = getattr(self.run, "bytes_per_pixel", None)
        if callable(measure):
            return float(measure())
        return 2.0 * 4 * 64 * max(self.scale, 1) ** 2

    def plan(
        self, shape: tuple[int, int], tile_size: TileSize, overlap: int
    ) -> tuple[int | None, int]:
        """`(tile_size, batch_size)` for an image of `shape`: "auto" from `tiling.plan_tiles`
        and the memory budget; a given tile size with as many tiles per call as fit."""
        if tile_size == "auto":
            return plan_tiles(shape, self.bytes_per_pixel(), self.memory_budget, overlap)
        if tile_size is None:
            return None, 1
        if isinstance(tile_size, str) or tile_size < 1:
            raise ValueError(f"tile_size must be a positive int, None or 'auto', got {tile_size!r}")
        pixels = min(tile_size, shape[0]) * min(tile_size, shape[1])
        batch = int(self.memory_budget // (self.bytes_per_pixel() * pixels))
        return tile_size, max(1, min(batch, tile_count(shape, tile_size, overlap)))

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

    def _enhance_mapped(
        self,
        image: np.ndarray,
        bounds: tuple[float, float],
        tile_size: int | None,
        overlap: int,
        batch_size: int = 1,
        on_tile: TileHook | None = None,
    ) -> np.ndarray:
        """`image` through the normalisation (with `bounds`), the model and back; a CT
        image's padding (`PADDING_HU`) given to the model as air (`AIR_HU`) and kept in the
        output."""
        normalization = self.info.normalization
        padding = self.padding(image)
        source = image
        if padding is not None:
            image = np.where(padding, np.float32(AIR_HU), image)
        x = normalization.forward(image, bounds)
        run = self.run
        if normalization.get("noise_level_unit"):
            run = with_noise_channels(self.run, self.noise_channels(image))
        if self.geometric_ensemble:
            run = self_ensemble(run)
        y = tiled_apply(
            x, run, self.scale, tile_size, overlap, on_tile=on_tile, batch_size=batch_size
        )
        if sigma := LOW_FREQUENCY_CONSISTENCY.get(self.task):
            y = low_frequency_consistency(x, y, self.scale, sigma, in_place=True)
        out = normalization.inverse(y, bounds)
        if padding is not None:
            s = self.scale
            if s > 1:  # a low pixel on the circle may also hold image: the model's output there
                from scipy import ndimage

                padding = ndimage.binary_erosion(padding, border_value=1)
                kept = padding.repeat(s, 0).repeat(s, 1)
                out[kept] = source.repeat(s, 0).repeat(s, 1)[kept]
            else:
                out[padding] = source[padding]
        return out

    def padding(self, image: np.ndarray) -> np.ndarray | None:
        """For a model of CT in HU, the pixels of `image` below `PADDING_HU` (outside the
        field of view), or None when it has none (or the model is not one of HU). At x2 / x4
        the output keeps the padding of the low pixels whose 8 neighbours are padding too."""
        normalization = self.info.normalization
        if normalization["kind"] != "window" or normalization.get("unit") != "HU":
            return None
        mask = image < PADDING_HU
        return mask if mask.any() else None

    def noise_channels(self, image: np.ndarray) -> list[float]:
        """A non-blind model's noise inputs for a whole 2-D image, in their units: the noise
        level (`noise_level`), then, for a model that has them, the NPS mean frequency
        (cycles/pixel, `medsr.metrics.noise.estimate_noise`, the same ROIs) and the dose
        fraction (`--dose`, by default the one the model was trained for)."""
        from medsr.metrics.noise import estimate_noise

        estimate = estimate_noise(np.asarray(image, dtype=np.float32), "CT")
        normalization = self.info.normalization
        channels = [self._noise_level(estimate.sd) / float(normalization["noise_level_unit"])]
        if unit := normalization.get("noise_frequency_unit"):
            channels.append(estimate.mean_frequency / float(unit))
        if normalization.get("dose_input") and (dose := self._dose_fraction()) is not None:
            channels.append(dose)
        return channels

    def noise_level(self, image: np.ndarray) -> float:
        """A non-blind model's noise level for a whole 2-D image, in HU, as its training
        items measured it: the input's noise SD (`medsr.metrics.noise.estimate_noise`, CT
        uniform ROIs) or, for models told the noise to remove, that SD times sqrt(1 - d), d
        the input's dose fraction of a normal dose (`dose_fraction`, by default the one the
        model was trained for); times `strength`."""
        from medsr.metrics.noise import estimate_noise

        return self._noise_level(estimate_noise(np.asarray(image, dtype=np.float32), "CT").sd)

    def _dose_fraction(self) -> float | None:
        """The input's dose fraction: `--dose`, else the one the model was trained for (None
        for a model told the input's own noise)."""
        if self.dose_fraction is not None:
            return self.dose_fraction
        dose = self.info.normalization.get("noise_level_dose_fraction")
        return None if dose is None else float(dose)

    def _noise_level(self, sd: float) -> float:
        dose = self._dose_fraction()
        level = sd if dose is None else sd * float(np.sqrt(1.0 - float(dose)))
        return level * self.strength

    def with_noise_options(
        self, dose_fraction: float | None = None, strength: float = 1.0
    ) -> Predictor:
        """This predictor with a non-blind denoiser's noise level set by the user.

        Quantum noise variance goes as 1 / dose, so an input at dose fraction d (of a normal
        dose: 0.25 = quarter dose) holds `sqrt(1 - d)` of its measured noise SD above the
        normal dose: the noise the model is told to remove. `strength` multiplies that level
        (> 1 removes more, < 1 less). ValueError for a model without a noise-level input, or
        a dose for a model told the input's own noise (no dose in its normalisation).
        """
        if dose_fraction is None and strength == 1.0:
            return self
        normalization = self.info.normalization
        if not normalization.get("noise_level_unit"):
            raise ValueError(
                f"--dose and --strength set the noise level of a non-blind denoiser (a model "
                f"with a noise-level input, e.g. ct-ldct); {self.model_name} has none"
            )
        if dose_fraction is not None:
            if normalization.get("noise_level_dose_fraction") is None:
                raise ValueError(
                    f"{self.model_name} is told the input's own noise, not the noise to remove: "
                    "--dose does not apply (use --strength)"
                )
            if not 0 < dose_fraction <= 1:
                raise ValueError(
                    f"--dose must be in (0, 1] (of a normal dose), got {dose_fraction}"
                )
        if not (strength > 0 and np.isfinite(strength)):
            raise ValueError(f"--strength must be > 0, got {strength}")
        return replace(self, dose_fraction=dose_fraction, strength=float(strength))

    def with_precision(self, precision: str) -> Predictor:
        """This predictor's model (shared, not reloaded) computing in `precision` ("fp32",
        "bf16" or "auto", as `load`). ValueError for the ONNX backend, which runs as exported."""
        if not isinstance(self.run, TorchRunner):
            raise ValueError(f"precision applies to the torch backend, not {self.backend}")
        runner = TorchRunner(self.run.model, self.device, precision, self.run.channels_last)
        return replace(self, run=runner)

    def with_geometric_ensemble(self, enabled: bool = True) -> Predictor:
        """This predictor averaging its model over the 8 flips / rotations of each tile
        (`medsr.inference.ensemble`; EDSR's self-ensemble): 8x the time of one pass."""
        return replace(self, geometric_ensemble=bool(enabled))

    def enhance_array(
        self,
        image: np.ndarray,
        tile_size: TileSize = "auto",
        overlap: int = 32,
        *,
        on_tile: TileHook | None = None,
    ) -> np.ndarray:
        """`(H, W)` in image units (HU for CT) -> `(sH, sW)` float32 in the same units.

        A `percentile` model maps this image by its own percentiles (see the module doc).
        `tile_size`: "auto" (one call for the whole image when it fits `memory_budget`, else
        tiles: `plan`), a tile side in input pixels, or None (whole image).
        `on_tile(tiles_done, tiles_total)` is called after each batch of tiles; an exception
        it raises aborts the work and propagates (e.g. a cancel).
        """
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 2:
            raise ValueError(f"image must be 2-D (H, W), got shape {image.shape}")
        bounds = self.info.normalization.bounds(image)
        tile, batch = self.plan(image.shape, tile_size, overlap)
        return self._enhance_mapped(image, bounds, tile, overlap, batch, on_tile)

    def check_volume(self, volume: Volume) -> None:
        """ValueError when the image holds NaN or infinite values, or a model trained on HU
        gets an image not in HU; warning when the modality is not one the model's task is
        for."""
        from medsr.physics.tasks import TASKS

        check_finite(volume.array)

        expected = self.info.normalization.get("unit")
        if self.info.normalization["kind"] == "window" and expected == "HU" and volume.unit != "HU":
            raise ValueError(
                f"model {self.model_name!r} expects CT in HU, got an image in {volume.unit!r} "
                f"(modality {volume.modality})"
                + (
                    "; if its values are HU, say so (medsr enhance --modality CT --unit HU)"
                    if volume.unit == "a.u."
                    else ""
                )
            )
        spec = TASKS.get(self.task)
        if spec is not None and spec.modalities and volume.modality not in spec.modalities:
            warnings.warn(
                f"model {self.model_name!r} was trained for {'/'.join(spec.modalities)} "
                f"({self.task}); this image is {volume.modality}",
                stacklevel=3,
            )

    def provenance(self, tile_size: int | None, overlap: int) -> Provenance:
        """What `enhance` records in `metadata[PROVENANCE_KEY]` (`medsr.image.Provenance`);
        the backend reads "torch+bf16" when the model ran in bf16, with "+ensemble8" when it
        ran as a geometric self-ensemble."""
        backend = f"{self.backend}+bf16" if self.precision == "bf16" else self.backend
        if self.geometric_ensemble:
            backend += "+ensemble8"
        return self.info.provenance(backend, tiles=(tile_size, overlap))

    def enhance(
        self,
        volume: Volume,
        progress: bool = False,
        tile_size: TileSize = "auto",
        overlap: int = 32,
        *,
        on_tile: TileHook | None = None,
    ) -> Volume:
        """Enhance a 2-D image or every slice of a 3-D volume; returns a new Volume.

        `progress` shows a bar over slices. `on_tile(tiles_done, tiles_total)`, counted over
        the whole volume, is called after each batch of tiles; an exception it raises aborts
        the work and propagates unchanged, and no Volume is returned (how a caller cancels).
        `tile_size` as in `enhance_array`; the provenance records the tile used.

        In-plane spacing is divided by the scale and the origin moved to the centre of the
        first output pixel (slice spacing unchanged). `metadata` keeps the source's entries
        and adds `metadata[PROVENANCE_KEY]` (`Provenance`: model, architecture, task, scale,
        checkpoint sha256, versions, backend, tiles, `research_use_only: True`) and
        `metadata["research_use_only"] = True`.
        """
        from tqdm import tqdm

        self.check_volume(volume)
        slices = volume.array if volume.is_volume else volume.array[None]
        bounds = self.info.normalization.bounds(volume.array)
        s = self.scale
        tile, batch = self.plan(slices.shape[1:], tile_size, overlap)
        hook = _VolumeTiles(on_tile, slices.shape[0])
        out: np.ndarray | None = None
        for k in tqdm(range(slices.shape[0]), desc="enhance", unit="slice", disable=not progress):
            result = self._enhance_mapped(
                slices[k], bounds, tile, overlap, batch, hook.slice_hook(k)
            )
            if not volume.is_volume:
                out = result  # no second output-sized array for a 2-D image
                break
            if out is None:
                out = np.empty((slices.shape[0], *result.shape), np.float32)
            out[k] = result
        assert out is not None
        spacing, origin = rescaled_in_plane(volume, s, finer=True)
        metadata = self.provenance(tile, overlap).stamp(volume.metadata)
        return replace(
            volume,
            array=out,
            spacing=spacing,
            origin=origin,
            metadata=metadata,
        )


class _VolumeTiles:
    """Turns per-slice `(done, total)` tile counts into counts over the whole volume for a
    user's `on_tile` hook. The slices not yet started are counted as needing as many tiles as
    the current one (all slices have one shape; an out-of-memory retry with smaller tiles
    raises the total and restarts the current slice's count)."""

    def __init__(self, on_tile: TileHook | None, num_slices: int) -> None:
        self.on_tile, self.num_slices = on_tile, num_slices
        self.finished = 0  # tiles of the slices already done

    def slice_hook(self, index: int) -> TileHook | None:
        if self.on_tile is None:
            return None
        on_tile = self.on_tile

        def report(done: int, total: int) -> None:
            remaining = self.num_slices - index
            on_tile(self.finished + done, self.finished + total * remaining)
            if done == total:
                self.finished += total

        return report


def float32_variants(predictors: Mapping[str, Predictor]) -> dict[str, Predictor]:
    """`NAME@fp32`: each torch predictor that computes in bf16, computing in float32 (what
    bf16 costs, measured in one run, as the benchmarks' `--fp32` reports it)."""
    return {
        f"{name}@fp32": predictor.with_precision("fp32")
        for name, predictor in predictors.items()
        if predictor.backend == "torch" and predictor.precision != "fp32"
    }
