"""Chunked pairwise-distance and k-nearest-neighbour helpers.

All N x M work is done in row chunks so peak memory is O(chunk x M) rather
than O(N x M): the prdc package materialises three dense N x N float
matrices (about 2.4 GB at N = 10,000). Distances are handled *squared*
(``|x|^2 + |y|^2 - 2 x.y`` through one matrix product, clamped at 0), which
is what torch.cdist and sklearn compute internally anyway; comparisons of
squared distances are equivalent to comparisons of distances, so the square
root is only taken for values handed back to users.

Precision follows the input dtype (float32 or float64): pass float64 features
when near-ties matter, e.g. when comparing against another implementation.
"""

from __future__ import annotations

import torch

__all__ = ["default_chunk_size", "knn_sq_radii", "nearest_neighbour", "pairwise_sq_dists"]

_CHUNK_BYTES = 256 * 2**20  # budget for one (chunk, M) distance block


def default_chunk_size(num_cols: int, dtype: torch.dtype = torch.float32) -> int:
    """Rows per chunk so that one (rows, num_cols) block fits in ~256 MiB."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    return max(1, min(8192, _CHUNK_BYTES // max(1, num_cols * itemsize)))


def sq_norms(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(dim=1)


def pairwise_sq_dists(
    x: torch.Tensor,
    y: torch.Tensor,
    x_sq: torch.Tensor | None = None,
    y_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared Euclidean distances, shape (len(x), len(y)), clamped at 0."""
    if x_sq is None:
        x_sq = sq_norms(x)
    if y_sq is None:
        y_sq = sq_norms(y)
    d = torch.addmm(y_sq.unsqueeze(0), x, y.T, beta=1.0, alpha=-2.0)
    d += x_sq.unsqueeze(1)
    return d.clamp_min_(0.0)


def knn_sq_radii(x: torch.Tensor, k: int, chunk_size: int | None = None) -> torch.Tensor:
    """Squared distance from each row of x to its k-th nearest *other* row.

    The point itself is excluded by index (its diagonal entry is set to +inf),
    which equals prdc's "(k+1)-th smallest including self" when the
    self-distance is 0, and stays correct with duplicated rows.
    """
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for {n} samples, got {k}")
    chunk = chunk_size or default_chunk_size(n, x.dtype)
    x_sq = sq_norms(x)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        d = pairwise_sq_dists(x[start:stop], x, x_sq[start:stop], x_sq)
        rows = torch.arange(stop - start, device=x.device)
        d[rows, rows + start] = float("inf")
        out[start:stop] = torch.topk(d, k, dim=1, largest=False, sorted=True).values[:, -1]
    return out


def nearest_neighbour(
    x: torch.Tensor, y: torch.Tensor, chunk_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of x: (squared distance, index) of its nearest row of y."""
    chunk = chunk_size or default_chunk_size(y.shape[0], x.dtype)
    y_sq = sq_norms(y)
    dists, idx = [], []
    for start in range(0, x.shape[0], chunk):
        xb = x[start : start + chunk]
        m = pairwise_sq_dists(xb, y, None, y_sq).min(dim=1)
        dists.append(m.values)
        idx.append(m.indices)
    if not dists:
        empty = torch.empty(0, dtype=x.dtype, device=x.device)
        return empty, torch.empty(0, dtype=torch.long, device=x.device)
    return torch.cat(dists), torch.cat(idx)
