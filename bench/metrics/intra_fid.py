"""Intra-FID (Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018): for each
class, the FID between the images generated for that class and the real training images
of that class; the mean over classes is logged, with the 95% t interval of that mean from
the spread of the per-class values (bench.metrics._conditional). Unlike FID it sees the
labels: images of the wrong class raise it. Per-class values are larger than a pooled FID
of the same generator, partly because each class has fewer images (FID is biased upward
at small N), so compare intra-FIDs only with intra-FIDs at the same sample sizes."""

from __future__ import annotations

import warnings

from bench.metrics import METRICS
from bench.metrics._conditional import ConditionalFeatureMetric
from bench.metrics._distribution import FeatureMetricOptions, FrechetReferenceKey
from bench.metrics.functional import FrechetReference
from bench.record.values import score


@METRICS.register("intra_fid")
class IntraFID(ConditionalFeatureMetric[FeatureMetricOptions]):
    """Intra-class FID: per-class FID against that class's real images, mean over classes."""

    # 2: the model's shared sample stream (bench.infra.store); 3: a 95% interval, the t interval of
    # the mean over classes (bench.metrics._conditional)
    version = "3"
    values = {"intra_fid": score("lower", "conditioning")}
    primary = "intra_fid"
    logged = {"fid": "intra_fid"}

    def advised(self, dim):
        return dim + 1, f"a full-rank covariance needs more than d={dim}, the feature dimension"

    def score_class(self, real, fake, c, dataset, ctx):
        key = FrechetReferenceKey(ctx.tags.get("features", ""), dataset.digest, self.real_split, c)
        with warnings.catch_warnings():
            # a class with N <= d is reported once, by class and count, by score_by_class
            warnings.filterwarnings("ignore", "covariance from N=", RuntimeWarning)
            ref = ctx.store.get(key, lambda: FrechetReference.from_features(real.double(),
                                                                            device=ctx.device))
            return {"fid": ref.distance_to_features(fake.double())}
