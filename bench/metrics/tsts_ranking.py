"""TSTS ranking: does developing models on the model's synthetic data pick the models real data picks?

Synthetic data are shared so that others can develop and *select* predictive models on them.
That is only sound when models trained and tested on synthetic data rank as the same models
trained and tested on real data do. Studies of synthetic health data check exactly that:
PATE-GAN (Jordon, Yoon and van der Schaar, ICLR 2019) trains and tests 12 predictive models
on synthetic data and reports Spearman's rank correlation of their scores with the same
models' scores when trained and tested on real data; the synthetic-competition paper of the
same authors (arXiv 1806.11345, 2018) calls it synthetic ranking agreement. Here:

- K >= 3 classifiers of different capacity or architecture (`classifiers`; the default is one
  CNN at four widths, 32 to 2 channels, 0.99 to 0.36 on real digits). Each is trained
  twice: on the real training split, tested on real val (the real ranking: the real-trained
  classifier every classifier-based metric shares, `Context.real_classifier`, trained once per
  suite); and on `num_train` generated images, tested on `num_test` other generated images
  that share no image with them (the synthetic ranking; bench.metrics._protocol
  `split_proportionally`: a pool that cannot serve both is split in the same proportion,
  the counts in the run tag `tsts_rank_split`), with as many optimizer steps as its real
  training (equal compute: a small synthetic set is not ranked by under-training).
- `tsts_rank_agreement` (score, higher, ideal 1; aspect utility): Spearman's rho between the
  K real-real and the K synthetic-synthetic accuracies (average ranks for ties).
- `tsts_rank_p` (diagnostic, lower): the exact one-sided p-value of rho under "no agreement":
  the share of the K! pairings of the two accuracy vectors whose rho is at least the one
  observed (all K! pairings enumerated up to K = 10; 99,999 random ones beyond). With
  K = 3 it is never below 1/6, with K = 4 never below 1/24: a small K cannot show agreement
  beyond chance, which the asymptotic p of `scipy.stats.spearmanr` hides.
- `tsts_rank_kendall` (diagnostic): Kendall's tau-b of the same two vectors.
- Intervals: a percentile bootstrap over the test images of both sides (`bootstrap`
  resamples; the per-image correctness is reused, no inference per resample).
- No ranking, agreement 0 (run tag `tsts_rank_ties`): when either side's K accuracies are
  all equal (every classifier at 100% on a collapsed model's images), or when the model
  gives fewer than 50 generated test images that are not copies of its training images (a
  pool of 3 images per class, a model that repeats itself): such synthetic data cannot tell
  models apart, which is what this metric asks of it.
- Per classifier: `tsts_real_acc_<i>_<name>` (reference) and `tsts_synthetic_acc_<i>_<name>`
  (diagnostic), and the table `tsts_ranking_classifiers.csv`.

How it differs from the studies: they rank tabular models (logistic regression, random
forests, boosting, MLPs) by AUROC; here the models are image classifiers ranked by accuracy,
and on a pool smaller than `num_train + num_test` the synthetic arm trains on fewer images
than the real one. Train on real, test on synthetic is a different quantity (TRTS): it is
the diagnostic `trts_ranking`.

Conditional only: the accuracies compare a prediction with the label each image was
generated for, so unconditional data or models are refused at validation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from bench.classifiers.train import ClassifierConfig, evaluate, train_classifier
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics._protocol import MIN_TEST_IMAGES, split_proportionally, steps_for, with_steps
from bench.metrics.base import Context, Metric
from bench.models.base import Generator
from bench.record.values import diagnostic, reference, score, with_interval

TIES_TAG = "tsts_rank_ties"
SPLIT_TAG = "tsts_rank_split"
MIN_CLASSIFIERS = 3
EXACT_UP_TO = 10  # K! pairings enumerated up to this K (10! = 3.6 million)
DEFAULT_WIDTHS = (8, 4, 2)  # small_cnn widths beside the data's classifier


def default_classifiers() -> list[ClassifierConfig]:
    """Four classifiers of clearly different capacity, each trained with its full recipe:
    the data's default classifier (`auto`: GAN-test's and GAN-train's, so its real side is
    shared with them) and the small CNN at widths 8, 4 and 2 (on digits, trained on 943
    real images: 0.989, 0.968, 0.833 and 0.362 on real val; seconds each on a CPU)."""
    return [ClassifierConfig()] + [ClassifierConfig(name="small_cnn", args={"width": w})
                                   for w in DEFAULT_WIDTHS]


def distinct_configs(v: list[ClassifierConfig]) -> list[ClassifierConfig]:
    """`v`, or a ValueError naming the first classifier that repeats an earlier one."""
    seen = [c.model_dump_json() for c in v]
    dup = next((i for i, s in enumerate(seen) if s in seen[:i]), None)
    if dup is not None:
        raise ValueError(f"classifiers[{dup}] repeats classifiers[{seen.index(seen[dup])}]: "
                         "the same classifier twice ranks nothing; give each a different "
                         "name, recipe or args")
    return v


class TstsRankingOptions(Options):
    classifiers: list[ClassifierConfig] = Field(
        default_factory=default_classifiers, min_length=MIN_CLASSIFIERS,
        description="the K >= 3 predictive models to rank, each a classifier config "
        "(`{name: ..., epochs: ..., args: ...}`) of a different capacity or architecture; "
        "default: the data's classifier (auto) and small_cnn at widths 8, 4 and 2")
    num_train: int | None = Field(
        None, ge=1, description="generated training images (default: as many as real train), "
        "the first of the model's shared stream")
    num_test: int | None = Field(
        None, ge=1, description="generated test images (default: as many as real val), the "
        "stream's next images, without any copy of a training image")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples of the test images "
                           "for the 95% intervals (0: no interval)")

    @field_validator("classifiers")
    @classmethod
    def _distinct(cls, v: list[ClassifierConfig]) -> list[ClassifierConfig]:
        return distinct_configs(v)


def rank_agreement(real: np.ndarray, generated: np.ndarray) -> tuple[float, float]:
    """(Spearman rho, Kendall tau-b) between two vectors of K accuracies; (0, 0) when either
    side is constant (it ranks nothing, see the module docstring)."""
    from scipy.stats import kendalltau, spearmanr

    if np.ptp(real) == 0 or np.ptp(generated) == 0:
        return 0.0, 0.0
    return float(spearmanr(real, generated).statistic), float(kendalltau(real, generated).statistic)


def _spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho along `axis` (Pearson correlation of average ranks); 0 where a side is
    constant."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x, axis=axis), rankdata(y, axis=axis)
    rx = rx - rx.mean(axis, keepdims=True)
    ry = ry - ry.mean(axis, keepdims=True)
    den = np.sqrt((rx**2).sum(axis) * (ry**2).sum(axis))
    return np.where(den > 0, (rx * ry).sum(axis) / np.where(den > 0, den, 1.0), 0.0)


def exact_p_value(real: np.ndarray, synthetic: np.ndarray, seed: int = 0,
                  chunk: int = 50_000) -> float:
    """One-sided p-value of Spearman's rho under no association: the share of pairings of
    the two vectors whose rho is at least the observed one, over all K! of them up to K =
    `EXACT_UP_TO` (enumerated `chunk` at a time), else over 99,999 random ones ((count + 1)
    / (n + 1)). 1 when either side is constant (no ranking to test)."""
    from scipy.stats import rankdata

    if np.ptp(real) == 0 or np.ptp(synthetic) == 0:
        return 1.0
    rr, rs = rankdata(real), rankdata(synthetic)
    k = len(rr)
    observed = float(_spearman(rr, rs)) - 1e-12  # ties of rho count as at least as large
    if k <= EXACT_UP_TO:
        perms: Iterator[Any] = itertools.permutations(range(k))
        total, extra = math.factorial(k), 0
    else:
        rng = np.random.default_rng(seed)
        total, extra = 99_999, 1
        perms = (rng.permutation(k) for _ in range(total))
    count = 0
    while block := list(itertools.islice(perms, chunk)):
        idx = np.asarray(block, dtype=np.int64)
        rho = _spearman(np.broadcast_to(rr, idx.shape), rs[idx], axis=1)
        count += int((rho >= observed).sum())
    return (count + extra) / (total + extra)


def agreement_columns(real: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`rank_agreement` of every column of two (K, B) accuracy arrays at once: Spearman as
    the Pearson correlation of average ranks, Kendall's tau-b from the signs of the K(K-1)/2
    pairwise differences; 0 for a column where either side is constant."""
    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)

    rho = _spearman(real, generated, axis=0)
    i, j = np.triu_indices(real.shape[0], 1)
    sr, sg = np.sign(real[i] - real[j]), np.sign(generated[i] - generated[j])
    tau = ratio((sr * sg).sum(0), np.sqrt((sr**2).sum(0) * (sg**2).sum(0)))
    return rho, tau


def bootstrap_agreement(real_correct: np.ndarray, gen_correct: np.ndarray, b: int,
                        seed: int, chunk: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Spearman and Kendall of `b` resamples: each resamples the real test images and the
    generated ones (with replacement, independently) and recomputes the K accuracies from
    the (K, N) per-image correctness matrices; `chunk` resamples at a time (memory
    K x chunk x N)."""
    rng = np.random.default_rng(seed)
    nr, ng = real_correct.shape[1], gen_correct.shape[1]
    rhos, taus = [], []
    for start in range(0, b, chunk):
        m = min(chunk, b - start)
        ra = real_correct[:, rng.integers(0, nr, (m, nr))].mean(-1)  # (K, m)
        ga = gen_correct[:, rng.integers(0, ng, (m, ng))].mean(-1)
        rho, tau = agreement_columns(ra, ga)
        rhos.append(rho)
        taus.append(tau)
    return np.concatenate(rhos), np.concatenate(taus)


def _label(i: int, cfg: ClassifierConfig) -> str:
    return f"{i}_{cfg.name}"


@METRICS.register("tsts_ranking")
class TstsRanking(Metric[TstsRankingOptions]):
    """K classifiers trained and tested on generated data rank as on real data (Spearman)."""

    # 2: train and test on synthetic (the studies' TSTS); version 1 trained on real and
    # tested on generated, now the diagnostic trts_ranking
    version = "2"
    values = {
        "tsts_rank_agreement": score(
            "higher", "utility", note="Spearman correlation of the K classifiers' accuracies "
            "trained and tested on real data and trained and tested on generated data; ideal 1 "
            "(the same ranking), 0 when the generated data rank nothing"),
        "tsts_rank_p": diagnostic(
            "lower", note="exact permutation p-value of the agreement (one-sided; at least 1/K!)"),
        "tsts_rank_kendall": diagnostic("higher", note="Kendall tau-b of the same two rankings"),
        "tsts_real_acc_": reference("higher"),
        "tsts_synthetic_acc_": diagnostic("higher"),
    }
    primary = "tsts_rank_agreement"
    needs_labels = True
    labels_for = ("it trains and tests classifiers on the images generated for each class")
    needs_held_out = True  # the real ranking is on the val split

    def sizes(self, dataset: Dataset) -> tuple[int, int]:
        o = self.options
        return (len(dataset.train_y) if o.num_train is None else o.num_train,
                len(dataset.val_y) if o.num_test is None else o.num_test)

    def used_options(self, dataset: Dataset) -> dict[str, Any]:
        out = super().used_options(dataset)
        # by position, so each resolved setting is a run param of its own
        # (metric.classifiers.0.epochs), not one long JSON string
        out["classifiers"] = {str(i): c.resolve(dataset.image_shape).model_dump(mode="json")
                              for i, c in enumerate(self.options.classifiers)}
        out["num_train"], out["num_test"] = self.sizes(dataset)
        return out

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        o = self.options
        split = split_proportionally(ctx, generator, dataset, *self.sizes(dataset))
        ctx.tags[SPLIT_TAG] = split.describe()
        val_y, test_y = dataset.val_y.cpu().numpy(), split.test_y.cpu().numpy()
        rows, real_correct, syn_correct = [], [], []
        for i, cfg in enumerate(o.classifiers):
            real_clf = ctx.real_classifier(dataset, cfg)  # trained once per dataset, config, seed
            real = ctx.real_val_evaluation(dataset, cfg)
            real_correct.append(real.predictions == val_y)
            row = {"classifier": _label(i, real_clf.config),
                   "config": real_clf.config.model_dump_json(), "real_acc": real.accuracy,
                   "synthetic_acc": np.nan}
            if not split.too_small:
                # as many optimizer steps as the real arm: a small pool's set is not ranked
                # by under-training (equal compute, as the protocol metrics compare sets)
                rcfg = cfg.resolve(dataset.image_shape)
                syn_cfg = with_steps(rcfg, len(split.train_y), steps_for(rcfg, len(dataset.train_y)))
                clf = train_classifier(syn_cfg, split.train_x, split.train_y, dataset.num_classes,
                                       ctx.device, ctx.seed, desc=f"train on generated ({i})",
                                       progress=ctx.progress)
                fake = evaluate(clf, split.test_x, split.test_y, ctx.device)
                syn_correct.append(fake.predictions == test_y)
                row["synthetic_acc"] = fake.accuracy
            rows.append(row)
        table = pd.DataFrame(rows)
        real_acc = table["real_acc"].to_numpy(float)
        syn_acc = table["synthetic_acc"].to_numpy(float)
        table["real_rank"] = pd.Series(real_acc).rank(ascending=False).to_numpy()
        table["synthetic_rank"] = pd.Series(syn_acc).rank(ascending=False).to_numpy()
        table.to_csv(ctx.artifact("tsts_ranking_classifiers.csv"), index=False, float_format="%.6g")

        out = {f"tsts_real_acc_{label}": float(r) for label, r in zip(table["classifier"], real_acc,
                                                                      strict=True)}
        if split.too_small:
            ctx.tags[TIES_TAG] = (f"only {len(test_y):,} generated test images that are not copies "
                                  f"of the {len(split.train_y):,} training images (at least "
                                  f"{MIN_TEST_IMAGES} needed): no ranking, agreement 0")
            return {**out, "tsts_rank_agreement": 0.0, "tsts_rank_kendall": 0.0, "tsts_rank_p": 1.0}
        rho, tau = rank_agreement(real_acc, syn_acc)
        constant = [side for side, acc in (("real", real_acc), ("generated", syn_acc))
                    if np.ptp(acc) == 0]
        if constant:
            ctx.tags[TIES_TAG] = (f"every classifier has the same accuracy on the "
                                  f"{' and the '.join(constant)} test images: no ranking, "
                                  "agreement 0")
        out["tsts_rank_p"] = exact_p_value(real_acc, syn_acc, ctx.seed)
        if o.bootstrap:
            rhos, taus = bootstrap_agreement(np.stack(real_correct).astype(np.float32),
                                             np.stack(syn_correct).astype(np.float32),
                                             o.bootstrap, ctx.seed)
            out.update(with_interval("tsts_rank_agreement", rho, *np.percentile(rhos, [2.5, 97.5])))
            out.update(with_interval("tsts_rank_kendall", tau, *np.percentile(taus, [2.5, 97.5])))
        else:
            out.update({"tsts_rank_agreement": rho, "tsts_rank_kendall": tau})
        for label, s in zip(table["classifier"], syn_acc, strict=True):
            out[f"tsts_synthetic_acc_{label}"] = float(s)
        return out
