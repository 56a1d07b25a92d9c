"""Kernel Inception Distance (Bińkowski et al., 2018).

Unbiased estimate of the squared MMD with the polynomial kernel
k(x, y) = (gamma x.y + coef0)^degree (gamma defaults to 1/d), averaged over
random subsets:

    MMD^2 = sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1))
            - 2 sum_{i,j} k(x_i,y_j)/m^2

Subsets are drawn exactly as torch-fidelity does (one
``numpy.random.RandomState(seed)``; per subset first ``choice(n_real, m,
replace=False)`` then ``choice(n_fake, m, replace=False)``), so with the same
seed the two give the same numbers; clean-fid and StyleGAN2-ADA draw
unseeded. The estimator is unbiased, so values slightly below 0 are valid
and mean "indistinguishable".
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ._stats import ArrayLike, DeviceLike, as_tensor, resolve_device

__all__ = ["kid", "mmd2_polynomial"]


def _poly_kernel(
    x: torch.Tensor, y: torch.Tensor, degree: int, gamma: float, coef0: float
) -> torch.Tensor:
    k = x @ y.T
    k.mul_(gamma).add_(coef0)
    return k.pow_(degree)


def mmd2_polynomial(
    x: torch.Tensor,
    y: torch.Tensor,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> float:
    """Unbiased MMD^2 between two equally sized (m, d) samples, polynomial kernel.

    Kernel sums are accumulated in float64 whatever the input dtype.
    """
    m = x.shape[0]
    if y.shape[0] != m:
        raise ValueError("unbiased MMD^2 here needs equally sized samples")
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    f64 = torch.float64
    kxx = _poly_kernel(x, x, degree, gamma, coef0)
    sxx = kxx.sum(dtype=f64) - kxx.diagonal().sum(dtype=f64)
    del kxx
    kyy = _poly_kernel(y, y, degree, gamma, coef0)
    syy = kyy.sum(dtype=f64) - kyy.diagonal().sum(dtype=f64)
    del kyy
    sxy = _poly_kernel(x, y, degree, gamma, coef0).sum(dtype=f64)
    return float((sxx + syy) / (m * (m - 1)) - 2.0 * sxy / (m * m))


def kid(
    real: ArrayLike,
    fake: ArrayLike,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
    *,
    device: DeviceLike = None,
) -> dict[str, float]:
    """KID between (N, d) feature arrays: ``{"kid_mean", "kid_std"}``.

    ``kid_std`` is the population std (ddof=0) over subsets, as in
    torch-fidelity and the original code. If ``subset_size`` exceeds either
    sample count it is clamped to the smaller count with a warning (subsets
    are then permutations of the smaller set, so subsets no longer vary on
    that side). The kernel matrices are computed in the input precision
    (float32 or float64) with float64 sums; pass float64 features to compare
    with another implementation at tight tolerances.
    """
    dev = resolve_device(real, device)
    x = as_tensor(real, device=dev, name="real")
    y = as_tensor(fake, device=dev, name="fake")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dims differ: {x.shape[1]} vs {y.shape[1]}")
    n_x, n_y = x.shape[0], y.shape[0]
    m = subset_size
    if m > min(n_x, n_y):
        m = min(n_x, n_y)
        warnings.warn(
            f"KID subset_size={subset_size} exceeds the sample count "
            f"(real {n_x}, fake {n_y}); clamped to {m}.",
            RuntimeWarning,
            stacklevel=2,
        )
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.RandomState(seed)
    mmds = np.empty(num_subsets, dtype=np.float64)
    for i in range(num_subsets):
        ix = torch.from_numpy(rng.choice(n_x, m, replace=False)).to(dev)
        iy = torch.from_numpy(rng.choice(n_y, m, replace=False)).to(dev)
        mmds[i] = mmd2_polynomial(x[ix], y[iy], degree, gamma, coef0)
    return {"kid_mean": float(mmds.mean()), "kid_std": float(mmds.std())}
