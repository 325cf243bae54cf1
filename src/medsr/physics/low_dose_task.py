"""The `ldct*` tasks: low-dose CT by projection-domain noise insertion, then downsampling.

`LowDoseCTTask` follows the degradation contract (`degradation.py`):

    sample   the dose and scanner settings, and per pair a log-uniform `noise_gain` (the noise
             times g: another dose at the same scanner) and `zoom` (the central 1/z of the
             slice on a z times finer grid: pixel size / z), then the reconstruction kernel
             (uniform over `kernels`) and the dose fraction (log-uniform in `dose_range`),
             all off by default (the task's `filter_window` and `dose_fraction`)
    target   x cropped to a multiple of `scale`, then zoomed
    forward  D(target): area downsample by `scale` (a copy for `ldct`)
    noise    D(target + g * zoom(n)), n the low-dose noise of the whole slice (`LowDoseCT`):
             FBP of Gaussian ray noise whose variance depends on the line integrals of x

I0 calibration policy (one for `degrade`, `evaluate` and training): I0 is a property of the
scan, so with `incident_photons=None` it is calibrated ONCE PER SCAN on the scan's own noise
(`calibrate_incident_photons` with the task's `filter_window` and views), on its reference
slice: the slice nearest the middle that has uniform soft tissue, and every slice of the scan
uses it (`for_scan`). A 2-D image is a scan of one slice. `medsr degrade` (also with
`--slice`), `medsr evaluate` (on the whole volume of a 3-D input) and the training noise bank
(on the whole volume of each source, whatever slices the split allows it) all call
`for_scan` first, so the same volume, task and seed give the same noise. A task called on a
single image without `for_scan` calibrates on that image (`fit`). Calibrating each slice
instead would give each slice its own I0: slices through the skull base or the vertex, whose
"uniform" regions hold anatomy, would get several times the noise, and slices with no
uniform soft tissue could not be degraded at all.

Kernels: `filter_window` is the kernel of the input scan, the one I0 is calibrated with (its
simulated normal-dose noise must look like the scan's own); a pair drawn with another kernel
of `kernels` gets that kernel's noise at the same I0, as a scanner reconstructing the same
raw data with a sharper kernel gives more, finer noise (on L143, D45f has ~3x the SD of B30f).
The kernels live in cycles/pixel of the input's grid (`medsr.physics.projector`); `zoom` then
puts the noise on a finer grid, so a kernel keeps its texture in cycles/mm, as a scanner's.
`calibration` picks how the scan's noise is measured (`ct_calibration.CALIBRATION_METHODS`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch

from medsr.physics.ct import LowDoseCT, Projection, default_electronic_noise_variance
from medsr.physics.ct_calibration import CALIBRATION_METHODS, calibrate_incident_photons
from medsr.physics.degradation import NoiseThenDownsample, check_range, draw_choice, draw_range
from medsr.physics.projector import (
    MATCHED_KERNELS,
    RECONSTRUCTION_KERNELS,
    KernelShape,
    signal_transfer,
)
from medsr.physics.resize import DOWNSAMPLE_METHODS, SCALES, crop_to_multiple, zoom_centre

_LOW_DOSE = LowDoseCT()  # the operator's defaults are the task's: one place to change them
SET_BY_FOR_SCAN = {"set_by": "for_scan"}
"""Field metadata of settings `for_scan` fills in: not task arguments (`make_task`)."""


@dataclass(frozen=True)
class LowDoseParams:
    """One draw of `LowDoseCTTask.sample` (JSON-able). `incident_photons` is None until the
    task is calibrated (`for_scan` or `fit`); `calibration_slice` is the scan's slice it was
    calibrated on (None: on the image itself, or I0 given). `filter_window` is the kernel the
    noise is reconstructed with, `calibration_window` the one I0 was calibrated with (the
    input's). `pixel_size_mm`: the target's pixel size (input spacing / zoom), set by `fit`
    and the training bank."""

    method: str
    dose_fraction: float
    incident_photons: float | None
    electronic_noise_variance: float | None
    num_views: int
    filter_window: str
    mu_water_per_cm: float
    noise_gain: float
    zoom: float
    incident_photons_calibrated: bool
    calibration_slice: int | None
    noise_model: str = "ct-projection-domain"
    unit: str = "HU"
    calibration_window: str | None = None
    calibration: str = "roi-sd"
    pixel_size_mm: float | None = None
    tube_current_modulation: float = 0.0


class _LastProjection:
    """The line integrals of the last image projected: `fit` and `noise` of one pair and the
    bank's draws of one slice project it once (keyed by the tensor object and its version)."""

    def __init__(self) -> None:
        self.image: weakref.ref[torch.Tensor] | None = None
        self.key: tuple[Any, ...] = ()
        self.projection: Projection | None = None

    def get(
        self, image: torch.Tensor, key: tuple[Any, ...], make: Callable[[], Projection]
    ) -> Projection:
        key = (image._version, tuple(image.shape), *key)
        if self.projection is None or self.image is None or self.image() is not image:
            self.key = ()
        if key != self.key or self.projection is None:
            self.projection, self.image, self.key = make(), weakref.ref(image), key
        return self.projection


_PROJECTIONS = _LastProjection()


@dataclass(frozen=True)
class LowDoseCTTask(NoiseThenDownsample):
    """Low-dose CT (module doc): noise for `dose_fraction` inserted on the cropped high grid,
    then the noisy image downsampled by `scale` with `method`.

    The arguments from `dose_fraction` to `mu_water_per_cm` are those of `LowDoseCT`, except
    that `incident_photons=None` (the default) calibrates I0 once per scan on its own noise
    (the module doc states the policy), so the low-dose image has SD / sqrt(dose) whatever
    scanner made the input. `noise_gain` and `zoom` are `(low, high)` log-uniform ranges
    drawn per pair (training augmentations; `(1, 1)` = off). `kernels` (reconstruction
    kernels of `RECONSTRUCTION_KERNELS`, drawn uniformly per pair; None: `filter_window`)
    and `dose_range` (`(low, high)` log-uniform dose fraction per pair; None:
    `dose_fraction`) make the sampler of a model for any kernel and dose (module doc).
    `calibration`: how I0 is calibrated on the scan (`CALIBRATION_METHODS`).
    `modulation_range`: `(low, high)` uniform exponent of angular tube-current modulation
    per pair (`LowDoseCT.tube_current_modulation`; None: a constant tube current).
    `signal_kernel`: a pair drawn with another kernel than `filter_window` (the input's) gets
    that kernel's signal too, not only its noise: the target is the input as the pair's
    kernel reconstructs it (`projector.signal_transfer`: a sharp kernel lifts the edges and
    the scan's own noise), as a real sharp-kernel scan's full dose is. Off, a sharp-kernel
    pair is a smooth image plus sharp noise, and a model learns to return smooth images. Not
    in the repr: the noise, and so a training bank's cache key, does not depend on it.
    """

    task: str
    scale: int = 1
    method: str = "area"
    dose_fraction: float = _LOW_DOSE.dose_fraction
    incident_photons: float | None = None
    electronic_noise_variance: float | None = _LOW_DOSE.electronic_noise_variance
    num_views: int = _LOW_DOSE.num_views
    filter_window: str = _LOW_DOSE.filter_window
    mu_water_per_cm: float = _LOW_DOSE.mu_water_per_cm
    noise_gain: tuple[float, float] = (1.0, 1.0)
    zoom: tuple[float, float] = (1.0, 1.0)
    kernels: tuple[str, ...] | None = None
    dose_range: tuple[float, float] | None = None
    calibration: str = "roi-sd"
    modulation_range: tuple[float, float] | None = None
    signal_kernel: bool = field(default=False, repr=False)
    scan_incident_photons: float | None = field(default=None, metadata=SET_BY_FOR_SCAN)
    calibration_slice: int | None = field(default=None, metadata=SET_BY_FOR_SCAN)

    bank: ClassVar[str | None] = "noise"

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or self.scale not in (1, *SCALES):
            raise ValueError(f"scale must be one of {(1, *SCALES)}, got {self.scale!r}")
        if self.method not in DOWNSAMPLE_METHODS:
            raise ValueError(f"method must be one of {DOWNSAMPLE_METHODS}, got {self.method!r}")
        for name in ("noise_gain", "zoom"):
            bounds = tuple(float(v) for v in getattr(self, name))
            if len(bounds) != 2:
                raise ValueError(f"{name} must be (low, high), got {getattr(self, name)}")
            object.__setattr__(self, name, bounds)
        if self.zoom[0] < 1:
            raise ValueError(f"zoom must be >= 1 (a finer grid), got {self.zoom}")
        check_range("noise_gain", self.noise_gain, positive=True)
        check_range("zoom", self.zoom, positive=True)
        if self.kernels is not None:
            kernels = tuple(str(k) for k in self.kernels)
            if not kernels or any(k not in RECONSTRUCTION_KERNELS for k in kernels):
                raise ValueError(
                    f"kernels must name some of {RECONSTRUCTION_KERNELS}, got {self.kernels}"
                )
            object.__setattr__(self, "kernels", kernels)
        if self.dose_range is not None:
            doses = tuple(float(v) for v in self.dose_range)
            if len(doses) != 2 or not 0 < doses[0] <= doses[1] <= 1:
                raise ValueError(f"dose_range must be (low, high) in (0, 1], got {doses}")
            object.__setattr__(self, "dose_range", doses)
        if self.modulation_range is not None:
            bounds = tuple(float(v) for v in self.modulation_range)
            if len(bounds) != 2 or not 0 <= bounds[0] <= bounds[1] <= 2:
                raise ValueError(f"modulation_range must be (low, high) in [0, 2], got {bounds}")
            object.__setattr__(self, "modulation_range", bounds)
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(
                f"calibration must be one of {CALIBRATION_METHODS}, got {self.calibration!r}"
            )
        self.operator()  # validates the operator's arguments before any simulation

    def operator(self, params: LowDoseParams | None = None) -> LowDoseCT:
        """The `LowDoseCT` of one draw (default: of the task's settings, I0 1e5 if unknown)."""
        incident_photons = (
            params.incident_photons
            if params is not None
            else self.incident_photons or self.scan_incident_photons
        )
        return LowDoseCT(
            dose_fraction=self.dose_fraction if params is None else params.dose_fraction,
            incident_photons=incident_photons or _LOW_DOSE.incident_photons,
            electronic_noise_variance=self.electronic_noise_variance
            if params is None
            else params.electronic_noise_variance,
            num_views=self.num_views,
            filter_window=self.filter_window if params is None else params.filter_window,
            mu_water_per_cm=self.mu_water_per_cm,
            tube_current_modulation=0.0 if params is None else params.tube_current_modulation,
        )

    def kernel_shapes(self) -> tuple[tuple[str, KernelShape], ...]:
        """The fitted shapes of the matched kernels the task uses (its `filter_window` and
        `kernels`): part of what its noise is, beyond the names (a noise bank's cache key)."""
        names = sorted({self.filter_window, *(self.kernels or ())})
        return tuple((name, MATCHED_KERNELS[name]) for name in names if name in MATCHED_KERNELS)

    def _resolved(self, incident_photons: float | None) -> float | None:
        """The electronic noise variance for `incident_photons` (default: 10 I0 / 1e5)."""
        if self.electronic_noise_variance is not None or incident_photons is None:
            return self.electronic_noise_variance
        return default_electronic_noise_variance(incident_photons)

    def sample(self, generator: torch.Generator) -> LowDoseParams:
        # gain and zoom first: a task without kernels or doses draws as before they existed
        gain = draw_range(self.noise_gain, 1.0, generator, log=True)
        zoom = draw_range(self.zoom, 1.0, generator, log=True)
        kernel = self.filter_window
        if self.kernels is not None:  # one kernel: no draw
            kernels = self.kernels
            kernel = kernels[0] if len(kernels) == 1 else draw_choice(kernels, generator)
        dose = draw_range(self.dose_range, self.dose_fraction, generator, log=True)
        modulation = draw_range(self.modulation_range, 0.0, generator, log=False)
        incident_photons = self.incident_photons or self.scan_incident_photons
        return LowDoseParams(
            method=self.method,
            dose_fraction=dose,
            incident_photons=incident_photons,
            electronic_noise_variance=self._resolved(incident_photons),
            num_views=self.num_views,
            filter_window=kernel,
            mu_water_per_cm=self.mu_water_per_cm,
            noise_gain=gain,
            zoom=zoom,
            incident_photons_calibrated=self.incident_photons is None,
            calibration_slice=self.calibration_slice,
            calibration_window=self.filter_window,
            calibration=self.calibration,
            tube_current_modulation=modulation,
        )

    def projection(self, high: torch.Tensor, spacing_mm: float) -> Projection:
        """Line integrals of `high` cropped to the task's grid (cached for the last image)."""
        key = (spacing_mm, self.num_views, self.mu_water_per_cm, self.scale)
        return _PROJECTIONS.get(
            high,
            key,
            lambda: self.operator().project(crop_to_multiple(high, self.scale), spacing_mm),
        )

    def _calibrate(
        self, image: torch.Tensor, spacing_mm: float, projection: Projection | None = None
    ) -> float:
        return calibrate_incident_photons(
            image,
            spacing_mm,
            windows=(self.filter_window,),
            num_views=self.num_views,
            mu_water_per_cm=self.mu_water_per_cm,
            projection=projection,
            method=self.calibration,
        ).incident_photons

    def fit(self, high: torch.Tensor, spacing_mm: float, params: LowDoseParams) -> LowDoseParams:
        """Calibrate I0 on this image when neither given nor calibrated on its scan; record
        the target's pixel size."""
        params = replace(params, pixel_size_mm=spacing_mm / params.zoom)
        if params.incident_photons is not None:
            return params
        cropped = crop_to_multiple(high, self.scale)
        image = cropped.reshape(-1, *cropped.shape[-2:])[0]
        incident_photons = self._calibrate(image, spacing_mm, self.projection(high, spacing_mm))
        return replace(
            params,
            incident_photons=incident_photons,
            electronic_noise_variance=self._resolved(incident_photons),
        )

    def for_scan(self, images: torch.Tensor, spacing_mm: float) -> LowDoseCTTask:
        """This task with I0 calibrated on the scan `(D, H, W)` or `(H, W)` (module doc): on
        the slice nearest the middle that has uniform soft tissue. Itself when I0 is known."""
        if self.incident_photons is not None or self.scan_incident_photons is not None:
            return self
        slices = images.reshape(-1, *images.shape[-2:])
        middle = slices.shape[0] // 2
        error: ValueError | None = None
        for k in sorted(range(slices.shape[0]), key=lambda k: abs(k - middle)):
            image = crop_to_multiple(slices[k], self.scale).float()
            try:
                incident_photons = self._calibrate(image, spacing_mm)
            except ValueError as found:  # no uniform soft tissue here: try the next slice
                error = found
                continue
            return replace(self, scan_incident_photons=incident_photons, calibration_slice=k)
        if slices.shape[0] == 1 and error is not None:
            raise error
        raise ValueError(
            f"no slice of the scan has uniform soft tissue to calibrate I0 on ({error}); "
            "set the task's incident_photons"
        )

    def signal(self, high: torch.Tensor, params: LowDoseParams) -> torch.Tensor:
        """`high` (a whole image) as the pair's kernel reconstructs it under
        `signal_kernel`, else `high` itself."""
        if not self.signal_kernel:
            return high
        return signal_transfer(high, self.filter_window, params.filter_window)

    def target(self, high: torch.Tensor, params: LowDoseParams) -> torch.Tensor:
        cropped = crop_to_multiple(self.signal(high, params), self.scale)
        return zoom_centre(cropped, params.zoom) if params.zoom > 1 else cropped

    def insert(
        self, image: torch.Tensor, noise: torch.Tensor, params: LowDoseParams
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(target, noisy)` from an image and its unit-gain noise on the same grid (a whole
        slice or an aligned patch of one): both zoomed, the noise times the gain."""
        if params.zoom > 1:
            image, noise = zoom_centre(image, params.zoom), zoom_centre(noise, params.zoom)
        if params.noise_gain != 1:
            noise = params.noise_gain * noise
        return image, image + noise

    def unit_noise(
        self,
        high: torch.Tensor,
        spacing_mm: float,
        params: LowDoseParams,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """One draw of the low-dose noise (HU) of the whole input on the cropped grid, before
        gain and zoom: what the training bank stores."""
        if params.incident_photons is None:
            raise ValueError("incident_photons is unknown: call for_scan or fit first")
        cropped = crop_to_multiple(high, self.scale)
        noise = self.operator(params).noise(self.projection(high, spacing_mm), generator)
        return noise.reshape(cropped.shape)

    def noisy(
        self,
        high: torch.Tensor,
        spacing_mm: float,
        params: LowDoseParams,
        generator: torch.Generator,
    ) -> torch.Tensor:
        noise = self.unit_noise(high, spacing_mm, params, generator)
        signal = crop_to_multiple(self.signal(high, params), self.scale)
        return self.insert(signal, noise, params)[1]
