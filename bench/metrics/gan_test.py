"""GAN-test (Shmelkov et al. 2018): train on real images, test on generated images.

GAN-test measures realism/precision: generated images must look like their class to a
classifier that has only seen real data. A GAN-test far above `real_val_acc` means the
generated images look like *training* images more than held-out real images do, which is
a sign of memorization.

Label-blind evidence. A low GAN-test has two causes: images that look like no class, or
recognisable images of the wrong class (a conditional model that ignores its labels: the
reference kind `label_shuffle` gets GAN-test near chance with perfectly real digits). A
classifier is confidently wrong on images unlike anything it was trained on (noise, a black
image), so "max softmax >= 0.5" does not mean recognisable. Recognisable is calibrated on
held-out real images instead, with the cell's own numbers and no other model:

- an image is *in distribution* when its classifier features (penultimate layer) lie as
  near the real training images' as held-out real images' do: its distance to the nearest
  real training feature is at most the 95th percentile of the held-out real images' own
  such distances (DeVries et al.'s and Lee et al.'s feature-space out-of-distribution tests
  use the same idea: distance in the classifier's features, a threshold set on real data);
- it is *recognisable* when it is in distribution and the classifier is as sure of it as of
  held-out real images: its max softmax probability (test-time views averaged) is at least
  the 5th percentile of theirs. About 90% of held-out real images are recognisable by
  construction; `gan_test_recognisable` (diagnostic, Wilson 95% interval) is the share of
  generated images that are, whatever label was requested.
- chance = the share of the most frequent requested class among the tested images: a
  generator whose images do not depend on the requested label gets, in expectation,
  sum_c p_c q_c <= max_c p_c (p: requested class shares, q: the classes the classifier
  sees), so max_c p_c is the most a label-blind generator can expect (1/K when balanced).

Flags (gates, on `gan_test_acc`; each uses the conservative end of its Wilson 95% interval,
since a gate keeps the model below every model that passes: test-set noise alone does not
raise one):

- `off_distribution`: the in-distribution share is below one half (its upper end; held-out
  real images get 95%): noise, blank or broken output, unlike the real images. It is
  raised instead of the others: a classifier's labels on such images say nothing.
- `ignores_labels`: GAN-test near chance, i.e. the upper end of its interval below chance +
  0.1 x (real_val_acc - chance) (a tenth of the way from chance to what real images get),
  while the images are recognisable (the lower end of the recognisable share above one
  half). Not raised with fewer than three classes nor when the real classifier itself is no
  better than chance.
- `classes_missing`: classes that were requested but that no recognisable generated image
  shows, although a generator as faithful as the held-out real images would show each of
  them at least 10 times in expectation (requests x the class's real recall x the real
  recognisable share; the chance of none is then below e^-10): a dropped mode, named by
  what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from bench.classifiers.train import ClassifierConfig, Evaluation, predict
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.infra.store import Key
from bench.metrics import METRICS
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import write_per_class
from bench.models.base import Generator
from bench.record.values import accuracy_with_interval, diagnostic, reference, score, wilson

CONFIDENCE_QUANTILE = 0.05  # of held-out real images' max softmax: the least a recognisable image has
DISTANCE_QUANTILE = 0.95  # of held-out real images' feature distances: the most an in-distribution image has
NEAR_CHANCE = 0.1  # of the way from chance to real_val_acc
MISSING_EXPECTED = 10.0  # recognisable images of a class a faithful generator would show, at least


@dataclass(frozen=True)
class RealCalibrationKey(Key["Calibration"]):
    """The real-trained classifier's confidence and feature distances on real val images."""

    kind: ClassVar[str] = "real_val_calibration"
    dataset: str
    classifier: str  # the resolved config as JSON
    seed: int


@dataclass(frozen=True)
class Calibration:
    """What held-out real images look like to the real classifier: the train features to
    measure distances to, and the thresholds set on the val images (module docstring)."""

    train_features: torch.Tensor
    min_confidence: float
    max_distance: float
    recognisable: float  # share of held-out real images that are recognisable (about 0.9)


def nearest_distance(x: torch.Tensor, ref: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Euclidean distance of each row of x to its nearest row of ref, in chunks."""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk].double(), ref.double())
        out.append(d.min(1).values.float())
    return torch.cat(out) if out else torch.empty(0)


def _calibrate(clf: Any, dataset: Dataset, device: torch.device) -> Calibration:
    train = predict(clf, dataset.train_x, device, features=True)
    val_feats = predict(clf, dataset.val_x, device, features=True)
    conf = torch.softmax(predict(clf, dataset.val_x, device).float(), 1).amax(1)
    dist = nearest_distance(val_feats, train)
    min_conf = float(torch.quantile(conf.double(), CONFIDENCE_QUANTILE))
    max_dist = float(torch.quantile(dist.double(), DISTANCE_QUANTILE))
    share = float(((conf >= min_conf) & (dist <= max_dist)).float().mean())
    return Calibration(train, min_conf, max_dist, share)


class GanTestOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    num_samples: int | None = Field(
        None, ge=1, description="generated test images (default: as many as real val), the "
        "first of the model's shared stream (the training split's class balance)"
    )


def _evaluation(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> Evaluation:
    """What bench.classifiers.train.evaluate returns, from logits already computed."""
    pred = logits.argmax(1).numpy()
    yt = labels.cpu().numpy()
    correct = np.bincount(yt[pred == yt], minlength=num_classes).astype(float)
    total = np.bincount(yt, minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(total > 0, correct / total, np.nan)
    return Evaluation(float((pred == yt).mean()), per_class, pred)


def off_distribution(in_dist: float, n: int) -> str | None:
    """The `off_distribution` reason, or None (module docstring)."""
    if n == 0:
        return None
    hi = wilson(round(in_dist * n), n)[1]
    if hi >= 0.5:
        return None
    return (f"only {in_dist:.1%} of the images (95% CI up to {hi:.3f}) lie as near the real "
            f"training images in the real classifier's features as {DISTANCE_QUANTILE:.0%} of "
            "held-out real images do: noise, blank or broken output, unlike the real images "
            "(not a question of labels)")


def classes_missing(predicted: np.ndarray, requested: np.ndarray, real_recall: np.ndarray,
                    real_recognisable: float, num_classes: int,
                    names: list[str] | None = None) -> str | None:
    """The `classes_missing` reason, or None: `predicted` holds the classes of the
    recognisable generated images, `requested` every requested label (module docstring)."""
    asked = np.bincount(requested, minlength=num_classes)
    shown = np.bincount(predicted, minlength=num_classes)
    recall = np.nan_to_num(np.asarray(real_recall, float), nan=0.0)
    expected = asked * recall * real_recognisable
    missing = np.flatnonzero((shown == 0) & (expected >= MISSING_EXPECTED))
    if len(missing) == 0:
        return None
    label = [names[c] if names and c < len(names) else str(c) for c in missing]
    return (f"classes missing: {len(missing)} of {num_classes} never generated ({', '.join(label)}): "
            f"no recognisable image shows them, though a generator as faithful as the held-out "
            f"real images would show each at least {expected[missing].min():.0f} times")


def ignores_labels(acc: float, n: int, recognisable: float, real_val_acc: float,
                   labels: np.ndarray, num_classes: int) -> str | None:
    """The `ignores_labels` reason (one line with the numbers), or None: the rule of the
    module docstring."""
    if num_classes < 3 or n == 0:
        return None
    chance = float(np.bincount(labels, minlength=num_classes).max() / len(labels))
    if real_val_acc <= chance:
        return None
    near = chance + NEAR_CHANCE * (real_val_acc - chance)
    acc_hi = wilson(round(acc * n), n)[1]
    rec_lo = wilson(round(recognisable * n), n)[0]
    if acc_hi < near and rec_lo > 0.5:
        return (f"GAN-test {acc:.3f} (95% CI up to {acc_hi:.3f}) is near chance {chance:.3f} "
                f"(below {near:.3f}, a tenth of the way to real val {real_val_acc:.3f}) while "
                f"{recognisable:.1%} of the images are recognisable as held-out real images are "
                f"(95% CI from {rec_lo:.3f}): images of the wrong class")
    return None


@METRICS.register("gan_test")
class GanTest(Metric[GanTestOptions]):
    """Train on real, test on generated (quality/precision); far above real_val_acc hints memorization."""

    # 2: Wilson 95% intervals of the accuracies; 3: the shared sample stream;
    # 4: gan_test_recognisable and the ignores_labels flag; 5: recognisable calibrated on
    # held-out real images, off_distribution and classes_missing (module docstring)
    version = "5"
    # far above real_val_acc means memorisation: the ideal is the held-out real data's
    # GAN-test (which is real_val_acc when the suite has no held-out row)
    values = {"gan_test_acc": score("target", "quality", ref=True, fallback="real_val_acc",
                                    headline="fidelity"),
              "gan_test_recognisable": diagnostic(
                  "higher", note="share of generated images the real classifier recognises as it "
                  "does held-out real images (confidence and feature distance), whatever the "
                  "requested label"),
              "real_val_acc": reference("higher")}
    primary = "gan_test_acc"
    needs_labels = True
    labels_for = "it checks that the images generated for each class are recognised as that class"
    needs_held_out = True  # tested on the val split

    def num_samples(self, dataset: Dataset) -> int:
        return len(dataset.val_y) if self.options.num_samples is None else self.options.num_samples

    def used_options(self, dataset: Dataset) -> dict[str, Any]:
        return {**super().used_options(dataset), "num_samples": self.num_samples(dataset)}

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        o = self.options
        clf = ctx.real_classifier(dataset, o.classifier)
        n = self.num_samples(dataset)
        x, labels = ctx.generated(generator, dataset, n)
        logits = predict(clf, x, ctx.device)
        ev = _evaluation(logits, labels, clf.num_classes)
        cal = ctx.store.get(
            RealCalibrationKey(dataset.digest, o.classifier.resolve(dataset.image_shape)
                               .model_dump_json(), ctx.seed),
            lambda: _calibrate(clf, dataset, ctx.device))
        near = nearest_distance(predict(clf, x, ctx.device, features=True),
                                cal.train_features) <= cal.max_distance
        sure = torch.softmax(logits.float(), 1).amax(1) >= cal.min_confidence
        rec = near & sure
        recognisable = float(rec.float().mean()) if len(rec) else float("nan")
        real = ctx.real_val_evaluation(dataset, o.classifier)
        write_per_class(ctx.artifact("gan_test_per_class.csv"), dataset,
                        {"gan_test_acc": ev.per_class, "real_val_acc": real.per_class})
        y = labels.cpu().numpy()
        off = off_distribution(float(near.float().mean()) if len(near) else 0.0, ev.n)
        if off is not None:  # labels on such images say nothing: the one verdict
            ctx.flag("off_distribution", off, gate=True, value="gan_test_acc")
        else:
            for kind, reason in (
                    ("ignores_labels", ignores_labels(ev.accuracy, ev.n, recognisable,
                                                      real.accuracy, y, dataset.num_classes)),
                    ("classes_missing", classes_missing(
                        ev.predictions[rec.numpy()], y, real.per_class, cal.recognisable,
                        dataset.num_classes, list(getattr(dataset, "class_names", []) or [])))):
                if reason is not None:
                    ctx.flag(kind, reason, gate=True, value="gan_test_acc")
        return {**accuracy_with_interval("gan_test_acc", ev.accuracy, ev.n),
                **accuracy_with_interval("gan_test_recognisable", recognisable, ev.n),
                **accuracy_with_interval("real_val_acc", real.accuracy, real.n)}
