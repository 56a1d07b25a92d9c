"""Shared shape of the class-conditional distribution metrics (intra-FID, conditional
PRDC, conditional KID).

Unconditional metrics compare the pooled generated set with the pooled real set, so they
cannot see labels: a generator that ignores its label (reference kind `label_shuffle`:
the right images in the wrong classes) scores like real data on them. These metrics split
both sets by class, the real features (the same cached ones as the unconditional metrics)
by the training labels and the generated ones by the label each image was generated for,
score each class against that class's real images with a plain function from
`bench.metrics.functional`, and log the unweighted mean over classes (Miyato & Koyama
2018 average intra-FID over classes the same way). A per-class table is logged as the
artifact `<metric>_per_class.csv`.

Few images per class: a class with fewer real or generated images than the metric needs
at all (2 for a covariance or an MMD, k+1 for k-NN radii) is left out of the mean; a class
whose value is computable but biased (FID from no more images than feature dimensions) is
kept. Both are reported by class and count, as a warning and as the run tag
`few_images_per_class`. Only when no class at all can be scored does the metric refuse.

Intervals: each logged mean comes with a 95% interval (`<value>.lo`/`.hi`), the Student t
interval of the mean of the per-class values (`class_mean_interval`: mean ± t(0.975, n-1)
x sd / sqrt(n) over the n scored classes). It measures the spread over classes: how much
the mean would move with other classes of the same kind, or with per-class values this
scattered, not the sampling noise of the images within one class (a per-class bootstrap
would redo every class's FID, covariance square root included, B times). Two models whose
mean differs by less than the classes disagree among themselves are not separated on the
board. With one scored class there is no spread and no interval; the interval is not
clipped to the value's range (a coverage may show an upper end above 1).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from bench.core.errors import BenchError
from bench.data.base import Dataset
from bench.metrics._distribution import FO, FeatureMetric
from bench.metrics.base import Context
from bench.models.base import Generator
from bench.record.values import with_interval

TAG = "few_images_per_class"
_MAX_LISTED = 20  # classes named in a warning or tag; the rest are counted


def split_by_class(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """Rows of x for each class 0..num_classes-1 (empty where a class has none)."""
    y = torch.as_tensor(y).cpu().long()
    if len(y) != len(x):
        raise ValueError(f"{len(x)} feature rows but {len(y)} labels")
    if len(y) and not 0 <= int(y.min()) <= int(y.max()) < num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}")
    order = torch.argsort(y, stable=True)
    counts = torch.bincount(y, minlength=num_classes).tolist()
    return [x[idx] for idx in torch.split(order, counts)]


def class_mean_interval(values: Any, confidence: float = 0.95) -> tuple[float, float, float] | None:
    """(mean, lo, hi) of the finite per-class `values`: the Student t interval of their mean
    (the spread over classes, see the module docstring); None with fewer than two classes."""
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]  # the classes left out of the mean
    if len(v) < 2:
        return None
    mean = float(v.mean())
    half = float(t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return (mean, mean - half, mean + half) if np.isfinite(half) else None


def _listing(items: list[str]) -> str:
    more = len(items) - _MAX_LISTED
    return "; ".join(items[:_MAX_LISTED]) + (f"; and {more} more classes" if more > 0 else "")


class ConditionalFeatureMetric(FeatureMetric[FO]):
    """A FeatureMetric scored per class; subclasses say what one class's values are.

    `logged` maps the per-class value names returned by `score_class` to the names logged
    for their mean over classes; per-class values not in it only go to the CSV table.
    """

    logged: ClassVar[dict[str, str]] = {}
    needs_labels = True
    labels_for = "it compares the images generated for each class with that class's real images"

    # ------------------------------------------------------------ per metric
    def need(self) -> tuple[int, str]:
        """Fewest real and generated images a class needs to be scored at all, and why."""
        return 2, "the least a covariance or an MMD needs"

    def advised(self, dim: int) -> tuple[int, str] | None:
        """Fewest images per class below which the value is computable but biased, and why."""
        return None

    def fix(self) -> str:
        """What a user can change when classes have too few images."""
        return ("raise num_samples (generated images per class follow the real training split's "
                "class balance); classes short of real images need more real data or leaving "
                "this metric out for this dataset")

    def score_class(self, real: torch.Tensor, fake: torch.Tensor, c: int, dataset: Dataset,
                    ctx: Context) -> dict[str, float]:
        raise NotImplementedError

    # ------------------------------------------------------------ shared
    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        spec = self.options.features
        real = ctx.real_features(dataset, spec, self.real_split)
        fake, fake_y = ctx.fake_features_and_labels(generator, dataset, spec, self.options.num_samples)
        real_y = dataset.train_y if self.real_split == "train" else dataset.val_y
        return {**self.score_by_class(real, real_y, fake, fake_y, dataset, ctx),
                **self.copies(generator, dataset, ctx, real, fake)}

    def score_by_class(self, real: Any, real_y: Any, fake: Any, fake_y: Any, dataset: Dataset,
                       ctx: Context) -> dict[str, float]:
        """Score every class, write the per-class table, report short classes, return means."""
        real, fake = torch.as_tensor(real), torch.as_tensor(fake)
        k = dataset.num_classes
        reals, fakes = split_by_class(real, real_y, k), split_by_class(fake, fake_y, k)
        need, need_why = self.need()
        advised = self.advised(int(real.shape[1]))
        rows: list[dict[str, Any]] = []
        skipped: list[str] = []
        biased: list[str] = []
        for c in range(k):
            r, f = reals[c], fakes[c]
            name = dataset.class_names[c] if c < len(dataset.class_names) else str(c)
            label = f"class {c}" if name == str(c) else f"class {c} ({name})"
            counts = f"{label}: {len(r)} real / {len(f)} generated images"
            row: dict[str, Any] = {"class": name, "n_real": len(r), "n_generated": len(f)}
            if min(len(r), len(f)) < need:
                skipped.append(counts)
                row.update(dict.fromkeys(self.logged, float("nan")))
            else:
                if advised is not None and min(len(r), len(f)) < advised[0]:
                    biased.append(counts)
                row.update(self.score_class(r, f, c, dataset, ctx))
            rows.append(row)
        if len(skipped) == k:
            raise BenchError(
                f"{self.name}: no class has enough images to be scored (each needs at least "
                f"{need} real and {need} generated images: {need_why}): {_listing(skipped)}. "
                f"Fix: {self.fix()}.")
        notes = []
        if skipped:
            notes.append(f"{len(skipped)} of {k} classes have fewer than {need} real or generated "
                         f"images ({need_why}) and are left out of the mean: {_listing(skipped)}")
        if biased and advised is not None:  # only advised classes are biased
            notes.append(f"{len(biased)} of {k} classes have fewer than {advised[0]} real or "
                         f"generated images ({advised[1]}), so their values are biased: "
                         f"{_listing(biased)}")
        if notes:
            msg = ". ".join(notes)
            ctx.tags[TAG] = msg[:4000]
            warnings.warn(f"{self.name}: few images per class: {msg}. Fix: {self.fix()}.",
                          RuntimeWarning, stacklevel=2)
        table = pd.DataFrame(rows)
        table.to_csv(ctx.artifact(f"{self.name}_per_class.csv"), index=False, float_format="%.6g")
        out: dict[str, float] = {}
        for col, name in self.logged.items():
            per_class = table[col].to_numpy(dtype=float)
            ci = class_mean_interval(per_class)
            out.update({name: float(np.nanmean(per_class))} if ci is None else with_interval(name, *ci))
        return out
