"""KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel over random
subsets, seeded (torch-fidelity's defaults: 100 subsets of 1000, clamped to the sample count)."""

from __future__ import annotations

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics.functional import kid
from bench.values import score, diagnostic


class KIDOptions(FeatureMetricOptions):
    num_subsets: int = Field(100, ge=1)
    subset_size: int = Field(1000, ge=2)


@METRICS.register("kid")
class KID(FeatureMetric):
    """Kernel Inception Distance (mean and std over seeded subsets)."""

    Options = KIDOptions
    version = "1"
    values = {"kid_mean": score("lower", "quality"), "kid_std": diagnostic("lower")}
    primary = "kid_mean"

    def score(self, real, fake, dataset, ctx):
        o = self.options
        return kid(real, fake, num_subsets=o.num_subsets, subset_size=o.subset_size, seed=ctx.seed,
                   device=ctx.device)
