"""α-precision, β-recall and authenticity (Alaa et al., ICML 2022, "How Faithful is your
Synthetic Data? Sample-level Metrics for Evaluating and Auditing Generative Models").

What we compute, for real (training) features X and synthetic features Y:

* α-precision  P(α) = share of synthetic samples within r_α of the real mean, r_α the
  α-quantile (linear) of the real samples' distances to it; IPα = 1 - 2 mean|P(α) - α|
  over the ``steps`` midpoints α_i = (i + 1/2) / steps of (0, 1).
* β-recall, the reference codes' estimator (synthcity 0.2.12 ``AlphaPrecision.metrics``,
  ahmedmalaa/evaluating-generative-models ``metrics/evaluation.py::compute_alpha_precision``):
  for each real x_i, s(i) its nearest synthetic sample, d_i = |y_s(i) - mean(Y)| and the
  gate g_i = [|x_i - y_s(i)| <= |x_i - nearest other real|];
  R(β) = mean_i [g_i and d_i <= q_β], q_β the β-quantile (linear) of the d_i (one per real
  sample, so the quantile is over the real samples' nearest synthetic samples, with
  multiplicity, not over all of Y); IRβ = 1 - Σ|β - R(β)| / Σβ on β = linspace(0, 1, 30).
  The gate holds for about half of the real samples even for a fresh sample of the real
  distribution, so IRβ is about 0.5 for perfect data and 1 only for copies of X; a too-narrow
  Y can score higher (sd 0.5: 0.614 vs 0.494 fresh). It depends on the number of *distinct*
  synthetic samples (N(0, I_16), 1,000 real; 250 / 500 / 1,000 / 2,000 fresh synthetic:
  0.21 / 0.34 / 0.47 / 0.66 on another draw; 1,000 draws from a pool of 400: 0.28); the
  reference codes require equal sizes. Compare it with the held-out real data's value at the same sizes.
  Nearest neighbours are searched in row chunks (memory O(N x chunk)), the chosen pairs'
  distances recomputed directly; float64 on `device`.
* ``beta_recall_ball`` (diagnostic): the previous ball estimate, the share of real samples
  within the β-quantile of Y's distances to mean(Y), integrated like IPα; 0.99 for the
  fresh data below, blind to anything that keeps the distance-to-centre distribution.
* authenticity: :func:`~.authenticity.authenticity`, the paper's per-sample rule: synthetic j
  with nearest real i is authentic iff d(j, i) > d(i, nearest other real of i). The
  reference codes compute ``real_to_real[real_to_synth_args] < real_to_synth`` (per real
  sample, the real-to-real radius looked up with a synthetic index).

Measured on N(0, I_16), 1,000 real and 1,000 synthetic samples (numpy default_rng(0), the
cases of tests/test_alpha_beta.py), ours / synthcity 0.2.12 / authors' repo:

* β-recall: fresh 0.494 / 0.494 / 0.477; sd 0.5 0.614 / 0.614 / 0.601; half the space
  dropped (x_0 folded to > 0) 0.454 / 0.454 / 0.435; exact copies 0.999 / 0.999 / 0.999;
  10-mode mixture, 5 modes dropped 0.207 / 0.207 / 0.180. The curve is synthcity's to the
  last digit; the authors' repo integrates 1 - 2 Σ|β - R(β)| / 29 = 1 - (30/29)(1 - IRβ)
  (in float32).
* authenticity: fresh 0.683 / 0.513 / 0.513; sd 0.5 0.310 / 0.452 / 0.452; copies 0 / 0 / 0.
* both reference codes run in a learned one-class embedding (Deep SVDD; synthcity also on
  min-max-scaled inputs, its ``_naive`` values) and centre the α-supports on that
  network's centre; we use the suite's feature space and the real mean. IPα uses the
  midpoints of (0, 1) (``steps``, default 100) instead of linspace(0, 1, 30).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, overload

import numpy as np
import torch

from ._knn import default_chunk_size, nearest_neighbour, pairwise_sq_dists, sq_norms
from ._stats import ArrayLike, DeviceLike, as_tensor, resolve_device
from .authenticity import authenticity as _authenticity

__all__ = ["AlphaBetaDetails", "BETA_GRID", "alpha_precision_beta_recall", "alpha_grid",
           "beta_recall_curve", "support_curve"]

# the reference codes' β grid: np.linspace(0, 1, n_steps) with n_steps = 30
BETA_GRID = np.linspace(0.0, 1.0, 30)


def alpha_grid(steps: int) -> np.ndarray:
    """The midpoints α_i = (i + 1/2) / steps, i = 0..steps-1, of (0, 1)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return (np.arange(steps) + 0.5) / steps


def _integrated(curve: np.ndarray, grid: np.ndarray) -> float:
    """1 - Σ|curve - grid| / Σ grid (= 1 - 2 mean|curve - grid| on a grid symmetric about 1/2)."""
    return float(1.0 - np.abs(curve - grid).sum() / grid.sum())


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
    return curve, _integrated(curve, grid)


def beta_recall_curve(gate: np.ndarray, dist: np.ndarray, grid: np.ndarray = BETA_GRID
                      ) -> tuple[np.ndarray, float]:
    """The reference codes' R(β) on `grid` and IRβ = 1 - Σ|β - R(β)| / Σβ.

    Per real sample i: `gate` g_i (its nearest synthetic sample is at most as far as its
    nearest other real sample) and `dist` d_i (that synthetic sample's distance to the
    synthetic mean). R(β) = mean_i [g_i and d_i <= β-quantile of d]."""
    gate, dist = np.asarray(gate, dtype=bool), np.asarray(dist, dtype=np.float64)
    if dist.size == 0 or gate.shape != dist.shape:
        raise ValueError("gate and dist must be non-empty and of the same shape")
    radii = np.quantile(dist, grid)
    curve = np.searchsorted(np.sort(dist[gate]), radii, side="right") / dist.size
    return curve, _integrated(curve, grid)


@dataclass
class AlphaBetaDetails:
    """The curves behind the integrated scores, and what a bootstrap needs.

    ``grid``: the α values of ``alpha_precision`` (P(α)) and of ``beta_recall`` (R(β) on the
    same points, for plots; IRβ itself is integrated on ``beta_grid``); ``authentic``: the
    per-synthetic-sample verdicts (None when not computed). The per-sample arrays make
    :meth:`bootstrap` cheap: it resamples them instead of the features."""

    grid: np.ndarray
    alpha_precision: np.ndarray
    beta_recall: np.ndarray
    authentic: np.ndarray | None = None
    real_to_real_centre: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    fake_to_real_centre: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    real_gate: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool), repr=False)
    real_nn_to_fake_centre: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    beta_grid: np.ndarray = field(default_factory=lambda: BETA_GRID.copy(), repr=False)

    def bootstrap(self, n: int, seed: int = 0) -> dict[str, np.ndarray]:
        """IPα and IRβ over `n` bootstrap resamples. IPα: real and synthetic distances to the
        real mean drawn with replacement, the centre fixed. IRβ: the real samples' (gate,
        distance) pairs drawn with replacement, the synthetic sample, its mean and the
        nearest-neighbour relations fixed. O(n * (N_real + N_fake) log N) on the CPU."""
        rng = np.random.default_rng(seed)
        n_r, n_f = self.real_to_real_centre.size, self.fake_to_real_centre.size
        out: dict[str, list[float]] = {"alpha_precision": [], "beta_recall": []}
        for _ in range(n):
            r, f = rng.integers(0, n_r, n_r), rng.integers(0, n_f, n_f)
            out["alpha_precision"].append(support_curve(
                self.real_to_real_centre[r], self.fake_to_real_centre[f], self.grid)[1])
            out["beta_recall"].append(beta_recall_curve(
                self.real_gate[r], self.real_nn_to_fake_centre[r], self.beta_grid)[1])
        return {k: np.asarray(v) for k, v in out.items()}


def _distances(x: torch.Tensor, centre: torch.Tensor) -> np.ndarray:
    return (x - centre).norm(dim=1).cpu().numpy()


def _nearest_other(x: torch.Tensor, chunk_size: int | None) -> torch.Tensor:
    """Index of each row's nearest *other* row of x (itself excluded by index)."""
    n = x.shape[0]
    chunk = chunk_size or default_chunk_size(n, x.dtype)
    x_sq = sq_norms(x)
    out = torch.empty(n, dtype=torch.long, device=x.device)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        d = pairwise_sq_dists(x[start:stop], x, x_sq[start:stop], x_sq)
        rows = torch.arange(stop - start, device=x.device)
        d[rows, rows + start] = float("inf")
        out[start:stop] = d.argmin(dim=1)
    return out


def _beta_recall_inputs(x: torch.Tensor, y: torch.Tensor, chunk_size: int | None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per real sample: the gate and its nearest synthetic sample's distance to mean(Y).
    Neighbours are found chunked; the chosen pairs' distances are recomputed directly, so
    an exact copy is at distance 0."""
    _, nn_fake = nearest_neighbour(x, y, chunk_size or default_chunk_size(y.shape[0], x.dtype))
    nn_real = _nearest_other(x, chunk_size)
    to_fake = (x - y[nn_fake]).norm(dim=1)
    to_real = (x - x[nn_real]).norm(dim=1)
    gate = (to_fake <= to_real).cpu().numpy()
    return gate, _distances(y[nn_fake], y.mean(0))


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

    Returns ``{"alpha_precision": IPα, "beta_recall": IRβ, "beta_recall_ball": ...,
    "authenticity": A}`` (authenticity left out with ``authenticity=False``). β-recall and
    authenticity are O(N_real x (N_real + N_fake)) nearest-neighbour searches. ``details=True``
    returns ``(values, AlphaBetaDetails)`` with the curves, the per-sample authenticity
    verdicts and a bootstrap. α/β distances in float64 on `device`; authenticity in the
    input precision (so it equals the `authenticity` function's value).
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
    p_curve, ip = support_curve(rr, fr, grid)
    gate, nn_d = _beta_recall_inputs(x, y, chunk_size)
    _, ir = beta_recall_curve(gate, nn_d, BETA_GRID)
    r_curve, _ = beta_recall_curve(gate, nn_d, grid)
    _, ir_ball = support_curve(_distances(y, c_fake), _distances(x, c_fake), grid)
    values = {"alpha_precision": ip, "beta_recall": ir, "beta_recall_ball": ir_ball}
    authentic = None
    if authenticity:
        # on the inputs as given (their dtype), so the value equals the `authenticity` metric's
        res = _authenticity(real, fake, chunk_size=chunk_size, device=dev, per_sample=True)
        assert isinstance(res, tuple)  # per_sample=True: (share, verdicts)
        values["authenticity"], authentic = res
    if not details:
        return values
    return values, AlphaBetaDetails(grid, p_curve, r_curve, authentic, rr, fr, gate, nn_d)
