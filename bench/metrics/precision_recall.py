"""Improved precision and recall (Kynkäänniemi et al. 2019, k=3): precision is the share of
generated samples inside the real k-NN manifold, recall the share of real samples inside the
generated one. Radii use `<=` (as torch-fidelity and StyleGAN2-ADA).

Intervals: both are shares of samples (generated ones in the real manifold, real ones in the
generated manifold), so Wilson intervals on those counts. They hold the noise of the samples
counted, with the k-NN radii taken as fixed."""

from __future__ import annotations

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics._intervals import share_with_interval
from bench.metrics.functional import precision_recall
from bench.record.values import score


class PROptions(FeatureMetricOptions):
    k: int = Field(3, ge=1)


@METRICS.register("precision_recall")
class PrecisionRecall(FeatureMetric[PROptions]):
    """Improved precision (quality) and recall (coverage of the real data), k-NN manifolds."""

    version = "3"  # 2: Wilson 95% intervals; 3: the model's shared sample stream (bench.infra.store)
    values = {"precision": score("higher", "quality", headline="fidelity", headline_rank=1),
              "recall": score("higher", "diversity", headline="coverage", headline_rank=1)}
    primary = "precision"

    def score(self, real, fake, dataset, ctx):
        _, samples = precision_recall(real, fake, k=self.options.k, device=ctx.device, per_sample=True)
        return {**share_with_interval("precision", samples["precision"]),
                **share_with_interval("recall", samples["recall"])}
