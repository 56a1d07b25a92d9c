"""Near-copies of the training data: a memorisation check calibrated on the training set
itself, so it needs no held-out split and runs on any board that has training features.

How close is "a copy"? As close as a training image is to its nearest *other* training
image at a low quantile q (default 5%): the radius tau. A generated sample whose nearest
training image lies within tau is a near-copy. A fresh sample of the training distribution
falls within tau of the training set about as often as a training image falls within tau of
the others (rate q); a generator that replays training images, with or without small noise,
falls within it far more often.

The test compares like with like at the same radius: tau is the q-quantile of the
nearest-other-training distances of one random half of a calibration subset (S1); the other
half (S2) gives the rate at which real training images fall within tau of the rest; the
generated samples give theirs; Fisher's exact test (one-sided, scipy.stats.fisher_exact)
asks whether the generated rate is higher. Comparing with S2 rather than with q itself
carries the noise of estimating tau into the test, which a binomial test against q would
ignore (its false alarms grow with that noise). The p-value is what a board's gate reads
(bench.report.gates: Bonferroni over the board's models).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._knn import nearest_neighbour, pairwise_sq_dists, sq_norms
from ._stats import ArrayLike, DeviceLike, as_tensor, resolve_device

__all__ = ["NearCopies", "near_copies", "near_copies_many"]


@dataclass(frozen=True)
class NearCopies:
    share: float  # generated samples within tau of a training sample
    expected: float  # the same share for held-back training samples (S2): the null rate
    p_value: float  # one-sided Fisher exact: generated share > training share
    copies: int
    n: int  # generated samples tested
    calibration: int  # training samples in S2
    radius: float  # tau (a distance, not squared)


def _nearest_other(x: torch.Tensor, rows: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Squared distance from x[rows] to its nearest other row of x (self excluded by index)."""
    x_sq = sq_norms(x)
    out = torch.empty(len(rows), dtype=x.dtype, device=x.device)
    for s in range(0, len(rows), chunk):
        r = rows[s:s + chunk]
        d = pairwise_sq_dists(x[r], x, x_sq[r], x_sq)
        d[torch.arange(len(r), device=x.device), r] = float("inf")
        out[s:s + len(r)] = d.min(dim=1).values
    return out


def near_copies(train: ArrayLike, fake: ArrayLike, *, quantile: float = 0.05,
                calibration: int = 2000, max_fake: int = 5000, seed: int = 0,
                device: DeviceLike = None) -> NearCopies:
    """Share of generated samples nearer a training sample than the `quantile` of training
    samples' nearest-other distances, against the same share for held-back training samples
    (see the module docstring). `calibration` training samples (at most) are split into the
    two halves; the first `max_fake` generated samples are tested (cost: O((calibration +
    max_fake) x len(train)) distances)."""
    return near_copies_many(train, [fake], quantile=quantile, calibration=calibration,
                            max_fake=max_fake, seed=seed, device=device)[0]


def near_copies_many(train: ArrayLike, fakes: Sequence[ArrayLike], *, quantile: float = 0.05,
                     calibration: int = 2000, max_fake: int = 5000, seed: int = 0,
                     device: DeviceLike = None) -> list[NearCopies]:
    """`near_copies` of several generated sets against one training set: the radius tau and
    the training side's count (S1, S2) depend only on the training set and the seed, so they
    are computed once (the same results as one call per set when the sets share a dtype;
    otherwise all inputs are promoted to one)."""
    if not 0 < quantile < 0.5:
        raise ValueError(f"quantile must be in (0, 0.5), got {quantile}")
    dev = resolve_device(train, device)
    t = as_tensor(train, device=dev, name="train")
    fs = [as_tensor(f, device=dev, name="fake") for f in fakes]
    dtype = t.dtype
    for f in fs:
        dtype = torch.promote_types(dtype, f.dtype)
    t, fs = t.to(dtype), [f[:max_fake].to(dtype) for f in fs]
    for f in fs:
        if t.shape[1] != f.shape[1]:
            raise ValueError(f"feature dims differ: {t.shape[1]} vs {f.shape[1]}")
    n = t.shape[0]
    if n < 4:
        return [NearCopies(math.nan, math.nan, math.nan, 0, len(f), 0, math.nan) for f in fs]
    pick = np.random.default_rng([seed, 7193]).permutation(n)[: min(calibration, n)]
    half = len(pick) // 2
    s1 = torch.as_tensor(pick[:half], device=dev)
    s2 = torch.as_tensor(pick[half:], device=dev)
    r1 = _nearest_other(t, s1)
    tau_sq = torch.quantile(r1.double(), quantile).item()
    r2 = _nearest_other(t, s2)
    k_real, c = int((r2 <= tau_sq).sum()), len(s2)
    from scipy.stats import fisher_exact

    out = []
    for f in fs:
        if len(f) == 0:
            out.append(NearCopies(math.nan, math.nan, math.nan, 0, 0, 0, math.nan))
            continue
        d_sq, _ = nearest_neighbour(f, t)
        # ties at exactly tau (duplicated images) count as within: `<=` on both sides alike
        k_fake, m = int((d_sq <= tau_sq).sum()), len(f)
        p = float(fisher_exact(np.array([[k_fake, m - k_fake], [k_real, c - k_real]]),
                               alternative="greater").pvalue)
        out.append(NearCopies(k_fake / m, k_real / c, p, k_fake, m, c,
                              math.sqrt(max(tau_sq, 0.0))))
    return out
