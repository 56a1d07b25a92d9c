"""Fréchet distance between Gaussians fitted to features (FID when the
features come from Inception-v3 pool3).

    FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)

``tr sqrt(S1 S2)`` is computed from a *symmetric* eigenvalue problem rather
than ``scipy.linalg.sqrtm`` (pytorch-fid, clean-fid) or a non-symmetric
``eigvals`` (torch-fidelity): for any factor F with F F^T = S1, the matrix
S1 S2 is similar to the symmetric PSD matrix F^T S2 F, so its eigenvalues are
real and non-negative in exact arithmetic. We take
``eigvalsh(F^T S2 F)``, clamp round-off negatives to 0 and sum square roots:
no imaginary parts, and it works for rank-deficient covariances.

The factor F of the real covariance is computed once:

* F = sqrt(S1) from ``eigh(S1)`` with negative eigenvalues clamped (the
  general route, used when S1 is singular and only (mu, sigma) are given), or
* F = Cholesky factor of S1 when S1 is numerically positive definite
  (``factor="auto"``, the default): the eigenvalues are the same, and
  Cholesky is ~100x cheaper than a full eigendecomposition with vectors
  (0.2 s vs ~25 s for d = 2048 on 2 CPU cores).

:class:`FrechetReference` caches F for the real statistics, so scoring many
generators (or checkpoints) against one dataset costs the generated side's
covariance, the product F^T S2 F and one ``eigvalsh`` each. Everything is
float64. On the CPU with a Cholesky factor the product is LAPACK's ``dsygst``
(itype 3: L^T A L for symmetric A and triangular L, d^3 flops instead of the
4 d^3 of two general products), and ``eigvalsh`` reads only the triangle it
fills; the values are pytorch-fid's (scipy ``sqrtm``) to about 1e-9 relative.
From N <= d real rows (:meth:`FrechetReference.from_features`) no factor is
made: the real side's centred rows stand for it (an N x N problem per model).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scipy.linalg import lapack

from ._stats import (
    ArrayLike,
    DeviceLike,
    FeatureStats,
    as_tensor,
    resolve_device,
    warn_rank_deficient,
)

__all__ = ["FrechetReference", "fid_from_features", "frechet_distance"]


def _sym(m: torch.Tensor) -> torch.Tensor:
    return (m + m.T) * 0.5


class FrechetReference:
    """Real-side Gaussian (mu, sigma) with a factor F F^T = sigma precomputed.

    ``factor="auto"`` uses Cholesky when sigma is positive definite and
    sqrt(sigma) via ``eigh`` otherwise; ``factor="eigh"`` always uses eigh.
    Built by :meth:`from_features` from N <= d rows (sigma singular), it keeps
    the centred rows A instead (sigma = A^T A / (N - 1)) and factors nothing:
    the nonzero eigenvalues of S1 S2 are those of A S2 A^T / (N - 1), an N x N
    problem (and with N2 <= d generated rows B, of C C^T for C = B A^T, i.e.
    tr sqrt(S1 S2) is the nuclear norm of B A^T / sqrt((N - 1)(N2 - 1))).

    Build once per dataset (``FrechetReference(mu, sigma)``,
    ``.from_stats(stats)`` or ``.from_features(real)``), then call
    :meth:`distance` or :meth:`distance_to_features` for each fake set.
    """

    def __init__(
        self,
        mu: ArrayLike,
        sigma: ArrayLike,
        *,
        factor: Literal["auto", "eigh"] = "auto",
        device: DeviceLike = None,
    ) -> None:
        self._setup(mu, sigma, factor, device, None)

    def _setup(self, mu: ArrayLike, sigma: ArrayLike, factor: str, device: DeviceLike,
               rows: torch.Tensor | None) -> None:
        dev = resolve_device(mu, device)
        self.mu = as_tensor(mu, device=dev, dtype=torch.float64, ndim=1, name="mu")
        self.sigma = _sym(as_tensor(sigma, device=dev, dtype=torch.float64, name="sigma"))
        d = self.mu.shape[0]
        if self.sigma.shape != (d, d):
            raise ValueError(f"sigma must be ({d}, {d}), got {tuple(self.sigma.shape)}")
        if factor not in ("auto", "eigh"):
            raise ValueError(f"factor must be 'auto' or 'eigh', got {factor!r}")
        # the centred real rows when they are fewer than the dimensions (see the class)
        self._rows = rows
        self._factor: torch.Tensor | None = None  # sqrt(sigma) by eigh: made on first use
        # the CPU fast path's operand: the Cholesky factor in the column order LAPACK reads
        self._lower_f: np.ndarray | None = None
        if factor == "auto" and rows is None:  # N <= d rows: singular, no Cholesky to try
            chol, info = torch.linalg.cholesky_ex(self.sigma)
            if int(info) == 0 and bool(torch.isfinite(chol).all()):
                self._factor = chol
                if chol.device.type == "cpu":
                    self._lower_f = np.asfortranarray(chol.numpy())
        self.trace = float(torch.trace(self.sigma))

    @property
    def factor(self) -> torch.Tensor:
        """F with F F^T = sigma: the Cholesky factor, or sqrt(sigma) from ``eigh`` (several
        seconds at d = 2,048 on a CPU), computed when a distance first needs it."""
        if self._factor is None:
            evals, evecs = torch.linalg.eigh(self.sigma)
            self._factor = _sym((evecs * evals.clamp_min(0).sqrt()) @ evecs.T)
        return self._factor

    @property
    def device(self) -> torch.device:
        return self.mu.device

    @classmethod
    def from_stats(cls, stats: FeatureStats, *, device: DeviceLike = None) -> FrechetReference:
        return cls(stats.mean, stats.cov, device=device)

    @classmethod
    def from_features(
        cls, features: ArrayLike, *, batch_size: int | None = None, device: DeviceLike = None
    ) -> FrechetReference:
        stats = FeatureStats.from_features(features, batch_size=batch_size, device=device)
        n = len(features)
        if not 2 <= n <= (stats.dim or 0):
            return cls.from_stats(stats)
        ref = cls.__new__(cls)
        x = as_tensor(features, device=stats.mean.device, dtype=torch.float64, name="features")
        ref._setup(stats.mean, stats.cov, "auto", device, x - stats.mean)
        return ref

    def distance(self, mu: ArrayLike, sigma: ArrayLike) -> float:
        """Fréchet distance from this reference to N(mu, sigma)."""
        mu2 = as_tensor(mu, device=self.device, dtype=torch.float64, ndim=1, name="mu")
        sigma2 = _sym(as_tensor(sigma, device=self.device, dtype=torch.float64, name="sigma"))
        if mu2.shape != self.mu.shape or sigma2.shape != self.sigma.shape:
            raise ValueError(
                f"shape mismatch: reference d={self.mu.shape[0]}, got mu {tuple(mu2.shape)}, "
                f"sigma {tuple(sigma2.shape)}"
            )
        diff = self.mu - mu2
        fd = diff.dot(diff) + self.trace + torch.trace(sigma2)  # before sigma2 is overwritten
        return float(fd - 2.0 * self._trace_sqrt(sigma2))

    def _trace_sqrt(self, sigma2: torch.Tensor) -> torch.Tensor:
        """tr sqrt(sigma sigma2) = sum of sqrt(eigenvalues of F^T sigma2 F); may overwrite sigma2."""
        if self._rows is not None:  # N x N: A sigma2 A^T / (N - 1) for the real rows A
            a = self._rows
            inner = _sym((a @ sigma2) @ a.T) / (len(a) - 1)
            return torch.linalg.eigvalsh(inner).clamp_min(0).sqrt().sum()
        if self._lower_f is not None and sigma2.device.type == "cpu":
            # sigma2 is symmetric and our own copy: its transpose is the Fortran-order view
            inner, info = lapack.dsygst(sigma2.numpy().T, self._lower_f, itype=3, lower=1,
                                        overwrite_a=1)
            if info != 0:
                raise ValueError(f"dsygst failed (info={info})")
            evals = torch.linalg.eigvalsh(torch.from_numpy(inner), UPLO="L")
        else:
            evals = torch.linalg.eigvalsh(_sym(self.factor.T @ sigma2 @ self.factor))
        return evals.clamp_min(0).sqrt().sum()

    def distance_to_stats(self, stats: FeatureStats) -> float:
        return self.distance(stats.mean, stats.cov)

    def distance_to_features(self, features: ArrayLike, *, batch_size: int | None = None) -> float:
        """Fréchet distance to the Gaussian fitted to ``features`` (N, d).

        With fewer rows than dimensions (N <= d, e.g. 1,000 Inception features of 2,048) the
        generated covariance is A^T A / (N - 1) for the centred rows A, and the nonzero
        eigenvalues of F^T A^T A F are those of the N x N matrix A sigma A^T: one N x N
        ``eigvalsh`` instead of a d x d one (the same value to round-off)."""
        n = len(features)
        if 2 <= n <= self.mu.shape[0]:
            x = as_tensor(features, device=self.device, dtype=torch.float64, name="features")
            warn_rank_deficient(n, x.shape[1], stacklevel=2)
            mean = x.mean(0)
            return self._distance_low_rank(mean, x - mean, n - 1)
        stats = FeatureStats.from_features(features, batch_size=batch_size, device=self.device)
        return self.distance_to_stats(stats)

    def _distance_low_rank(self, mu2: torch.Tensor, a: torch.Tensor, denom: float) -> float:
        """Fréchet distance to N(mu2, a^T a / denom) for a (k, d) with k <= d."""
        if a.shape[1:] != self.mu.shape:
            raise ValueError(f"shape mismatch: reference d={self.mu.shape[0]}, got {tuple(a.shape)}")
        diff = self.mu - mu2
        if self._rows is not None:  # C = a A^T: C C^T or C^T C, whichever is smaller
            c = a @ self._rows.T
            inner = _sym(c @ c.T if len(a) <= len(self._rows) else c.T @ c)
            inner = inner / (denom * (len(self._rows) - 1))
        else:
            inner = _sym((a @ self.sigma) @ a.T) / denom  # k x k, same nonzero spectrum as F^T S2 F
        trace_sqrt = torch.linalg.eigvalsh(inner).clamp_min(0).sqrt().sum()
        fd = diff.dot(diff) + self.trace + (a * a).sum() / denom - 2.0 * trace_sqrt
        return float(fd)

    def bootstrap_distances(
        self, features: ArrayLike, num_resamples: int, seed: int = 0, *, batch_size: int = 4096
    ) -> np.ndarray:
        """Fréchet distances to ``num_resamples`` bootstrap resamples of ``features``.

        Each resample draws N rows with replacement (``torch.randint`` with a
        CPU ``torch.Generator`` seeded with ``seed``) and fits its Gaussian,
        against this fixed reference: the spread is the sampling noise of the
        ``features`` side only. A resample's moments are weighted moments of
        the distinct rows drawn (weight = times drawn, about 63% of the rows),
        centred on the full-sample mean so that no large mean cancels; each
        costs about one covariance pass (N d^2) and one :meth:`distance` (two
        d^3 products and an ``eigvalsh``). Resamples hold duplicated rows, so
        their distances are biased upwards relative to the full-sample one;
        use their spread (e.g. the standard deviation as a standard error),
        not their values.
        """
        x = as_tensor(features, device=self.device, dtype=torch.float64, name="features")
        n, d = x.shape
        if n < 2:
            raise ValueError("bootstrap needs at least 2 feature rows")
        if n <= d:
            return self._bootstrap_low_rank(x, num_resamples, seed)
        mean = FeatureStats.from_features(x, batch_size=batch_size).mean
        gen = torch.Generator().manual_seed(seed)
        out = np.empty(num_resamples, dtype=np.float64)
        for r in range(num_resamples):
            counts = torch.bincount(torch.randint(0, n, (n,), generator=gen), minlength=n)
            rows = counts.nonzero().squeeze(1)
            w = counts[rows].to(device=x.device, dtype=torch.float64)
            rows = rows.to(x.device)
            shift = torch.zeros(d, dtype=torch.float64, device=x.device)  # sum of w (x - mean)
            scatter = torch.zeros(d, d, dtype=torch.float64, device=x.device)
            for start in range(0, len(rows), batch_size):
                xc = x[rows[start : start + batch_size]] - mean
                wb = w[start : start + batch_size, None]
                shift += (wb * xc).sum(0)
                xs = xc * wb.sqrt()
                scatter += xs.T @ xs
            m = shift / n  # resample mean - full-sample mean
            cov = (scatter - n * torch.outer(m, m)) / (n - 1)
            out[r] = self.distance(mean + m, cov)
        return out

    def _bootstrap_low_rank(self, x: torch.Tensor, num_resamples: int, seed: int) -> np.ndarray:
        """`bootstrap_distances` for N <= d: a resample's covariance is B^T B / (N - 1) with
        rows sqrt(times drawn) (x_i - resample mean) over the distinct rows drawn, so each
        costs one k x k ``eigvalsh`` (k <= N) instead of a d x d one; the same resamples
        (same generator calls) and values as the d x d route to round-off."""
        n = len(x)
        gen = torch.Generator().manual_seed(seed)
        out = np.empty(num_resamples, dtype=np.float64)
        for r in range(num_resamples):
            counts = torch.bincount(torch.randint(0, n, (n,), generator=gen), minlength=n)
            rows = counts.nonzero().squeeze(1)
            w = counts[rows].to(device=x.device, dtype=torch.float64)
            xr = x[rows.to(x.device)]
            mu_b = (w[:, None] * xr).sum(0) / n
            out[r] = self._distance_low_rank(mu_b, (xr - mu_b) * w.sqrt()[:, None], n - 1)
        return out


def frechet_distance(
    mu1: ArrayLike,
    sigma1: ArrayLike,
    mu2: ArrayLike,
    sigma2: ArrayLike,
    *,
    device: DeviceLike = None,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64.

    Symmetric in its arguments up to round-off. For repeated comparisons
    against the same (mu1, sigma1) use :class:`FrechetReference`.
    """
    return FrechetReference(mu1, sigma1, device=device).distance(mu2, sigma2)


def fid_from_features(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    batch_size: int | None = None,
    device: DeviceLike = None,
) -> float:
    """FID between two (N, d) feature arrays (covariances with N-1 divisor).

    Warns (RuntimeWarning) when either set has N <= d samples, because the
    covariance is then rank-deficient and the value is biased.
    """
    dev = resolve_device(real, device)
    ref = FrechetReference.from_features(real, batch_size=batch_size, device=dev)
    return ref.distance_to_features(fake, batch_size=batch_size)
