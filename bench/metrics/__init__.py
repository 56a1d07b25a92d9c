"""Metrics. Add one: a module with one `@METRICS.register("name")` Metric class.

Plain functions on feature arrays (FID, KID, ...) live in `bench.metrics.functional`
for use from notebooks; the registered classes wrap them for suites.
"""

from bench.core.registry import Registry
from bench.metrics.base import Context, Metric

METRICS: Registry[type[Metric]] = Registry(
    "metrics",
    [
        "bench.metrics.gan_train",
        "bench.metrics.gan_test",
        "bench.metrics.fid",
        "bench.metrics.kid",
        "bench.metrics.inception_score",
        "bench.metrics.precision_recall",
        "bench.metrics.density_coverage",
        "bench.metrics.intra_fid",
        "bench.metrics.conditional_prdc",
        "bench.metrics.conditional_kid",
        "bench.metrics.swd",
        "bench.metrics.authenticity",
        "bench.metrics.alpha_precision",
        "bench.metrics.data_copying",
        "bench.metrics.ppl",
        "bench.metrics.embedding_plot",
        "bench.metrics.gan_train_curve",
        "bench.metrics.augmentation",
        "bench.metrics.balancing",
        "bench.metrics.nearest_neighbours",
        "bench.metrics.latent_projection",
        "bench.metrics.tsts_ranking",
        "bench.metrics.trts_ranking",
    ],
    base=Metric,
)

__all__ = ["METRICS", "Context", "Metric"]
