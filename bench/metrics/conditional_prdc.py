"""Conditional precision, recall, density and coverage: the k-NN metrics of Kynkäänniemi et
al. 2019 and Naeem et al. 2020, computed per class between the images generated for class
c and the real training images of class c, averaged over classes (95% intervals: the t
interval of the mean over classes, bench.metrics._conditional). A generator that ignores
its label puts other classes' images into class c: they fall outside class c's real
neighbourhoods (precision, density drop) and leave them unvisited (coverage, recall
drop), while the unconditional metrics see nothing wrong."""

from __future__ import annotations

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics._conditional import ConditionalFeatureMetric
from bench.metrics._distribution import FeatureMetricOptions
from bench.metrics.functional import prdc
from bench.record.values import diagnostic, score


class CondPRDCOptions(FeatureMetricOptions):
    k: int = Field(5, ge=1, description="nearest neighbours for the radii (Naeem et al.: 5)")


@METRICS.register("conditional_prdc")
class ConditionalPRDC(ConditionalFeatureMetric[CondPRDCOptions]):
    """Per-class precision, recall, density and coverage (k-NN), mean over classes."""

    # 2: the model's shared sample stream (bench.infra.store); 3: 95% intervals, the t interval of
    # the mean over classes (bench.metrics._conditional)
    version = "3"
    # density is 1 in expectation for samples from the real class distribution (as for the
    # unconditional density): above 1 means crowding, not better quality
    # recall is shown, not ranked: a generator that ignores its label spreads every class's
    # images over all classes, and those wide k-NN balls cover class c's real images
    # (label_shuffle on digits: 0.99, above held-out real data's 0.85)
    values = {"cond_precision": score("higher", "conditioning"),
              "cond_recall": diagnostic("higher", aspect="conditioning",
                                        note="inflated by generated outliers: a label-ignoring "
                                             "generator scores near 1"),
              "cond_density": score("target", "conditioning", ref=True, target=1.0),
              "cond_coverage": score("higher", "conditioning")}
    # coverage as the one ranked value: it drops both for images of the wrong class and for
    # within-class mode dropping, it is robust to real outliers unlike recall (Naeem et al.),
    # and it is the primary of the unconditional density_coverage, so the two rank alike
    primary = "cond_coverage"
    logged = {"precision": "cond_precision", "recall": "cond_recall",
              "density": "cond_density", "coverage": "cond_coverage"}

    def need(self):
        k = self.options.k
        return k + 1, f"k+1 with k={k}, for the k-nearest-neighbour radii"

    def fix(self):
        return "lower k, or " + super().fix()

    def score_class(self, real, fake, c, dataset, ctx):
        return prdc(real, fake, k=self.options.k, device=ctx.device)
