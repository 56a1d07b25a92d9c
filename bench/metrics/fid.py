"""FID (Heusel et al. 2017): Fréchet distance between Gaussian fits of real and generated
features. The real side's statistics and factorisation are cached per (dataset, extractor)."""

from __future__ import annotations

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric
from bench.metrics.functional import FrechetReference
from bench.values import score


@METRICS.register("fid")
class FID(FeatureMetric):
    """Fréchet Inception Distance (any extractor; eigh-based, float64, N-1 covariance)."""

    version = "1"
    values = {"fid": score("lower", "quality")}
    primary = "fid"

    def score(self, real, fake, dataset, ctx):
        key = f"fid-ref:{ctx.tags['features']}:{dataset.digest}:{self.real_split}"
        if key not in ctx._memo:
            ctx._memo[key] = FrechetReference.from_features(real.double(), device=ctx.device)
        return {"fid": ctx._memo[key].distance_to_features(fake.double())}
