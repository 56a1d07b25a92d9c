"""Authenticity (Alaa et al. 2022), with the corrected rule: generated sample j with nearest
training sample i is authentic iff d(j, i) > d(i, nearest other training sample).

Interval: a share of generated samples, so a Wilson interval on the authentic count."""

from __future__ import annotations

from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics._intervals import share_with_interval
from bench.metrics.functional import authenticity
from bench.record.values import score


@METRICS.register("authenticity")
class Authenticity(FeatureMetric[FeatureMetricOptions]):
    """Share of generated samples that are not closer to a training sample than its neighbours."""

    version = "3"  # 2: Wilson 95% interval; 3: the model's shared sample stream (bench.infra.store)
    # the share of generated samples farther from the training data than the data is from
    # itself: 0 = copies, 1 = unrelated images (a constant grey image); the ideal is what
    # held-out real images get, so without a held-out row the value is shown, not ranked
    values = {"authenticity": score(
        "target", "memorisation", ref=True, gate="below_ref", gate_kind="copies",
        gate_note="authenticity below the held-out real row beyond the combined 95% uncertainty: "
        "more generated samples sit nearer a training image than that image's own real neighbour "
        "than real unseen images do")}
    primary = "authenticity"

    def score(self, real, fake, dataset, ctx):
        _, authentic = authenticity(real, fake, device=ctx.device, per_sample=True)
        return share_with_interval("authenticity", authentic)
