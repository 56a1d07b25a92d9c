"""Data-copying test C_T (Meehan et al. 2020): per k-means cell of the training features,
a Mann-Whitney z-score of generated vs held-out real distances to the training set.
Negative means copying (generated samples closer to training data than held-out data is);
positive means under-fitting; about 0 is what a good generator gets."""

from __future__ import annotations

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics.functional import data_copying
from bench.values import score


class DataCopyingOptions(FeatureMetricOptions):
    num_cells: int = Field(20, ge=1, description="k-means cells on the training features")


@METRICS.register("data_copying")
class DataCopying(FeatureMetric):
    """C_T statistic of the data-copying test (negative = copies training data)."""

    Options = DataCopyingOptions
    options: DataCopyingOptions
    version = "2"  # 2: the model's shared sample stream (bench.store)
    # negative = copying, positive = under-fitting (a constant image is far positive); the
    # ideal is what held-out real images get, about 0 in theory
    values = {"data_copying_ct": score("target", "memorisation", ref=True, target=0.0)}
    primary = "data_copying_ct"

    def score(self, real, fake, dataset, ctx):
        test = ctx.real_features(dataset, self.options.features, "val")
        ct = data_copying(real, test, fake, num_cells=self.options.num_cells, seed=ctx.seed,
                          device=ctx.device)
        return {"data_copying_ct": ct}
