"""KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel over random
subsets, seeded (torch-fidelity's defaults: 100 subsets of 1000, clamped to the sample count).

Interval of kid_mean: the 2.5th and 97.5th percentiles of the per-subset estimates (widened
to hold the mean). That is the spread of a KID on `subset_size` samples per side, so it is
conservative for the mean over overlapping subsets; a t-interval over the subsets would
instead shrink without bound as `num_subsets` grows, although the subsets reuse the same
samples and add no information past a point."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics.functional import kid
from bench.record.values import diagnostic, score, with_interval


class KIDOptions(FeatureMetricOptions):
    num_subsets: int = Field(100, ge=1)
    subset_size: int = Field(1000, ge=2)


@METRICS.register("kid")
class KID(FeatureMetric[KIDOptions]):
    """Kernel Inception Distance (mean and std over seeded subsets)."""

    version = "3"  # 2: percentile 95% interval over the subsets; 3: the model's shared sample stream (bench.infra.store)
    values = {"kid_mean": score("lower", "quality", headline="fidelity", headline_rank=4), "kid_std": diagnostic("lower")}
    primary = "kid_mean"

    def score(self, real, fake, dataset, ctx):
        o = self.options
        # subsets of at most half of each sample, so that they vary and the interval has a
        # width (bench.metrics.functional.kid); said in the cell's options, not a warning
        m = min(o.subset_size, max(2, min(len(real), len(fake)) // 2))
        out, mmds = kid(real, fake, num_subsets=o.num_subsets, subset_size=m,
                        seed=ctx.seed, device=ctx.device, per_subset=True)
        mean = out["kid_mean"]
        lo, hi = np.percentile(mmds, [2.5, 97.5])
        return {**with_interval("kid_mean", mean, min(lo, mean), max(hi, mean)),
                "kid_std": out["kid_std"]}
