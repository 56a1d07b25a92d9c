"""Conditional KID: KID (Bińkowski et al. 2018, unbiased MMD^2 with the cubic polynomial
kernel over seeded subsets) per class between the images generated for class c and the
real training images of class c, averaged over classes (95% interval: the t interval of
the mean over classes, bench.metrics._conditional). KID is unbiased at any subset size,
so it suits the small per-class sets better than intra-FID."""

from __future__ import annotations

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._conditional import ConditionalFeatureMetric
from bench.metrics._distribution import FeatureMetricOptions
from bench.metrics.functional import kid
from bench.record.values import score


class CondKIDOptions(FeatureMetricOptions):
    num_subsets: int = Field(100, ge=1)
    subset_size: int = Field(1000, ge=2, description="per class; clamped to half the class's image count")


@METRICS.register("conditional_kid")
class ConditionalKID(ConditionalFeatureMetric[CondKIDOptions]):
    """Per-class KID against that class's real images, mean over classes."""

    # 2: the model's shared sample stream (bench.infra.store); 3: a 95% interval, the t interval of
    # the mean over classes (bench.metrics._conditional)
    version = "3"
    values = {"cond_kid": score("lower", "conditioning")}
    primary = "cond_kid"
    logged = {"kid_mean": "cond_kid"}  # the per-class table also has kid_std

    def score_class(self, real, fake, c, dataset, ctx):
        o = self.options
        # clamped here to half of each class's sample (small classes are the norm): subsets
        # drawn from half the sample or less keep the spread over subsets an honest interval
        m = max(2, min(o.subset_size, len(real) // 2, len(fake) // 2))
        return kid(real, fake, num_subsets=o.num_subsets, subset_size=m, seed=ctx.seed,
                   device=ctx.device)
