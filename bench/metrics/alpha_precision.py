"""α-precision, β-recall and authenticity (Alaa et al., ICML 2022): the paper's three numbers.

IPα (quality): how the share of generated samples inside the α-support of the real data
(the ball around the real features' mean holding a fraction α of the real samples) follows
α, integrated over α. IRβ (diversity): the reference codes' estimator (synthcity 0.2.12
``AlphaPrecision``, equal to it): a real sample counts at β when its nearest generated sample
is no farther than its nearest other real sample and lies in the β-support of the generated
samples nearest to the real ones; about 0.5 for a fresh sample of the real data, 1 for copies,
so its ideal is the held-out real row's value. `beta_recall_ball` (diagnostic): the previous
ball estimate of R(β). Authenticity (memorisation): bench.metrics.authenticity's value, on
the same features. The curves are saved as `alpha_beta_curves.png` and `alpha_beta_curves.csv`
(the paper's P(α) and R(β) plots). Definitions and differences from the reference codes:
bench.metrics.functional.alpha_precision.

Intervals: IPα, a bootstrap over the real and generated samples' distances to the fixed real
mean; IRβ, a bootstrap over the real samples' (gate, distance) pairs, neighbours and the
generated sample held fixed. Both cheap (no feature is touched, `bootstrap` times), value
+- z * bootstrap sd clipped to [0, 1] (normal, not percentile: at the ceiling of 1 a resample
can only move the curve off the diagonal, so percentiles would sit below the value).
Authenticity: Wilson on the authentic count, as the `authenticity` metric.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import Field

from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics._intervals import Resamples, normal_with_interval, share_with_interval
from bench.metrics._protocol import figure, save_figure
from bench.metrics.authenticity import Authenticity
from bench.metrics.base import Context
from bench.metrics.functional.alpha_precision import AlphaBetaDetails, alpha_precision_beta_recall
from bench.record.values import diagnostic, score


class AlphaPrecisionOptions(FeatureMetricOptions):
    steps: int = Field(100, ge=2, description="points of the α grid in (0, 1) the curves are "
                       "measured at and IPα is integrated over (midpoint rule); IRβ is integrated "
                       "on the reference codes' 30 points linspace(0, 1, 30)")
    bootstrap: Resamples = Field(200, ge=0, description="bootstrap resamples for the 95% intervals of "
                           "IPα and IRβ (0: none); each resamples per-sample 1-d arrays")
    authenticity: bool = Field(True, description="also log authenticity (the paper's third "
                               "number; a second nearest-neighbour search, quadratic in the "
                               "number of samples like β-recall's)")


@METRICS.register("alpha_precision")
class AlphaPrecision(FeatureMetric[AlphaPrecisionOptions]):
    """α-precision / β-recall curves and their integrals, with authenticity (Alaa et al. 2022)."""

    version = "2"  # 2: β-recall is the reference codes' estimator (k-NN gate), ideal →ref
    # IPα is 1 on the diagonal (generated samples exactly as typical of the real data as
    # real samples are) and at most 1, so higher is the same ranking as "closest to 1".
    # IRβ with the reference codes' k-NN gate is about 0.5 for a fresh real sample, 1 for
    # copies of the training set and can exceed the held-out value for a too-narrow model
    # (sd 0.5 instead of 1: 0.61 vs 0.49), so its ideal is the held-out real row's value.
    values = {
        "alpha_precision": score("higher", "quality", note="1 - 2 x area between P(α) and the diagonal"),
        "beta_recall": score("target", "diversity", ref=True, note="reference codes' IRβ (k-NN "
                             "gate): about 0.5 for real data, 1 for copies; ideal: the held-out row"),
        "beta_recall_ball": diagnostic("higher", note="previous estimate: real samples in balls "
                                       "around the generated mean; blind to what keeps the "
                                       "distance-to-centre distribution"),
        "authenticity": Authenticity.values["authenticity"],
    }
    primary = "alpha_precision"

    def score(self, real: Any, fake: Any, dataset: Dataset, ctx: Context) -> dict[str, float]:
        o = self.options
        values, details = alpha_precision_beta_recall(
            real, fake, steps=o.steps, authenticity=o.authenticity, device=ctx.device, details=True)
        out: dict[str, float] = {}
        boot = details.bootstrap(o.bootstrap, seed=ctx.seed) if o.bootstrap else {}
        for name in ("alpha_precision", "beta_recall"):
            v = values[name]
            out.update(normal_with_interval(name, v, float(boot[name].std(ddof=1)),
                                            lower=min(0.0, v), upper=max(1.0, v))
                       if boot else {name: v})
        out["beta_recall_ball"] = values["beta_recall_ball"]
        if details.authentic is not None:
            out.update(share_with_interval("authenticity", details.authentic))
        self._write(ctx, details, values)
        return out

    @staticmethod
    def _write(ctx: Context, d: AlphaBetaDetails, values: dict[str, float]) -> None:
        pd.DataFrame({"alpha": d.grid, "alpha_precision": d.alpha_precision,
                      "beta_recall": d.beta_recall}).to_csv(
            ctx.artifact("alpha_beta_curves.csv"), index=False, float_format="%.6g")
        fig = figure(9.0, 4.0)
        for i, (name, label, sym) in enumerate((("alpha_precision", "α-precision", "α"),
                                                ("beta_recall", "β-recall", "β"))):
            ax = fig.add_subplot(1, 2, i + 1)
            ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="ideal (diagonal)")
            ax.plot(d.grid, getattr(d, name), lw=1.5,
                    label=f"I{'P' if i == 0 else 'R'}{sym} = {values[name]:.3f}")
            ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=sym, ylabel=label, aspect="equal",
                   title=f"{label} curve")
            ax.legend(loc="lower right")
        save_figure(fig, ctx.artifact("alpha_beta_curves.png"))
