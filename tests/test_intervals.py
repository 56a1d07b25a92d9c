"""95% intervals (`<value>.lo` / `<value>.hi`) of every metric that has a cheap one, and
repeats that retrain trainable generators with the repeat's seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.data.digits import Digits
from bench.infra.cache import Cache
from bench.infra.store import Store
from bench.metrics import METRICS
from bench.metrics._intervals import (
    Z95,
    difference_with_interval,
    mean_recall_se,
    mean_with_interval,
    share_with_interval,
)
from bench.metrics.base import Context
from bench.metrics.functional import FeatureStats, FrechetReference
from bench.models import MODELS
from bench.models.base import BuildContext
from bench.record.values import BOUND, HI, LO, accuracy_with_interval, wilson


# ---------------------------------------------------------------- the interval formulas
def _wilson_closed_form(c: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = c / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@pytest.mark.parametrize("c, n", [(0, 10), (3, 10), (10, 10), (180, 360), (355, 360), (9123, 10000)])
def test_wilson_matches_the_closed_form(c, n):
    # scipy uses the exact 97.5% normal quantile (1.95996...), the closed form z = 1.96
    assert wilson(c, n) == pytest.approx(_wilson_closed_form(c, n), abs=2e-5)
    assert wilson(c, n) == pytest.approx(_wilson_closed_form(c, n, Z95), abs=1e-12)


def test_accuracy_and_share_intervals_hold_the_value():
    out = accuracy_with_interval("acc", 0.9, 360)
    assert out["acc" + LO] < out["acc"] == 0.9 < out["acc" + HI] < 1
    assert (out["acc" + LO], out["acc" + HI]) == wilson(324, 360)
    flags = np.array([True] * 30 + [False] * 70)
    s = share_with_interval("p", flags)
    assert s["p"] == 0.3 and (s["p" + LO], s["p" + HI]) == wilson(30, 100)


def test_difference_and_mean_intervals():
    d = difference_with_interval("gain", 0.8, 300, 0.7, 300)
    assert d["gain"] == pytest.approx(0.1) and d["gain" + LO] < 0.1 < d["gain" + HI]
    # wider than either arm alone, narrower than the arms' widths added
    la, ua = wilson(240, 300)
    lb, ub = wilson(210, 300)
    width = d["gain" + HI] - d["gain" + LO]
    assert max(ua - la, ub - lb) < width < (ua - la) + (ub - lb)
    x = np.random.default_rng(0).normal(5.0, 2.0, 400)
    m = mean_with_interval("m", x)
    assert m["m" + HI] - m["m"] == pytest.approx(Z95 * x.std(ddof=1) / 20)
    # a mean of K per-class recalls over disjoint classes: variances add, divided by K^2
    se = mean_recall_se([0.5, 0.5, float("nan")], [100, 100, 0])
    one = (wilson(50, 100)[1] - wilson(50, 100)[0]) / (2 * Z95)
    assert se == pytest.approx(one / math.sqrt(2))


# ---------------------------------------------------------------- FID bootstrap
def _gaussians(n: int, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(4000, d, generator=g, dtype=torch.float64) + 3.0
    fake = torch.randn(n, d, generator=g, dtype=torch.float64) * 1.2 + 3.3
    return real, fake


def test_fid_bootstrap_is_the_row_bootstrap_and_shrinks_with_more_samples():
    real, fake = _gaussians(300)
    ref = FrechetReference.from_features(real)
    boot = ref.bootstrap_distances(fake, 4, seed=5)
    # the weighted moments equal refitting on the resampled rows
    g = torch.Generator().manual_seed(5)
    naive = [ref.distance_to_stats(FeatureStats.from_features(fake[torch.randint(0, 300, (300,), generator=g)]))
             for _ in range(4)]
    np.testing.assert_allclose(boot, naive, rtol=1e-10)
    assert np.array_equal(boot, ref.bootstrap_distances(fake, 4, seed=5))  # seeded

    fid_metric = METRICS.get("fid")
    widths = {}
    for n in (300, 3000):
        _, fake = _gaussians(n, seed=1)
        ref = FrechetReference.from_features(real)
        fid = ref.distance_to_features(fake)
        se = float(ref.bootstrap_distances(fake, 10, seed=0).std(ddof=1))
        lo, hi = fid - Z95 * se, fid + Z95 * se
        assert lo <= fid <= hi
        widths[n] = hi - lo
    assert widths[3000] < widths[300] / 2  # about 1/sqrt(10)
    with pytest.raises(ValueError, match="at least 2"):
        fid_metric.Options.model_validate({"bootstrap": 1})
    assert fid_metric.Options.model_validate({}).bootstrap == 10


# ---------------------------------------------------------------- every metric, on digits
FEAT = {"name": "classifier", "classifier": {"epochs": 2}}
CLF = {"epochs": 2}
METRIC_OPTIONS = {
    "gan_train": {"classifier": CLF, "num_samples": 600},  # a pool of 1,258: 539 left to test tsts_acc on
    "gan_test": {"classifier": CLF},
    "gan_train_curve": {"classifier": CLF, "fractions": [0.1, 0.5]},
    "augmentation": {"classifier": CLF, "fractions": [0.1, 0.5], "num_generated": 200},
    "balancing": {"classifier": CLF},
    "nearest_neighbours": {"classifier": CLF, "num_samples": 100, "per_class": 1, "k": 2},
    "fid": {"features": FEAT, "num_samples": 400},
    "kid": {"features": FEAT, "num_samples": 400, "num_subsets": 10, "subset_size": 100},
    "inception_score": {"features": FEAT, "num_samples": 400},
    "precision_recall": {"features": FEAT, "num_samples": 400},
    "density_coverage": {"features": FEAT, "num_samples": 400},
    "authenticity": {"features": FEAT, "num_samples": 400},
    "alpha_precision": {"features": FEAT, "num_samples": 400, "bootstrap": 20},
}
# values that must come with an interval (the aug/balancing per-fraction and per-setting ones
# too), unless logged as a bound (`<value>.bound`: an effective size off the real curve)
WITH_INTERVAL = {
    "gan_train": {"gan_train_acc", "tsts_acc", "real_val_acc"},
    "gan_test": {"gan_test_acc", "gan_test_recognisable", "real_val_acc"},
    "gan_train_curve": {"best_gan_train_acc", "effective_size", "effective_ratio", "real_curve_best_acc",
                        "saturation_size"},
    "augmentation": {"mean_aug_gain"} | {f"{p}_at_{f}" for p in ("real_acc", "aug_acc", "aug_gain")
                                         for f in ("0.1", "0.5")},
    "balancing": {f"{s}_{v}" for s in ("imbalanced", "balanced_gen", "balanced_real", "synthetic_only")
                  for v in ("acc", "bacc", "minority_recall")} | {"balancing_gain"},
    "nearest_neighbours": {"gen_nn_similarity", "val_nn_similarity", "nn_similarity_gap"},
    "fid": {"fid"},
    "kid": {"kid_mean"},
    "inception_score": {"classifier_is_mean"},
    "precision_recall": {"precision", "recall"},
    "density_coverage": {"density", "coverage"},
    "authenticity": {"authenticity"},
    "alpha_precision": {"alpha_precision", "beta_recall", "authenticity"},
    "ppl": {"ppl"},
}


@pytest.fixture(scope="module")
def digits_env(tmp_path_factory, one_thread):
    tmp = tmp_path_factory.mktemp("intervals")
    ds = Digits().load()
    cache = Cache(tmp / "cache")
    noisy = MODELS.get("reference")(MODELS.get("reference").Options(kind="noise", sigma=0.3)).build(
        ds, BuildContext(torch.device("cpu"), 0, cache, progress=False))
    store = Store(cache)  # shared by the metrics, as in a worker

    def compute(name, gen=noisy, **options):
        cls = METRICS.get(name)
        ctx = Context(torch.device("cpu"), 0, cache, tmp / name, progress=False, store=store)
        return cls(cls.Options.model_validate(options)).compute(gen, ds, ctx)

    return ds, cache, compute


def _check_intervals(name: str, values: dict[str, float]) -> None:
    base = {k[: -len(LO)] for k in values if k.endswith(LO)}
    assert base == {k[: -len(HI)] for k in values if k.endswith(HI)}, name
    bounds = {k[: -len(BOUND)] for k in values if k.endswith(BOUND)}
    assert not bounds & base, (name, bounds & base)  # a bound has no interval
    assert WITH_INTERVAL[name] - bounds <= base, (name, WITH_INTERVAL[name] - bounds - base)
    assert all(k in values for k in base), name
    for k in base:
        lo, v, hi = values[k + LO], values[k], values[k + HI]
        assert lo <= v <= hi, (name, k, lo, v, hi)
        assert lo < hi or math.isclose(lo, hi), (name, k)


@pytest.mark.parametrize("name", list(METRIC_OPTIONS))
def test_every_interval_holds_its_value(digits_env, name):
    _, _, compute = digits_env
    values = compute(name, **METRIC_OPTIONS[name])
    _check_intervals(name, values)
    if name == "augmentation":  # the gains are the differences of the logged accuracies
        for f in ("0.1", "0.5"):
            assert values[f"aug_gain_at_{f}"] == pytest.approx(
                values[f"aug_acc_at_{f}"] - values[f"real_acc_at_{f}"])
    if name == "fid":
        assert values["fid.lo"] < values["fid"] < values["fid.hi"]


# ---------------------------------------------------------------- repeats retrain trainable models
TINY_GAN = {"steps": 3, "batch_size": 16, "width": 8, "latent_dim": 8, "checkpoint_every": 0}


def test_repeats_retrain_trainable_generators_with_the_repeat_seed(write_suite, tmp_path, one_thread):
    from bench.config.suite import load_suite
    from bench.executors.worker import Shared, run_cell

    opts = ", ".join(f"{k}: {v}" for k, v in TINY_GAN.items())
    suite = load_suite(write_suite(f"""\
        name: repeats
        seed: 0
        repeats: 2
        datasets:
          digits: {{source: digits}}
        models:
          gan: {{source: cgan, {opts}}}
          real: {{source: reference, kind: real}}
        metrics:
          test_constant: {{}}
        """))
    ds = Digits().load()
    cache_dir = tmp_path / "cache"
    # what `bench train` or a suite with repeats: 1 leaves in the cache: the suite seed's training
    MODELS.get("cgan")(MODELS.get("cgan").Options(**TINY_GAN)).build(
        ds, BuildContext(torch.device("cpu"), 0, Cache(cache_dir), progress=False))

    from record_fakes import MemoryRecords

    records = MemoryRecords()
    shared = Shared("repeats", records, "parent", Cache(cache_dir), torch.device("cpu"), 0, False)
    outs = [run_cell(c, records, "parent", shared, False) for c in suite.cells]
    assert all(o.status == "finished" for o in outs), [o.error for o in outs]
    seeds = {(c.model.key, c.repeat): r.tags["generator_seed"]
             for c, r in zip(suite.cells, records.finished, strict=True)}
    assert seeds == {("gan", 0): "0", ("gan", 1): "1", ("real", 0): "0", ("real", 1): "0"}
    # repeat 0 reused the suite seed's training, repeat 1 trained its own
    assert shared.cache.hits["cgan"] == 1 and shared.cache.misses["cgan"] == 1
    # two cgan generators (one per repeat), one shared reference generator
    assert sorted(k for k in shared.generators) == [("gan", "digits", 0), ("gan", "digits", 1),
                                                    ("real", "digits", 0)]
    labels = torch.arange(20) % 10
    g0, g1 = shared.generators[("gan", "digits", 0)], shared.generators[("gan", "digits", 1)]
    assert not torch.equal(g0.sample(20, labels, seed=0), g1.sample(20, labels, seed=0))


def test_ppl_interval(digits_env, tmp_path, one_thread):
    ds, cache, compute = digits_env
    gan = MODELS.get("cgan")(MODELS.get("cgan").Options(**TINY_GAN)).build(
        ds, BuildContext(torch.device("cpu"), 0, cache, progress=False))
    values = compute("ppl", gen=gan, num_samples=40, batch_size=40, features=FEAT)
    _check_intervals("ppl", values)
