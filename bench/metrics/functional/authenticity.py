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

from typing import Literal, overload

import numpy as np
import torch

from ._knn import knn_sq_radii, nearest_neighbour
from ._stats import ArrayLike, DeviceLike, as_tensor, resolve_device

__all__ = ["authenticity"]


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
    dev = resolve_device(real_train, device)
    x = as_tensor(real_train, device=dev, name="real_train")
    y = as_tensor(fake, device=dev, name="fake")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dims differ: {x.shape[1]} vs {y.shape[1]}")
    r_sq = knn_sq_radii(x, 1, chunk_size)  # nearest other training sample
    d_sq, idx = nearest_neighbour(y, x, chunk_size)
    authentic = d_sq > r_sq[idx]
    value = float(authentic.double().mean())
    return (value, authentic.cpu().numpy()) if per_sample else value
