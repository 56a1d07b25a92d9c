"""Authenticity (Alaa et al., 2022, "How faithful is your synthetic data?").

For each synthetic sample j, let i be its nearest training sample and r_i the
distance from i to its nearest *other* training sample. j is authentic iff

    d(j, i) > r_i,

i.e. j is farther from its closest training point than that point's own
neighbourhood scale; a copy or near-copy of a training sample is not. The
score is the authentic fraction over synthetic samples (1 = nothing looks
copied).

This is the rule as stated in the paper. The reference code on its main
branch (and synthcity, which inherited it) compares real-to-synthetic
distances against ``real_to_real[nearest_synthetic_index]``, i.e. indexes
real-to-real distances with a *synthetic* index; we do not reproduce that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import torch

from ._knn import knn_sq_radii, nearest_neighbour
from ._stats import ArrayLike, DeviceLike, as_tensor, resolve_device

__all__ = ["authenticity", "authenticity_many"]


@overload
def authenticity(
    real_train: ArrayLike, fake: ArrayLike, *, chunk_size: int | None = ...,
    device: DeviceLike = ..., per_sample: Literal[False] = ...,
) -> float: ...


@overload
def authenticity(
    real_train: ArrayLike, fake: ArrayLike, *, chunk_size: int | None = ...,
    device: DeviceLike = ..., per_sample: Literal[True],
) -> tuple[float, np.ndarray]: ...


def authenticity(
    real_train: ArrayLike,
    fake: ArrayLike,
    *,
    chunk_size: int | None = None,
    device: DeviceLike = None,
    per_sample: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Fraction of synthetic samples judged authentic (not copies).

    For independent samples from the training distribution the fraction is
    typically around or above 0.5; exact copies of training samples score 0.
    ``per_sample=True`` returns ``(fraction, authentic)`` with the boolean
    verdict of each synthetic sample (numpy), e.g. for a confidence interval.
    """
    authentic = authenticity_many(real_train, [fake], chunk_size=chunk_size, device=device)[0]
    value = float(authentic.mean(dtype=np.float64)) if len(authentic) else float("nan")
    return (value, authentic) if per_sample else value


def authenticity_many(real_train: ArrayLike, fakes: Sequence[ArrayLike], *,
                      chunk_size: int | None = None, device: DeviceLike = None
                      ) -> list[np.ndarray]:
    """Each synthetic set's per-sample verdicts (boolean numpy, True = authentic) against one
    training set, whose nearest-other radii are computed once for all sets (the same
    verdicts as one `authenticity(..., per_sample=True)` call per set when the sets share a
    dtype; otherwise all inputs are promoted to one)."""
    dev = resolve_device(real_train, device)
    x = as_tensor(real_train, device=dev, name="real_train")
    ys = [as_tensor(f, device=dev, name="fake") for f in fakes]
    dtype = x.dtype
    for y in ys:
        dtype = torch.promote_types(dtype, y.dtype)
    x = x.to(dtype)
    for y in ys:
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"feature dims differ: {x.shape[1]} vs {y.shape[1]}")
    r_sq = knn_sq_radii(x, 1, chunk_size)  # nearest other training sample
    out = []
    for y in ys:
        d_sq, idx = nearest_neighbour(y.to(dtype), x, chunk_size)
        out.append((d_sq > r_sq[idx]).cpu().numpy())
    return out
