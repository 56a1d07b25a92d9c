"""GAN-train (Shmelkov et al. 2018): train on generated images, test on real validation images.

High GAN-train needs generated images that are both realistic and diverse: it is the
protocol's recall/diversity measure. `real_val_acc` (the same classifier trained on real
images) is logged beside it as the upper reference.

`tsts_acc` (train on synthetic, test on synthetic) is the same classifier on generated images
it never trained on: the stream block after its training images, less any copy of one. A pool
(pre-generated samples, real images served as a model) wraps around once used up, so a pool no
larger than the training set has no such images: `tsts_acc` is then absent and the run tag
`tsts_note` says why; `tsts_split` gives the counts (bench.metrics._protocol.SyntheticSplit).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bench.classifiers.train import ClassifierConfig, evaluate, train_classifier
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics._protocol import MIN_TEST_IMAGES, split_after_training
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import write_per_class
from bench.models.base import Generator
from bench.record.values import accuracy_with_interval, diagnostic, reference, score

TSTS_SPLIT_TAG = "tsts_split"  # the counts of tsts_acc's training and test images
TSTS_NOTE_TAG = "tsts_note"  # why tsts_acc is absent


class GanTrainOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    num_samples: int | None = Field(
        None, ge=1, description="generated training images (default: as many as real train, "
        "same balance); TSTS tests on up to a real-val-size block of the same stream after them, "
        "without any image the classifier trained on"
    )


@METRICS.register("gan_train")
class GanTrain(Metric[GanTrainOptions]):
    """Train on generated, test on real val (diversity/recall); also train-on-synthetic-test-on-synthetic."""

    # 2: Wilson 95% intervals of the accuracies; 3: the model's shared sample stream
    # (bench.infra.store): trains on its first images, TSTS on the block after them; 4: TSTS
    # only on images the classifier never trained on (none from a pool that wrapped around)
    version = "4"
    trains_on_model_images = True  # tested on real val: never fed the val split (bench.config.leakage)
    values = {"gan_train_acc": score("higher", "utility", headline="coverage"),
              # train-synthetic-test-synthetic: how separable the generated classes are; a
              # memoriser or a collapsed model scores ~1, so it is shown, never ranked
              "tsts_acc": diagnostic("higher", note="on generated images the classifier never "
                                     "trained on; absent for a pool no larger than the training set"),
              "real_val_acc": reference("higher")}
    primary = "gan_train_acc"
    needs_labels = True
    labels_for = "it trains a classifier on the images generated for each class"
    needs_held_out = True  # tested on the val split

    def num_samples(self, dataset: Dataset) -> int:
        return len(dataset.train_y) if self.options.num_samples is None else self.options.num_samples

    def used_options(self, dataset: Dataset) -> dict[str, Any]:
        return {**super().used_options(dataset), "num_samples": self.num_samples(dataset)}

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        o = self.options
        n = self.num_samples(dataset)
        # one stream (bench.infra.store): train on its first n images; TSTS on up to a val-size
        # block after them that shares no image with them (a pool stops where it would repeat)
        split = split_after_training(ctx, generator, dataset, n, len(dataset.val_y))
        clf = train_classifier(o.classifier, split.train_x, split.train_y, dataset.num_classes,
                               ctx.device, ctx.seed, desc="train on generated", progress=ctx.progress)
        on_real = evaluate(clf, dataset.val_x, dataset.val_y, ctx.device)
        real = ctx.real_val_evaluation(dataset, o.classifier)
        ctx.tags[TSTS_SPLIT_TAG] = split.describe()
        per_class = {"gan_train_acc": on_real.per_class, "real_val_acc": real.per_class}
        # each accuracy with its Wilson interval over its test set (test-set noise only)
        out = {**accuracy_with_interval("gan_train_acc", on_real.accuracy, on_real.n),
               **accuracy_with_interval("real_val_acc", real.accuracy, real.n)}
        if split.too_small:  # no number rather than a training accuracy under the test name
            ctx.tags[TSTS_NOTE_TAG] = (
                f"no tsts_acc: only {len(split.test_y):,} generated images the classifier did not "
                f"train on (at least {MIN_TEST_IMAGES} needed); the model is a pool no larger "
                "than the training set, or repeats its images")
        else:
            on_fake = evaluate(clf, split.test_x, split.test_y, ctx.device)
            per_class["tsts_acc"] = on_fake.per_class
            out.update(accuracy_with_interval("tsts_acc", on_fake.accuracy, on_fake.n))
        write_per_class(ctx.artifact("gan_train_per_class.csv"), dataset, per_class)
        return out
