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
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from bench.data.base import Dataset
from bench.errors import BenchError
from bench.metrics._distribution import FeatureMetric
from bench.metrics.base import Context
from bench.models.base import Generator

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


def _listing(items: list[str]) -> str:
    more = len(items) - _MAX_LISTED
    return "; ".join(items[:_MAX_LISTED]) + (f"; and {more} more classes" if more > 0 else "")


class ConditionalFeatureMetric(FeatureMetric):
    """A FeatureMetric scored per class; subclasses say what one class's values are.

    `logged` maps the per-class value names returned by `score_class` to the names logged
    for their mean over classes; per-class values not in it only go to the CSV table.
    """

    logged: ClassVar[dict[str, str]] = {}

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
        return self.score_by_class(real, real_y, fake, fake_y, dataset, ctx)

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
        return {out: float(np.nanmean(table[col].to_numpy(dtype=float)))
                for col, out in self.logged.items()}
