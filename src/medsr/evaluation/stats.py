"""Means with 95 % intervals over images, per method and metric, and paired differences.

The unit of replication is the image: an interval says how much the mean would move with
other images of the same kind, not how noisy one image's metric is. With fewer than
`MIN_MEANINGFUL` images an interval is computed when possible but flagged as not meaningful.

* `t`: `mean +- t_{(1+c)/2, n-1} * sd / sqrt(n)` (sample SD, n - 1 degrees of freedom).
* `bootstrap`: percentile bootstrap of the mean over images, `resamples` draws, seeded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

INTERVALS = ("t", "bootstrap")
MIN_MEANINGFUL = 4


@dataclass(frozen=True)
class Interval:
    """Mean of `n` finite values and its interval `[low, high]` (NaN when n < 2)."""

    mean: float
    low: float
    high: float
    n: int
    method: str
    confidence: float = 0.95

    @property
    def meaningful(self) -> bool:
        return self.n >= MIN_MEANINGFUL and math.isfinite(self.low)

    @property
    def note(self) -> str:
        if self.n == 0:
            return "no value"
        if not self.meaningful:
            return f"n = {self.n}: interval not meaningful"
        return ""

    def row(self) -> dict[str, Any]:
        """The columns a summary row shows: n, mean, low, high, interval (its method), note."""
        return {
            "n": self.n,
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "interval": self.method,
            "note": self.note,
        }


def _finite(values: Iterable[float]) -> np.ndarray:
    array = np.asarray([float(v) for v in values], dtype=np.float64)
    return array[np.isfinite(array)]


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean of the finite `values` (NaN bounds when n < 2)."""
    _check_confidence(confidence)
    x = _finite(values)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "t", confidence)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n, "t", confidence)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, "t", confidence)


def bootstrap_interval(
    values: Iterable[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of the mean of the finite `values` (NaN when n < 2)."""
    _check_confidence(confidence)
    x = _finite(values)
    n = int(x.size)
    if n < 2:
        mean = float(x.mean()) if n else math.nan
        return Interval(mean, math.nan, math.nan, n, "bootstrap", confidence)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(float(x.mean()), float(low), float(high), n, "bootstrap", confidence)


def mean_interval(values: Iterable[float], method: str = "t", confidence: float = 0.95) -> Interval:
    """`t_interval` or `bootstrap_interval` by name (see `INTERVALS`)."""
    if method not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {method!r}")
    if method == "t":
        return t_interval(values, confidence)
    return bootstrap_interval(values, confidence)


def summarize(
    rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], interval: str = "t"
) -> list[dict[str, Any]]:
    """One row per (method, metric) with n, mean, low, high, interval and note, methods in
    order of first appearance; rows missing a metric (or NaN) are left out of its n."""
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    out = []
    for method in methods:
        for metric in metrics:
            chosen = [r for r in rows if r["method"] == method]
            values = [r[metric] for r in chosen if r.get(metric) is not None]
            result = mean_interval(values, interval)
            if result.n == 0:
                continue
            out.append({"method": method, "metric": metric, **result.row()})
    return out


def paired_differences(
    rows: Sequence[Mapping[str, Any]], metric: str, reference: str, interval: str = "t"
) -> list[dict[str, Any]]:
    """Per method, the mean over images of `metric(method) - metric(reference)` on the same
    image, with its interval: the fair comparison, free of between-image spread."""
    by_image: dict[tuple[str, str], float] = {
        (str(r["image"]), str(r["method"])): float(r[metric])
        for r in rows
        if r.get(metric) is not None
    }
    images = list(dict.fromkeys(str(r["image"]) for r in rows))
    methods = [m for m in dict.fromkeys(str(r["method"]) for r in rows) if m != reference]
    out = []
    for method in methods:
        diffs = [
            by_image[(i, method)] - by_image[(i, reference)]
            for i in images
            if (i, method) in by_image and (i, reference) in by_image
        ]
        result = mean_interval(diffs, interval)
        if result.n:
            out.append({"method": method, "reference": reference, "metric": metric, **result.row()})
    return out
