"""Density and coverage (Naeem et al. 2020, k=5): robust to outliers in the real set, unlike
precision and recall."""

from __future__ import annotations

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics.functional import density_coverage


class DCOptions(FeatureMetricOptions):
    k: int = Field(5, ge=1)


@METRICS.register("density_coverage")
class DensityCoverage(FeatureMetric):
    """Density (quality, can exceed 1) and coverage (share of real neighbourhoods hit)."""

    Options = DCOptions
    version = "1"
    higher_is_better = {"density": True, "coverage": True}
    primary = "coverage"

    def score(self, real, fake, dataset, ctx):
        return density_coverage(real, fake, k=self.options.k, device=ctx.device)
