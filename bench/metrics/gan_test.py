"""GAN-test (Shmelkov et al. 2018): train on real images, test on generated images.

GAN-test measures realism/precision: generated images must look like their class to a
classifier that has only seen real data. A GAN-test far above `real_val_acc` means the
generated images look like *training* images more than held-out real images do, which is
a sign of memorization.
"""

from __future__ import annotations

from pydantic import Field

from bench.classifiers.train import ClassifierConfig, evaluate
from bench.data.base import Dataset
from bench.metrics import METRICS
from bench.metrics.base import Context, Metric
from bench.metrics.sampling import write_per_class
from bench.models.base import Generator
from bench.registry import Options
from bench.values import accuracy_with_interval, reference, score


class GanTestOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    num_samples: int | None = Field(
        None, ge=1, description="generated test images (default: as many as real val), the "
        "first of the model's shared stream (the training split's class balance)"
    )


@METRICS.register("gan_test")
class GanTest(Metric):
    """Train on real, test on generated (quality/precision); far above real_val_acc hints memorization."""

    Options = GanTestOptions
    options: GanTestOptions
    version = "3"  # 2: Wilson 95% intervals of the accuracies; 3: the shared sample stream
    # far above real_val_acc means memorisation: the ideal is the held-out real data's
    # GAN-test (which is real_val_acc when the suite has no held-out row)
    values = {"gan_test_acc": score("target", "quality", ref=True, fallback="real_val_acc"),
              "real_val_acc": reference("higher")}
    primary = "gan_test_acc"

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        o = self.options
        clf = ctx.real_classifier(dataset, o.classifier)
        n = len(dataset.val_y) if o.num_samples is None else o.num_samples
        x, labels = ctx.generated(generator, dataset, n)
        ev = evaluate(clf, x, labels, ctx.device)
        real = ctx.real_val_evaluation(dataset, o.classifier)
        write_per_class(ctx.artifact("gan_test_per_class.csv"), dataset,
                        {"gan_test_acc": ev.per_class, "real_val_acc": real.per_class})
        return {**accuracy_with_interval("gan_test_acc", ev.accuracy, ev.n),
                **accuracy_with_interval("real_val_acc", real.accuracy, real.n)}
