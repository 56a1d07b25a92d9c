"""Authenticity (Alaa et al. 2022), with the corrected rule: generated sample j with nearest
training sample i is authentic iff d(j, i) > d(i, nearest other training sample)."""

from __future__ import annotations

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric
from bench.metrics.functional import authenticity
from bench.values import score


@METRICS.register("authenticity")
class Authenticity(FeatureMetric):
    """Share of generated samples that are not closer to a training sample than its neighbours."""

    version = "1"
    # the share of generated samples farther from the training data than the data is from
    # itself: 0 = copies, 1 = unrelated images (a constant grey image); the ideal is what
    # held-out real images get, so without a held-out row the value is shown, not ranked
    values = {"authenticity": score("target", "memorisation", ref=True)}
    primary = "authenticity"

    def score(self, real, fake, dataset, ctx):
        return {"authenticity": authenticity(real, fake, device=ctx.device)}
