"""TRTS ranking (a diagnostic): do generated images rank real-trained classifiers as real val does?

Train on real, test on synthetic (TRTS; Esteban, Hyland and Rätsch, "Real-valued (medical)
time series generation with recurrent conditional GANs", arXiv 1706.02633, 2017), extended
from one classifier to a ranking: train K >= 3 classifiers on the real training split, test
each on the real validation split and on the model's generated images, and compare the two
rankings of the K classifiers by accuracy. It is *not* the TSTS ranking of the healthcare
studies (train and test on synthetic data: `tsts_ranking`): here the classifiers never see a
generated image in training, so any recognisable set ranks classifiers of clearly different
accuracy in order (half the classes dropped, 3 images per class and sigma = 50 noise all got
1.0 on digits, as held-out real images do). Hence every value is a diagnostic, never ranked.

- `trts_rank_agreement` (diagnostic, ideal 1): Spearman's rank correlation
  (`scipy.stats.spearmanr`) between the K real-val accuracies and the K generated-test
  accuracies. 1: the generated images rank the classifiers exactly as real data does; -1:
  they reverse the ranking (they favour the weaker classifiers).
- `trts_rank_kendall` (diagnostic): Kendall's tau-b (`scipy.stats.kendalltau`), the share of
  concordant minus discordant pairs of classifiers.
- Intervals: a percentile bootstrap over the test images (`bootstrap` resamples; both
  test sets resampled independently, the K classifiers' per-image correctness reused, so a
  resample costs no inference). With small K the coefficients take few values (K = 3:
  Spearman in {-1, -0.5, 0.5, 1}), so the interval says how often test-set noise alone
  would change the ranking, not a smooth spread.
- Ties: a side whose K accuracies are all equal ranks nothing (e.g. every classifier at 100%
  on copies of its own training images); both coefficients are then 0 (no agreement) and
  the run tag `trts_rank_ties` says so. Partial ties get average ranks (tau-b).
- Per classifier: `trts_real_acc_<i>_<name>` (reference: a property of the data) and
  `trts_generated_acc_<i>_<name>` (diagnostic), `i` its position in `classifiers`, and the
  table `trts_ranking_classifiers.csv` (configs, accuracies, ranks).

The real side (K trainings on the real split, K evaluations on real val) is the real-trained
classifier of every classifier-based metric (`Context.real_classifier` and
`real_val_evaluation`: on disk per dataset digest, resolved config and seed, and in the
worker's store): a suite of many models trains the K classifiers once, and the default's
first classifier is the one GAN-test and GAN-train use. Per model, only the K evaluations
on its generated images run. The generated images are the first `num_samples` of the
model's shared stream (default: as many as real val, in the training split's balance).

Conditional only: the accuracies compare a classifier's prediction with the label each
image was generated for, so unconditional data or models are refused at validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from bench.classifiers.train import ClassifierConfig, evaluate
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics.base import Context, Metric
from bench.metrics.tsts_ranking import (
    MIN_CLASSIFIERS,
    bootstrap_agreement,
    distinct_configs,
    rank_agreement,
)
from bench.models.base import Generator
from bench.record.values import diagnostic, reference, with_interval

TIES_TAG = "trts_rank_ties"


def default_classifiers() -> list[ClassifierConfig]:
    """Three cheap classifiers of clearly different accuracy: the data's default classifier
    (`auto`: the one GAN-test and GAN-train train, shared with them) with its full recipe,
    then with 3 and with 1 epoch (on digits: about 0.99, 0.89 and 0.31 on real val)."""
    return [ClassifierConfig(), ClassifierConfig(epochs=3), ClassifierConfig(epochs=1)]


class TrtsRankingOptions(Options):
    classifiers: list[ClassifierConfig] = Field(
        default_factory=default_classifiers, min_length=MIN_CLASSIFIERS,
        description="the K >= 3 predictive models to rank, each a classifier config "
        "(`{name: ..., epochs: ..., args: ...}`); default: the data's classifier (auto) "
        "with its full recipe, 3 epochs and 1 epoch")
    num_samples: int | None = Field(
        None, ge=1, description="generated test images (default: as many as real val), the "
        "first of the model's shared stream (the training split's class balance)")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples of the test images "
                           "for the 95% intervals (0: no interval)")

    @field_validator("classifiers")
    @classmethod
    def _distinct(cls, v: list[ClassifierConfig]) -> list[ClassifierConfig]:
        return distinct_configs(v)


def _label(i: int, cfg: ClassifierConfig) -> str:
    return f"{i}_{cfg.name}"


@METRICS.register("trts_ranking")
class TrtsRanking(Metric[TrtsRankingOptions]):
    """Diagnostic: generated test data ranks K real-trained classifiers as real val does (TRTS)."""

    version = "2"  # 2: renamed from tsts_ranking (its values trts_*), a diagnostic
    values = {
        "trts_rank_agreement": diagnostic(
            "higher", note="train on real, test on generated: Spearman correlation of the K "
            "real-trained classifiers' accuracies on real val and on generated images; any "
            "recognisable set gets about 1, so never ranked (tsts_ranking is the study's)"),
        "trts_rank_kendall": diagnostic(
            "higher", note="Kendall tau-b of the same two rankings; ideal 1"),
        "trts_real_acc_": reference("higher"),
        "trts_generated_acc_": diagnostic("higher"),
    }
    primary = ""  # a diagnostic: nothing of it is ranked
    needs_labels = True
    labels_for = ("it scores each classifier by whether it recognises the class each image "
                  "was generated for")
    needs_held_out = True  # the real ranking is on the val split

    def num_samples(self, dataset: Dataset) -> int:
        return len(dataset.val_y) if self.options.num_samples is None else self.options.num_samples

    def used_options(self, dataset: Dataset) -> dict[str, Any]:
        out = super().used_options(dataset)
        # by position, so each resolved setting is a run param of its own
        # (metric.classifiers.0.epochs), not one long JSON string
        out["classifiers"] = {str(i): c.resolve(dataset.image_shape).model_dump(mode="json")
                              for i, c in enumerate(self.options.classifiers)}
        out["num_samples"] = self.num_samples(dataset)
        return out

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        o = self.options
        x, labels = ctx.generated(generator, dataset, self.num_samples(dataset))
        val_y = dataset.val_y.cpu().numpy()
        gen_y = labels.cpu().numpy()
        rows, real_correct, gen_correct = [], [], []
        for i, cfg in enumerate(o.classifiers):
            clf = ctx.real_classifier(dataset, cfg)  # trained once per dataset, config, seed
            real = ctx.real_val_evaluation(dataset, cfg)  # once per dataset, config, seed
            fake = evaluate(clf, x, labels, ctx.device)
            real_correct.append(real.predictions == val_y)
            gen_correct.append(fake.predictions == gen_y)
            rows.append({"classifier": _label(i, clf.config),
                         "config": clf.config.model_dump_json(),
                         "real_val_acc": real.accuracy, "generated_acc": fake.accuracy})
        table = pd.DataFrame(rows)
        real_acc = table["real_val_acc"].to_numpy(float)
        gen_acc = table["generated_acc"].to_numpy(float)
        table["real_rank"] = pd.Series(real_acc).rank(ascending=False).to_numpy()
        table["generated_rank"] = pd.Series(gen_acc).rank(ascending=False).to_numpy()
        table.to_csv(ctx.artifact("trts_ranking_classifiers.csv"), index=False, float_format="%.6g")

        rho, tau = rank_agreement(real_acc, gen_acc)
        constant = [side for side, acc in (("real val", real_acc), ("generated", gen_acc))
                    if np.ptp(acc) == 0]
        if constant:
            ctx.tags[TIES_TAG] = (f"every classifier has the same accuracy on the {' and the '.join(constant)} "
                                  "images: no ranking to compare, agreement 0")
        out: dict[str, float] = {}
        if o.bootstrap and len(gen_y) and len(val_y):
            rhos, taus = bootstrap_agreement(np.stack(real_correct).astype(np.float32),
                                             np.stack(gen_correct).astype(np.float32),
                                             o.bootstrap, ctx.seed)
            out.update(with_interval("trts_rank_agreement", rho, *np.percentile(rhos, [2.5, 97.5])))
            out.update(with_interval("trts_rank_kendall", tau, *np.percentile(taus, [2.5, 97.5])))
        else:
            out.update({"trts_rank_agreement": rho, "trts_rank_kendall": tau})
        for label, r, g in zip(table["classifier"], real_acc, gen_acc, strict=True):
            out[f"trts_real_acc_{label}"] = float(r)
            out[f"trts_generated_acc_{label}"] = float(g)
        return out

