"""Data-copying test C_T (Meehan et al. 2020): per k-means cell of the training features,
a Mann-Whitney z-score of generated vs held-out real distances to the training set.
Negative means copying (generated samples closer to training data than held-out data is);
positive means under-fitting; about 0 is what a good generator gets."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics.functional import data_copying_detail
from bench.record.values import diagnostic, score


class DataCopyingOptions(FeatureMetricOptions):
    num_cells: int = Field(20, ge=1, description="k-means cells on the training features "
                           "(Meehan et al.: 50 for MNIST, 3 for ImageNet)")
    n_init: int = Field(1, ge=1, description="k-means restarts per partition, the "
                        "lowest-inertia one kept (on digits more restarts do not make C_T "
                        "seed-independent: `partitions` does; docs/metrics.md)")
    partitions: int = Field(10, ge=1, description="C_T is averaged over this many k-means "
                            "partitions (seeds seed, seed + 1, ...): with one, the k-means seed "
                            "alone moves C_T by most of its null 95% interval")
    projection: Literal["none", "pca"] = Field(
        "none", description="none | pca: project the features on the training features' first "
        "`pca_dim` principal axes before the cells and distances (Meehan et al.: PCA-64 for "
        "ImageNet)")
    pca_dim: int = Field(64, ge=1, description="PCA dimension when projection is pca")


@METRICS.register("data_copying")
class DataCopying(FeatureMetric[DataCopyingOptions]):
    """C_T statistic of the data-copying test (negative = copies training data)."""

    # 2: the model's shared sample stream (bench.infra.store); 3: the mean over 10 k-means
    # partitions (was one), optional PCA projection; 4: the gate on data_copying_p
    version = "4"
    # negative = copying, positive = under-fitting (a constant image is far positive); the
    # ideal is what held-out real images get, about 0 in theory. C_T is a weighted mean of
    # per-cell Mann-Whitney z-scores (weights w summing to 1), so under "no copying" its sd is
    # sqrt(sum w^2), well below 1 (about 0.25 with 20 cells): a fixed -1.645 sat about 5 of
    # those sds out. The gate reads data_copying_p = Phi(C_T / sd), one-sided, with the board's
    # other copying tests (bench.report.gates: Bonferroni at 5% per board).
    values = {"data_copying_ct": score(
        "target", "memorisation", ref=True, target=0.0,
        note="negative: generated samples nearer the training data than held-out real data is"),
        "data_copying_p": diagnostic(
        "higher", note="Phi(C_T / its null sd sqrt(sum w^2)): the copying gate reads it "
        "(Bonferroni over the board at 5%)", gate="p", gate_at=0.05, gate_kind="copies",
        gate_note="C_T far below 0 for its null sd: generated samples are closer to the training "
        "data than held-out real data is (Meehan et al.'s test, one-sided)")}
    primary = "data_copying_ct"
    needs_held_out = True  # held-out real images are its yardstick (C_T's test set)

    def score(self, real, fake, dataset, ctx):
        test = ctx.real_features(dataset, self.options.features, "val")
        o = self.options
        ct, sd, _ = data_copying_detail(real, test, fake, num_cells=o.num_cells, seed=ctx.seed,
                                        n_init=o.n_init, partitions=o.partitions,
                                        projection=o.projection, pca_dim=o.pca_dim,
                                        device=ctx.device)
        from scipy.special import ndtr

        p = float(ndtr(ct / sd)) if sd > 0 and math.isfinite(ct) else math.nan
        return {"data_copying_ct": ct, "data_copying_p": p}
