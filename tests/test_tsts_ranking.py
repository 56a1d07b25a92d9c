"""tsts_ranking: K classifiers trained and tested on generated data rank as on real data.

On sklearn digits split three ways (train, val, and a held-out pool that neither the real
classifiers nor the ranking on real data see), served as models: the held-out real images
rank four CNNs of different width (32, 8, 4, 2 channels) as real data does (agreement 1,
p = 1/24, the smallest four classifiers can give); the same images with half the classes
dropped (the dropped labels answered with images of the kept classes) do not: the widest CNN
fits the mislabelled images and falls below the second, agreement 0.8 with a bootstrap
interval below the held-out row's; 3 images per class (collapse) leave fewer than 50 test
images that are no copies of training images, so they rank nothing (0). Few epochs: the
real side is trained once for the three models.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from bench.core.errors import BenchError
from bench.data.base import Dataset, stratified_split
from bench.data.digits import Digits
from bench.infra.cache import Cache
from bench.metrics import METRICS
from bench.metrics._protocol import MIN_TEST_IMAGES, split_proportionally
from bench.metrics.base import Context
from bench.metrics.tsts_ranking import TIES_TAG, exact_p_value
from bench.models.pool import PoolGenerator
from bench.models.reference import ReferenceGenerator, ReferenceOptions
from bench.record.values import HI, LO

pytestmark = pytest.mark.usefixtures("one_thread")

WIDTHS = (32, 8, 4, 2)
CLASSIFIERS = [{"name": "small_cnn", "args": {"width": w}, "epochs": 6} for w in WIDTHS]


@pytest.fixture(scope="module")
def digits_three_ways():
    """(dataset with train and val, a dataset whose training split is the held-out pool)."""
    d = Digits().load()
    keep, pool = stratified_split(d.train_y.numpy(), 0.25, 1)
    k, p = torch.from_numpy(keep), torch.from_numpy(pool)
    ds = Dataset("digits_tsts", d.train_x[k], d.train_y[k], d.val_x, d.val_y, 10)
    return ds, Dataset("digits_pool", d.train_x[p], d.train_y[p], d.val_x, d.val_y, 10)


def _models(pool: Dataset) -> dict:
    return {"held_out": PoolGenerator(pool.train_x, pool.train_y, 10),
            "mode_drop": ReferenceGenerator(pool, ReferenceOptions(kind="mode_drop")),
            "collapse": ReferenceGenerator(pool, ReferenceOptions(kind="memorize", num_images=30))}


@pytest.mark.slow  # 12 trainings of 4 small CNNs: about 40 s on a busy 2-core machine
def test_dropped_classes_and_collapse_rank_below_held_out_real(digits_three_ways, tmp_path):
    ds, pool = digits_three_ways
    cache = Cache(tmp_path / "cache")
    cls = METRICS.get("tsts_ranking")
    metric = cls(cls.Options.model_validate({"classifiers": CLASSIFIERS, "bootstrap": 200}))
    out, tags = {}, {}
    for name, gen in _models(pool).items():
        ctx = Context(torch.device("cpu"), 0, cache, tmp_path / name, progress=False)
        out[name] = metric.compute(gen, ds, ctx)
        tags[name] = ctx.tags
        print(name, {k: round(v, 3) for k, v in out[name].items()}, ctx.tags)
    real = [out["held_out"][f"tsts_real_acc_{i}_small_cnn"] for i in range(4)]
    assert real == sorted(real, reverse=True) and real[0] - real[-1] > 0.5  # well apart

    held = out["held_out"]
    syn = [held[f"tsts_synthetic_acc_{i}_small_cnn"] for i in range(4)]
    assert syn == sorted(syn, reverse=True)
    assert held["tsts_rank_agreement"] == held["tsts_rank_agreement" + LO] == 1.0
    assert held["tsts_rank_p"] == pytest.approx(1 / 24)
    assert "train 200 generated images, test 114 others" in tags["held_out"]["tsts_rank_split"]

    dropped = out["mode_drop"]
    assert dropped["tsts_synthetic_acc_0_small_cnn"] < dropped["tsts_synthetic_acc_1_small_cnn"]
    assert dropped["tsts_rank_agreement"] < 1.0
    assert dropped["tsts_rank_agreement" + HI] < held["tsts_rank_agreement" + LO]
    assert dropped["tsts_rank_p"] > held["tsts_rank_p"]

    collapsed = out["collapse"]
    assert collapsed["tsts_rank_agreement"] == 0.0 and collapsed["tsts_rank_p"] == 1.0
    assert not any(k.startswith("tsts_synthetic_acc_") for k in collapsed)
    assert "no ranking, agreement 0" in tags["collapse"][TIES_TAG]
    assert cache.misses["real_classifier"] == 4  # the real side once for the three models

    decl = cls.value("tsts_rank_agreement")
    assert (decl.role, decl.ideal, decl.aspect, cls.primary) == ("score", "higher", "utility",
                                                                 "tsts_rank_agreement")
    assert (tmp_path / "held_out" / "tsts_ranking_classifiers.csv").exists()


def test_the_split_shares_no_image_between_training_and_test(digits_three_ways, tmp_path):
    ds, pool = digits_three_ways
    ctx = Context(torch.device("cpu"), 0, Cache(tmp_path / "cache"), tmp_path, progress=False)

    def rows(x):
        return {bytes(r) for r in x.flatten(1).numpy()}

    for name, gen in _models(pool).items():
        s = split_proportionally(ctx, gen, ds, len(ds.train_y), len(ds.val_y))
        assert not rows(s.train_x) & rows(s.test_x), name
        assert len(rows(s.test_x)) == len(s.test_y), name  # no test image twice
        if name == "collapse":
            assert s.too_small and len(s.test_y) < MIN_TEST_IMAGES
        else:  # the pool's share of test images, as real val is of train + val
            assert not s.too_small
    held = split_proportionally(ctx, _models(pool)["held_out"], ds, len(ds.train_y), len(ds.val_y))
    share = len(ds.val_y) / (len(ds.train_y) + len(ds.val_y))
    # the pool's images up to where a class of the stream's balance runs out (a few short)
    assert len(pool.train_y) - 5 <= len(held.test_y) + len(held.train_y) <= len(pool.train_y)
    assert len(held.test_y) == pytest.approx(share * len(pool.train_y), abs=2)


def test_exact_p_value_enumerates_every_pairing():
    rng = np.random.default_rng(0)
    for k in (3, 4, 5, 6):
        for _ in range(5):
            a, b = rng.integers(0, 4, k) / 4, rng.integers(0, 4, k) / 4  # ties included
            if np.ptp(a) == 0 or np.ptp(b) == 0:
                assert exact_p_value(a, b) == 1.0
                continue
            rho = spearmanr(a, b).statistic
            null = [spearmanr(a, b[list(p)]).statistic for p in itertools.permutations(range(k))]
            want = np.mean(np.array(null) >= rho - 1e-12)
            assert exact_p_value(a, b) == pytest.approx(want)
    assert exact_p_value(np.arange(3.0), np.arange(3.0)) == pytest.approx(1 / 6)
    assert exact_p_value(np.arange(8.0), np.arange(8.0)) == pytest.approx(1 / math.factorial(8))


SUITE = """\
name: tsts
datasets:
  digits: {{}}
models:
  {model}
metrics:
  tsts_ranking: {options}
"""


def _validate(tmp_path, model: str, options: str):
    from bench.config.suite import parse_suite

    return parse_suite(SUITE.format(model=model, options=options), tmp_path / "suite.yaml")


def test_validation_refuses_fewer_than_three_classifiers_and_unconditional_models(tmp_path):
    held_out = "held_out: {source: reference, kind: real, split: val}"
    assert _validate(tmp_path, held_out, "{}")  # tested on generated only: val may be served
    with pytest.raises(BenchError, match="classifiers"):
        _validate(tmp_path, held_out, "{classifiers: [{name: small_cnn}, {epochs: 1}]}")
    with pytest.raises(BenchError, match="repeats"):
        _validate(tmp_path, held_out, "{classifiers: [{epochs: 1}, {epochs: 2}, {epochs: 1}]}")
    np.savez(tmp_path / "u.npz", images=np.zeros((20, 1, 8, 8), np.uint8))  # no labels
    with pytest.raises(BenchError, match="tsts_ranking needs class labels"):
        _validate(tmp_path, "flat: {source: samples, path: u.npz}", "{}")


def test_bench_list_shows_the_default_classifiers(capsys):
    from bench.cli import main

    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    assert "tsts_ranking" in out and "trts_ranking" in out
    assert ('classifiers: list = (4 x ClassifierConfig: {}, {"name":"small_cnn","args":{"width":8}}, '
            '{"name":"small_cnn","args":{"width":4}}, {"name":"small_cnn","args":{"width":2}})') in out
