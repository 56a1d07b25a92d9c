"""GAN-train's `tsts_acc` is measured on generated images its classifier never trained on.

A pool (pre-generated samples, real images served as a model) wraps around once its images
are used up. Before, `tsts_acc` was the GAN-train classifier on the stream block after its
training images, so a pool no larger than the training set was tested on its own training
images: 1.000 for the training digits, 1.000 for a noisy training-only pool whose GAN-test is
0.59. Now such a pool logs no `tsts_acc` and says why; a larger pool or a network is tested
on the images after the training block, never a copy of one of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bench.data.digits import Digits
from bench.infra.cache import Cache
from bench.metrics import METRICS
from bench.metrics._protocol import MIN_TEST_IMAGES, split_after_training
from bench.metrics.base import Context
from bench.metrics.gan_train import TSTS_NOTE_TAG, TSTS_SPLIT_TAG
from bench.models.base import Generator
from bench.models.pool import PoolGenerator
from bench.models.reference import ReferenceGenerator, ReferenceOptions

pytestmark = pytest.mark.usefixtures("one_thread")


class Noisy(Generator):
    """A network stand-in: fresh noisy digits of the requested class at every call."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.pool = PoolGenerator(x, y, 10)
        self.image_shape, self.num_classes = self.pool.image_shape, 10

    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x = self.pool.sample(n, labels, seed).float() + 40 * torch.randn(n, 1, 8, 8, generator=g)
        return x.round().clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def digits():
    return Digits().load()


def _rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(r) for r in x.reshape(len(x), -1).numpy()}


def _ctx(tmp_path) -> Context:
    return Context(torch.device("cpu"), 0, Cache(tmp_path / "cache"), tmp_path / "art", progress=False)


def test_a_pool_no_larger_than_the_training_set_has_no_test_images(digits, tmp_path):
    ctx, n, m = _ctx(tmp_path), len(digits.train_y), len(digits.val_y)
    real = ReferenceGenerator(digits, ReferenceOptions(kind="real"))
    s = split_after_training(ctx, real, digits, n, m)
    assert len(s.train_y) == n and len(s.test_y) == 0 and s.too_small
    # the same pool, asked for fewer training images: the rest of it is the test set
    s = split_after_training(ctx, real, digits, 600, m)
    assert (len(s.train_y), len(s.test_y)) == (600, m)
    assert not _rows(s.train_x) & _rows(s.test_x)
    s = split_after_training(ctx, real, digits, 1000, m)  # only 258 images left unseen
    assert len(s.test_y) == n - 1000 and not _rows(s.train_x) & _rows(s.test_x)
    # a network: the block after the training images, every one new
    s = split_after_training(ctx, Noisy(digits.train_x, digits.train_y), digits, n, m)
    assert (len(s.train_y), len(s.test_y), s.pool) == (n, m, None)
    # half the classes dropped: the pool repeats its kept classes sooner than the labels say,
    # and the copies are left out by content
    drop = ReferenceGenerator(digits, ReferenceOptions(kind="mode_drop"))
    s = split_after_training(ctx, drop, digits, 600, m)
    assert not _rows(s.train_x) & _rows(s.test_x) and s.removed > 0
    assert len(_rows(s.test_x)) == len(s.test_y)


def test_gan_train_logs_no_training_accuracy_under_the_test_name(digits, tmp_path):
    cls = METRICS.get("gan_train")
    quick = {"classifier": {"epochs": 2}}
    # noise on the training images only, served as a pool of the training size (the issue's
    # case: tsts_acc 1.000 beside a GAN-test of 0.59)
    g = torch.Generator().manual_seed(0)
    noisy = (digits.train_x.float() + 90 * torch.randn(digits.train_x.shape, generator=g))
    pool = PoolGenerator(noisy.round().clamp(0, 255).to(torch.uint8), digits.train_y, 10)
    ctx = _ctx(tmp_path)
    out = cls(cls.Options.model_validate(quick)).compute(pool, digits, ctx)
    assert "gan_train_acc" in out and "tsts_acc" not in out and "tsts_acc.lo" not in out
    assert f"(at least {MIN_TEST_IMAGES} needed)" in ctx.tags[TSTS_NOTE_TAG]
    assert ctx.tags[TSTS_SPLIT_TAG].startswith(f"train {len(digits.train_y):,} generated images, "
                                               "test 0 others")

    ctx = _ctx(tmp_path)
    out = cls(cls.Options.model_validate({**quick, "num_samples": 600})).compute(pool, digits, ctx)
    assert 0 < out["tsts_acc.lo"] <= out["tsts_acc"] <= out["tsts_acc.hi"] < 1
    assert TSTS_NOTE_TAG not in ctx.tags
    assert ctx.tags[TSTS_SPLIT_TAG].startswith(f"train 600 generated images, test "
                                               f"{len(digits.val_y):,} others")
    assert "tsts_acc" in pd.read_csv(tmp_path / "art" / "gan_train_per_class.csv").columns


def test_a_pool_capped_by_class_balance_says_which_class_runs_out(digits, tmp_path):
    """A pool as large as the request whose class counts differ from the training split's
    is capped where the first class runs out; the flag names that class, so "897 asked,
    857 used" does not read as a bug."""
    ctx = _ctx(tmp_path)
    x, y = digits.val_x, digits.val_y
    keep = torch.from_numpy(np.flatnonzero(y.numpy() != 3))  # class 3 removed, then 3 of them back
    three = torch.from_numpy(np.flatnonzero(y.numpy() == 3)[:3])
    idx = torch.cat([keep, three])
    pool = PoolGenerator(x[idx], y[idx], digits.num_classes)
    n = len(idx)
    m = ctx.distinct(pool, digits, n)
    assert 0 < m < n
    (flag,) = [f for f in ctx.flags if f.kind == "small_pool"]
    assert f"pool of {n:,} distinct images" in flag.reason and "class '3' runs out first (3 images)" in flag.reason
    assert f"use the first {m:,}" in flag.reason and not flag.gate
