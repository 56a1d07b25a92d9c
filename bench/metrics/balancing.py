"""Class balancing with generated images (the skin-lesion scenario: rare classes are rare
in the data, and the hope is that a class-conditional generator can fill them up).

The training set is made imbalanced (minority classes keep 1/`imbalance_ratio` of their
images), or the dataset's own imbalance is used; then the minority classes are topped up
with generated images. The classifiers below are compared on the real val split, by
accuracy, balanced accuracy (mean per-class recall, the number that matters under
imbalance) and per-class recall:

- imbalanced-real: the imbalanced real set alone;
- oversampled-real: the imbalanced real set re-balanced without a generator, each class's
  real images repeated up to the balanced counts (the counts of balanced-gen: whole copies
  of the class's images, then a seeded draw without replacement for the remainder). This
  is the baseline to beat: it has the same class counts, hence the same class prior, as
  balanced-gen, and the only difference is whether the top-up images are copies of the
  few real minority images or generated ones;
- balanced-gen: the imbalanced real set plus generated images up to the balanced counts;
- balanced-real: the reference, real images at the balanced counts (with an artificial
  imbalance, the full training set; with the dataset's own, every class undersampled to
  the smallest class count: the best balanced set the real data allows);
- synthetic-only: generated images alone at the balanced counts (optional);
- augmented-all: the skin-lesion study's second scenario, synthetic images added to *every*
  class, not only the rare ones (optional). Rule: every class is topped up with generated
  images to one common count, twice the largest balanced class count
  (2 x max(balanced counts)); the largest class gains as many generated images as it has
  real ones, the rare classes the most, and the set is balanced (imbalance ratio 1). It
  asks whether generated images help beyond filling the gaps.

The gain. Most of what topping up the rare classes does on an easy dataset comes from the
changed class prior alone (more minority-labelled images move the classifier's decision
boundaries towards the minority classes), and re-balancing the real images gets that too.
So the ranked score, `balancing_gain_over_oversampled` = balanced_gen_bacc -
oversampled_real_bacc, is what the generated images add beyond re-balancing the real data.
`balancing_gain` = balanced_gen_bacc - imbalanced_bacc (the gain over doing nothing, which
credits the generator with the prior shift) is kept as a diagnostic.

Why oversampling rather than a class-weighted loss: oversampling trains through the one
training loop (`train_classifier`, which has no class weights) on a set with exactly
balanced-gen's class counts and size, so with equal optimizer steps the two arms see the
same number of images of each class per epoch and differ only in the top-up images'
content; a weighted loss matches the prior only in expectation, with different gradient
noise and step sizes for the rare classes, and would need a second training path.

All arms train for the same number of optimizer steps (those of `classifier.epochs` over
the balanced-gen set), so that the larger sets do not win by training longer. The
real-only arms (imbalanced, oversampled, balanced real) depend only on the data: they go
through the protocol's real-only cache (`_protocol.real_work`) and are trained once for
every model of a suite.

Leak-free generator: the minority images withheld to make the split imbalanced must not
reach the classifier through the generator. For a trainable source (the built-in GANs), the
generator is trained on the imbalanced split itself (`ModelSource.build_on` on a
`Dataset.restrict_train` view, cached per split digest); the run tag `bench.balancing_leak`
is `none`. Any other model was trained on data the suite does not control, possibly on the
withheld images: the tag is `possible`, with a warning and a non-gating `balancing_leak`
flag on the cell (on the ranked gain, so boards show it), and its gain may be optimistic.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from pydantic import Field, model_validator

from bench.classifiers.train import ClassifierConfig
from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics._intervals import mean_recall_se, normal_with_interval
from bench.metrics._protocol import (
    Score,
    figure,
    fit_and_score,
    n_test,
    per_class,
    real_subset_score,
    real_work,
    save_figure,
    steps_for,
    with_steps,
)
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import balanced_counts, subset_by_counts, write_per_class
from bench.models.base import Generator
from bench.record.values import accuracy_with_interval, diagnostic, reference, score

SETTINGS = ("imbalanced", "oversampled_real", "balanced_gen", "balanced_real", "synthetic_only",
            "augmented_all")
GAIN = "balancing_gain_over_oversampled"  # the ranked score: beyond re-balancing the real data
AUGMENTED_ALL_FACTOR = 2  # augmented-all tops every class up to this x the largest balanced count


class BalancingOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    imbalance_ratio: float = Field(10.0, ge=1, description="minority classes keep 1/ratio of their images")
    minority_classes: list[int] | None = Field(
        None, description="classes made rare (default: the second half of the classes)")
    use_dataset_imbalance: bool = Field(
        False, description="use the train split's own imbalance instead; top every class up "
        "to the largest class count")
    synthetic_only: bool = Field(True, description="also train on generated images alone")
    augmented_all: bool = Field(True, description="also top every class (not only the rare "
                                "ones) up with generated images to one common count, twice the "
                                "largest balanced class count: a balanced set")

    @model_validator(mode="after")
    def _modes(self):
        if self.use_dataset_imbalance and (self.minority_classes is not None
                                           or "imbalance_ratio" in self.model_fields_set):
            raise ValueError("minority_classes and imbalance_ratio do not apply with "
                             "use_dataset_imbalance: true")
        return self


def _values(name: str, s: Score, minority: np.ndarray, dataset: Dataset) -> dict[str, float]:
    """A setting's values with 95% intervals over real val (test-set noise): Wilson for the
    accuracy; for the means of per-class recalls (balanced accuracy, minority recall) a normal
    interval whose variance adds the classes' Wilson variances (disjoint test images)."""
    rec, val_counts = per_class(s), dataset.class_counts("val")
    return {**accuracy_with_interval(f"{name}_acc", s["accuracy"], n_test(s, dataset)),
            **normal_with_interval(f"{name}_bacc", s["balanced_accuracy"],
                                   mean_recall_se(rec, val_counts), 0.0, 1.0),
            **normal_with_interval(f"{name}_minority_recall", float(np.nanmean(rec[minority])),
                                   mean_recall_se(rec[minority], val_counts[minority]), 0.0, 1.0)}


@METRICS.register("balancing")
class Balancing(Metric[BalancingOptions]):
    """Top up rare classes with generated images: balanced accuracy vs. imbalanced and balanced real."""

    # 2: 95% intervals (Wilson accuracies, normal balanced accuracies)
    # 3: trainable sources are trained on the imbalanced split (leak-free); augmented_all arm
    # 4: generated images from the generator's stream (Context.generated_by_class)
    # 5: oversampled-real arm; the ranked score is the gain over it (balancing_gain_over_
    # oversampled), balanced_gen_bacc a diagnostic; augmented_all balanced (every class at
    # 2 x the largest balanced count); balancing_leak flag
    version = "5"
    trains_on_model_images = True  # tested on real val: never fed the val split (bench.config.leakage)
    # One utility score: the gain over the oversampled real arm (what the generated images add
    # beyond re-balancing the real data). balanced_gen_bacc ranks models the same way within
    # a dataset but reads as the generator's merit where most of it is the class prior's, so
    # it is a diagnostic. augmented_all is a diagnostic, like synthetic_only: a second arm of
    # the same question, and ranking both arms would count one generator's utility twice.
    values = {GAIN: score("higher", "utility",
                          note="balanced_gen_bacc - oversampled_real_bacc: beyond re-balancing "
                          "the real images"),
              "balancing_gain": diagnostic(
                  "higher", note="balanced_gen_bacc - imbalanced_bacc: includes the class-prior "
                  "shift that re-balancing the real images also gives"),
              "balanced_gen": diagnostic("higher"), "synthetic_only": diagnostic("higher"),
              "augmented_all": diagnostic("higher"),
              # real-only arms: properties of the data
              "imbalanced": reference("higher"), "balanced_real": reference("higher"),
              "oversampled_real": reference("higher")}
    primary = GAIN
    needs_labels = True
    labels_for = "it tops up rare classes with images generated for those classes"
    needs_held_out = True  # tested on the val split

    def plan(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(imbalanced counts, balanced target counts, balanced-real counts, minority classes)."""
        o, counts, k = self.options, dataset.class_counts("train"), dataset.num_classes
        if o.use_dataset_imbalance:
            target = np.full(k, counts.max())
            minority = np.flatnonzero(counts < counts.max())
            if len(minority) == 0:
                raise BenchError("balancing use_dataset_imbalance: the train split is already "
                                 "balanced; set imbalance_ratio to make it imbalanced instead.")
            return counts, target, balanced_counts(k * int(counts.min()), counts), minority
        minority = np.array(sorted(set(o.minority_classes if o.minority_classes is not None
                                       else range(k // 2, k))), dtype=np.int64)
        if len(minority) == 0 or minority.min() < 0 or minority.max() >= k:
            raise BenchError(f"balancing minority_classes {minority.tolist()}: need classes "
                             f"in 0..{k - 1}.")
        imbalanced = counts.copy()
        imbalanced[minority] = [max(1, math.ceil(counts[c] / o.imbalance_ratio)) for c in minority]
        return imbalanced, counts, counts, minority

    @staticmethod
    def augmented_all_counts(target: np.ndarray) -> np.ndarray:
        """Augmented-all's class counts: every class at AUGMENTED_ALL_FACTOR x the largest
        balanced count (real images first, generated ones for the rest): balanced."""
        return np.full(len(target), AUGMENTED_ALL_FACTOR * int(np.max(target)), dtype=np.int64)

    @staticmethod
    def oversample(y: torch.Tensor, idx: torch.Tensor, target: np.ndarray,
                   seed: int) -> torch.Tensor:
        """Indices into the training split: each class's images among `idx` repeated up to
        `target[c]` (whole copies, then a seeded draw without replacement for the rest)."""
        rng = np.random.default_rng(seed)
        yn, ix, picks = y.cpu().numpy(), idx.cpu().numpy(), []
        for c, t in enumerate(np.asarray(target, dtype=np.int64)):
            pool = ix[yn[ix] == c]
            if len(pool) == 0:
                raise BenchError(f"balancing: class {c} has no real image to oversample.")
            whole, rest = divmod(int(t), len(pool))
            picks += [np.tile(pool, whole), rng.choice(pool, rest, replace=False)]
        return torch.from_numpy(np.sort(np.concatenate(picks)).astype(np.int64))

    @classmethod
    def oversampled_score(cls, ctx: Context, dataset: Dataset, cfg: ClassifierConfig,
                          imbalanced: np.ndarray, target: np.ndarray) -> Score:
        """The oversampled-real arm, through the protocol's real-only cache: trained once per
        (dataset, seed, config, counts), whichever generator the cell has."""
        def compute() -> Score:
            idx = subset_by_counts(dataset.train_y, imbalanced, ctx.seed)
            over = cls.oversample(dataset.train_y, idx, target, ctx.seed)
            return fit_and_score(cfg, dataset.train_x[over], dataset.train_y[over], dataset, ctx,
                                 "train on oversampled real")

        key = {"classifier": cfg.model_dump(mode="json"), "counts": imbalanced.tolist(),
               "target": target.tolist(), "rule": "repeat, then seeded draw"}
        return real_work(ctx, dataset, "balancing_oversampled_score", key, compute)

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        cfg = self.options.classifier.resolve(dataset.image_shape)  # auto -> a classifier
        imbalanced, target, balanced_real, minority = self.plan(dataset)
        steps = steps_for(cfg, int(target.sum()))
        n_gen = int(target.sum())  # balanced-gen's size: the oversampled arm's too
        scores: dict[str, Score] = {
            "imbalanced": real_subset_score(ctx, dataset, with_steps(cfg, int(imbalanced.sum()), steps),
                                            imbalanced, "train on imbalanced real"),
            "oversampled_real": self.oversampled_score(ctx, dataset, with_steps(cfg, n_gen, steps),
                                                       imbalanced, target),
            "balanced_real": real_subset_score(ctx, dataset,
                                               with_steps(cfg, int(balanced_real.sum()), steps),
                                               balanced_real, "train on balanced real"),
        }
        counts = {"imbalanced": imbalanced, "oversampled_real": target, "balanced_gen": target,
                  "balanced_real": balanced_real, "synthetic_only": target}
        idx = subset_by_counts(dataset.train_y, imbalanced, ctx.seed)
        generator = self.leak_free(generator, dataset, idx, ctx)
        # generated images from the (leak-free) generator's stream: the first images of each
        # class, so the top-up is nested in the synthetic-only and augmented-all requests
        gx, gy = ctx.generated_by_class(generator, dataset, target - imbalanced)
        scores["balanced_gen"] = fit_and_score(
            with_steps(cfg, len(idx) + len(gy), steps), torch.cat([dataset.train_x[idx], gx]),
            torch.cat([dataset.train_y[idx], gy]), dataset, ctx, "train on imbalanced real + generated")
        if self.options.synthetic_only:
            sx, sy = ctx.generated_by_class(generator, dataset, target)
            scores["synthetic_only"] = fit_and_score(with_steps(cfg, len(sy), steps), sx, sy, dataset,
                                                     ctx, "train on generated only")
        if self.options.augmented_all:
            counts["augmented_all"] = common = self.augmented_all_counts(target)
            ax, ay = ctx.generated_by_class(generator, dataset, common - imbalanced)
            scores["augmented_all"] = fit_and_score(
                with_steps(cfg, len(idx) + len(ay), steps), torch.cat([dataset.train_x[idx], ax]),
                torch.cat([dataset.train_y[idx], ay]), dataset, ctx,
                "train on imbalanced real + generated for every class")
        self._write(ctx, dataset, scores, counts, minority)
        out: dict[str, float] = {}
        for name, s in scores.items():
            out.update(_values(name, s, minority, dataset))
        # the gains' intervals: normal, the two balanced accuracies' variances added as if
        # independent (they share the val set, which correlates them positively: conservative)
        val_counts = dataset.class_counts("val")
        for gain, base in ((GAIN, "oversampled_real"), ("balancing_gain", "imbalanced")):
            se = math.hypot(*(mean_recall_se(per_class(scores[n]), val_counts)
                              for n in ("balanced_gen", base)))
            out.update(normal_with_interval(gain, out["balanced_gen_bacc"] - out[f"{base}_bacc"],
                                            se, -1.0, 1.0))
        return out

    @staticmethod
    def leak_free(generator: Generator, dataset: Dataset, idx: torch.Tensor,
                  ctx: Context) -> Generator:
        """The generator to balance with: for a trainable source, one trained on the
        imbalanced split `idx` alone (it never sees the withheld minority images); else the
        model as given, tagged `balancing_leak: possible`, with a warning and a non-gating
        `balancing_leak` flag on the ranked gain (the tag alone is shown on no board)."""
        if ctx.can_train_generator():
            ctx.tags["balancing_leak"] = "none"
            return ctx.train_generator(dataset.restrict_train(idx, "balancing: imbalanced split"))
        ctx.tags["balancing_leak"] = "possible"
        ctx.flag("balancing_leak", "the model was not trained by the suite and may have seen the "
                 "minority images withheld to make the split imbalanced: the gain may be optimistic",
                 gate=False, value=GAIN)
        warnings.warn("balancing: the model was not trained by the suite, so it may have seen the "
                      "minority images withheld to make the split imbalanced; its gain may be "
                      "optimistic (run tag bench.balancing_leak = possible). A trainable source "
                      "(cgan, baseline) is trained on the imbalanced split itself.",
                      RuntimeWarning, stacklevel=2)
        return generator

    @staticmethod
    def _write(ctx: Context, dataset: Dataset, scores: dict[str, Score],
               counts: dict[str, np.ndarray], minority: np.ndarray) -> None:
        cols = {f"{n}_recall": per_class(s) for n, s in scores.items()}
        cols.update({f"{n}_train_images": counts[n] for n in scores})
        write_per_class(ctx.artifact("balancing_per_class.csv"), dataset, cols)
        fig = figure(max(6.0, 0.6 * dataset.num_classes), 4.0)
        ax = fig.add_subplot()
        x = np.arange(dataset.num_classes)
        for c in minority:
            ax.axvspan(c - 0.5, c + 0.5, color="0.92", zorder=0)
        w = 0.8 / len(scores)
        for i, (n, s) in enumerate(scores.items()):
            ax.bar(x + (i - (len(scores) - 1) / 2) * w, per_class(s), w,
                   label=f"{n} (bacc {s['balanced_accuracy']:.3f})")
        ax.set_xticks(x, dataset.class_names)
        ax.set(xlabel="class", ylabel="val recall", ylim=(0, 1.05), title="Per-class recall (shaded: minority classes)")
        ax.legend(fontsize="small", loc="lower left")
        save_figure(fig, ctx.artifact("balancing.png"))
