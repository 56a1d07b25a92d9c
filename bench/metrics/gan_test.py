"""GAN-test (Shmelkov et al. 2018): train on real images, test on generated images.

GAN-test measures realism/precision: generated images must look like their class to a
classifier that has only seen real data. A GAN-test far above `real_val_acc` means the
generated images look like *training* images more than held-out real images do, which is
a sign of memorization.

Label-blind evidence. A low GAN-test has two causes: images that look like no class, or
recognisable images of the wrong class (a conditional model that ignores its labels: the
reference kind `label_shuffle` gets GAN-test near chance with perfectly real digits). The
cell tells them apart with its own numbers, no other model involved:

- `gan_test_recognisable` (diagnostic, Wilson 95% interval): the share of generated images
  the real classifier assigns to *some* class with probability >= 0.5 (softmax of its
  logits, test-time views averaged), whatever label was requested: a class holding the
  majority of the probability. Real digits score about as high as real val images.
- chance = the share of the most frequent requested class among the tested images: a
  generator whose images do not depend on the requested label gets, in expectation,
  sum_c p_c q_c <= max_c p_c (p: requested class shares, q: the classes the classifier
  sees), so max_c p_c is the most a label-blind generator can expect (1/K when balanced).
- flag `ignores_labels` (a gate, on `gan_test_acc`) when GAN-test is near chance, i.e. the
  upper end of its Wilson 95% interval is below chance + 0.1 x (real_val_acc - chance)
  (within a tenth of the way from chance to what real images get), AND the images are
  recognisable, i.e. the lower end of the recognisable share's Wilson interval is above
  one half. Both ends are the conservative ones, since a gate keeps the model below every
  model that passes: test-set noise alone does not raise it. Not raised with fewer than
  three classes (with two, every image has a class at >= 0.5) nor when the real
  classifier itself is no better than chance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field

from bench.classifiers.train import ClassifierConfig, Evaluation, predict
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import write_per_class
from bench.models.base import Generator
from bench.record.values import accuracy_with_interval, diagnostic, reference, score, wilson

RECOGNISABLE_P = 0.5  # max softmax probability of a recognisable image
NEAR_CHANCE = 0.1  # of the way from chance to real_val_acc


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
                f"{recognisable:.1%} of the images are recognisable (p >= {RECOGNISABLE_P} for "
                f"some class, 95% CI from {rec_lo:.3f}): images of the wrong class")
    return None


@METRICS.register("gan_test")
class GanTest(Metric[GanTestOptions]):
    """Train on real, test on generated (quality/precision); far above real_val_acc hints memorization."""

    # 2: Wilson 95% intervals of the accuracies; 3: the shared sample stream;
    # 4: gan_test_recognisable and the ignores_labels flag (module docstring)
    version = "4"
    # far above real_val_acc means memorisation: the ideal is the held-out real data's
    # GAN-test (which is real_val_acc when the suite has no held-out row)
    values = {"gan_test_acc": score("target", "quality", ref=True, fallback="real_val_acc"),
              "gan_test_recognisable": diagnostic(
                  "higher", note="share of generated images the real classifier gives some "
                  "class with p >= 0.5, whatever the requested label"),
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
        confident = torch.softmax(logits.float(), 1).amax(1) >= RECOGNISABLE_P
        recognisable = float(confident.float().mean()) if len(confident) else float("nan")
        real = ctx.real_val_evaluation(dataset, o.classifier)
        write_per_class(ctx.artifact("gan_test_per_class.csv"), dataset,
                        {"gan_test_acc": ev.per_class, "real_val_acc": real.per_class})
        reason = ignores_labels(ev.accuracy, ev.n, recognisable, real.accuracy,
                                labels.cpu().numpy(), dataset.num_classes)
        if reason is not None:
            ctx.flag("ignores_labels", reason, gate=True, value="gan_test_acc")
        return {**accuracy_with_interval("gan_test_acc", ev.accuracy, ev.n),
                **accuracy_with_interval("gan_test_recognisable", recognisable, ev.n),
                **accuracy_with_interval("real_val_acc", real.accuracy, real.n)}
