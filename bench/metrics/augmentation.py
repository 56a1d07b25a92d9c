"""Generated images as data augmentation (Shmelkov et al. 2018, Table 4 and Fig. 5).

For each real fraction, a classifier is trained on that class-balanced real subset alone
and on the subset plus generated images. A generator that is useful in practice raises
accuracy most where real data is scarce; a poor one lowers it.

Schedule: both trainings take the same number of optimizer steps (the steps of
`classifier.epochs` epochs over the combined set; the real-only run gets more epochs over
its smaller set). With equal epochs instead, the augmented run would also train longer,
and part of its "gain" would be compute, not data; equal steps gives the real-only
baseline every chance, so a positive gain is the generated images' doing. The real-only
runs depend only on the data and are cached across models.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator

from bench.classifiers.train import ClassifierConfig
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics._intervals import difference_with_interval, normal_with_interval, wilson_se
from bench.metrics._protocol import (
    at_fraction,
    figure,
    fit_and_score,
    n_test,
    real_subset_score,
    sample_counts,
    save_figure,
    steps_for,
    with_steps,
)
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import balanced_counts, subset_by_counts
from bench.models.base import Generator
from bench.registry import Options
from bench.values import accuracy_with_interval, diagnostic, reference, score

DEFAULT_FRACTIONS = [0.1, 0.2, 0.5, 1.0]


class AugmentationOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    fractions: list[float] = Field(default_factory=lambda: list(DEFAULT_FRACTIONS),
                                   description="class-balanced shares of the real train split")
    num_generated: int | None = Field(
        None, ge=1, description="generated images added to every subset (default: the real "
        "train size, as when a generated set as large as the data set is available)")
    generated_multiple: float | None = Field(
        None, gt=0, description="instead: generated images = this times the real subset size")

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or min(v) <= 0 or max(v) > 1:
            raise ValueError("fractions must be a non-empty list of numbers in (0, 1]")
        return sorted(set(v))

    @model_validator(mode="after")
    def _one_of(self):
        if self.num_generated is not None and self.generated_multiple is not None:
            raise ValueError("give either `num_generated` or `generated_multiple`, not both")
        return self


@METRICS.register("augmentation")
class Augmentation(Metric):
    """Accuracy on real subsets with and without added generated images (equal optimizer steps)."""

    Options = AugmentationOptions
    options: AugmentationOptions
    version = "2"  # 2: 95% intervals (Wilson accuracies, Newcombe gains)
    trains_on_model_images = True  # tested on real val: never fed the val split (bench.leakage)
    values = {"mean_aug_gain": score("higher", "utility"),
              "aug_gain": diagnostic("higher"), "aug_acc": diagnostic("higher"),
              "real_acc": reference("higher")}  # the real-only arm: no generator involved
    primary = "mean_aug_gain"

    def num_generated(self, n_real: int, n_train: int) -> int:
        o = self.options
        if o.generated_multiple is not None:
            return max(1, round(o.generated_multiple * n_real))
        return o.num_generated if o.num_generated is not None else n_train

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        cfg = self.options.classifier
        k, available = dataset.num_classes, dataset.class_counts("train")
        rows, generated, tested = [], {}, []
        for f in self.options.fractions:
            counts = balanced_counts(max(k, round(f * len(dataset.train_y))), available)
            n_real = int(counts.sum())
            n_gen = self.num_generated(n_real, len(dataset.train_y))
            steps = steps_for(cfg, n_real + n_gen)
            real = real_subset_score(ctx, dataset, with_steps(cfg, n_real, steps), counts,
                                     f"train on {f:g} of real")
            idx = subset_by_counts(dataset.train_y, counts, ctx.seed)
            if n_gen not in generated:  # a fixed num_generated is sampled once for all fractions
                generated[n_gen] = sample_counts(generator, balanced_counts(n_gen, np.full(k, n_gen)),
                                                 ctx.seed)
            gx, gy = generated[n_gen]
            aug = fit_and_score(cfg, torch.cat([dataset.train_x[idx], gx]),
                                torch.cat([dataset.train_y[idx], gy]), dataset, ctx,
                                f"train on {f:g} of real + generated")
            tested.append((n_test(real, dataset), n_test(aug, dataset)))
            rows.append({"fraction": f, "real_images": n_real, "generated_images": n_gen,
                         "steps": steps, "real_acc": real["accuracy"], "aug_acc": aug["accuracy"],
                         "aug_gain": aug["accuracy"] - real["accuracy"]})
        table = pd.DataFrame(rows)
        self._write(ctx, table)
        # intervals (test-set noise over real val): Wilson for each accuracy, Newcombe's
        # square-and-add of the two Wilson intervals for each gain (bench.metrics._intervals).
        # mean_aug_gain: normal, with the *mean* of the per-fraction variances (each the sum of
        # its two accuracies' Wilson variances). The fractions share the val set and nested real
        # subsets, so they are not independent; the mean variance bounds the variance of the
        # mean under any correlation (Var(mean) <= (mean sd)^2 <= mean var), where sum / F^2
        # would assume independence.
        var = [wilson_se(r["aug_acc"], na) ** 2 + wilson_se(r["real_acc"], nr) ** 2
               for r, (nr, na) in zip(rows, tested, strict=True)]
        out = normal_with_interval("mean_aug_gain", float(table["aug_gain"].mean()),
                                   math.sqrt(float(np.mean(var))), lower=-1.0, upper=1.0)
        for r, (nr, na) in zip(rows, tested, strict=True):
            f = r["fraction"]
            out.update(accuracy_with_interval(at_fraction("real_acc", f), float(r["real_acc"]), nr))
            out.update(accuracy_with_interval(at_fraction("aug_acc", f), float(r["aug_acc"]), na))
            out.update(difference_with_interval(at_fraction("aug_gain", f), float(r["aug_acc"]), na,
                                                float(r["real_acc"]), nr))
        return out

    @staticmethod
    def _write(ctx: Context, table: pd.DataFrame) -> None:
        table.to_csv(ctx.artifact("augmentation.csv"), index=False, float_format="%.4f")
        fig = figure()
        ax = fig.add_subplot()
        ax.plot(table["fraction"], table["real_acc"], "o-", label="real subset")
        ax.plot(table["fraction"], table["aug_acc"], "s-", label="real subset + generated")
        ax.set(xscale="log", xlabel="fraction of the real training set", ylabel="val accuracy",
               title="Generated images as augmentation (equal optimizer steps)")
        ax.legend()
        save_figure(fig, ctx.artifact("augmentation.png"))
