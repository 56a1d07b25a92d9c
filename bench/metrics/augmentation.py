"""Generated images as data augmentation (Shmelkov et al. 2018, Table 4 and Fig. 5).

For each real fraction, a classifier is trained on that class-balanced real subset alone
and on the subset plus generated images. A generator that is useful in practice raises
accuracy most where real data is scarce; a poor one lowers it.

Which generator augments a subset (`generator_data`):

- `full` (the paper's Fig. 5): the model as given, trained on the whole training split, for
  every fraction. The generator has seen more real images than the subset it augments, so
  its gain is an upper bound on what augmentation can do for someone who only has the subset.
- `subset` (the paper's Table 4): for a trainable source (the built-in GANs), a generator of
  the same source and options trained on exactly that real subset (the seeded subset the
  real-only arm uses; `ModelSource.build_on` on a `Dataset.restrict_train` view, cached per
  subset digest), then used to augment it: the honest low-data question. Sources that
  cannot be trained are refused by `bench validate`. Its values carry `_subset` in their
  names (`mean_aug_gain_subset`, `aug_gain_subset_at_F`, `aug_acc_subset_at_F`), so the two
  settings never share a column; the real-only arm (`real_acc_at_F`) is the same in both.

Schedule: both trainings take the same number of optimizer steps (the steps of
`classifier.epochs` epochs over the combined set; the real-only run gets more epochs over
its smaller set). With equal epochs instead, the augmented run would also train longer,
and part of its "gain" would be compute, not data; equal steps gives the real-only
baseline every chance, so a positive gain is the generated images' doing. The real-only
runs depend only on the data and are cached across models.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator

from bench.classifiers.train import ClassifierConfig
from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics._intervals import difference_with_interval, normal_with_interval, wilson_se
from bench.metrics._protocol import (
    at_fraction,
    figure,
    fit_and_score,
    n_test,
    real_subset_score,
    save_figure,
    steps_for,
    with_steps,
)
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import balanced_counts, subset_by_counts
from bench.models.base import Generator
from bench.record.values import accuracy_with_interval, diagnostic, reference, score

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
    generator_data: Literal["full", "subset"] = Field(
        "full", description="full: the model as given augments every subset (the paper's "
        "Fig. 5); subset: a generator of the (trainable) source trained on each real subset "
        "alone augments it (Table 4); values named *_subset*")

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
class Augmentation(Metric[AugmentationOptions]):
    """Accuracy on real subsets with and without added generated images (equal optimizer steps)."""

    # 2: 95% intervals (Wilson accuracies, Newcombe gains); 3: generated images from the
    # model's shared stream (Context.generated_by_class)
    version = "3"
    trains_on_model_images = True  # tested on real val: never fed the val split (bench.config.leakage)
    values = {"mean_aug_gain": score("higher", "utility"),
              "aug_gain": diagnostic("higher"), "aug_acc": diagnostic("higher"),
              # generator_data: subset (Table 4): its own columns, never mixed with Fig. 5's
              "mean_aug_gain_subset": score("higher", "utility"),
              "aug_gain_subset": diagnostic("higher"), "aug_acc_subset": diagnostic("higher"),
              "real_acc": reference("higher")}  # the real-only arm: no generator involved
    primary = "mean_aug_gain"  # with generator_data: subset, mean_aug_gain_subset (worker)
    needs_labels = True
    labels_for = "it trains classifiers on real and generated images of each class"
    needs_held_out = True  # tested on the val split

    @property
    def suffix(self) -> str:
        """What the generated arm's value names carry: '' (full) or '_subset'."""
        return "_subset" if self.options.generator_data == "subset" else ""

    def trains_model(self) -> str | None:
        if self.options.generator_data == "subset":
            return ("`generator_data: subset` trains a generator of the model's source on each "
                    "real subset (the paper's Table 4; `generator_data: full` uses the model as "
                    "given)")
        return None

    def num_generated(self, n_real: int, n_train: int) -> int:
        o = self.options
        if o.generated_multiple is not None:
            return max(1, round(o.generated_multiple * n_real))
        return o.num_generated if o.num_generated is not None else n_train

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        cfg = self.options.classifier.resolve(dataset.image_shape)  # auto -> a classifier
        k, available = dataset.num_classes, dataset.class_counts("train")
        subset = self.options.generator_data == "subset"
        if subset and not ctx.can_train_generator():
            raise BenchError("augmentation generator_data: subset needs a trainable model source "
                             "(cgan, baseline) to train a generator on each real subset; use "
                             "`generator_data: full` for this model.")
        rows, generated, tested = [], {}, []
        for f in self.options.fractions:
            counts = balanced_counts(max(k, round(f * len(dataset.train_y))), available)
            n_real = int(counts.sum())
            n_gen = self.num_generated(n_real, len(dataset.train_y))
            steps = steps_for(cfg, n_real + n_gen)
            real = real_subset_score(ctx, dataset, with_steps(cfg, n_real, steps), counts,
                                     f"train on {f:g} of real")
            idx = subset_by_counts(dataset.train_y, counts, ctx.seed)  # the real arm's subset
            gen_counts = balanced_counts(n_gen, np.full(k, n_gen))
            if subset:  # Table 4: a generator that has seen only this subset
                sub_gen = ctx.train_generator(dataset.restrict_train(idx, f"augmentation {f:g}"))
                gx, gy = ctx.generated_by_class(sub_gen, dataset, gen_counts)
            else:
                if n_gen not in generated:  # a fixed num_generated is sampled once for all fractions
                    generated[n_gen] = ctx.generated_by_class(generator, dataset, gen_counts)
                gx, gy = generated[n_gen]
            aug = fit_and_score(cfg, torch.cat([dataset.train_x[idx], gx]),
                                torch.cat([dataset.train_y[idx], gy]), dataset, ctx,
                                f"train on {f:g} of real + generated{' (subset GAN)' if subset else ''}")
            tested.append((n_test(real, dataset), n_test(aug, dataset)))
            rows.append({"fraction": f, "real_images": n_real, "generated_images": n_gen,
                         "steps": steps, "real_acc": real["accuracy"], "aug_acc": aug["accuracy"],
                         "aug_gain": aug["accuracy"] - real["accuracy"]})
        table = pd.DataFrame(rows)
        table["generator_data"] = self.options.generator_data
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
        sfx = self.suffix
        out = normal_with_interval(f"mean_aug_gain{sfx}", float(table["aug_gain"].mean()),
                                   math.sqrt(float(np.mean(var))), lower=-1.0, upper=1.0)
        for r, (nr, na) in zip(rows, tested, strict=True):
            f = r["fraction"]
            out.update(accuracy_with_interval(at_fraction("real_acc", f), float(r["real_acc"]), nr))
            out.update(accuracy_with_interval(at_fraction(f"aug_acc{sfx}", f), float(r["aug_acc"]), na))
            out.update(difference_with_interval(at_fraction(f"aug_gain{sfx}", f), float(r["aug_acc"]),
                                                na, float(r["real_acc"]), nr))
        return out

    @staticmethod
    def _write(ctx: Context, table: pd.DataFrame) -> None:
        table.to_csv(ctx.artifact("augmentation.csv"), index=False, float_format="%.4f")
        fig = figure()
        ax = fig.add_subplot()
        ax.plot(table["fraction"], table["real_acc"], "o-", label="real subset")
        subset = (table["generator_data"] == "subset").all()
        ax.plot(table["fraction"], table["aug_acc"], "s-",
                label="real subset + generated" + (" (GAN trained on the subset)" if subset
                                                   else " (GAN trained on all real data)"))
        ax.set(xscale="log", xlabel="fraction of the real training set", ylabel="val accuracy",
               title="Generated images as augmentation (equal optimizer steps)\n"
               + ("Table 4: generator trained on each subset" if subset
                  else "Fig. 5: one generator trained on the full training split"))
        ax.legend()
        save_figure(fig, ctx.artifact("augmentation.png"))
