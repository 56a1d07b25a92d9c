"""α-precision, β-recall and authenticity (Alaa et al., ICML 2022): the paper's three numbers.

IPα (quality): how the share of generated samples inside the α-support of the real data
(the ball around the real features' mean holding a fraction α of the real samples) follows
α, integrated over α; IRβ (diversity): the same for real samples inside the β-supports of
the generated data; authenticity (memorisation): bench.metrics.authenticity's value, on the
same features. The curves are saved as `alpha_beta_curves.png` and `alpha_beta_curves.csv`
(the paper's P(α) and R(β) curve plots). Where we differ from the paper (no learned
one-class embedding; the paper's definition of β-recall rather than its code's k-NN gate):
bench.metrics.functional.alpha_precision.

Intervals: IPα and IRβ, a bootstrap over the real and generated samples (their distances to
the fixed centres resampled, `bootstrap` times, cheap: no feature is touched), value +- z *
bootstrap sd clipped to [0, 1] (normal, not percentile: at the ceiling of 1 a resample can
only move the curve off the diagonal, so percentiles would sit below the value). Authenticity:
Wilson on the authentic count, as the `authenticity` metric.
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
from bench.values import score


class AlphaPrecisionOptions(FeatureMetricOptions):
    steps: int = Field(100, ge=2, description="points of the α (and β) grid in (0, 1) the curves "
                       "are measured at and integrated over (midpoint rule)")
    bootstrap: Resamples = Field(200, ge=0, description="bootstrap resamples for the 95% intervals of "
                           "IPα and IRβ (0: none); each resamples two 1-d distance arrays")
    authenticity: bool = Field(True, description="also log authenticity (the paper's third "
                               "number; the only part quadratic in the number of samples)")


@METRICS.register("alpha_precision")
class AlphaPrecision(FeatureMetric):
    """α-precision / β-recall curves and their integrals, with authenticity (Alaa et al. 2022)."""

    Options = AlphaPrecisionOptions
    options: AlphaPrecisionOptions
    version = "1"
    # IPα and IRβ are 1 on the diagonal (generated samples exactly as typical of the real
    # data as real samples are) and at most 1: the curves are non-decreasing, and the area
    # between a curve and the diagonal is never negative. Higher is therefore the same
    # ranking as "closest to 1", the paper's ideal. Not `ref`: the held-out real row gets
    # slightly less than 1 only from sampling noise (about 0.97-0.98 at 2,000 samples), and a
    # model nearer the diagonal than that row is not worse for it. The training-set copy
    # scores 1 as well, like precision: authenticity is the number that catches it.
    values = {
        "alpha_precision": score("higher", "quality", note="1 - 2 x area between P(α) and the diagonal"),
        "beta_recall": score("higher", "diversity", note="1 - 2 x area between R(β) and the diagonal"),
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
