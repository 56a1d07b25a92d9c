"""Precision/recall (Kynkäänniemi et al., 2019) and density/coverage
(Naeem et al., 2020) from k-NN balls in feature space.

Let r_i be the distance from real sample i to its k-th nearest other real
sample and s_j likewise for fake j. Then

* precision = fraction of fakes inside at least one real ball
  (fakes outside the real support lower it);
* recall    = fraction of reals inside at least one fake ball
  (fakes covering only part of the real support lower it);
* density   = mean over fakes of (number of real balls containing it) / k;
* coverage  = fraction of reals whose ball contains at least one fake.

Ball membership uses ``d <= r`` like torch-fidelity and StyleGAN2-ADA; the
``prdc`` package uses a strict ``<``, which gives coverage 0 for identical
real and fake sets (its issue #7). On tie-free data both agree.

One chunked pass over fake rows computes all four from the same distance
blocks, so memory is O(chunk x N_real), never N x N.
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
import torch

from ._knn import default_chunk_size, knn_sq_radii, pairwise_sq_dists, sq_norms
from ._stats import ArrayLike, DeviceLike, as_tensor, resolve_device

__all__ = ["density_coverage", "precision_recall", "prdc"]


def _prepare(
    real: ArrayLike, fake: ArrayLike, device: DeviceLike
) -> tuple[torch.Tensor, torch.Tensor]:
    dev = resolve_device(real, device)
    x = as_tensor(real, device=dev, name="real")
    y = as_tensor(fake, device=dev, name="fake")
    dtype = torch.promote_types(x.dtype, y.dtype)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dims differ: {x.shape[1]} vs {y.shape[1]}")
    return x.to(dtype), y.to(dtype)


def _prdc(
    x: torch.Tensor,
    y: torch.Tensor,
    k: int,
    chunk_size: int | None,
    need_fake_radii: bool,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The values and, per value, the per-sample quantities they are the means of (numpy,
    on the CPU): over fakes for precision (in a real ball) and density (real balls
    containing it / k), over reals for coverage and recall."""
    n_x, n_y = x.shape[0], y.shape[0]
    r_real = knn_sq_radii(x, k, chunk_size)
    r_fake = knn_sq_radii(y, k, chunk_size) if need_fake_radii else None
    chunk = chunk_size or default_chunk_size(n_x, x.dtype)
    x_sq = sq_norms(x)
    in_real_ball = torch.zeros(n_y, dtype=torch.bool, device=x.device)
    ball_counts = torch.zeros(n_y, dtype=torch.long, device=x.device)
    min_to_fake = torch.full((n_x,), float("inf"), dtype=x.dtype, device=x.device)
    real_in_fake_ball = torch.zeros(n_x, dtype=torch.bool, device=x.device)
    for start in range(0, n_y, chunk):
        stop = min(n_y, start + chunk)
        d = pairwise_sq_dists(y[start:stop], x, None, x_sq)  # (chunk fakes, reals)
        inside = d <= r_real.unsqueeze(0)
        in_real_ball[start:stop] = inside.any(dim=1)
        ball_counts[start:stop] = inside.sum(dim=1)
        del inside
        torch.minimum(min_to_fake, d.min(dim=0).values, out=min_to_fake)
        if r_fake is not None:
            real_in_fake_ball |= (d <= r_fake[start:stop].unsqueeze(1)).any(dim=0)
    out = {
        "precision": float(in_real_ball.double().mean()),
        "density": float(ball_counts.double().sum() / (k * n_y)),
        "coverage": float((min_to_fake <= r_real).double().mean()),
    }
    samples = {
        "precision": in_real_ball.cpu().numpy(),
        "density": ball_counts.double().div(k).cpu().numpy(),
        "coverage": (min_to_fake <= r_real).cpu().numpy(),
    }
    if r_fake is not None:
        out["recall"] = float(real_in_fake_ball.double().mean())
        samples["recall"] = real_in_fake_ball.cpu().numpy()
    return out, samples


@overload
def prdc(real: ArrayLike, fake: ArrayLike, k: int = 5, *, chunk_size: int | None = None,
         device: DeviceLike = None, per_sample: Literal[False] = False) -> dict[str, float]: ...


@overload
def prdc(real: ArrayLike, fake: ArrayLike, k: int = 5, *, chunk_size: int | None = None,
         device: DeviceLike = None, per_sample: Literal[True],
         ) -> tuple[dict[str, float], dict[str, np.ndarray]]: ...


def prdc(
    real: ArrayLike,
    fake: ArrayLike,
    k: int = 5,
    *,
    chunk_size: int | None = None,
    device: DeviceLike = None,
    per_sample: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """All four of precision, recall, density, coverage with one k.

    ``k=5`` follows Naeem et al.; Kynkäänniemi et al. use k=3 for
    precision/recall (see :func:`precision_recall`). Distances are computed
    in the input precision (float32/float64).

    ``per_sample=True`` returns ``(values, samples)``: ``samples[name]`` holds
    the per-sample quantities (numpy) whose mean is ``values[name]``, e.g. for
    a confidence interval (fakes for precision/density, reals for recall/coverage).
    """
    x, y = _prepare(real, fake, device)
    out, samples = _prdc(x, y, k, chunk_size, need_fake_radii=True)
    names = ("precision", "recall", "density", "coverage")
    values = {key: out[key] for key in names}
    return (values, {key: samples[key] for key in names}) if per_sample else values


@overload
def precision_recall(
    real: ArrayLike, fake: ArrayLike, k: int = ..., *, chunk_size: int | None = ...,
    device: DeviceLike = ..., per_sample: Literal[False] = ...,
) -> dict[str, float]: ...


@overload
def precision_recall(
    real: ArrayLike, fake: ArrayLike, k: int = ..., *, chunk_size: int | None = ...,
    device: DeviceLike = ..., per_sample: Literal[True],
) -> tuple[dict[str, float], dict[str, np.ndarray]]: ...


def precision_recall(
    real: ArrayLike,
    fake: ArrayLike,
    k: int = 3,
    *,
    chunk_size: int | None = None,
    device: DeviceLike = None,
    per_sample: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """Improved precision and recall (Kynkäänniemi et al., 2019), k=3 by default.

    ``per_sample=True`` returns ``(values, samples)`` as :func:`prdc` does."""
    out, samples = prdc(real, fake, k, chunk_size=chunk_size, device=device, per_sample=True)
    names = ("precision", "recall")
    values = {key: out[key] for key in names}
    return (values, {key: samples[key] for key in names}) if per_sample else values


@overload
def density_coverage(
    real: ArrayLike, fake: ArrayLike, k: int = ..., *, chunk_size: int | None = ...,
    device: DeviceLike = ..., per_sample: Literal[False] = ...,
) -> dict[str, float]: ...


@overload
def density_coverage(
    real: ArrayLike, fake: ArrayLike, k: int = ..., *, chunk_size: int | None = ...,
    device: DeviceLike = ..., per_sample: Literal[True],
) -> tuple[dict[str, float], dict[str, np.ndarray]]: ...


def density_coverage(
    real: ArrayLike,
    fake: ArrayLike,
    k: int = 5,
    *,
    chunk_size: int | None = None,
    device: DeviceLike = None,
    per_sample: bool = False,
) -> dict[str, float] | tuple[dict[str, float], dict[str, np.ndarray]]:
    """Density and coverage (Naeem et al., 2020), k=5 by default.

    Skips the fake-side k-NN radii (only recall needs them), so it costs
    about two thirds of :func:`prdc`. ``per_sample=True`` returns
    ``(values, samples)`` as :func:`prdc` does.
    """
    x, y = _prepare(real, fake, device)
    out, samples = _prdc(x, y, k, chunk_size, need_fake_radii=False)
    names = ("density", "coverage")
    values = {key: out[key] for key in names}
    return (values, {key: samples[key] for key in names}) if per_sample else values
