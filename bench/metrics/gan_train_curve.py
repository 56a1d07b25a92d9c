"""GAN-train learning curve (Shmelkov et al. 2018, Fig. 4): what is a generated set worth
in real images?

GAN-train accuracy is measured for several generated-set sizes, beside the same classifier
trained on class-balanced real subsets of the same sizes. The generator's best GAN-train
accuracy, read off the real curve, gives its `effective_size`: "these generated images are
worth N real ones". The real curve depends only on the data and is cached across models.

Every point of both curves trains for the same number of optimizer steps (those of
`classifier.epochs` epochs over the largest size): with equal epochs a small set would
also get less training, the real curve would understate small real sets, and the
effective size would be inflated by compute rather than measured in data.

Beyond the real curve: a GAN-train accuracy below the curve's smallest real point (or
above its largest) has no size on the curve. The effective size is then logged as the
bound it is, `effective_size.bound` = -1 ("at most the smallest real size", shown `≤ n`)
or +1 ("at least the largest", `≥ n`), without an interval (bench.record.values.bounded), and
`effective_ratio` likewise. Clamped to a plain number it would tie every generator below
the curve (accuracies 0.50 and 0.79 both "worth 179 images") and rank them as if equal;
as a bound the board never counts it better than a number it might not beat, and
`best_gan_train_acc` still tells them apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from bench.classifiers.train import ClassifierConfig
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics._protocol import (
    effective_size,
    figure,
    fit_and_score,
    real_subset_score,
    save_figure,
    steps_for,
    with_steps,
)
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import balanced_counts, subset_by_counts
from bench.models.base import Generator
from bench.record.values import (
    accuracy_with_interval,
    bounded,
    diagnostic,
    reference,
    score,
    wilson,
    with_interval,
)


class GanTrainCurveOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    fractions: list[float] = Field(
        default_factory=lambda: [0.1, 0.25, 0.5, 1.0],
        description="generated-set sizes as fractions of the real train size (used unless "
        "`sizes` is given); above 1 is allowed, the real curve stops at the full real set",
    )
    sizes: list[int] | None = Field(None, description="absolute generated-set sizes (overrides fractions)")

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or min(v) <= 0:
            raise ValueError("fractions must be a non-empty list of positive numbers")
        return v

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or min(v) < 1):
            raise ValueError("sizes must be a non-empty list of positive image counts")
        return v

    @model_validator(mode="after")
    def _one_of(self):
        if self.sizes is not None and "fractions" in self.model_fields_set:
            raise ValueError("give either `sizes` or `fractions`, not both")
        return self


@METRICS.register("gan_train_curve")
class GanTrainCurve(Metric):
    """GAN-train accuracy vs. generated-set size beside the real-data curve; effective size."""

    Options = GanTrainCurveOptions
    options: GanTrainCurveOptions
    # 2: 95% intervals (Wilson; effective size through the real curve); 3: generated images
    # from the model's shared stream (Context.generated_by_class); 4: off the curve the
    # effective size (and ratio) is a bound (`.bound`, no interval), effective_size_bound dropped
    version = "4"
    trains_on_model_images = True  # tested on real val: never fed the val split (bench.run.leakage)
    values = {"effective_size": score("higher", "utility"),
              "best_gan_train_acc": diagnostic("higher"),
              "effective_ratio": diagnostic("higher"),  # effective_size / largest size
              "real_curve_best_acc": reference("higher")}
    primary = "effective_size"
    needs_labels = True
    labels_for = "it trains classifiers on the images generated for each class"
    needs_held_out = True  # tested on the val split

    def sizes(self, n_train: int) -> list[int]:
        o = self.options
        raw = o.sizes if o.sizes is not None else [max(1, round(f * n_train)) for f in o.fractions]
        return sorted(set(raw))

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        cfg = self.options.classifier.resolve(dataset.image_shape)  # auto -> a classifier
        k, n_train = dataset.num_classes, len(dataset.train_y)
        sizes = self.sizes(n_train)
        # one generated set at the largest size; smaller sets are nested class-balanced subsets
        gx, gy = ctx.generated_by_class(generator, dataset,
                                        balanced_counts(sizes[-1], np.full(k, sizes[-1])))
        steps = steps_for(cfg, sizes[-1])
        gen = {}
        for n in sizes:
            idx = subset_by_counts(gy, balanced_counts(n, np.bincount(gy.numpy(), minlength=k)), ctx.seed)
            gen[n] = fit_and_score(with_steps(cfg, len(idx), steps), gx[idx], gy[idx], dataset, ctx,
                                   f"GAN-train on {n}")["accuracy"]
        available, real = dataset.class_counts("train"), {}
        for n in sorted({min(s, n_train) for s in sizes}):
            counts = balanced_counts(n, available)
            real[n] = real_subset_score(ctx, dataset, with_steps(cfg, int(counts.sum()), steps), counts,
                                        f"train on {n} real")["accuracy"]
        best = max(gen.values())
        real_sizes, real_accs = np.array(list(real)), np.array(list(real.values()))
        size, bound = effective_size(real_sizes, real_accs, best)
        self._write(ctx, gen, real, best, size, bound)
        n_val = len(dataset.val_y)
        ratio = size / sizes[-1]
        if bound:  # off the measured curve: only a bound, which has no interval
            eff = {**bounded("effective_size", size, bound), **bounded("effective_ratio", ratio, bound)}
        else:
            # intervals: every point is scored on real val, so an accuracy gets its Wilson
            # interval over n_val images (test-set noise; `best` is a max over sizes, read as
            # one accuracy). The effective size's interval is that of best_gan_train_acc
            # mapped through the real curve (monotone, so it holds the estimate; an end past
            # the curve stops at its last point); the real curve's own noise is not in it.
            size_lo, size_hi = (effective_size(real_sizes, real_accs, a)[0]
                                for a in wilson(round(best * n_val), n_val))
            eff = {**with_interval("effective_size", size, size_lo, size_hi),
                   **with_interval("effective_ratio", ratio, size_lo / sizes[-1], size_hi / sizes[-1])}
        return {**accuracy_with_interval("best_gan_train_acc", best, n_val), **eff,
                **accuracy_with_interval("real_curve_best_acc", max(real.values()), n_val)}

    @staticmethod
    def _write(ctx: Context, gen: dict[int, float], real: dict[int, float], best: float,
               size: float, bound: int) -> None:
        table = pd.DataFrame({"size": sorted(set(gen) | set(real))})
        table["gan_train_acc"] = table["size"].map(gen)
        table["real_acc"] = table["size"].map(real)
        table.to_csv(ctx.artifact("gan_train_curve.csv"), index=False, float_format="%.4f")
        fig = figure()
        ax = fig.add_subplot()
        ax.plot(list(real), list(real.values()), "o-", label="real subsets")
        ax.plot(list(gen), list(gen.values()), "s-", label="generated (GAN-train)")
        ax.axhline(best, color="grey", lw=0.8, ls=":")
        ax.axvline(size, color="grey", lw=0.8, ls="--", label=f"effective size {('<= ', '', '>= ')[bound + 1]}{size:.0f}")
        ax.set(xscale="log", xlabel="training images", ylabel="val accuracy",
               title="GAN-train vs. real learning curve (equal optimizer steps)")
        ax.legend()
        save_figure(fig, ctx.artifact("gan_train_curve.png"))
