"""Shared machinery of the "How good is my GAN?" protocol metrics (curve, augmentation,
balancing, nearest neighbours): train-and-score, real-only work cached across models,
equal-compute schedules, generated training and test images that share no image (GAN-train's
`tsts_acc`, `tsts_ranking`), and matplotlib figures without global pyplot state.

Real-only work (a classifier trained on a real subset, real features) does not depend on
the generator, so a suite of K models must pay for it once. It is kept in the store under a
`RealWorkKey` (bench.infra.store, shared by every cell of a process) and its small results are
persisted as JSON
in the content-addressed cache, so other processes and later runs reuse them. Keys hold
the dataset digest, the seed and everything that determines the result (the classifier
config with its epochs, the per-class counts of the subset).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from bench.classifiers.train import ClassifierConfig, Evaluation, evaluate, train_classifier
from bench.data.base import Dataset
from bench.infra.cache import atomic_write
from bench.infra.store import RealWorkKey
from bench.metrics.base import Context
from bench.metrics.sampling import subset_by_counts
from bench.models.base import Generator

Score = dict[str, Any]  # {"accuracy", "balanced_accuracy", "per_class": [recall or None], "n"}


# ---------------------------------------------------------------- scores and training
def to_score(ev: Evaluation) -> Score:
    """An Evaluation as JSON-able numbers (nan recalls of absent classes become None)."""
    return {"accuracy": ev.accuracy, "balanced_accuracy": ev.balanced_accuracy,
            "per_class": [None if np.isnan(v) else float(v) for v in ev.per_class],
            "n": ev.n}


def n_test(score: Score, dataset: Dataset) -> int:
    """Test images a score's accuracy is over (for its interval). Scores are on real val;
    cache entries written before scores carried `n` fall back to its size."""
    return int(score.get("n", len(dataset.val_y)))


def per_class(score: Score) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in score["per_class"]], dtype=float)


def fit_and_score(cfg: ClassifierConfig, x: torch.Tensor, y: torch.Tensor, dataset: Dataset,
                  ctx: Context, desc: str) -> Score:
    """Train `cfg` on (x, y) through the one training loop and score it on real val."""
    clf = train_classifier(cfg, x, y, dataset.num_classes, ctx.device, ctx.seed, desc=desc,
                           progress=ctx.progress)
    return to_score(evaluate(clf, dataset.val_x, dataset.val_y, ctx.device))


def _epochs_and_batch(cfg: ClassifierConfig) -> tuple[int, int]:
    """cfg's epochs and batch size; a config that leaves one to its recipe must be resolved
    first (`ClassifierConfig.resolve(image_shape)`): the recipe depends on the data."""
    if cfg.epochs is not None and cfg.batch_size is not None:
        return cfg.epochs, cfg.batch_size
    s = cfg.settings()
    return s.epochs, s.batch_size


def steps_for(cfg: ClassifierConfig, n: int) -> int:
    """Optimizer steps `train_classifier` takes for `cfg` on n images."""
    epochs, batch_size = _epochs_and_batch(cfg)
    return epochs * math.ceil(n / min(batch_size, n))


def with_steps(cfg: ClassifierConfig, n: int, steps: int) -> ClassifierConfig:
    """`cfg` with the epochs that give about `steps` optimizer steps on n images.

    Comparisons between training sets of different sizes (real subset vs. real + generated,
    imbalanced vs. topped-up) give every set the same compute, so a gain measures the
    data, not longer training. Rounded up to whole epochs.
    """
    per_epoch = math.ceil(n / min(_epochs_and_batch(cfg)[1], n))
    return cfg.model_copy(update={"epochs": max(1, math.ceil(steps / per_epoch))})


# ---------------------------------------------------------------- real-only work, cached
def _write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj)))


def real_work(ctx: Context, dataset: Dataset, kind: str, key: dict[str, Any],
              compute: Callable[[], Any]) -> Any:
    """Result of real-only `compute`, once per (dataset digest, seed, key): from the
    store (bench.infra.store), else from the JSON cache, else computed and kept in both."""
    full = {"dataset": dataset.digest, "seed": ctx.seed, **key}
    path = ctx.cache.path(kind, full, suffix=".json")
    return ctx.store.entry(RealWorkKey(kind, path.name), ctx.cache, path, kind,
                           lambda p: json.loads(p.read_text()), compute, _write_json)


def real_subset_score(ctx: Context, dataset: Dataset, cfg: ClassifierConfig,
                      counts: np.ndarray, desc: str = "train on real subset") -> Score:
    """Score of `cfg` trained on `counts[c]` real training images of each class c (nested
    seeded subsets), cached: the real curve, the real-only baselines of augmentation and
    balancing all go through here, so equal requests are shared between metrics too."""
    counts = np.asarray(counts, dtype=np.int64)

    def compute() -> Score:
        idx = subset_by_counts(dataset.train_y, counts, ctx.seed)
        return fit_and_score(cfg, dataset.train_x[idx], dataset.train_y[idx], dataset, ctx, desc)

    key = {"classifier": cfg.model_dump(mode="json"), "counts": counts.tolist()}
    return real_work(ctx, dataset, "real_subset_score", key, compute)


# ---------------------------------------------------------------- learning curves
def effective_size(sizes: np.ndarray, accs: np.ndarray, target: float) -> tuple[float, int]:
    """The real-set size whose accuracy equals `target`, on the real learning curve.

    The curve is made monotone (running maximum: more real data is never worse, and a
    noisy dip must not give two answers) and interpolated linearly in log-size, since
    learning curves are close to linear in log n. Returns (size, bound): bound is -1 when
    `target` is below the curve (size clamped to the smallest), +1 above it (clamped to
    the largest), 0 inside.
    """
    order = np.argsort(sizes)
    s, a = np.asarray(sizes, float)[order], np.maximum.accumulate(np.asarray(accs, float)[order])
    if target < a[0]:
        return float(s[0]), -1
    if target > a[-1]:
        return float(s[-1]), 1
    i = int(np.argmax(a >= target))  # first size reaching the target
    if i == 0 or a[i] == target or a[i] == a[i - 1]:
        return float(s[i]), 0
    t = (target - a[i - 1]) / (a[i] - a[i - 1])
    return float(np.exp(np.log(s[i - 1]) + t * (np.log(s[i]) - np.log(s[i - 1])))), 0


# ---------------------------------------------------------------- figures
def figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A matplotlib Figure on the Agg canvas, without pyplot's global state (safe in
    workers and headless runs, no backend switch for the user's session)."""
    from matplotlib.figure import Figure  # here: matplotlib costs every run that loads metrics 1 s

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=120)


def at_fraction(name: str, f: float) -> str:
    """('aug_gain', 0.1) -> 'aug_gain_at_0.1', 1.0 -> '..._at_1'. MLflow rejects '@' in
    metric names, and a '/' would make a directory in file stores; '_at_' is safe everywhere
    and keeps `name` as the prefix that declares the value's direction."""
    return f"{name}_at_{f:g}"


# ---------------------------------------------------------------- disjoint synthetic splits
MIN_TEST_IMAGES = 50  # fewer: a Wilson interval wider than about +-0.14, no test set worth a number


@dataclass(frozen=True)
class SyntheticSplit:
    """Generated training and test images that share no image: what "train on synthetic,
    test on synthetic" needs. A finite pool (pre-generated samples, real images served as a
    model) wraps around once its images are used up, so the stream block after the training
    images can be those very images; the split never lets that happen."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    pool: int | None  # distinct images the model holds (a pool's size); None: a network
    asked: int  # test images asked for
    removed: int  # stream images after the training block left out as copies of training images

    @property
    def too_small(self) -> bool:
        return len(self.test_y) < MIN_TEST_IMAGES

    def describe(self) -> str:
        """The counts, for a run tag."""
        pool = "" if self.pool is None else f"; the model is a pool of {self.pool:,} images"
        dropped = f", {self.removed:,} copies of training images left out" if self.removed else ""
        return (f"train {len(self.train_y):,} generated images, test {len(self.test_y):,} others "
                f"(asked {self.asked:,}{dropped}){pool}")


def _digests(x: torch.Tensor) -> list[bytes]:
    """One digest per image: exact copies (a pool's repeats) share it."""
    rows = x.reshape(len(x), -1).numpy()
    return [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]


def distinct_prefix(ctx: Context, generator: Generator, dataset: Dataset, n: int) -> int:
    """How many of the first n stream images a finite pool serves before it repeats one:
    the first position at which some class asks for more images than the pool holds of it
    (`Generator.distinct_per_class`; a pool walks each class without replacement, so every
    image before it is a different one). n for a network."""
    per = getattr(generator, "distinct_per_class", None)
    if per is None or n <= 0:
        return n
    lab = ctx.store.labels(dataset, ctx.seed, n).numpy()
    occurrence = pd.Series(lab).groupby(lab).cumcount().to_numpy()
    over = np.flatnonzero(occurrence >= np.asarray(per)[lab])
    return int(over[0]) if len(over) else n


def _stream(ctx: Context, generator: Generator, dataset: Dataset,
            n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n stream images, a pool's repeats included (GAN-train trains on them)."""
    return ctx.generated(generator, dataset, n, distinct=False)


def _split_at(x: torch.Tensor, y: torch.Tensor, cut: int, end: int, pool: int | None,
              asked: int, keep_train: bool = True) -> SyntheticSplit:
    """Test on the images in stream positions [cut, end) that copy no image before `cut` nor
    an earlier test image; train on positions [0, cut) (`keep_train`: as they are), or else on
    every position before `end` whose image is not a test image."""
    digests = _digests(x[:end])
    seen = set(digests[:cut])
    keep = []
    for i in range(cut, end):
        if digests[i] not in seen:
            seen.add(digests[i])
            keep.append(i)
    test = torch.as_tensor(keep, dtype=torch.int64)
    if keep_train:
        train = torch.arange(cut)
    else:
        held = {digests[i] for i in keep}
        train = torch.as_tensor([i for i in range(end) if digests[i] not in held], dtype=torch.int64)
    removed = end - cut - len(keep) if keep_train else 0
    return SyntheticSplit(x[train], y[train], x[test], y[test], pool, asked, removed)


def split_after_training(ctx: Context, generator: Generator, dataset: Dataset, n_train: int,
                         n_test: int) -> SyntheticSplit:
    """GAN-train's split: train on the stream's first `n_train` images (a pool's repeats
    included, as GAN-train trains on them), test on up to `n_test` images after them that the
    classifier never saw: for a pool, only images before it starts repeating. A pool no larger
    than `n_train` leaves no test image (`too_small`)."""
    end = n_train + n_test
    x, y = _stream(ctx, generator, dataset, end)
    last = min(end, max(n_train, distinct_prefix(ctx, generator, dataset, end)))
    return _split_at(x, y, n_train, last, getattr(generator, "distinct_images", None), n_test)


def split_proportionally(ctx: Context, generator: Generator, dataset: Dataset, n_train: int,
                         n_test: int) -> SyntheticSplit:
    """A split for metrics that train their own classifiers on generated images: the stream's
    first `n_train` images and the `n_test` after them, or, for a pool that cannot serve
    `n_train + n_test` distinct images, its distinct images split in the same proportion
    (the last to first appear in the stream are the test images; served in other classes
    than asked, as a mode-dropping pool is, repeats are found by content)."""
    end = n_train + n_test
    last = distinct_prefix(ctx, generator, dataset, end)
    x, y = _stream(ctx, generator, dataset, last)
    pool = getattr(generator, "distinct_images", None)
    if last >= end:
        return _split_at(x, y, n_train, end, pool, n_test)
    digests = _digests(x[:last])
    first = sorted({d: i for i, d in reversed(list(enumerate(digests)))}.values())
    n_te = round(len(first) * n_test / end)
    cut = first[len(first) - n_te] if 0 < n_te < len(first) else last
    return _split_at(x, y, cut, last, pool, n_test, keep_train=False)
