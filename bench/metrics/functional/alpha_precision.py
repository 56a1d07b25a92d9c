"""α-precision, β-recall and authenticity (Alaa et al., ICML 2022, "How Faithful is your
Synthetic Data? Sample-level Metrics for Evaluating and Auditing Generative Models").

The α-support of a distribution is the smallest region holding a fraction α of its mass.
With a ball around a centre c as the region, it is the ball of radius r_α = the α-quantile
of the samples' distances to c. Then

* α-precision curve  P(α) = share of synthetic samples inside the α-support of the real data
  (ball around the real centre, radius the α-quantile of real distances to it);
* β-recall curve     R(β) = share of real samples inside the β-support of the synthetic data
  (the same construction around the synthetic centre);
* integrated scores  IPα = 1 - 2 ∫|P(α) - α| dα,  IRβ = 1 - 2 ∫|R(β) - β| dβ,

so a generator whose samples are as typical of the real data as the real data itself
follows the diagonal and scores 1. P and R are non-decreasing, so the integrals lie in
[0, 1]: 0 for a curve that stays at 0 (nothing inside any support) or jumps to 1 at once
(everything at the very centre). The integrals are taken with the midpoint rule on
``steps`` points α_i = (i + 1/2) / steps of (0, 1).

The third number is :func:`authenticity` (the paper's rule, corrected: see its module).

How this differs from the paper and its reference code:

* the paper learns an embedding (a one-class Deep SVDD network trained on the real data) in
  which the real data form a hypersphere, so that distance to the centre measures
  typicality. We use the feature space we have (Inception, classifier or timm features)
  with the real features' mean as the centre: a ball around the mean then only sees the
  distribution of distances to the centre. It is blind to anything that keeps that
  distribution (a mirrored copy of the data around its mean scores 1), which is what the
  learned hypersphere was meant to make meaningful; read the two numbers beside
  precision/recall and density/coverage, not instead of them.
* the reference code (and synthcity) estimates β-recall differently: a real sample counts
  when its nearest synthetic sample lies in the synthetic β-support *and* is closer to it
  than its nearest real neighbour. That second condition holds for only about half of the
  real samples even when the synthetic data are a fresh sample of the real distribution,
  so its curve sits near β/2 and IRβ near 0.5 for perfect data. We follow the paper's
  definition, R(β) = P(X_r ∈ S_g^β), with the ball estimate of S_g^β.
* the reference code integrates on ``np.linspace(0, 1, 30)``, endpoints included; we use
  midpoints (the endpoints carry no information: P(0) = 0 and P(1) = 1 up to ties).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, overload

import numpy as np
import torch

from ._stats import ArrayLike, DeviceLike, as_tensor, resolve_device
from .authenticity import authenticity as _authenticity

__all__ = ["AlphaBetaDetails", "alpha_precision_beta_recall", "alpha_grid", "support_curve"]


def alpha_grid(steps: int) -> np.ndarray:
    """The midpoints α_i = (i + 1/2) / steps, i = 0..steps-1, of (0, 1)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return (np.arange(steps) + 0.5) / steps


def support_curve(own: np.ndarray, other: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, float]:
    """The share of `other` inside the α-support of the sample `own` at each α of `grid`,
    and its integrated score 1 - 2 mean|curve - α|.

    `own`: distances of a sample to its own centre (they define the radii, the α-quantiles
    with linear interpolation); `other`: distances of the other sample to that centre.
    A distance equal to a radius is inside (``<=``)."""
    own, other = np.asarray(own, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if own.size == 0 or other.size == 0:
        raise ValueError("both samples must be non-empty")
    radii = np.quantile(own, grid)
    curve = np.searchsorted(np.sort(other), radii, side="right") / other.size
    return curve, float(1.0 - 2.0 * np.mean(np.abs(curve - grid)))


@dataclass
class AlphaBetaDetails:
    """The curves behind the integrated scores, and what a bootstrap needs.

    ``grid``: the α (= β) values; ``alpha_precision`` / ``beta_recall``: P(α) and R(β) on it;
    ``authentic``: the per-synthetic-sample verdicts (None when not computed). The four
    distance arrays (each sample to each centre) make :meth:`bootstrap` cheap: it resamples
    them, with the centres held fixed, instead of the features."""

    grid: np.ndarray
    alpha_precision: np.ndarray
    beta_recall: np.ndarray
    authentic: np.ndarray | None = None
    real_to_real_centre: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    fake_to_real_centre: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    fake_to_fake_centre: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    real_to_fake_centre: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def bootstrap(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """IPα and IRβ over `n` bootstrap resamples: real and synthetic samples are drawn
        with replacement (the same draw for a sample's distances to both centres), the
        centres are held fixed. O(n * (N_real + N_fake) log N) on the CPU."""
        rng = np.random.default_rng(seed)
        n_r, n_f = self.real_to_real_centre.size, self.fake_to_fake_centre.size
        out: dict[str, list[float]] = {"alpha_precision": [], "beta_recall": []}
        for _ in range(n):
            r, f = rng.integers(0, n_r, n_r), rng.integers(0, n_f, n_f)
            out["alpha_precision"].append(support_curve(
                self.real_to_real_centre[r], self.fake_to_real_centre[f], self.grid)[1])
            out["beta_recall"].append(support_curve(
                self.fake_to_fake_centre[f], self.real_to_fake_centre[r], self.grid)[1])
        return {k: np.asarray(v) for k, v in out.items()}


def _distances(x: torch.Tensor, centre: torch.Tensor) -> np.ndarray:
    return (x - centre).norm(dim=1).cpu().numpy()


@overload
def alpha_precision_beta_recall(
    real: ArrayLike, fake: ArrayLike, *, steps: int = 100, authenticity: bool = True,
    chunk_size: int | None = None, device: DeviceLike = None, details: Literal[False] = False,
) -> dict[str, float]: ...


@overload
def alpha_precision_beta_recall(
    real: ArrayLike, fake: ArrayLike, *, steps: int = 100, authenticity: bool = True,
    chunk_size: int | None = None, device: DeviceLike = None, details: Literal[True],
) -> tuple[dict[str, float], AlphaBetaDetails]: ...


def alpha_precision_beta_recall(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    steps: int = 100,
    authenticity: bool = True,
    chunk_size: int | None = None,
    device: DeviceLike = None,
    details: bool = False,
) -> dict[str, float] | tuple[dict[str, float], AlphaBetaDetails]:
    """Integrated α-precision, β-recall and authenticity of `fake` against the real
    *training* features `real` (authenticity asks whether samples copy the training set).

    Returns ``{"alpha_precision": IPα, "beta_recall": IRβ, "authenticity": A}`` (authenticity
    left out with ``authenticity=False``: it is the only O(N_real x (N_real + N_fake)) part).
    ``details=True`` returns ``(values, AlphaBetaDetails)`` with the curves, the per-sample
    authenticity verdicts and a bootstrap. Distances to the centres are computed in float64
    on `device`, authenticity's nearest neighbours in the input precision.
    """
    dev = resolve_device(real, device)
    x = as_tensor(real, device=dev, name="real").double()
    y = as_tensor(fake, device=dev, name="fake").double()
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dims differ: {x.shape[1]} vs {y.shape[1]}")
    if x.shape[0] < 2 or y.shape[0] < 1:
        raise ValueError(f"need at least 2 real and 1 synthetic samples, got {x.shape[0]} and {y.shape[0]}")
    grid = alpha_grid(steps)
    c_real, c_fake = x.mean(0), y.mean(0)
    rr, fr = _distances(x, c_real), _distances(y, c_real)
    ff, rf = _distances(y, c_fake), _distances(x, c_fake)
    p_curve, ip = support_curve(rr, fr, grid)
    r_curve, ir = support_curve(ff, rf, grid)
    values = {"alpha_precision": ip, "beta_recall": ir}
    authentic = None
    if authenticity:
        # on the inputs as given (their dtype), so the value equals the `authenticity` metric's
        res = _authenticity(real, fake, chunk_size=chunk_size, device=dev, per_sample=True)
        assert isinstance(res, tuple)  # per_sample=True: (share, verdicts)
        values["authenticity"], authentic = res
    if not details:
        return values
    return values, AlphaBetaDetails(grid, p_curve, r_curve, authentic, rr, fr, ff, rf)
