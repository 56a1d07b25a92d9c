"""gan_train_curve's saturation point (Shmelkov et al. 2018, Fig. 4: where GAN-train stops
improving as the generated set grows): the rule, its interval, its bounds, and the value as
the metric logs and declares it."""

from __future__ import annotations

import pytest
import torch

import bench.metrics.gan_train_curve as curve_mod
from bench.data.digits import Digits
from bench.infra.cache import Cache
from bench.metrics import METRICS
from bench.metrics.base import Context
from bench.metrics.gan_train_curve import saturation
from bench.models.reference import ReferenceGenerator, ReferenceOptions
from bench.record.values import BOUND, HI, LO, wilson

SIZES = [50, 100, 200, 400, 800]
N_VAL = 360


def test_plateau_starts_where_every_larger_size_is_inside_the_best_interval():
    accs = [0.50, 0.70, 0.85, 0.86, 0.86]
    low_end = wilson(round(0.86 * N_VAL), N_VAL)[0]
    assert 0.85 >= low_end > 0.70
    size, lo, hi, bound = saturation(SIZES, accs, N_VAL)
    assert (size, bound) == (200, 0)
    assert lo <= size <= hi and hi == 400  # 200's own lower end misses the best's interval


def test_wide_intervals_widen_the_range_of_sizes():
    accs = [0.50, 0.80, 0.85, 0.86, 0.86]
    assert saturation(SIZES, accs, 20000)[:3] == (400, 400, 400)  # tight: only 400 on
    size, lo, hi, _ = saturation(SIZES, accs, 100)  # loose: 100 is consistent too
    assert lo == 100 and size <= hi


def test_still_improving_at_the_end_is_a_lower_bound():
    assert saturation(SIZES, [0.5, 0.6, 0.7, 0.8, 0.9], N_VAL) == (800, 800, 800, 1)


def test_flat_from_the_first_size_is_an_upper_bound():
    assert saturation(SIZES, [0.86, 0.86, 0.85, 0.86, 0.86], N_VAL) == (50, 50, 50, -1)


def test_a_curve_falling_back_at_its_end_saturates_at_its_first_plateau_size():
    size, lo, hi, bound = saturation(SIZES, [0.5, 0.7, 0.9, 0.85, 0.7], N_VAL)
    assert (size, bound) == (200, 0) and lo <= 200 <= hi


def test_metric_logs_and_declares_saturation(tmp_path, monkeypatch):
    gan = {100: 0.60, 200: 0.80, 400: 0.81}
    real = {100: 0.70, 200: 0.85, 400: 0.95}
    monkeypatch.setattr(curve_mod, "fit_and_score",
                        lambda cfg, x, y, ds, ctx, desc="": {"accuracy": gan[len(y)]})
    monkeypatch.setattr(curve_mod, "real_subset_score",
                        lambda ctx, ds, cfg, counts, desc="": {"accuracy": real[int(counts.sum())]})
    ds = Digits().load()
    cls = METRICS.get("gan_train_curve")
    metric = cls(cls.Options(classifier={"epochs": 1}, sizes=list(gan)))
    ctx = Context(torch.device("cpu"), 0, Cache(tmp_path / "cache"), tmp_path / "art", progress=False)
    v = metric.compute(ReferenceGenerator(ds, ReferenceOptions(kind="real")), ds, ctx)
    assert v["saturation_size"] == 200 and "saturation_size" + BOUND not in v
    assert v["saturation_size" + LO] <= 200 <= v["saturation_size" + HI]
    d = cls.values["saturation_size"]
    assert (d.role, d.ideal) == ("diagnostic", "higher")
    assert (tmp_path / "art" / "gan_train_curve.png").is_file()


@pytest.mark.parametrize("accs", [[0.5, 0.6, 0.7], [0.8, 0.8, 0.8]])
def test_bounds_have_no_interval(accs):
    size, lo, hi, bound = saturation([1, 2, 3], accs, N_VAL)
    assert bound != 0 and size == lo == hi
