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

Saturation (the paper's Fig. 4 reads where GAN-train stops improving as the generated set
grows, while the real curve keeps climbing): `saturation_size` is the smallest generated-set
size from which every larger size's GAN-train accuracy lies inside the 95% Wilson interval
[L, H] of the best accuracy (its plateau, within test noise). Its interval is the range of
sizes consistent with the intervals: the same rule with each size's accuracy replaced by its
own interval's upper end (`.lo`: the earliest the plateau may start) or lower end (`.hi`:
the latest). When the curve falls back below L at its largest size, the first size that
meets the rule stands in for the trailing run. When the
last step still improves beyond L, the curve has not saturated within the measured sizes:
logged as the bound `≥ largest size` (`.bound` = +1); when it is flat from the smallest size,
`≤ smallest size` (-1). A generator whose GAN-train saturates early adds nothing with more
images (low diversity), so higher is better; a diagnostic, never ranked.
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


def saturation(sizes: list[int], accs: list[float], n_val: int) -> tuple[int, int, int, int]:
    """(size, lo, hi, bound) of the GAN-train curve's saturation point (module docstring).

    `sizes` ascending, `accs` their accuracies on `n_val` real test images. bound is 0 for
    a size inside the measured range, +1 for "at least the largest size" (still improving
    at its end) and -1 for "at most the smallest" (flat from the first size)."""
    ends = [wilson(round(a * n_val), n_val) for a in accs]
    floor = ends[int(np.argmax(accs))][0]  # L: the best accuracy's lower end

    def first(ok: list[bool]) -> int:
        """Where the trailing run of ok sizes starts; if the largest size is not ok (the
        curve fell back at its end), the first ok size (the best size always is)."""
        i = len(ok)
        while i > 0 and ok[i - 1]:
            i -= 1
        return i if i < len(ok) else ok.index(True)

    point = first([a >= floor for a in accs])
    lo = first([hi >= floor for _, hi in ends])
    hi = first([lo_ >= floor for lo_, _ in ends])
    if len(sizes) > 1 and point == len(sizes) - 1:
        return sizes[-1], sizes[-1], sizes[-1], 1
    if point == 0:
        return sizes[0], sizes[0], sizes[0], -1 if len(sizes) > 1 else 1
    return sizes[point], sizes[min(lo, point)], sizes[max(hi, point)], 0


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
class GanTrainCurve(Metric[GanTrainCurveOptions]):
    """GAN-train accuracy vs. generated-set size beside the real-data curve; effective size."""

    # 2: 95% intervals (Wilson; effective size through the real curve); 3: generated images
    # from the model's shared stream (Context.generated_by_class); 4: off the curve the
    # effective size (and ratio) is a bound (`.bound`, no interval), effective_size_bound dropped;
    # 5: saturation_size (the values of version 4 are unchanged)
    version = "5"
    trains_on_model_images = True  # tested on real val: never fed the val split (bench.config.leakage)
    values = {"effective_size": score("higher", "utility"),
              "best_gan_train_acc": diagnostic("higher"),
              "effective_ratio": diagnostic("higher"),  # effective_size / largest size
              # where GAN-train stops improving with more generated images (Fig. 4)
              "saturation_size": diagnostic("higher"),
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
        n_val = len(dataset.val_y)
        sat, sat_lo, sat_hi, sat_bound = saturation(list(gen), list(gen.values()), n_val)
        self._write(ctx, gen, real, best, size, bound, sat, sat_bound)
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
        sat_values = (bounded("saturation_size", sat, sat_bound) if sat_bound
                      else with_interval("saturation_size", sat, sat_lo, sat_hi))
        return {**accuracy_with_interval("best_gan_train_acc", best, n_val), **eff, **sat_values,
                **accuracy_with_interval("real_curve_best_acc", max(real.values()), n_val)}

    @staticmethod
    def _write(ctx: Context, gen: dict[int, float], real: dict[int, float], best: float,
               size: float, bound: int, sat: int, sat_bound: int) -> None:
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
        ax.axvline(sat, color="tab:orange", lw=0.8, ls=":",
                   label=f"GAN-train saturates at {('<= ', '', '>= ')[sat_bound + 1]}{sat}")
        ax.set(xscale="log", xlabel="training images", ylabel="val accuracy",
               title="GAN-train vs. real learning curve (equal optimizer steps)")
        ax.legend()
        save_figure(fig, ctx.artifact("gan_train_curve.png"))
