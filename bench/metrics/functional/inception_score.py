"""Inception Score (Salimans et al., 2016).

IS = exp( E_x KL( p(y|x) || p(y) ) ), computed per split with p(y) the mean
of p(y|x) over that split; returns the mean and population std (ddof=0) over
splits, as the original code and torch-fidelity do.

Inputs are classifier *logits* by default (log-softmax is then exact and
avoids log(0) for confident predictions); pass ``inputs="probs"`` for
probabilities. Everything is computed in float64. Splits are contiguous
slices ``[i*N//splits, (i+1)*N//splits)``; torch-fidelity shuffles the
samples first (seed 2020) - pass ``shuffle=True, seed=2020`` to reproduce
its numbers exactly.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ._stats import ArrayLike, DeviceLike, as_tensor

__all__ = ["inception_score"]


def inception_score(
    logits_or_probs: ArrayLike,
    splits: int = 10,
    *,
    inputs: Literal["logits", "probs"] = "logits",
    shuffle: bool = False,
    seed: int = 0,
    device: DeviceLike = None,
) -> dict[str, float]:
    """Inception Score of (N, num_classes) logits or probabilities.

    Returns ``{"is_mean", "is_std"}``. ``shuffle`` permutes the rows with
    ``numpy.random.RandomState(seed)`` before splitting, which matters when
    samples are ordered (e.g. generated class by class).
    """
    z = as_tensor(logits_or_probs, device=device, name="logits_or_probs")
    n = z.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be in [1, {n}], got {splits}")
    if shuffle:
        perm = torch.from_numpy(np.random.RandomState(seed).permutation(n)).to(z.device)
        z = z[perm]
    z = z.double()
    # Per split: mean_i KL(p_i || q) = mean_i sum_c p_ic log p_ic - sum_c q_c log q_c,
    # because mean_i p_ic = q_c; 0 log 0 is taken as 0 (xlogy / underflowed classes).
    if inputs == "logits":
        log_p = torch.log_softmax(z, dim=1)
        p = log_p.exp()
        neg_entropy = (p * log_p).sum(dim=1)
    elif inputs == "probs":
        if (z < 0).any():
            raise ValueError("probabilities must be non-negative")
        p = z / z.sum(dim=1, keepdim=True)
        neg_entropy = torch.xlogy(p, p).sum(dim=1)
    else:
        raise ValueError(f"inputs must be 'logits' or 'probs', got {inputs!r}")
    scores = []
    for i in range(splits):
        sl = slice(i * n // splits, (i + 1) * n // splits)
        q = p[sl].mean(dim=0)
        kl = neg_entropy[sl].mean() - torch.xlogy(q, q).sum()
        scores.append(float(kl.exp()))
    arr = np.asarray(scores)
    return {"is_mean": float(arr.mean()), "is_std": float(arr.std())}
