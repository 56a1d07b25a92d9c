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

C_T << 0: generated samples sit closer to training samples than fresh data
does (copying). C_T ~ 0: no evidence of copying. C_T >> 0: generated
samples are farther from training data than fresh data (underfitting).

U is computed here from ``scipy.stats.rankdata`` because
``scipy.stats.mannwhitneyu`` changed which sample's U it returns across
versions, silently flipping the sign of C_T.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.cluster import KMeans

from ._knn import nearest_neighbour
from ._stats import ArrayLike, DeviceLike, as_tensor, resolve_device

__all__ = ["data_copying", "mann_whitney_z"]


def mann_whitney_z(first: np.ndarray, second: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of ``first`` against ``second``.

    U counts pairs with first > second (ties 0.5), so Z < 0 means values in
    ``first`` tend to be smaller.
    """
    m, n = len(first), len(second)
    ranks = rankdata(np.concatenate([first, second]))
    u = ranks[:m].sum() - m * (m + 1) / 2.0
    return float((u - m * n / 2.0) / np.sqrt(m * n * (m + n + 1) / 12.0))


def data_copying(
    train: ArrayLike,
    test: ArrayLike,
    fake: ArrayLike,
    num_cells: int = 20,
    seed: int = 0,
    *,
    tau: float | None = None,
    chunk_size: int | None = None,
    device: DeviceLike = None,
) -> float:
    """C_T statistic; negative means the generator copies training data.

    ``test`` must be held out from training. Cells where generated samples
    make up a fraction <= ``tau`` (default 20/len(fake)) or that hold no test
    samples are dropped. Returns NaN (with a warning) if no cell is left.
    k-means runs on CPU (scikit-learn, ``random_state=seed``); reduce very
    high-dimensional features (e.g. PCA to 64) first if k-means is slow.
    """
    dev = resolve_device(train, device)
    t = as_tensor(train, device=dev, name="train")
    p = as_tensor(test, device=dev, name="test")
    q = as_tensor(fake, device=dev, name="fake")
    dtype = torch.promote_types(torch.promote_types(t.dtype, p.dtype), q.dtype)
    t, p, q = t.to(dtype), p.to(dtype), q.to(dtype)
    if not t.shape[1] == p.shape[1] == q.shape[1]:
        raise ValueError("train, test and fake must have the same feature dimension")
    m, n = q.shape[0], p.shape[0]
    if tau is None:
        tau = 20.0 / m

    km = KMeans(n_clusters=num_cells, random_state=seed, n_init=1).fit(t.cpu().numpy())
    centroids = torch.as_tensor(km.cluster_centers_, dtype=dtype, device=dev)
    # one assignment rule (nearest centroid, on our device) for all three sets
    t_cells = nearest_neighbour(t, centroids)[1].cpu().numpy()
    p_cells = nearest_neighbour(p, centroids)[1].cpu().numpy()
    q_cells = nearest_neighbour(q, centroids)[1].cpu().numpy()

    weights, zs = [], []
    for c in range(num_cells):
        q_in, p_in, t_in = q_cells == c, p_cells == c, t_cells == c
        m_c, n_c = int(q_in.sum()), int(p_in.sum())
        if m_c / m <= tau or n_c == 0 or not t_in.any():
            continue
        t_c = t[torch.from_numpy(t_in).to(dev)]
        lq = nearest_neighbour(q[torch.from_numpy(q_in).to(dev)], t_c, chunk_size)[0]
        lp = nearest_neighbour(p[torch.from_numpy(p_in).to(dev)], t_c, chunk_size)[0]
        # squared distances rank like distances
        zs.append(mann_whitney_z(lq.double().cpu().numpy(), lp.double().cpu().numpy()))
        weights.append(n_c / n)
    if not zs:
        warnings.warn(
            f"data_copying: no cell has more than tau={tau:.4g} of the generated samples "
            f"and at least one test sample; C_T is undefined.",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")
    w = np.asarray(weights)
    return float(np.dot(w, zs) / w.sum())
