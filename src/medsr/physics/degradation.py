"""The degradation contract every task follows, and what it returns.

In the spirit of deepinv's physics (`y = noise(A(x))` with a generator that returns the
parameters of one draw), a task is three functions:

    params = task.sample(generator)                     # one draw of the random parameters
    clean  = task.forward(high, spacing_mm, params)     # A(x): deterministic, noise-free low image
    low    = task.noise(clean, params, generator, high=high, spacing_mm=spacing_mm)

`params` is a small frozen dataclass whose `asdict` is JSON-able (`params_record`): logged
with every pair, so any pair can be remade from its log. The ranges a task draws from (dose
gain, blur, counts, noise level, ...) are its constructor arguments and `sample` alone draws
them, so training, `degrade` and `evaluate` draw the same way. `noise` receives the input
image too (`high`, before `target`) because some noise models depend on the signal along a
ray (projection-domain low-dose CT) or on the whole acquisition (PET).

Three optional steps, identity by default:
- `target(high, params)`: the image the model should produce (e.g. cropped to the grid);
- `fit(high, spacing_mm, params)`: parameters read off the image itself, logged with the
  pair (the value range of a radiograph; a low-dose CT I0 not yet calibrated);
- `for_scan(images, spacing_mm)`: the task calibrated once on a whole scan `(D, H, W)`
  (low-dose CT's I0). `degrade`, `evaluate` and the training banks call it on each volume
  before degrading its slices, so every slice of a scan shares the scan's settings.

`SampledDegradation.__call__` composes them and packs a `DegradedPair`: `degrade`,
`evaluate`, the training banks and the consistency maps all reach a task through these
methods (`DegradationTask`), never through its class.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from medsr.physics.resize import crop_to_multiple, downsample


@dataclass
class DegradedPair:
    """A training pair made from one real high-quality image.

    `low` is what the scanner would give (noisier and/or on a coarser grid), `high` the
    target; both `(C, H, W)` float32 in the image's own unit (HU for CT). `params` holds every
    parameter used, drawn ones included, so the pair can be reproduced and logged.
    `noisy`, for tasks that add noise on the high grid before downsampling, is that noisy
    image (e.g. the low-dose CT at full resolution), so the noise alone can be shown.
    `guide`, for guided tasks, is a second model input on the high grid `(C, H, W)` in its own
    unit (for `petct`: the CT in HU, while `low` and `high` are PET in SUV).
    """

    low: torch.Tensor
    high: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)
    noisy: torch.Tensor | None = None
    guide: torch.Tensor | None = None


class Degradation(Protocol):
    """`degradation(high, spacing_mm, generator) -> DegradedPair`.

    `high` is `(C, H, W)` in the image's unit, `spacing_mm` its in-plane pixel spacing;
    all randomness comes from `generator`, so a fixed seed gives the same pair.
    """

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair: ...


@runtime_checkable
class DegradationTask(Protocol):
    """The contract of a task (module doc): what `degrade`, `evaluate`, the training banks
    and the consistency maps call. `SampledDegradation` is its base implementation."""

    @property
    def task(self) -> str: ...
    @property
    def scale(self) -> int: ...

    def sample(self, generator: torch.Generator) -> Any: ...
    def forward(self, high: torch.Tensor, spacing_mm: float, params: Any) -> torch.Tensor: ...
    def noise(
        self,
        clean: torch.Tensor,
        params: Any,
        generator: torch.Generator,
        *,
        high: torch.Tensor,
        spacing_mm: float,
    ) -> torch.Tensor: ...
    def target(self, high: torch.Tensor, params: Any) -> torch.Tensor: ...
    def fit(self, high: torch.Tensor, spacing_mm: float, params: Any) -> Any: ...
    def for_scan(self, images: torch.Tensor, spacing_mm: float) -> DegradationTask: ...
    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair: ...


def params_record(params: Any) -> dict[str, Any]:
    """The JSON-able record of a parameter draw (a dataclass or a mapping); ValueError if a
    value would not survive `json.dumps` (NaN, tensors, arbitrary objects)."""
    is_record = is_dataclass(params) and not isinstance(params, type)
    record = asdict(params) if is_record else dict(params)
    try:
        json.dumps(record, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"degradation parameters are not JSON-able: {record!r}") from error
    return record


def draw_uniform(low: float, high: float, generator: torch.Generator, log: bool = False) -> float:
    """One uniform draw in `[low, high]` (log-uniform when `log`), from `generator`."""
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    if log:
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def draw_choice(options: tuple[Any, ...], generator: torch.Generator) -> Any:
    """One of `options`, uniformly, from `generator`."""
    return options[int(torch.randint(0, len(options), (1,), generator=generator))]


def draw_bernoulli(probability: float, generator: torch.Generator) -> bool:
    """True with `probability`, from `generator`."""
    return float(torch.rand((), generator=generator, dtype=torch.float64)) < probability


def check_range(name: str, bounds: tuple[float, float] | None, positive: bool = False) -> None:
    """ValueError unless `bounds` is None or a finite `(low, high)`, `0 <= low <= high`
    (`0 < low` when `positive`)."""
    if bounds is None:
        return
    low, high = bounds
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"{name} must be a finite (low, high) with low <= high, got {bounds}")
    if low < 0 or (positive and low <= 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {bounds}")


def draw_range(
    bounds: tuple[float, float] | None, fixed: Any, generator: torch.Generator, log: bool = False
) -> Any:
    """`fixed` when `bounds` is None, `low` when `low == high` (neither draws, so a task
    without ranges leaves the generator untouched), else `draw_uniform` in `bounds`."""
    if bounds is None:
        return fixed
    if bounds[0] == bounds[1]:
        return float(bounds[0])
    return draw_uniform(float(bounds[0]), float(bounds[1]), generator, log)


class SampledDegradation:
    """Base of tasks written as `sample` / `forward` / `noise` (see the module doc).

    Subclasses set `task` and `scale` and implement the three methods; `__call__` composes
    them and packs the pair with every parameter, drawn ones included. Two class attributes
    say what callers may rely on without knowing the class: `adds_noise` (False for pure
    resampling: consistency maps then expect a residual ~0) and `bank` (the whole-slice
    training bank the task needs, "noise" or "pet"; None: patches are degraded on the fly).
    """

    task: str
    scale: int
    adds_noise: ClassVar[bool] = True
    bank: ClassVar[str | None] = None

    def sample(self, generator: torch.Generator) -> Any:
        raise NotImplementedError

    def forward(self, high: torch.Tensor, spacing_mm: float, params: Any) -> torch.Tensor:
        raise NotImplementedError

    def noise(
        self,
        clean: torch.Tensor,
        params: Any,
        generator: torch.Generator,
        *,
        high: torch.Tensor,
        spacing_mm: float,
    ) -> torch.Tensor:
        raise NotImplementedError

    def target(self, high: torch.Tensor, params: Any) -> torch.Tensor:
        """The high image the model should produce (default: `high` itself)."""
        return high

    def fit(self, high: torch.Tensor, spacing_mm: float, params: Any) -> Any:
        """`params` with what the task reads off the input image filled in (default: as is)."""
        return params

    def for_scan(self, images: torch.Tensor, spacing_mm: float) -> SampledDegradation:
        """This task calibrated once on a scan `(D, H, W)` or `(H, W)` (default: itself)."""
        return self

    def prepare(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> tuple[Any, torch.Tensor]:
        """Check the input, then `sample`, `fit` and `target`: `(params, target)`."""
        if high.ndim != 3:
            raise ValueError(f"high must be (C, H, W), got shape {tuple(high.shape)}")
        if not spacing_mm > 0:
            raise ValueError(f"spacing_mm must be > 0, got {spacing_mm}")
        params = self.fit(high, spacing_mm, self.sample(generator))
        return params, self.target(high, params)

    def pack(
        self,
        low: torch.Tensor,
        target: torch.Tensor,
        spacing_mm: float,
        params: Any,
        generator: torch.Generator,
        extra: dict[str, Any] | None = None,
        noisy: torch.Tensor | None = None,
        guide: torch.Tensor | None = None,
    ) -> DegradedPair:
        """The `DegradedPair` with its record: task, scale, the parameters, `extra` (values
        only known after the noise, e.g. PET prompts), shapes, spacings and the seed."""
        record = {
            "task": self.task,
            "scale": self.scale,
            **params_record(params),
            **(extra or {}),
            "high_shape": list(target.shape),
            "low_shape": list(low.shape),
            "high_spacing_mm": spacing_mm,
            "low_spacing_mm": spacing_mm * self.scale,
            "generator_seed": generator.initial_seed(),
        }
        return DegradedPair(
            low.contiguous(),
            target.contiguous(),
            record,
            None if noisy is None else noisy.contiguous(),
            None if guide is None else guide.contiguous(),
        )

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair:
        params, target = self.prepare(high, spacing_mm, generator)
        clean = self.forward(target, spacing_mm, params)
        low = self.noise(clean, params, generator, high=high, spacing_mm=spacing_mm)
        return self.pack(low, target, spacing_mm, params, generator)


class NoiseThenDownsample(SampledDegradation):
    """Tasks whose noise is inserted on the high grid, before the grid change:

        target = crop(x)            x cropped to a multiple of `scale`
        forward(target) = D(target) D: `downsample` by `scale` with `method` (a copy at 1)
        noise(clean, high=x) = D(noisy(x)),  noisy = target + n

    so `low - clean = D(n)`. `noisy` (None: no noise) is the task's noise model; `__call__`
    is the base composition that also keeps `noisy` in the pair (the noise alone can be shown).
    """

    method: str

    def resample(self, image: torch.Tensor) -> torch.Tensor:
        return image.clone() if self.scale == 1 else downsample(image, self.scale, self.method)

    def target(self, high: torch.Tensor, params: Any) -> torch.Tensor:
        return crop_to_multiple(high, self.scale)

    def forward(self, high: torch.Tensor, spacing_mm: float, params: Any) -> torch.Tensor:
        return self.resample(high)

    def noisy(
        self, high: torch.Tensor, spacing_mm: float, params: Any, generator: torch.Generator
    ) -> torch.Tensor | None:
        """The noisy target on the high grid for the input `high`; None: the task adds none."""
        return None

    def noise(
        self,
        clean: torch.Tensor,
        params: Any,
        generator: torch.Generator,
        *,
        high: torch.Tensor,
        spacing_mm: float,
    ) -> torch.Tensor:
        noisy = self.noisy(high, spacing_mm, params, generator)
        return clean if noisy is None else self.resample(noisy)

    def __call__(
        self, high: torch.Tensor, spacing_mm: float, generator: torch.Generator
    ) -> DegradedPair:
        params, target = self.prepare(high, spacing_mm, generator)
        noisy = self.noisy(high, spacing_mm, params, generator)
        low = self.forward(target, spacing_mm, params) if noisy is None else self.resample(noisy)
        return self.pack(low, target, spacing_mm, params, generator, noisy=noisy)
