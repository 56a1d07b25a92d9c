"""data_copying's k-means and projection options (Meehan et al., AISTATS 2020) on digits
pixels (64-d, the dimension of Meehan's MNIST embedding): averaging over k-means partitions
makes C_T seed-independent within its null interval, PCA keeps copying visible, the
options reach the functional. Figures: benchmarks/data_copying_seed.py, docs/metrics.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.errors import BenchError
from bench.data.digits import Digits
from bench.metrics import METRICS
from bench.metrics.functional import data_copying, data_copying_detail


@pytest.fixture(scope="module")
def sets(one_thread):
    ds = Digits().load()
    x = ds.train_x.reshape(len(ds.train_x), -1).double() / 16.0
    val = ds.val_x.reshape(len(ds.val_x), -1).double() / 16.0
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
    a, b = x[perm[: len(x) // 2]], x[perm[len(x) // 2:]]
    copier = a + 0.02 * torch.from_numpy(np.random.default_rng(1).standard_normal(a.shape))
    return a, val, b, copier


def test_partitions_make_the_seed_move_ct_less_than_its_null_interval(sets):
    train, test, fresh, _ = sets
    one = [data_copying_detail(train, test, fresh, 20, seed=s * 1000) for s in range(6)]
    ten = [data_copying_detail(train, test, fresh, 20, seed=s * 1000, partitions=10)
           for s in range(6)]
    half = 1.96 * np.mean([r[1] for r in ten])  # null 95% half-width, about 0.52 here
    spread_one = np.ptp([r[0] for r in one])
    spread_ten = np.ptp([r[0] for r in ten])
    assert spread_ten < half / 2, (spread_ten, half)
    assert spread_ten < spread_one, (spread_ten, spread_one)
    assert all(abs(r[0]) < 2 for r in ten)  # a fresh sample does not copy


def test_pca_projection_keeps_copying_visible(sets):
    train, test, fresh, copier = sets
    kw = {"projection": "pca", "pca_dim": 16, "partitions": 3}
    assert data_copying(train, test, copier, 20, **kw) < -5
    assert abs(data_copying(train, test, fresh, 20, **kw)) < 2
    # a full-rank PCA is a rotation: distances, cells and C_T are those of the raw features
    full = data_copying(train, test, fresh, 10, projection="pca", pca_dim=64)
    assert full == pytest.approx(data_copying(train, test, fresh, 10), abs=0.05)


def test_bad_options(sets):
    train, test, fresh, _ = sets
    with pytest.raises(ValueError, match="projection"):
        data_copying(train, test, fresh, 5, projection="umap")
    with pytest.raises(ValueError, match="at least 1"):
        data_copying(train, test, fresh, 5, partitions=0)
    opts = METRICS.get("data_copying").Options
    o = opts.model_validate({"features": {"name": "classifier"}})
    assert (o.num_cells, o.n_init, o.partitions, o.projection, o.pca_dim) == (20, 1, 10, "none", 64)
    with pytest.raises((BenchError, ValueError)):
        opts.model_validate({"projection": "tsne"})


def test_metric_passes_its_options_to_the_functional(monkeypatch):
    import bench.metrics.data_copying as mod

    seen = {}
    monkeypatch.setattr(mod, "data_copying_detail", lambda *a, **k: seen.update(k) or (-0.5, 0.25, 3))

    class Ctx:
        seed, device = 7, torch.device("cpu")

        def real_features(self, *a):
            return torch.zeros(4, 2)

    cls = METRICS.get("data_copying")
    m = cls(cls.Options.model_validate({"features": {"name": "classifier"}, "num_cells": 3,
                                        "n_init": 4, "partitions": 2, "projection": "pca",
                                        "pca_dim": 8}))
    out = m.score(torch.zeros(4, 2), torch.zeros(4, 2), None, Ctx())
    from scipy.stats import norm

    assert out == {"data_copying_ct": -0.5, "data_copying_p": pytest.approx(norm.cdf(-2.0))}
    assert seen == {"num_cells": 3, "seed": 7, "n_init": 4, "partitions": 2, "projection": "pca",
                    "pca_dim": 8, "device": torch.device("cpu")}
