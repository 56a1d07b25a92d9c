"""No leakage by construction: a score is never measured on images its classifier trained on.

Metrics that train a classifier on a model's images and test it on the real val split
(`gan_train`, `gan_train_curve`, `augmentation`, `balancing`) declare it with the class
attribute `trains_on_model_images = True`. Model sources that hand out real images of a
split declare which one with `ModelSource.serves_split()` (the `reference` source returns
its `split` option). A cell that pairs the two with the val split would test a classifier
on its own training images; suite validation refuses it, so neither `bench validate` nor
`bench run` ever gets that far.

The rule reads only classes and options (no data, no files), so it also holds for suites
loaded without resource checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TEST_SPLIT = "val"  # the split every classifier-based number is reported on


def trains_on_model_images(metric_cls: type) -> bool:
    """Whether a metric trains a classifier on the model's images (and tests on real val)."""
    return bool(getattr(metric_cls, "trains_on_model_images", False))


def served_split(model_spec: Any) -> str | None:
    """The real split a model spec's source serves as its images, or None (`spec.instance()`
    builds the plugin object from its options only: no data is read)."""
    serves = getattr(model_spec.instance(), "serves_split", None)
    return serves() if callable(serves) else None


def leak_message(model: str, dataset: str, metric: str, plugin: str) -> str:
    return (f"cell (model '{model}', dataset '{dataset}', metric '{metric}') would test on its "
            f"own training data: '{metric}' trains a classifier on the model's images and tests "
            f"it on the dataset's {TEST_SPLIT} split, and model '{model}' ({plugin}) serves that "
            f"{TEST_SPLIT} split. Exclude the cell (`exclude: [{{model: {model}, metric: "
            f"{metric}}}]` in the `cells` block that selects it), or serve the training split "
            "(`split: train`).")


def leaking_cells(models: Mapping[str, Any], metrics: Mapping[str, Any],
                  triples: Iterable[tuple[str, str, str]]) -> list[tuple[tuple[str, str, str], str]]:
    """((model, dataset, metric), message) for every selected cell that breaks the rule.

    `models` / `metrics` map suite keys to validated specs (with `.cls`, `.plugin` and
    `.instance()`); keys missing there (already reported as invalid) are skipped.
    """
    served: dict[str, str | None] = {}
    out = []
    for m, d, t in triples:
        if m not in models or t not in metrics or not trains_on_model_images(metrics[t].cls):
            continue
        if m not in served:
            served[m] = served_split(models[m])
        if served[m] == TEST_SPLIT:
            out.append(((m, d, t), leak_message(m, d, t, models[m].plugin)))
    return out
