"""Density and coverage (Naeem et al. 2020, k=5): robust to outliers in the real set, unlike
precision and recall.

Intervals: density is a mean over generated samples of (real balls holding it) / k, a
normal-approximation interval of that mean; coverage is a share of real samples, a Wilson
interval on their count. Both take the k-NN radii as fixed."""

from __future__ import annotations

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics._intervals import mean_with_interval, share_with_interval
from bench.metrics.functional import density_coverage
from bench.record.values import score


class DCOptions(FeatureMetricOptions):
    k: int = Field(5, ge=1)


@METRICS.register("density_coverage")
class DensityCoverage(FeatureMetric[DCOptions]):
    """Density (quality, can exceed 1) and coverage (share of real neighbourhoods hit)."""

    version = "3"  # 2: 95% intervals (normal density, Wilson coverage); 3: the model's shared sample stream (bench.infra.store)
    # density is 1 in expectation for samples from the real distribution; above 1 means
    # samples crowd where real samples are dense, not better quality
    values = {"density": score("target", "quality", ref=True, target=1.0, headline="fidelity",
                                 headline_rank=2),
              "coverage": score("higher", "diversity", headline="coverage", headline_rank=2)}
    primary = "coverage"

    def score(self, real, fake, dataset, ctx):
        out, samples = density_coverage(real, fake, k=self.options.k, device=ctx.device,
                                        per_sample=True)
        return {**mean_with_interval("density", samples["density"], out["density"], lower=0.0),
                **share_with_interval("coverage", samples["coverage"])}
