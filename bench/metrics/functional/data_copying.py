"""Data-copying test statistic C_T (Meehan, Chaudhuri & Dasgupta, AISTATS 2020).

1. Partition feature space into ``num_cells`` cells with k-means on the
   training features; assign held-out test and generated samples to the
   nearest centroid.
2. In each cell, compute every test / generated sample's distance to its
   nearest *training sample in that cell* (as the authors' code does), and
   the Mann-Whitney U statistic of generated (m) vs test (n) distances:
   U = #{(q, p): L(q) > L(p)} + 0.5 #{ties}, z-scored under the null as
   Z = (U - mn/2) / sqrt(mn(m+n+1)/12) (paper formula: no continuity or tie
   correction; the authors' code adds a 0.5 continuity term, a difference
   of 0.5/std).
3. Average Z over cells holding more than a fraction ``tau`` of the
   generated samples (default tau = 20/m, as in the authors' experiments),
   weighted by each cell's share of test samples.

Two choices the paper leaves to the user, exposed here:

* ``n_init``: k-means restarts (the run with the lowest inertia is kept).
  With one restart the initialisation alone moves C_T on the same data by
  more than its own sampling spread (see docs/metrics.md for figures on
  digits); more restarts make the partition, and so C_T, nearly
  seed-independent.
* ``projection="pca"``: fit a PCA of ``pca_dim`` components on the
  training features and project all three sets before partitioning and
  measuring distances (Meehan et al. used PCA to 64 dimensions for
  ImageNet, with 3 cells; for MNIST 50 cells on a 64-d autoencoder
  embedding).

C_T << 0: generated samples sit closer to training samples than fresh data
does (copying). C_T ~ 0: no evidence of copying. C_T >> 0: generated
samples are farther from training data than fresh data (underfitting).

U is computed here by counting pairs (equal to the rank-sum U with midranks)
because ``scipy.stats.mannwhitneyu`` changed which sample's U it returns
across versions, silently flipping the sign of C_T.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ._knn import default_chunk_size, nearest_neighbour, pairwise_sq_dists, sq_norms
from ._stats import ArrayLike, DeviceLike, as_tensor, resolve_device

__all__ = ["data_copying", "data_copying_detail", "data_copying_detail_many", "mann_whitney_z"]


def mann_whitney_z(first: np.ndarray, second: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of ``first`` against ``second``.

    U counts pairs with first > second (ties 0.5), so Z < 0 means values in
    ``first`` tend to be smaller.
    """
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    m, n = len(first), len(second)
    if np.isnan(first).any() or np.isnan(second).any():
        return float("nan")
    # the pair counts directly (binary search in the sorted second sample): the same U as
    # the midrank sum, exactly (integers and halves), without ranking m + n values
    ordered = np.sort(second)
    below = np.searchsorted(ordered, first, side="left")
    tied = np.searchsorted(ordered, first, side="right") - below
    u = float(below.sum()) + 0.5 * float(tied.sum())
    return float((u - m * n / 2.0) / np.sqrt(m * n * (m + n + 1) / 12.0))


def data_copying(
    train: ArrayLike,
    test: ArrayLike,
    fake: ArrayLike,
    num_cells: int = 20,
    seed: int = 0,
    *,
    tau: float | None = None,
    n_init: int = 1,
    partitions: int = 1,
    projection: str = "none",
    pca_dim: int = 64,
    chunk_size: int | None = None,
    device: DeviceLike = None,
) -> float:
    """C_T statistic; negative means the generator copies training data.

    ``test`` must be held out from training. Cells where generated samples
    make up a fraction <= ``tau`` (default 20/len(fake)) or that hold no test
    samples are dropped. Returns NaN (with a warning) if no cell is left.
    k-means runs on CPU (scikit-learn, ``random_state=seed``, ``n_init``
    restarts, each keeping its best partition); ``partitions`` > 1 averages C_T over that
    many k-means partitions (seeds ``seed``, ``seed + 1``, ...); ``projection="pca"`` reduces the features to ``pca_dim``
    dimensions first (fit on ``train``).
    """
    return data_copying_detail(train, test, fake, num_cells, seed, tau=tau, n_init=n_init,
                               partitions=partitions, projection=projection, pca_dim=pca_dim, chunk_size=chunk_size,
                               device=device)[0]


def _pca(t: torch.Tensor, others: list[torch.Tensor], dim: int, seed: int) -> list[torch.Tensor]:
    """Project ``t`` and ``others`` on the first ``dim`` principal axes of ``t`` (sklearn's
    PCA, fit on the training features only, so held-out and generated sets cannot shape it)."""
    from sklearn.decomposition import PCA

    dim = min(dim, t.shape[0], t.shape[1])
    pca = PCA(n_components=dim, random_state=seed).fit(t.double().cpu().numpy())
    mean = torch.as_tensor(pca.mean_, dtype=t.dtype, device=t.device)
    axes = torch.as_tensor(pca.components_.T, dtype=t.dtype, device=t.device)
    return [(x - mean) @ axes for x in (t, *others)]


def data_copying_detail(
    train: ArrayLike,
    test: ArrayLike,
    fake: ArrayLike,
    num_cells: int = 20,
    seed: int = 0,
    *,
    tau: float | None = None,
    n_init: int = 1,
    partitions: int = 1,
    projection: str = "none",
    pca_dim: int = 64,
    chunk_size: int | None = None,
    device: DeviceLike = None,
) -> tuple[float, float, int]:
    """(C_T, its null standard deviation, cells kept).

    Each kept cell's Z is standard normal under "no copying", and C_T is their mean with
    weights w_c summing to 1, so under the null C_T has sd sqrt(sum w_c^2) (at most 1, and
    1/sqrt(cells) for equal cells): the yardstick for how much a choice that should not
    matter (the k-means seed) may move it.
    """
    return data_copying_detail_many(train, test, [fake], num_cells, seed, tau=tau, n_init=n_init,
                                partitions=partitions, projection=projection, pca_dim=pca_dim,
                                chunk_size=chunk_size, device=device, _stacklevel=3)[0]


def data_copying_detail_many(
    train: ArrayLike,
    test: ArrayLike,
    fakes: Sequence[ArrayLike],
    num_cells: int = 20,
    seed: int = 0,
    *,
    tau: float | None = None,
    n_init: int = 1,
    partitions: int = 1,
    projection: str = "none",
    pca_dim: int = 64,
    chunk_size: int | None = None,
    device: DeviceLike = None,
    _stacklevel: int = 2,
) -> list[tuple[float, float, int]]:
    """`data_copying_detail` for several generated sets against one training and test set:
    the k-means partitions, the test samples' cells and their in-cell distances depend only
    on `train` and `test`, so they are computed once (the values equal one call per set
    when the sets share a dtype; otherwise all inputs are promoted to one)."""
    if projection not in ("none", "pca"):
        raise ValueError(f"projection must be 'none' or 'pca', not {projection!r}")
    if n_init < 1 or partitions < 1:
        raise ValueError("n_init and partitions must be at least 1")
    dev = resolve_device(train, device)
    t = as_tensor(train, device=dev, name="train")
    p = as_tensor(test, device=dev, name="test")
    qs = [as_tensor(f, device=dev, name="fake") for f in fakes]
    dtype = torch.promote_types(t.dtype, p.dtype)
    for q in qs:
        dtype = torch.promote_types(dtype, q.dtype)
    t, p, qs = t.to(dtype), p.to(dtype), [q.to(dtype) for q in qs]
    if not all(t.shape[1] == x.shape[1] for x in (p, *qs)):
        raise ValueError("train, test and fake must have the same feature dimension")
    if projection == "pca":
        t, p, *qs = _pca(t, [p, *qs], pca_dim, seed)

    centroids = [_centroids(t, num_cells, seed + r, n_init) for r in range(partitions)]
    t_cells = [_assign(t, c) for c in centroids]
    p_cells = [_assign(p, c) for c in centroids]
    # distances to the nearest training sample of one's own cell, every partition from one
    # pass over the distance blocks (they do not depend on the partition)
    lp = _nearest_in_cell(p, t, list(zip(p_cells, t_cells, strict=True)), chunk_size)
    out = []
    for q in qs:
        q_cells = [_assign(q, c) for c in centroids]
        lq = _nearest_in_cell(q, t, list(zip(q_cells, t_cells, strict=True)), chunk_size)
        tau_q = 20.0 / q.shape[0] if tau is None else tau
        results = [_cell_statistic(t_cells[r], p_cells[r], q_cells[r], lp[r], lq[r],
                                   num_cells, tau_q) for r in range(partitions)]
        if all(np.isnan(r[0]) for r in results):
            warnings.warn(
                f"data_copying: no cell has more than tau={tau_q:.4g} of the generated "
                f"samples and at least one test sample; C_T is undefined.",
                RuntimeWarning,
                stacklevel=_stacklevel,
            )
            out.append((float("nan"), float("nan"), 0))
            continue
        ok = [r for r in results if not np.isnan(r[0])]
        # the mean of correlated C_T's has a null sd of at most the mean of their sds
        out.append((float(np.mean([r[0] for r in ok])), float(np.mean([r[1] for r in ok])),
                    int(round(np.mean([r[2] for r in ok])))))
    return out


def _centroids(t: torch.Tensor, num_cells: int, seed: int, n_init: int) -> torch.Tensor:
    """The centroids of one k-means partition of the training features."""
    from sklearn.cluster import KMeans  # here: sklearn costs every importer of bench.metrics 1-2 s

    km = KMeans(n_clusters=num_cells, random_state=seed, n_init=n_init).fit(t.cpu().numpy())
    return torch.as_tensor(km.cluster_centers_, dtype=t.dtype, device=t.device)


def _assign(x: torch.Tensor, centroids: torch.Tensor) -> np.ndarray:
    """Each row's cell: its nearest centroid on our device (one rule for training, test and
    generated samples alike)."""
    return nearest_neighbour(x, centroids)[1].cpu().numpy()


def _nearest_in_cell(x: torch.Tensor, t: torch.Tensor, parts: list[tuple[np.ndarray, np.ndarray]],
                     chunk_size: int | None) -> list[np.ndarray]:
    """Per partition (x's cells, t's cells): the squared distance from each row of x to the
    nearest training row in its own cell (inf where the cell has none). Chunked over x's
    rows, so memory is O(chunk x len(t)) whatever the number of partitions; each cell reads
    only its own (rows, training columns) block of the chunk's distances, about 1/cells of
    the block rather than all of it per partition."""
    chunk = chunk_size or default_chunk_size(t.shape[0], t.dtype)
    t_sq = sq_norms(t)
    # per partition: cell -> the training columns in it (cells without any stay at inf)
    cols = [{int(c): np.flatnonzero(b == c) for c in np.unique(b)} for _, b in parts]
    cols_t = [{c: torch.as_tensor(i, device=t.device) for c, i in cs.items()} for cs in cols]
    out = [np.full(x.shape[0], np.inf) for _ in parts]
    for s in range(0, x.shape[0], chunk):
        d = pairwise_sq_dists(x[s:s + chunk], t, None, t_sq)
        # on the CPU, numpy's indexing costs a fraction of torch's per call (20 cells x
        # partitions calls per chunk); the values are the same floats either way
        dn = d.numpy() if d.device.type == "cpu" else None
        for r, (a, _) in enumerate(parts):
            # the chunk's rows grouped by cell: one stable sort, then a slice per cell
            cells = np.asarray(a[s:s + chunk])
            order = np.argsort(cells, kind="stable")
            present, starts = np.unique(cells[order], return_index=True)
            ends = [*starts[1:], len(order)]
            for c, lo, hi in zip(present.tolist(), starts.tolist(), ends, strict=True):
                if c not in cols[r]:
                    continue
                rows = order[lo:hi]
                if dn is not None:
                    out[r][s + rows] = dn[rows[:, None], cols[r][c]].min(axis=1)
                else:
                    rt = torch.as_tensor(rows, device=t.device)
                    block = d[rt[:, None], cols_t[r][c][None, :]]
                    out[r][s + rows] = block.min(dim=1).values.double().cpu().numpy()
    return out


def _cell_statistic(t_cells: np.ndarray, p_cells: np.ndarray, q_cells: np.ndarray,
                    lp: np.ndarray, lq: np.ndarray, num_cells: int, tau: float
                    ) -> tuple[float, float, int]:
    """C_T, null sd and cells kept for one partition, from each sample's distance to the
    nearest training sample of its cell (squared distances rank like distances)."""
    m, n = len(q_cells), len(p_cells)
    weights, zs = [], []
    for c in range(num_cells):
        q_in, p_in = q_cells == c, p_cells == c
        m_c, n_c = int(q_in.sum()), int(p_in.sum())
        if m_c / m <= tau or n_c == 0 or not (t_cells == c).any():
            continue
        zs.append(mann_whitney_z(lq[q_in], lp[p_in]))
        weights.append(n_c / n)
    if not zs:
        return float("nan"), float("nan"), 0
    w = np.asarray(weights) / np.sum(weights)
    return float(np.dot(w, zs)), float(np.sqrt(np.sum(w**2))), len(zs)
