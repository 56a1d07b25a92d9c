"""FID (Heusel et al. 2017): Fréchet distance between Gaussian fits of real and generated
features. The real side's statistics and factorisation are cached per (dataset, extractor).

Interval: a bootstrap over the generated features (rows resampled with replacement, the
Fréchet distance recomputed against the fixed real statistics), `bootstrap` resamples (10
by default, 0 disables). With so few resamples their percentiles mean little, and resampled
sets hold duplicates that bias each distance upwards, so the interval is normal around the
point estimate: fid +- z * (bootstrap standard deviation), clipped at 0. It holds the
generated-sample noise; the real statistics are taken as fixed.
"""

from __future__ import annotations

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions, FrechetReferenceKey
from bench.metrics._intervals import Resamples, normal_with_interval
from bench.metrics.functional import FrechetReference
from bench.record.values import score


class FIDOptions(FeatureMetricOptions):
    bootstrap: Resamples = Field(10, ge=0, description="bootstrap resamples of the generated features "
                           "for the 95% interval (0: no interval); each costs about one more "
                           "Fréchet distance (a covariance and a d x d eigvalsh)")


@METRICS.register("fid")
class FID(FeatureMetric[FIDOptions]):
    """Fréchet Inception Distance (any extractor; eigh-based, float64, N-1 covariance)."""

    version = "3"  # 2: bootstrap 95% interval; 3: the model's shared sample stream (bench.infra.store)
    values = {"fid": score("lower", "quality", headline="fidelity", headline_rank=3)}
    primary = "fid"

    def score(self, real, fake, dataset, ctx):
        key = FrechetReferenceKey(ctx.tags["features"], dataset.digest, self.real_split)
        ref = ctx.store.get(key, lambda: FrechetReference.from_features(real.double(), device=ctx.device))
        fake = fake.double()
        fid = ref.distance_to_features(fake)
        if not self.options.bootstrap:
            return {"fid": fid}
        boot = ref.bootstrap_distances(fake, self.options.bootstrap, seed=ctx.seed)
        return normal_with_interval("fid", fid, float(boot.std(ddof=1)), lower=min(0.0, fid))
