"""The `*_many` forms of the copying metrics (one training set, several generated sets: what
depends only on the training and test sets is computed once) give exactly the values of one
plain call per set, and the faster internals of C_T give the same numbers as the plain
definitions they replace."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from bench.metrics.functional import authenticity, data_copying_detail, mann_whitney_z
from bench.metrics.functional.authenticity import authenticity_many
from bench.metrics.functional.data_copying import _nearest_in_cell, data_copying_detail_many
from bench.metrics.functional.near_copies import near_copies, near_copies_many


@pytest.fixture(scope="module")
def sets(one_thread):
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32) * 16
    perm = np.random.default_rng(0).permutation(len(x))
    t, v, g = x[perm[:700]], x[perm[700:1000]], x[perm[1000:1400]]
    rng = np.random.default_rng(1)
    fakes = [g, t[:300], (t[:400] + rng.normal(0, 20, (400, 64))).astype(np.float32),
             g[:40], np.concatenate([t[:50]] * 4)]  # fresh, copies, noisy, tiny, replay
    return t, v, fakes


def test_authenticity_many_equals_one_call_per_set(sets):
    t, _, fakes = sets
    many = authenticity_many(t, fakes)
    for f, verdicts in zip(fakes, many, strict=True):
        value, single = authenticity(t, f, per_sample=True)
        assert np.array_equal(verdicts, single) and value == verdicts.mean()
    assert many[1].sum() == 0  # exact copies: none authentic


def test_near_copies_many_equals_one_call_per_set(sets):
    t, _, fakes = sets
    many = near_copies_many(t, fakes, seed=3)
    assert many == [near_copies(t, f, seed=3) for f in fakes]
    assert many[1].p_value < 1e-6 < many[0].p_value


@pytest.mark.parametrize("kw", [{}, {"partitions": 3, "chunk_size": 37},
                                {"projection": "pca", "pca_dim": 10},
                                {"num_cells": 5, "n_init": 2}])
def test_data_copying_many_equals_one_call_per_set(sets, kw):
    t, v, fakes = sets
    with warnings.catch_warnings():  # the tiny set keeps no cell at 20 cells: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        many = data_copying_detail_many(t, v, fakes, seed=2, **kw)
        single = [data_copying_detail(t, v, f, seed=2, **kw) for f in fakes]
    assert len(many) == len(single)
    for a, b in zip(many, single, strict=True):
        assert a == b or (np.isnan(a[0]) and np.isnan(b[0]))
    assert many[1][0] < -3 < many[0][0]  # copies far below zero, a fresh set is not


def test_mann_whitney_z_counts_pairs_like_the_midrank_sum():
    rng = np.random.default_rng(4)
    for first, second in [(rng.normal(size=30), rng.normal(size=17)),
                          (rng.integers(0, 4, 25).astype(float), rng.integers(0, 4, 40).astype(float)),
                          (np.zeros(10), np.zeros(6)), (np.array([1.0]), np.array([0.5, 2.0]))]:
        m, n = len(first), len(second)
        ranks = rankdata(np.concatenate([first, second]))  # the definition it replaces
        u = ranks[:m].sum() - m * (m + 1) / 2.0
        expected = (u - m * n / 2.0) / np.sqrt(m * n * (m + n + 1) / 12.0)
        assert mann_whitney_z(first, second) == expected
    assert np.isnan(mann_whitney_z(np.array([np.nan, 1.0]), np.array([0.0])))


def test_nearest_in_cell_equals_the_masked_minimum():
    rng = np.random.default_rng(5)
    x, t = torch.from_numpy(rng.normal(size=(90, 8))), torch.from_numpy(rng.normal(size=(60, 8)))
    # cell 4 has test rows and no training rows: those rows stay at inf
    parts = [(rng.integers(0, 5, 90), rng.integers(0, 4, 60)) for _ in range(3)]
    got = _nearest_in_cell(x, t, parts, chunk_size=17)
    d = torch.cdist(x, t).square().numpy()
    for (a, b), out in zip(parts, got, strict=True):
        masked = np.where(a[:, None] == b[None, :], d, np.inf).min(axis=1)
        assert np.allclose(out, masked, rtol=1e-9, atol=1e-9)
        assert np.isinf(out[a == 4]).all()
