"""GAN-train (Shmelkov et al. 2018): train on generated images, test on real validation images.

High GAN-train needs generated images that are both realistic and diverse: it is the
protocol's recall/diversity measure. `real_val_acc` (the same classifier trained on real
images) is logged beside it as the upper reference.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bench.classifiers.train import ClassifierConfig, evaluate, train_classifier
from bench.core.registry import Options
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import write_per_class
from bench.models.base import Generator
from bench.record.values import accuracy_with_interval, diagnostic, reference, score


class GanTrainOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    num_samples: int | None = Field(
        None, ge=1, description="generated training images (default: as many as real train, "
        "same balance); TSTS tests on the next real-val-size block of the same stream"
    )


@METRICS.register("gan_train")
class GanTrain(Metric[GanTrainOptions]):
    """Train on generated, test on real val (diversity/recall); also train-on-synthetic-test-on-synthetic."""

    # 2: Wilson 95% intervals of the accuracies; 3: the model's shared sample stream
    # (bench.run.store): trains on its first images, TSTS on the block after them
    version = "3"
    trains_on_model_images = True  # tested on real val: never fed the val split (bench.run.leakage)
    values = {"gan_train_acc": score("higher", "utility"),
              # train-synthetic-test-synthetic: how separable the generated classes are; a
              # memoriser or a collapsed model scores ~1, so it is shown, never ranked
              "tsts_acc": diagnostic("higher"),
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
        # one stream (bench.run.store): train on its first n images, TSTS on the next val-size
        # block (images the classifier never saw); both blocks have the training balance
        x, labels = ctx.generated(generator, dataset, n + len(dataset.val_y), distinct=False)
        clf = train_classifier(o.classifier, x[:n], labels[:n], dataset.num_classes, ctx.device,
                               ctx.seed, desc="train on generated", progress=ctx.progress)
        on_real = evaluate(clf, dataset.val_x, dataset.val_y, ctx.device)
        on_fake = evaluate(clf, x[n:], labels[n:], ctx.device)
        real = ctx.real_val_evaluation(dataset, o.classifier)
        write_per_class(ctx.artifact("gan_train_per_class.csv"), dataset,
                        {"gan_train_acc": on_real.per_class, "tsts_acc": on_fake.per_class,
                         "real_val_acc": real.per_class})
        # each accuracy with its Wilson interval over its test set (test-set noise only)
        return {**accuracy_with_interval("gan_train_acc", on_real.accuracy, on_real.n),
                **accuracy_with_interval("tsts_acc", on_fake.accuracy, on_fake.n),
                **accuracy_with_interval("real_val_acc", real.accuracy, real.n)}
