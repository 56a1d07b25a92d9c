"""trts_ranking (a diagnostic): generated test data rank real-trained classifiers as real val does.

On sklearn digits, split three ways (train, val, and a held-out pool no classifier and no
ranking sees): a generator that returns held-out real images of the requested class ranks
three classifiers of clearly different accuracy as real val does (agreement 1); a stand-in
generator built to favour the weaker classifiers (blends of two digits, kept where the
strongest classifier fails and the weakest does not) reverses the ranking (agreement -1).
The three classifiers are trained once for both models (the real classifier's cache).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.classifiers.train import ClassifierConfig, predict
from bench.core.errors import BenchError
from bench.data.base import Dataset, stratified_split
from bench.data.digits import Digits
from bench.infra.cache import Cache
from bench.metrics import METRICS
from bench.metrics.base import Context
from bench.metrics.tsts_ranking import agreement_columns, rank_agreement
from bench.models.base import Generator
from bench.record.values import HI, LO

pytestmark = pytest.mark.usefixtures("one_thread")

# strong, middle, weak on digits (about 0.98, 0.85, 0.2 on real val): cheap and well apart
CLASSIFIERS = [{"name": "small_cnn", "epochs": 6}, {"name": "small_cnn", "epochs": 3},
               {"name": "small_cnn", "epochs": 1}]


@pytest.fixture(scope="module")
def split():
    """(dataset with train and val, held-out pool images, their labels)."""
    d = Digits().load()
    keep, pool = stratified_split(d.train_y.numpy(), 0.25, 1)
    k, p = torch.from_numpy(keep), torch.from_numpy(pool)
    ds = Dataset("digits_tsts", d.train_x[k], d.train_y[k], d.val_x, d.val_y, 10)
    return ds, d.train_x[p], d.train_y[p]


class PoolGenerator(Generator):
    """Images of the requested class drawn from a pool, with per-image weights."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, weight: np.ndarray | None = None):
        self.x, self.y = x, y.numpy()
        self.weight = np.ones(len(y)) if weight is None else weight
        self.image_shape = tuple(x.shape[1:])  # type: ignore[assignment]
        self.num_classes = 10

    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
        rng = np.random.default_rng(seed)
        idx = np.empty(n, dtype=np.int64)
        for c in np.unique(labels.numpy()):
            where = np.flatnonzero(labels.numpy() == c)
            cand = np.flatnonzero(self.y == c)
            p = self.weight[cand] / self.weight[cand].sum()
            idx[where] = rng.choice(cand, size=len(where), p=p)
        return self.x[torch.from_numpy(idx)]


def favour_the_weak(ctx: Context, ds: Dataset, px: torch.Tensor, py: torch.Tensor,
                    cfgs: list[ClassifierConfig]) -> PoolGenerator:
    """A stand-in model whose images favour the weaker classifiers: blends of a pool digit of
    the requested class with one of another class (55-75% the requested one), weighted
    towards the blends the weak classifier gets right and the strong one wrong (aiming at
    80%, 50% and 20% right for weak, middle and strong, as far as the blends allow)."""
    rng = np.random.default_rng(0)
    n = 4000
    a = rng.integers(0, len(py), n)
    b = rng.integers(0, len(py), n)
    b = np.where(py.numpy()[b] == py.numpy()[a], (b + 1) % len(py), b)
    t = torch.from_numpy(rng.uniform(0.55, 0.75, n)).float()[:, None, None, None]
    x = (t * px[a].float() + (1 - t) * px[b].float()).round().to(torch.uint8)
    y = py[torch.from_numpy(a)]
    strong, mid, weak = (predict(ctx.real_classifier(ds, c), x, ctx.device).argmax(1) == y
                         for c in cfgs)
    pattern = (weak.long() * 4 + mid.long() * 2 + strong.long()).numpy()
    target = {0b110: 0.3, 0b100: 0.3, 0b111: 0.2, 0b000: 0.2}  # (weak, mid, strong) right
    weight = np.zeros(n)
    for c in range(10):
        for pat, share in target.items():
            m = (y.numpy() == c) & (pattern == pat)
            weight[m] = share / max(1, m.sum())
    assert all((weight[y.numpy() == c] > 0).any() for c in range(10))
    return PoolGenerator(x, y, weight)


def test_agreement_is_one_for_real_images_and_negative_for_images_that_favour_the_weak(split, tmp_path):
    ds, px, py = split
    cache = Cache(tmp_path / "cache")
    ctx = Context(torch.device("cpu"), 0, cache, tmp_path / "artifacts", progress=False)
    metric_cls = METRICS.get("trts_ranking")
    metric = metric_cls(metric_cls.Options(classifiers=CLASSIFIERS, bootstrap=200))
    cfgs = metric.options.classifiers

    faithful = metric.compute(PoolGenerator(px, py), ds, ctx)
    adversarial = metric.compute(favour_the_weak(ctx, ds, px, py, cfgs), ds, ctx)
    print("faithful", {k: round(v, 3) for k, v in faithful.items()})
    print("favours the weak", {k: round(v, 3) for k, v in adversarial.items()})

    real = [faithful[f"trts_real_acc_{i}_small_cnn"] for i in range(3)]
    assert real[0] > real[1] > real[2]  # three classifiers of clearly different accuracy
    assert faithful["trts_rank_agreement"] == 1.0 and faithful["trts_rank_kendall"] == 1.0
    assert faithful["trts_rank_agreement" + LO] >= 0.5
    gen = [adversarial[f"trts_generated_acc_{i}_small_cnn"] for i in range(3)]
    assert gen[0] < gen[1] < gen[2]  # the strongest classifier fails most on these images
    assert adversarial["trts_rank_agreement"] == -1.0 and adversarial["trts_rank_kendall"] == -1.0
    assert adversarial["trts_rank_agreement" + HI] < faithful["trts_rank_agreement" + LO]
    assert [adversarial[f"trts_real_acc_{i}_small_cnn"] for i in range(3)] == real

    # the real side is shared: three trainings for two models, then read back from disk
    assert cache.misses["real_classifier"] == 3
    again = Context(torch.device("cpu"), 0, cache, tmp_path / "artifacts2", progress=False)
    assert metric.compute(PoolGenerator(px, py), ds, again) == faithful
    assert cache.misses["real_classifier"] == 3 and cache.hits["real_classifier"] >= 3
    assert (tmp_path / "artifacts" / "trts_ranking_classifiers.csv").exists()

    metric_decl = metric_cls.value("trts_rank_agreement")
    # any recognisable set ranks real-trained classifiers in order: shown, never ranked
    assert (metric_decl.role, metric_decl.ideal, metric_cls.primary) == ("diagnostic", "higher", "")
    assert metric_cls.value("trts_real_acc_0_small_cnn").role == "reference"


def test_constant_accuracies_rank_nothing():
    assert rank_agreement(np.array([0.9, 0.8, 0.3]), np.array([1.0, 1.0, 1.0])) == (0.0, 0.0)
    assert rank_agreement(np.array([0.9, 0.8, 0.3]), np.array([0.7, 0.6, 0.1])) == (1.0, 1.0)


def test_the_bootstrap_columns_equal_scipy_ties_included():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 4, (5, 300)) / 4  # K = 5 accuracies, many ties, some constant
    gen = rng.integers(0, 4, (5, 300)) / 4
    rho, tau = agreement_columns(real, gen)
    expected = np.array([rank_agreement(real[:, b], gen[:, b]) for b in range(300)])
    np.testing.assert_allclose(rho, expected[:, 0], atol=1e-12)
    np.testing.assert_allclose(tau, expected[:, 1], atol=1e-12)


SUITE = """\
name: trts
datasets:
  digits: {{}}
models:
  {model}
metrics:
  trts_ranking: {options}
"""


def _validate(tmp_path, model: str, options: str):
    from bench.config.suite import parse_suite

    return parse_suite(SUITE.format(model=model, options=options), tmp_path / "suite.yaml")


def test_validation_refuses_fewer_than_three_classifiers_and_unconditional_models(tmp_path):
    real = "real: {source: reference, kind: real}"
    assert _validate(tmp_path, real, "{}")  # the default: three classifiers
    with pytest.raises(BenchError, match="classifiers"):
        _validate(tmp_path, real, "{classifiers: [{name: small_cnn}, {name: small_cnn, epochs: 1}]}")
    with pytest.raises(BenchError, match="repeats"):
        _validate(tmp_path, real, "{classifiers: [{epochs: 1}, {epochs: 2}, {epochs: 1}]}")
    np.savez(tmp_path / "u.npz", images=np.zeros((20, 1, 8, 8), np.uint8))  # no labels
    with pytest.raises(BenchError, match="trts_ranking needs class labels"):
        _validate(tmp_path, "flat: {source: samples, path: u.npz}", "{}")


def test_bench_list_shows_it(capsys):
    from bench.cli import main

    assert main(["list", "metrics"]) == 0
    out = capsys.readouterr().out
    assert "trts_ranking" in out
    assert 'classifiers: list = (3 x ClassifierConfig: {}, {"epochs":3}, {"epochs":1})' in out
