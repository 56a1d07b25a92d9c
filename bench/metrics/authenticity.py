"""Authenticity (Alaa et al. 2022), with the corrected rule: generated sample j with nearest
training sample i is authentic iff d(j, i) > d(i, nearest other training sample)."""

from __future__ import annotations

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric
from bench.metrics.functional import authenticity


@METRICS.register("authenticity")
class Authenticity(FeatureMetric):
    """Share of generated samples that are not closer to a training sample than its neighbours."""

    version = "1"
    higher_is_better = {"authenticity": True}
    primary = "authenticity"

    def score(self, real, fake, dataset, ctx):
        return {"authenticity": authenticity(real, fake, device=ctx.device)}
