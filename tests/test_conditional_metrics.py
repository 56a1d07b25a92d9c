"""Class-conditional distribution metrics (intra-FID, conditional PRDC and KID): equal to
the per-class values of independent implementations averaged over classes, they catch a
generator that ignores its labels (which the unconditional metrics cannot see), and they
report classes with too few images by class and count.

Margins of the digits test come from runs with the 3-epoch classifier (seed 0): real
(train) intra-FID 0.0 and cond. coverage 1.0, held-out real 0.19 and 0.83, label_shuffle
13.6 and 0.46, while unconditional coverage is 1.0 for both real and label_shuffle.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from bench.core.errors import BenchError
from bench.data.base import Dataset
from bench.infra.cache import Cache
from bench.metrics import METRICS
from bench.metrics.base import Context

pytestmark = pytest.mark.usefixtures("one_thread")
# `fast`: the metrics on small synthetic sets (in `make test-fast`); the digits suite is heavy

K, D = 4, 6
N_REAL = [150, 210, 180, 240]
N_FAKE = [170, 160, 200, 190]


def _gaussians(rng: np.random.Generator, counts: list[int], shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-class Gaussians with distinct means and covariances (tie-free float64), labels shuffled."""
    xs, ys = [], []
    for c, n in enumerate(counts):
        mix = np.random.default_rng(100 + c).standard_normal((D, D)) / np.sqrt(D)
        xs.append(rng.standard_normal((n, D)) @ mix * (1 + 0.2 * c) + 2.0 * c + shift)
        ys.append(np.full(n, c))
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(len(y))
    return x[order], y[order]


def _dataset(y: np.ndarray, num_classes: int = K) -> Dataset:
    n = len(y)
    return Dataset("synthetic", torch.zeros((n, 1, 2, 2), dtype=torch.uint8), torch.from_numpy(y).long(),
                   torch.zeros((1, 1, 2, 2), dtype=torch.uint8), torch.zeros(1, dtype=torch.long),
                   num_classes)


def _ctx(tmp_path, real, fake, fake_y) -> Context:
    """A context whose feature methods return the given arrays (no extractor)."""
    ctx = Context(torch.device("cpu"), 0, Cache(tmp_path / "cache"), tmp_path / "artifacts",
                  progress=False)
    ctx.real_features = lambda *a, **k: torch.from_numpy(real)
    ctx.fake_features_and_labels = lambda *a, **k: (torch.from_numpy(fake), torch.from_numpy(fake_y).long())
    return ctx


def _run(metric: str, tmp_path, real, real_y, fake, fake_y, **opts) -> tuple[dict, Context]:
    cls = METRICS.get(metric)
    ctx = _ctx(tmp_path, real, fake, fake_y)
    return cls(cls.Options(**opts)).compute(None, _dataset(real_y), ctx), ctx


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    real, real_y = _gaussians(rng, N_REAL, 0.0)
    fake, fake_y = _gaussians(rng, N_FAKE, 0.3)
    return real, real_y, fake, fake_y


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Textbook FID with scipy's sqrtm (pytorch-fid's formula), N-1 covariances."""
    from scipy import linalg

    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = a.mean(0) - b.mean(0)
    covmean = linalg.sqrtm(s1 @ s2)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


# ---------------------------------------------------------------- against independent code
@pytest.mark.fast
def test_intra_fid_is_the_mean_of_per_class_fids(tmp_path, synthetic):
    real, real_y, fake, fake_y = synthetic
    per_class = [_frechet(real[real_y == c], fake[fake_y == c]) for c in range(K)]
    out, ctx = _run("intra_fid", tmp_path, *synthetic)
    assert set(out) == {"intra_fid", "intra_fid.lo", "intra_fid.hi", "near_copies",
                        "near_copies_expected", "near_copies_p"}  # the check every feature metric runs
    assert out["intra_fid"] == pytest.approx(np.mean(per_class), rel=1e-7)
    table = pd.read_csv(ctx.artifact("intra_fid_per_class.csv"))
    assert table["n_real"].tolist() == N_REAL and table["n_generated"].tolist() == N_FAKE
    np.testing.assert_allclose(table["fid"], per_class, rtol=1e-5)
    assert "few_images_per_class" not in ctx.tags


@pytest.mark.fast
def test_conditional_prdc_is_the_mean_of_per_class_prdc_package_values(tmp_path, synthetic):
    prdc_pkg = pytest.importorskip("prdc")
    real, real_y, fake, fake_y = synthetic
    ref = [prdc_pkg.compute_prdc(real[real_y == c], fake[fake_y == c], nearest_k=5) for c in range(K)]
    out, ctx = _run("conditional_prdc", tmp_path, *synthetic)
    for key in ("precision", "recall", "density", "coverage"):
        assert out[f"cond_{key}"] == pytest.approx(np.mean([r[key] for r in ref]), rel=1e-6), key
    table = pd.read_csv(ctx.artifact("conditional_prdc_per_class.csv"))
    np.testing.assert_allclose(table["coverage"], [r["coverage"] for r in ref], rtol=1e-4)


def test_conditional_kid_is_the_mean_of_per_class_torch_fidelity_kids(tmp_path, synthetic):
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    real, real_y, fake, fake_y = synthetic
    ref = []
    for c in range(K):
        a, b = real[real_y == c], fake[fake_y == c]
        ref.append(metric_kid.kid_features_to_metric(
            torch.from_numpy(a), torch.from_numpy(b), kid_subsets=10, kid_subset_size=min(len(a), len(b)) // 2,
            kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
            kid_kernel_poly_coef0=1, rng_seed=0, verbose=False)["kernel_inception_distance_mean"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the per-class clamp of subset_size is silent
        out, _ = _run("conditional_kid", tmp_path, *synthetic, num_subsets=10)
    assert {k for k in out if not k.startswith("near_copies")} == {"cond_kid", "cond_kid.lo", "cond_kid.hi"}
    assert out["cond_kid"] == pytest.approx(np.mean(ref), rel=1e-6)


@pytest.mark.fast
def test_declared_values():
    for name, primary in [("intra_fid", "intra_fid"), ("conditional_prdc", "cond_coverage"),
                          ("conditional_kid", "cond_kid")]:
        cls = METRICS.get(name)
        assert cls.primary == primary and cls.value(primary).role == "score"
        scores = {v.aspect for n, v in cls.values.items() if not n.startswith("near_copies")}
        assert scores == {"conditioning"}  # and the near-copies check every feature metric runs
    prdc_cls = METRICS.get("conditional_prdc")
    assert prdc_cls.value("cond_density").ideal == "target" and prdc_cls.value("cond_density").ref
    assert prdc_cls.value("cond_recall").role == "diagnostic"  # label_shuffle would win it
    assert METRICS.get("intra_fid").value("intra_fid").ideal == "lower"


# ---------------------------------------------------------------- intervals over classes
@pytest.mark.fast
def test_class_mean_interval_is_the_t_interval_of_the_per_class_values():
    from scipy import stats

    from bench.metrics._conditional import class_mean_interval

    v = np.array([1.0, 1.4, 0.7, np.nan, 1.1])  # NaN: a class left out of the mean
    mean, lo, hi = class_mean_interval(v)
    finite = v[~np.isnan(v)]
    ref = stats.t.interval(0.95, len(finite) - 1, loc=finite.mean(), scale=stats.sem(finite))
    assert mean == pytest.approx(finite.mean()) and (lo, hi) == pytest.approx(ref)
    assert class_mean_interval([2.0, np.nan]) is None  # one class: no spread to measure
    assert class_mean_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)


@pytest.mark.parametrize("metric,value,col,opts", [
    ("intra_fid", "intra_fid", "fid", {}),
    ("conditional_kid", "cond_kid", "kid_mean", {"num_subsets": 10}),
    ("conditional_prdc", "cond_coverage", "coverage", {}),
    ("conditional_prdc", "cond_precision", "precision", {}),
])
@pytest.mark.fast
def test_the_mean_over_classes_has_an_interval_wider_when_classes_disagree(
        tmp_path, synthetic, metric, value, col, opts):
    from bench.metrics._conditional import class_mean_interval

    real, real_y, fake, fake_y = synthetic
    out, ctx = _run(metric, tmp_path / "even", real, real_y, fake, fake_y, **opts)
    assert out[f"{value}.lo"] <= out[value] <= out[f"{value}.hi"]
    table = pd.read_csv(ctx.artifact(f"{metric}_per_class.csv"))
    assert (out[f"{value}.lo"], out[f"{value}.hi"]) == pytest.approx(
        class_mean_interval(table[col])[1:], rel=1e-5)  # the table is written to 6 digits
    # class 3's images far off, the others as before: the per-class values spread more
    uneven = fake.copy()
    uneven[fake_y == 3] += 3.0
    wide, _ = _run(metric, tmp_path / "uneven", real, real_y, uneven, fake_y, **opts)
    assert wide[f"{value}.lo"] <= wide[value] <= wide[f"{value}.hi"]
    assert wide[f"{value}.hi"] - wide[f"{value}.lo"] > out[f"{value}.hi"] - out[f"{value}.lo"]


# ---------------------------------------------------------------- few images per class
@pytest.mark.fast
def test_a_class_too_small_for_k_is_left_out_with_a_warning(tmp_path):
    rng = np.random.default_rng(1)
    counts = [150, 210, 4, 240]  # class 2: 4 real images, k=5 needs 6
    real, real_y = _gaussians(rng, counts, 0.0)
    fake, fake_y = _gaussians(rng, counts, 0.3)
    with pytest.warns(RuntimeWarning, match=r"fewer than 6 .*k\+1 with k=5.*class 2: 4 real / 4 gen"):
        out, ctx = _run("conditional_prdc", tmp_path, real, real_y, fake, fake_y)
    assert ctx.tags["few_images_per_class"] == (
        "1 of 4 classes have fewer than 6 real or generated images (k+1 with k=5, for the "
        "k-nearest-neighbour radii) and are left out of the mean: class 2: 4 real / 4 generated images")
    table = pd.read_csv(ctx.artifact("conditional_prdc_per_class.csv"))
    assert table["coverage"].isna().tolist() == [False, False, True, False]
    assert out["cond_coverage"] == pytest.approx(table["coverage"].mean())  # pandas skips NaN


@pytest.mark.fast
def test_intra_fid_warns_for_classes_with_no_more_images_than_dimensions(tmp_path):
    rng = np.random.default_rng(2)
    counts = [150, 5, 180, 240]  # class 1: 5 images in d=6: computable, biased
    real, real_y = _gaussians(rng, counts, 0.0)
    fake, fake_y = _gaussians(rng, counts, 0.3)
    with pytest.warns(RuntimeWarning, match="few images per class") as rec:
        out, ctx = _run("intra_fid", tmp_path, real, real_y, fake, fake_y)
    assert len(rec) == 1  # one warning naming the class, not the generic covariance one
    assert ctx.tags["few_images_per_class"] == (
        "1 of 4 classes have fewer than 7 real or generated images (a full-rank covariance needs "
        "more than d=6, the feature dimension), so their values are biased: class 1: 5 real / 5 "
        "generated images")
    assert np.isfinite(out["intra_fid"])


@pytest.mark.fast
def test_refuses_when_no_class_can_be_scored(tmp_path):
    rng = np.random.default_rng(3)
    real, real_y = _gaussians(rng, [3, 4, 5, 3], 0.0)
    fake, fake_y = _gaussians(rng, [3, 4, 5, 3], 0.3)
    with pytest.raises(BenchError, match=r"class 0: 3 real / 3 generated images.*Fix: lower k"):
        _run("conditional_prdc", tmp_path, real, real_y, fake, fake_y)


# ---------------------------------------------------------------- digits: ignoring labels
FEAT = {"name": "classifier", "classifier": {"epochs": 3}}


@pytest.fixture(scope="module")
def digits_values(tmp_path_factory):
    from bench.data.digits import Digits
    from bench.models.reference import ReferenceGenerator, ReferenceOptions

    tmp = tmp_path_factory.mktemp("cond")
    ds = Digits().load()
    ctx = Context(torch.device("cpu"), 0, Cache(tmp / "cache"), tmp / "artifacts", progress=False)
    out = {}
    for row, opts in {"real": {"kind": "real"}, "held_out": {"kind": "real", "split": "val"},
                      "label_shuffle": {"kind": "label_shuffle"}}.items():
        gen = ReferenceGenerator(ds, ReferenceOptions(**opts))
        out[row] = {}
        for name in ("intra_fid", "conditional_prdc", "density_coverage"):
            cls = METRICS.get(name)
            out[row].update(cls(cls.Options(features=FEAT)).compute(gen, ds, ctx))
    return out, ds, ctx


def test_label_shuffle_is_caught_only_by_the_conditional_metrics(digits_values):
    v, _, _ = digits_values
    real, held, shuffled = v["real"], v["held_out"], v["label_shuffle"]
    assert real["intra_fid"] < 0.01 and real["cond_coverage"] > 0.99
    assert shuffled["intra_fid"] > 5 > 10 * held["intra_fid"]
    assert shuffled["cond_coverage"] < 0.65 < held["cond_coverage"]
    assert shuffled["cond_precision"] < 0.4 < 0.9 < held["cond_precision"]
    assert shuffled["cond_recall"] > held["cond_recall"]  # why cond_recall is only a diagnostic
    # the pooled set of a label-ignoring generator is the real set: coverage cannot tell
    assert abs(real["coverage"] - shuffled["coverage"]) < 0.05


def test_fake_features_is_the_first_element_of_fake_features_and_labels(digits_values):
    from bench.features.base import FeatureSpec
    from bench.models.reference import ReferenceGenerator, ReferenceOptions

    _, ds, ctx = digits_values
    gen, spec = ReferenceGenerator(ds, ReferenceOptions(kind="noise")), FeatureSpec(**FEAT)
    feats, labels = ctx.fake_features_and_labels(gen, ds, spec, n=200)
    assert torch.equal(ctx.fake_features(gen, ds, spec, n=200), feats)
    assert torch.equal(labels, ctx.store.labels(ds, ctx.seed, 200)) and feats.shape[0] == 200
