"""Input conversion and streaming first/second moments of feature vectors.

`FeatureStats` keeps O(d^2) memory however many samples stream through it,
so the Fréchet statistics of 50k or 1M images never need the (N, d) feature
matrix in memory. Sums are kept in float64: float32 second moments of
Inception features lose several digits, which matters because FID is a small
difference of large traces.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

ArrayLike = Any  # numpy.ndarray | torch.Tensor | nested sequences of numbers
DeviceLike = str | torch.device | None

__all__ = ["FeatureStats", "as_tensor", "resolve_device"]


def resolve_device(x: ArrayLike, device: DeviceLike = None) -> torch.device:
    """The device to compute on: ``device`` if given, else the input tensor's, else CPU."""
    if device is not None:
        return torch.device(device)
    if isinstance(x, torch.Tensor):
        return x.device
    return torch.device("cpu")


def as_tensor(
    x: ArrayLike,
    *,
    device: DeviceLike = None,
    dtype: torch.dtype | None = None,
    ndim: int | None = 2,
    name: str = "input",
) -> torch.Tensor:
    """Convert a numpy array / tensor / sequence to a detached torch tensor.

    numpy arrays are wrapped without copying where possible. ``dtype=None``
    keeps floating dtypes of at least float32 and promotes everything else
    (integers, float16, bfloat16) to float32, because half precision is not
    accurate enough for distances or moments.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = np.asarray(x)
        if not arr.flags.writeable or not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr).copy()
        t = torch.from_numpy(arr)
    if dtype is None:
        dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32
    t = t.to(device=resolve_device(x, device), dtype=dtype)
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {tuple(t.shape)}")
    return t


def _centred_scatter_cpu(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and centred scatter ``xc.T @ xc`` of a (B, d) batch, in float64, on the CPU.

    numpy rather than torch, for two reasons: the float64 conversion and the centring are one
    pass into one new array (``np.subtract(..., dtype=float64)``; the caller's array is never
    written), and numpy computes ``a.T @ a`` with BLAS syrk, which forms only one triangle of
    the symmetric result (half the flops of the general product torch calls). This is how
    ``np.cov`` itself works, so the results agree with pytorch-fid's to rounding.
    """
    mean = x.mean(axis=0, dtype=np.float64)
    xc = np.subtract(x, mean, dtype=np.float64)
    scatter = xc.T @ xc
    return torch.from_numpy(mean), torch.from_numpy(scatter)


class FeatureStats:
    """Streaming mean and covariance of feature vectors, in float64.

    Call :meth:`update` with batches of shape (B, d); read :attr:`mean`,
    :attr:`cov` (N-1 divisor, as pytorch-fid, clean-fid and the TTUR original,
    so values are comparable with published FIDs) and :attr:`n`.

    Batches are merged with Chan et al.'s pairwise update (batch mean and
    centred scatter matrix, then a rank-one correction) instead of raw sums
    of x and x x^T. The cost is the same one (B x d)^T (B x d) product per
    batch, but it avoids the cancellation of ``sum(x x^T) - N mu mu^T`` when
    features have a large mean relative to their spread.

    Example::

        stats = FeatureStats()
        for batch in loader:
            stats.update(extract(batch))
        mu, sigma = stats.mean, stats.cov
    """

    def __init__(self, device: DeviceLike = None) -> None:
        self._device = torch.device(device) if device is not None else None
        self._n = 0
        self._mean: torch.Tensor | None = None
        self._scatter: torch.Tensor | None = None  # sum of centred outer products

    @property
    def n(self) -> int:
        """Number of samples seen."""
        return self._n

    @property
    def dim(self) -> int | None:
        """Feature dimension, or None before the first update."""
        return None if self._mean is None else int(self._mean.shape[0])

    def update(self, batch: ArrayLike) -> FeatureStats:
        """Add a (B, d) batch of features; returns self so calls can chain."""
        # float32 stays float32 here: its float64 copy is made once, already centred, below
        dtype = getattr(batch, "dtype", None)
        keep32 = dtype is torch.float32 or (isinstance(dtype, np.dtype) and dtype == np.float32)
        x = as_tensor(batch, device=self._device, dtype=None if keep32 else torch.float64,
                      name="batch")
        if self._device is None:
            self._device = x.device
        b = x.shape[0]
        if b == 0:
            return self
        if self._mean is not None and x.shape[1] != self._mean.shape[0]:
            raise ValueError(f"feature dimension changed: {self._mean.shape[0]} -> {x.shape[1]}")
        if x.device.type == "cpu":
            bmean, bscatter = _centred_scatter_cpu(x.numpy())
        else:
            x = x.to(torch.float64)
            bmean = x.mean(dim=0)
            xc = x - bmean
            bscatter = xc.T @ xc
        self._merge(b, bmean, bscatter, owned=True)
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Fold another accumulator in (e.g. from another worker); returns self."""
        if other._n == 0:
            return self
        assert other._mean is not None and other._scatter is not None
        dev = self._device or other._mean.device
        self._device = dev
        self._merge(other._n, other._mean.to(dev), other._scatter.to(dev))
        return self

    def _merge(self, b: int, bmean: torch.Tensor, bscatter: torch.Tensor, owned: bool = False) -> None:
        """Fold in a batch's mean and scatter; ``owned``: they are fresh and may be kept as is."""
        if self._n == 0 or self._mean is None or self._scatter is None:
            if not owned:
                bmean, bscatter = bmean.clone(), bscatter.clone()
            self._n, self._mean, self._scatter = b, bmean, bscatter
            return
        n = self._n
        total = n + b
        delta = bmean - self._mean
        self._mean = self._mean + delta * (b / total)
        # in place (self._scatter is always this object's own): no d x d temporaries
        self._scatter.add_(bscatter).addr_(delta, delta, alpha=n * b / total)
        self._n = total

    @property
    def mean(self) -> torch.Tensor:
        """float64 mean vector, shape (d,)."""
        if self._mean is None:
            raise ValueError("FeatureStats is empty: call update() first")
        return self._mean

    @property
    def cov(self) -> torch.Tensor:
        """float64 covariance, shape (d, d), divided by N-1.

        Warns when N <= d: such a covariance has rank at most N-1 < d, which
        makes FID biased and numerically fragile (the classic "imaginary
        component" failure of sqrtm-based code).
        """
        if self._scatter is None or self._n < 2:
            raise ValueError(f"covariance needs at least 2 samples, have {self._n}")
        d = self._scatter.shape[0]
        if self._n <= d:
            warn_rank_deficient(self._n, d, stacklevel=3)
        return self._scatter / (self._n - 1)

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, cov) as float64 numpy arrays, e.g. to save as a .npz reference."""
        return self.mean.cpu().numpy(), self.cov.cpu().numpy()

    @classmethod
    def from_features(
        cls, features: ArrayLike, batch_size: int | None = None, device: DeviceLike = None
    ) -> FeatureStats:
        """Statistics of a whole (N, d) array, converted to float64 batch by batch.

        ``batch_size=None`` takes chunks of about 256 MiB of float64 (16,384 rows of 2,048
        Inception features): each chunk is one syrk plus a d x d merge, so few large chunks
        are faster than many small ones, and memory stays bounded however large N is.
        """
        stats = cls(device=resolve_device(features, device))
        n = len(features)
        if batch_size is None:
            d = int(np.prod(np.shape(features)[1:])) if n else 1
            batch_size = max(4096, (256 << 20) // (8 * max(d, 1)))
        for start in range(0, n, batch_size):
            stats.update(features[start : start + batch_size])
        return stats


def warn_rank_deficient(n: int, d: int, stacklevel: int = 2) -> None:
    """The one warning for a covariance from N <= d samples (FeatureStats.cov and FID's
    N x N route say the same)."""
    warnings.warn(
        f"covariance from N={n} samples in d={d} dimensions is rank-deficient "
        f"(rank <= N-1 < d); Fréchet distances from it are biased and unreliable. "
        f"Use more samples than feature dimensions.",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
