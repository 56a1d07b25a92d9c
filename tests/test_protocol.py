"""Guard rails of the "How good is my GAN?" protocol on digits: reference generators of
known quality must move every metric in the known direction.

Margins were chosen from runs on this data (seed 0, 10 epochs): e.g. label_shuffle gives
GAN-train 0.06 and GAN-test 0.12, mode_drop GAN-train 0.55 against 0.99 for real data,
the memorizer (100 replayed images) an effective size of about 90 real images and a
similarity gap of +0.02 against 0.00 for held-out real images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.classifiers.train import ClassifierConfig
from bench.data.digits import Digits
from bench.infra.cache import Cache
from bench.metrics import METRICS
from bench.metrics._protocol import effective_size, with_steps
from bench.metrics.base import Context
from bench.metrics.nearest_neighbours import image_grid, topk_cosine
from bench.metrics.sampling import balanced_counts, labels_from_counts, subset_by_counts
from bench.models.reference import ReferenceGenerator, ReferenceOptions

CLF = {"epochs": 10}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return Digits().load()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """One context for the module: the real classifier and real curves are shared, as in a suite."""
    tmp = tmp_path_factory.mktemp("protocol")
    return Context(device=torch.device("cpu"), seed=0, cache=Cache(tmp / "cache"),
                   artifact_dir=tmp / "artifacts", progress=False)


def run(metric: str, kind: str, digits, ctx, **opts) -> dict[str, float]:
    cls = METRICS.get(metric)
    split = opts.pop("split", "train")
    gen = ReferenceGenerator(digits, ReferenceOptions(kind=kind, split=split))
    return cls(cls.Options(classifier=CLF, **opts)).compute(gen, digits, ctx)


# ---------------------------------------------------------------- GAN-train / GAN-test
def test_label_shuffle_is_chance(digits, ctx):
    assert run("gan_train", "label_shuffle", digits, ctx)["gan_train_acc"] < 0.3
    assert run("gan_test", "label_shuffle", digits, ctx)["gan_test_acc"] < 0.3


def test_real_gan_train_matches_real_val(digits, ctx):
    v = run("gan_train", "real", digits, ctx)
    assert v["real_val_acc"] > 0.95
    assert abs(v["gan_train_acc"] - v["real_val_acc"]) < 0.02


def test_noise_lowers_gan_test(digits, ctx):
    real = run("gan_test", "real", digits, ctx)["gan_test_acc"]
    assert run("gan_test", "noise", digits, ctx)["gan_test_acc"] < real - 0.1


CURVE = [0.05, 0.1, 0.5, 1.0]


def test_mode_drop_cuts_gan_train_and_effective_size(digits, ctx):
    v = run("gan_train_curve", "mode_drop", digits, ctx, fractions=CURVE)
    real = run("gan_train_curve", "real", digits, ctx, fractions=CURVE)
    assert v["best_gan_train_acc"] < 0.65 < real["best_gan_train_acc"] - 0.3
    assert v["effective_size"] < 0.25 * len(digits.train_y) and v["effective_ratio"] < 0.25
    assert real["effective_ratio"] > 0.5 and real.get("effective_size.bound", 0) >= 0


def test_memorizer_is_worth_about_the_images_it_replays(digits, ctx):
    v = run("gan_train_curve", "memorize", digits, ctx, fractions=CURVE)  # replays 100 images
    assert v["effective_size"] < 200 and v["effective_ratio"] < 0.2


def test_memorize_beats_real_on_gan_test_and_similarity_gap(digits, ctx):
    real_val = ctx.real_val_accuracy(digits, ClassifierConfig(**CLF))
    assert run("gan_test", "memorize", digits, ctx)["gan_test_acc"] >= real_val
    memorize = run("nearest_neighbours", "memorize", digits, ctx)
    held_out = run("nearest_neighbours", "real", digits, ctx, split="val")
    assert memorize["nn_similarity_gap"] > 0
    assert memorize["nn_similarity_gap"] > held_out["nn_similarity_gap"] + 0.01
    assert memorize["val_nn_similarity"] == held_out["val_nn_similarity"]  # cached real work


# ---------------------------------------------------------------- augmentation, balancing
def test_augmentation_with_real_images_does_not_hurt_small_fractions(digits, ctx):
    v = run("augmentation", "real", digits, ctx, fractions=[0.1, 0.2], num_generated=600)
    assert v["aug_gain_at_0.1"] >= 0 and v["aug_gain_at_0.2"] >= 0
    assert v["aug_acc_at_0.1"] > 0.9 and 0 < v["real_acc_at_0.1"] <= 1


def test_augmentation_with_wrong_labels_hurts(digits, ctx):
    v = run("augmentation", "label_shuffle", digits, ctx, fractions=[0.1], num_generated=600)
    assert v["aug_gain_at_0.1"] < -0.2


def test_balancing_with_real_generator_recovers_balanced_accuracy(digits, ctx):
    v = run("balancing", "real", digits, ctx, synthetic_only=False)
    assert v["balanced_gen_bacc"] > v["imbalanced_bacc"] + 0.1
    assert v["balanced_gen_bacc"] > v["balanced_real_bacc"] - 0.03
    assert v["balancing_gain"] == pytest.approx(v["balanced_gen_bacc"] - v["imbalanced_bacc"])
    assert v["imbalanced_minority_recall"] < v["balanced_gen_minority_recall"]
    assert "synthetic_only_bacc" not in v


def test_balancing_cannot_be_helped_by_a_generator_missing_the_rare_classes(digits, ctx):
    # mode_drop covers classes 0-4; the default minority classes are 5-9
    v = run("balancing", "mode_drop", digits, ctx)
    real = run("balancing", "real", digits, ctx, synthetic_only=False)
    # most of a gain on digits comes from the labels alone (more minority-labelled images
    # shift the classifier's prior towards the minority classes), so the margin is small;
    # the minority recall of the generated images alone shows they carry no minority class
    assert v["balancing_gain"] < real["balancing_gain"] - 0.03
    assert v["balanced_gen_minority_recall"] < real["balanced_gen_minority_recall"] - 0.05
    assert v["synthetic_only_minority_recall"] < 0.3


# ---------------------------------------------------------------- helpers
def test_effective_size_interpolates_and_clamps():
    sizes, accs = np.array([100, 200, 400]), np.array([0.5, 0.7, 0.6])  # the dip is made monotone
    assert effective_size(sizes, accs, 0.6) == (pytest.approx(np.sqrt(100 * 200)), 0)
    assert effective_size(sizes, accs, 0.7) == (200.0, 0)
    assert effective_size(sizes, accs, 0.4) == (100.0, -1)
    assert effective_size(sizes, accs, 0.9) == (400.0, 1)


def test_balanced_counts_and_nested_subsets():
    assert balanced_counts(10, np.array([1, 100, 100])).tolist() == [1, 5, 4]
    assert balanced_counts(1000, np.array([1, 2, 3])).tolist() == [1, 2, 3]
    y = labels_from_counts(np.array([30, 30, 30]), seed=0)
    small = set(subset_by_counts(y, np.array([5, 5, 5]), seed=1).tolist())
    big = subset_by_counts(y, np.array([10, 10, 10]), seed=1)
    assert small < set(big.tolist()) and np.bincount(y[big].numpy()).tolist() == [10, 10, 10]


def test_with_steps_gives_equal_compute():
    cfg = ClassifierConfig(epochs=10, batch_size=128)
    assert with_steps(cfg, 126, 110).epochs == 110  # one step per epoch on a small set
    assert with_steps(cfg, 1258, 200).epochs == 20


def test_topk_cosine_chunks_match_full():
    g = torch.Generator().manual_seed(0)
    q, r = torch.randn(37, 8, generator=g), torch.randn(50, 8, generator=g)
    full = topk_cosine(q, r, 3, chunk=1000)
    chunked = topk_cosine(q, r, 3, chunk=5)
    assert torch.allclose(full[0], chunked[0]) and torch.equal(full[1], chunked[1])


def test_image_grid_upscales_rows():
    rows = [torch.zeros(6, 1, 8, 8, dtype=torch.uint8) for _ in range(3)]
    img = image_grid(rows, cell_pixels=32)
    assert img.mode == "L" and img.size[1] == 3 * (32 + 2) + 2
