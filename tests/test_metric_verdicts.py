"""What a metric's number claims: an effective size off the real curve is a bound, the real
classifier's cache key is the recipe it trains, and GAN-test flags a model whose images are
recognisable but of the wrong class (`ignores_labels`).

Numbers from runs on digits (seed 0, the 5-epoch small_cnn, real val 0.98): see the prints
of the GAN-test tests (`-s`); recognisable is calibrated on held-out real images.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

import bench.classifiers.real
import bench.metrics.gan_train_curve as curve_mod
from bench.classifiers.base import GENERIC_RECIPE
from bench.classifiers.real import real_classifier, real_classifier_key
from bench.classifiers.train import ClassifierConfig
from bench.infra.cache import Cache
from bench.infra.store import Store
from bench.metrics import METRICS
from bench.metrics.base import Context
from bench.metrics.gan_test import ignores_labels
from bench.models.base import Generator
from bench.models.reference import ReferenceGenerator, ReferenceOptions
from bench.record.values import BOUND, HI, LO

pytestmark = pytest.mark.usefixtures("one_thread")


def _ctx(tmp_path) -> Context:
    return Context(torch.device("cpu"), 0, Cache(tmp_path / "cache"), tmp_path / "artifacts",
                   progress=False)


# ---------------------------------------------------------------- A: effective size bounds
REAL_CURVE = {100: 0.80, 200: 0.90, 400: 0.95}


@pytest.fixture
def curve_at(digits, tmp_path, monkeypatch):
    """gan_train_curve with every GAN-train point at `acc` and the real curve REAL_CURVE
    (no training: the two scoring functions are stand-ins)."""
    target = {}
    monkeypatch.setattr(curve_mod, "fit_and_score", lambda *a, **k: {"accuracy": target["acc"]})
    monkeypatch.setattr(curve_mod, "real_subset_score",
                        lambda ctx, ds, cfg, counts, desc="": {"accuracy": REAL_CURVE[int(counts.sum())]})
    gen = ReferenceGenerator(digits, ReferenceOptions(kind="real"))
    metric = METRICS.get("gan_train_curve")
    metric = metric(metric.Options(classifier={"epochs": 1}, sizes=list(REAL_CURVE)))

    def run(acc: float) -> dict[str, float]:
        target["acc"] = acc
        return metric.compute(gen, digits, _ctx(tmp_path))
    return run


def test_effective_size_below_the_curve_is_an_upper_bound_without_interval(curve_at):
    low, lower = curve_at(0.79), curve_at(0.50)
    for v in (low, lower):  # both clamp to the smallest real point: "<= 100", not "100"
        assert v["effective_size"] == 100 and v["effective_size" + BOUND] == -1
        assert v["effective_ratio"] == 0.25 and v["effective_ratio" + BOUND] == -1
        assert not {"effective_size" + LO, "effective_size" + HI, "effective_ratio" + LO} & set(v)
        assert "effective_size_bound" not in v
    assert lower["best_gan_train_acc"] < low["best_gan_train_acc"]  # still told apart


def test_effective_size_above_the_curve_is_a_lower_bound(curve_at):
    v = curve_at(0.97)
    assert v["effective_size"] == 400 and v["effective_size" + BOUND] == 1
    assert "effective_size" + LO not in v


def test_effective_size_on_the_curve_keeps_its_interval(curve_at):
    v = curve_at(0.85)
    assert "effective_size" + BOUND not in v
    assert v["effective_size" + LO] <= v["effective_size"] == pytest.approx(np.sqrt(100 * 200))
    assert v["effective_size"] <= v["effective_size" + HI]
    assert v["effective_ratio" + LO] <= v["effective_ratio"] <= v["effective_ratio" + HI]


# ---------------------------------------------------------------- B: real classifier key
def test_real_classifier_is_keyed_by_the_resolved_recipe(digits, tmp_path, monkeypatch):
    trained: Counter = Counter()
    original = bench.classifiers.real.train_classifier

    def counting(cfg, *a, **k):
        trained[cfg.model_dump_json()] += 1
        return original(cfg, *a, **k)
    monkeypatch.setattr(bench.classifiers.real, "train_classifier", counting)

    implicit = ClassifierConfig(epochs=1)  # auto -> small_cnn, the generic recipe's defaults
    explicit = ClassifierConfig(name="small_cnn", epochs=1, lr=GENERIC_RECIPE["lr"],
                                batch_size=GENERIC_RECIPE["batch_size"])
    assert implicit.model_dump() != explicit.model_dump()
    assert real_classifier_key(digits, implicit, 0) == real_classifier_key(digits, explicit, 0)

    cache = Cache(tmp_path / "cache")
    for store in (None, Store(cache)):  # the disk entry, then the in-memory one
        a = real_classifier(digits, implicit, torch.device("cpu"), 0, cache, store, progress=False)
        b = real_classifier(digits, explicit, torch.device("cpu"), 0, cache, store, progress=False)
        assert a.config == b.config
    assert sum(trained.values()) == 1  # one entry for both configs
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 1

    # a changed recipe default is a new classifier: a new key, trained again, not the stale one
    before = real_classifier_key(digits, implicit, 0)
    monkeypatch.setitem(GENERIC_RECIPE, "lr", GENERIC_RECIPE["lr"] / 2)
    assert real_classifier_key(digits, implicit, 0) != before
    assert real_classifier_key(digits, explicit, 0) == before  # its lr was set, not defaulted
    c = real_classifier(digits, implicit, torch.device("cpu"), 0, cache, Store(cache), progress=False)
    assert c.config.lr == GENERIC_RECIPE["lr"] and sum(trained.values()) == 2


# ---------------------------------------------------------------- D: GAN-test, label-blind
def test_ignores_labels_rule():
    balanced = np.repeat(np.arange(10), 36)  # 360 images, chance 0.1
    assert ignores_labels(0.10, 360, 0.96, 0.95, balanced, 10) is not None
    assert ignores_labels(0.10, 360, 0.40, 0.95, balanced, 10) is None  # unrecognisable: noise
    assert ignores_labels(0.30, 360, 0.96, 0.95, balanced, 10) is None  # above near-chance
    assert ignores_labels(0.16, 30, 0.96, 0.95, balanced, 10) is None  # too few to tell
    assert ignores_labels(0.50, 360, 0.96, 0.95, np.repeat([0, 1], 180), 2) is None  # two classes
    # chance is the most a label-blind generator can expect: the share of the most requested
    # class (0.75 here: always drawing a 0 gets it), not 1/K
    skewed = np.r_[np.zeros(270, int), np.repeat(np.arange(1, 10), 10)]
    assert ignores_labels(0.70, 360, 0.96, 0.95, skewed, 10) is not None
    assert ignores_labels(0.70, 360, 0.96, 0.95, balanced, 10) is None


class _Untrained(Generator):
    """What an untrained generator emits: grey noise, whatever the label (`black`: the
    guard-rail `wrong_range` model, tanh output read as [0, 255]: values 0 or 1)."""

    def __init__(self, digits, black: bool = False):
        self.image_shape, self.num_classes, self.black = digits.image_shape, digits.num_classes, black

    def sample(self, n, labels, seed):
        g = torch.Generator().manual_seed(seed)
        if self.black:
            x = torch.tanh(torch.randn((n, *self.image_shape), generator=g) + labels.view(-1, 1, 1, 1) * 0.1)
            return x.clamp(0, 1).round().to(torch.uint8)
        return (128 + 40 * torch.randn((n, *self.image_shape), generator=g)).clamp(0, 255).to(torch.uint8)


GAN_TEST_MODELS = ("label_shuffle", "real", "mode_drop", "constant", "untrained", "wrong_range")


@pytest.fixture(scope="module")
def gan_test_runs(digits, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gan_test")
    cls = METRICS.get("gan_test")
    store = Store()  # one classifier and one calibration for every model, as in a suite
    out = {}
    for kind in GAN_TEST_MODELS:
        gen = (_Untrained(digits, black=kind == "wrong_range") if kind in ("untrained", "wrong_range")
               else ReferenceGenerator(digits, ReferenceOptions(kind=kind)))
        ctx = Context(torch.device("cpu"), 0, Cache(tmp / "cache"), tmp / kind, progress=False,
                      store=store)
        values = cls(cls.Options(classifier={"epochs": 5})).compute(gen, digits, ctx)
        out[kind] = (values, ctx.flags)
    return out


@pytest.mark.parametrize("kind", ["untrained", "constant", "wrong_range"])
def test_noise_and_black_images_are_off_distribution_not_label_blind(gan_test_runs, kind):
    """A classifier is confidently wrong on images unlike its training data: those are
    called broken, not "recognisable images of the wrong class"."""
    v, flags = gan_test_runs[kind]
    print(kind, {k: round(x, 3) for k, x in v.items()}, [f.text for f in flags])
    assert [f.kind for f in flags] == ["off_distribution"], [f.text for f in flags]
    assert "unlike the real images" in flags[0].reason and v["gan_test_recognisable"] < 0.2


def test_a_dropped_mode_is_named_by_the_classes_it_misses(gan_test_runs):
    v, flags = gan_test_runs["mode_drop"]
    print("mode_drop", {k: round(x, 3) for k, x in v.items()}, [f.text for f in flags])
    [flag] = flags
    assert flag.kind == "classes_missing" and flag.gate
    assert "classes missing: 5 of 10 never generated (5, 6, 7, 8, 9)" in flag.reason


def test_label_shuffle_is_flagged_as_ignoring_its_labels(gan_test_runs):
    v, flags = gan_test_runs["label_shuffle"]
    print("label_shuffle", {k: round(x, 3) for k, x in v.items()}, [f.text for f in flags])
    assert v["gan_test_acc"] < 0.2 and v["gan_test_recognisable"] > 0.8
    assert v["gan_test_recognisable" + LO] <= v["gan_test_recognisable"] <= v["gan_test_recognisable" + HI]
    [flag] = flags
    assert (flag.kind, flag.gate, flag.value) == ("ignores_labels", True, "gan_test_acc")
    assert "near chance" in flag.reason and "recognisable" in flag.reason


def test_real_images_are_not_flagged(gan_test_runs):
    v, flags = gan_test_runs["real"]
    shuffled, _ = gan_test_runs["label_shuffle"]
    print("real", {k: round(x, 3) for k, x in v.items()})
    assert flags == [] and v["gan_test_acc"] > 0.9
    assert v["gan_test_recognisable"] > 0.8  # as held-out real images are: 94% by construction
    # equally recognisable: what differs is the label, not the images
    assert abs(v["gan_test_recognisable"] - shuffled["gan_test_recognisable"]) < 0.05
