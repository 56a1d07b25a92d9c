"""95% intervals that cost no new sampling pass or training: each is computed from what a
metric already has (per-sample values, per-subset or per-split estimates, test-set sizes).
A value's interval is logged as `<value>.lo` / `<value>.hi` (bench.record.values.with_interval).

Which method, and why it is honest:

- an accuracy on n test images: Wilson score interval (bench.record.values.wilson), a binomial
  proportion over the test set. It covers test-set noise only, not training noise (that
  is what `repeats:` measures).
- a share of samples with a yes/no property (precision, recall, coverage, authenticity):
  Wilson as well, on the count of yes.
- a mean of per-sample numbers (density, nearest-neighbour similarity, path length):
  normal approximation, mean +- z * sd / sqrt(n).
- a difference of two accuracies on the same test set: Newcombe's hybrid score interval
  for two independent proportions (method 10 of Newcombe 1998), the Wilson arms combined
  by square-and-add. Both accuracies are measured on the same images, which correlates
  them positively, so treating them as independent over-states the test-set variance:
  the interval is conservative, never too narrow for test-set noise.
- a sum or difference of estimates with standard errors (balanced accuracy, its gains):
  normal approximation, the variances added as if independent (conservative as above
  for estimates on the same test set).

Every standard error below that comes from a Wilson interval is its half-width / z: it is
never 0 at an accuracy of 0 or 1, unlike the Wald p(1-p)/n.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated

import numpy as np
from pydantic import AfterValidator

from bench.record.values import wilson, with_interval

Z95 = 1.959963984540054  # standard normal 97.5% quantile


def normal_with_interval(name: str, value: float, se: float, lower: float | None = None,
                         upper: float | None = None) -> dict[str, float]:
    """value +- z * se, clipped to [lower, upper] where the value cannot leave them; a
    value without a finite standard error is returned alone."""
    if not math.isfinite(se) or not math.isfinite(value):
        return {name: float(value)}
    lo, hi = value - Z95 * se, value + Z95 * se
    if lower is not None:
        lo = max(lo, lower)
    if upper is not None:
        hi = min(hi, upper)
    return with_interval(name, value, lo, hi)


def wilson_se(accuracy: float, total: int) -> float:
    """The standard error a Wilson interval implies: its half-width / z."""
    lo, hi = wilson(round(accuracy * total), total)
    return (hi - lo) / (2 * Z95)


def share_with_interval(name: str, flags: np.ndarray) -> dict[str, float]:
    """The share of True among per-sample flags, with its Wilson interval. The value is
    the mean of the flags (what the functional metric returns), the interval from the count."""
    flags = np.asarray(flags, dtype=bool)
    lo, hi = wilson(int(flags.sum()), flags.size)
    return with_interval(name, float(flags.mean()), lo, hi)


def mean_with_interval(name: str, samples: np.ndarray, value: float | None = None,
                       lower: float | None = None) -> dict[str, float]:
    """The mean of per-sample values with a normal-approximation interval, mean +- z sd/sqrt(n)
    (`value` overrides the reported mean, e.g. the functional metric's own float)."""
    s = np.asarray(samples, dtype=np.float64)
    mean = float(s.mean()) if value is None else float(value)
    se = float(s.std(ddof=1) / math.sqrt(s.size)) if s.size > 1 else math.nan
    return normal_with_interval(name, mean, se, lower=lower)


def difference_with_interval(name: str, a: float, n_a: int, b: float, n_b: int) -> dict[str, float]:
    """a - b for two accuracies (on n_a and n_b test images) with Newcombe's hybrid score
    interval (square-and-add of the two Wilson intervals, independence assumed)."""
    la, ua = wilson(round(a * n_a), n_a)
    lb, ub = wilson(round(b * n_b), n_b)
    d = a - b
    return with_interval(name, d, d - math.hypot(a - la, ub - b), d + math.hypot(ua - a, b - lb))


def mean_recall_se(recalls: Iterable[float], counts: Iterable[int]) -> float:
    """Standard error of a mean of per-class recalls (balanced accuracy, minority recall):
    each recall is a proportion over its class's test images (Wilson standard error), the
    classes' test images are disjoint, so the variances add: se = sqrt(sum se_c^2) / K.
    Classes with no test image (nan recall) are left out, as the mean leaves them out."""
    ses = [wilson_se(r, int(n)) for r, n in zip(recalls, counts, strict=True)
           if n > 0 and not math.isnan(r)]
    return math.sqrt(sum(s * s for s in ses)) / len(ses) if ses else math.nan


def _resamples(v: int) -> int:
    if v == 1:
        raise ValueError("bootstrap needs at least 2 resamples for a spread (0 disables it)")
    return v


# A metric option counting bootstrap resamples: 0 disables the interval, 1 is refused.
Resamples = Annotated[int, AfterValidator(_resamples)]
