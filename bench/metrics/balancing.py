"""Class balancing with generated images (the skin-lesion scenario: rare classes are rare
in the data, and the hope is that a class-conditional generator can fill them up).

The training set is made imbalanced (minority classes keep 1/`imbalance_ratio` of their
images), or the dataset's own imbalance is used; then the minority classes are topped up
with generated images. Four classifiers are compared on the real val split, by accuracy,
balanced accuracy (mean per-class recall, the number that matters under imbalance) and
per-class recall:

- imbalanced-real: the imbalanced real set alone (the baseline to beat);
- balanced-gen: the imbalanced real set plus generated images up to the balanced counts;
- balanced-real: the reference, real images at the balanced counts (with an artificial
  imbalance, the full training set; with the dataset's own, every class undersampled to
  the smallest class count: the best balanced set the real data allows);
- synthetic-only: generated images alone at the balanced counts (optional);
- augmented-all: the skin-lesion study's second scenario, synthetic images added to *every*
  class, not only the rare ones: the imbalanced real set plus generated images at the
  balanced counts of every class (the synthetic-only set). The common classes grow too, so
  the imbalance shrinks without vanishing (ratio r becomes (1 + 1) / (1/r + 1)); it asks
  whether generated images help beyond filling the gaps (optional).

All arms train for the same number of optimizer steps (those of `classifier.epochs` over
the balanced-gen set), so that the larger sets do not win by training longer. The two
real-only trainings are cached across models.

Leak-free generator: the minority images withheld to make the split imbalanced must not
reach the classifier through the generator. For a trainable source (the built-in GANs), the
generator is trained on the imbalanced split itself (`ModelSource.build_on` on a
`Dataset.restrict_train` view, cached per split digest); the run tag `bench.balancing_leak`
is `none`. Any other model was trained on data the suite does not control, possibly on the
withheld images: the tag is `possible`, with a warning, and its gain may be optimistic.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from pydantic import Field, model_validator

from bench.classifiers.train import ClassifierConfig
from bench.data.base import Dataset
from bench.errors import BenchError
from bench.metrics import METRICS
from bench.metrics._intervals import mean_recall_se, normal_with_interval
from bench.metrics._protocol import (
    Score,
    figure,
    fit_and_score,
    n_test,
    per_class,
    real_subset_score,
    save_figure,
    steps_for,
    with_steps,
)
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import balanced_counts, subset_by_counts, write_per_class
from bench.models.base import Generator
from bench.registry import Options
from bench.values import accuracy_with_interval, diagnostic, reference, score

SETTINGS = ("imbalanced", "balanced_gen", "balanced_real", "synthetic_only")


class BalancingOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    imbalance_ratio: float = Field(10.0, ge=1, description="minority classes keep 1/ratio of their images")
    minority_classes: list[int] | None = Field(
        None, description="classes made rare (default: the second half of the classes)")
    use_dataset_imbalance: bool = Field(
        False, description="use the train split's own imbalance instead; top every class up "
        "to the largest class count")
    synthetic_only: bool = Field(True, description="also train on generated images alone")
    augmented_all: bool = Field(True, description="also add generated images to every class "
                                "(at the balanced counts), not only to the rare ones")

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
class Balancing(Metric):
    """Top up rare classes with generated images: balanced accuracy vs. imbalanced and balanced real."""

    Options = BalancingOptions
    options: BalancingOptions
    # 2: 95% intervals (Wilson accuracies, normal balanced accuracies)
    # 3: trainable sources are trained on the imbalanced split (leak-free); augmented_all arm
    # 4: generated images from the generator's stream (Context.generated_by_class)
    version = "4"
    trains_on_model_images = True  # tested on real val: never fed the val split (bench.leakage)
    # augmented_all is a diagnostic, like synthetic_only: a second arm of the same question
    # (what do generated images add to an imbalanced set), not a second utility score. Its
    # number mixes the generator's worth with how much the grown common classes crowd out the
    # rare ones, and ranking both arms would count one generator's utility twice.
    values = {"balanced_gen_bacc": score("higher", "utility"),
              "balanced_gen": diagnostic("higher"), "synthetic_only": diagnostic("higher"),
              "augmented_all": diagnostic("higher"),
              "balancing_gain": diagnostic("higher"),  # balanced_gen_bacc - imbalanced_bacc
              # real-only arms: properties of the data
              "imbalanced": reference("higher"), "balanced_real": reference("higher")}
    primary = "balanced_gen_bacc"

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

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        cfg = self.options.classifier.resolve(dataset.image_shape)  # auto -> a classifier
        imbalanced, target, balanced_real, minority = self.plan(dataset)
        steps = steps_for(cfg, int(target.sum()))
        scores: dict[str, Score] = {
            "imbalanced": real_subset_score(ctx, dataset, with_steps(cfg, int(imbalanced.sum()), steps),
                                            imbalanced, "train on imbalanced real"),
            "balanced_real": real_subset_score(ctx, dataset,
                                               with_steps(cfg, int(balanced_real.sum()), steps),
                                               balanced_real, "train on balanced real"),
        }
        idx = subset_by_counts(dataset.train_y, imbalanced, ctx.seed)
        generator = self.leak_free(generator, dataset, idx, ctx)
        # generated images from the (leak-free) generator's stream: the top-up is the first
        # images of each minority class, nested in the full-target set of the other arms
        gx, gy = ctx.generated_by_class(generator, dataset, target - imbalanced)
        scores["balanced_gen"] = fit_and_score(
            with_steps(cfg, len(idx) + len(gy), steps), torch.cat([dataset.train_x[idx], gx]),
            torch.cat([dataset.train_y[idx], gy]), dataset, ctx, "train on imbalanced real + generated")
        if self.options.synthetic_only or self.options.augmented_all:
            sx, sy = ctx.generated_by_class(generator, dataset, target)
        if self.options.synthetic_only:
            scores["synthetic_only"] = fit_and_score(with_steps(cfg, len(sy), steps), sx, sy, dataset,
                                                     ctx, "train on generated only")
        if self.options.augmented_all:
            scores["augmented_all"] = fit_and_score(
                with_steps(cfg, len(idx) + len(sy), steps), torch.cat([dataset.train_x[idx], sx]),
                torch.cat([dataset.train_y[idx], sy]), dataset, ctx,
                "train on imbalanced real + generated for every class")
        self._write(ctx, dataset, scores, {"imbalanced": imbalanced, "balanced_gen": target,
                                           "balanced_real": balanced_real, "synthetic_only": target,
                                           "augmented_all": imbalanced + target},
                    minority)
        out: dict[str, float] = {}
        for name, s in scores.items():
            out.update(_values(name, s, minority, dataset))
        # the gain's interval: normal, the two balanced accuracies' variances added as if
        # independent (they share the val set, which correlates them positively: conservative)
        val_counts = dataset.class_counts("val")
        se = math.hypot(*(mean_recall_se(per_class(scores[n]), val_counts)
                          for n in ("balanced_gen", "imbalanced")))
        out.update(normal_with_interval("balancing_gain",
                                        out["balanced_gen_bacc"] - out["imbalanced_bacc"], se,
                                        -1.0, 1.0))
        return out

    @staticmethod
    def leak_free(generator: Generator, dataset: Dataset, idx: torch.Tensor,
                  ctx: Context) -> Generator:
        """The generator to balance with: for a trainable source, one trained on the
        imbalanced split `idx` alone (it never sees the withheld minority images); else the
        model as given, tagged `balancing_leak: possible` with a warning."""
        if ctx.can_train_generator():
            ctx.tags["balancing_leak"] = "none"
            return ctx.train_generator(dataset.restrict_train(idx, "balancing: imbalanced split"))
        ctx.tags["balancing_leak"] = "possible"
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
