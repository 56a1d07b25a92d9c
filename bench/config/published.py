"""Published values a run is read against: `published:` blocks of a suite file.

    published:
      - source: Shmelkov et al., ECCV 2018 (arXiv 1807.09499), Table 1
        dataset: cifar10
        values:
          real: {gan_train_acc: 0.928}     # model -> value name -> the paper's number
        note: ResNet classifier; ours is cifar_resnet-32 with our recipe

They never change what runs or how models are ranked: the board prints them beside our
value, with the difference and whether the published number lies inside our 95% interval
(bench.report.published). Checked at load time: the dataset and models are the suite's,
every value is one the suite's metrics log, and an accuracy is a fraction, not a percentage.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from bench.core.registry import did_you_mean
from bench.record.values import Value


class PublishedBlock(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str = Field(min_length=1, description="where the numbers come from (paper, table)")
    dataset: str = Field(description="the suite's dataset they were measured on")
    values: dict[str, dict[str, float]] = Field(
        description="model -> value name -> published number, in the units the board shows")
    note: str = Field("", description="how the published setting differs from the suite's")


def declared_values(metric_classes: list[type]) -> dict[str, Value]:
    """Every value the metrics declare (a declared name also covers its suffixed forms,
    `swd` covers `swd_8`: bench.record.values.lookup)."""
    out: dict[str, Value] = {}
    for cls in metric_classes:
        out.update(getattr(cls, "values", {}) or {})
    return out


def check_blocks(blocks: list[PublishedBlock], datasets: list[str], models: list[str],
                 declared: dict[str, Value]) -> list[tuple[tuple, str]]:
    """(path in the suite file, message) for each problem of the `published:` blocks."""
    problems: list[tuple[tuple, str]] = []
    names = sorted(declared)
    for i, b in enumerate(blocks):
        at = ("published", i)
        if b.dataset not in datasets:
            problems.append(((*at, "dataset"), f"'{b.dataset}' is not a dataset of this suite."
                             f"{did_you_mean(b.dataset, datasets)} Defined: {', '.join(datasets)}."))
        for model, vals in b.values.items():
            if model not in models:
                problems.append(((*at, "values", model), f"'{model}' is not a model of this "
                                 f"suite.{did_you_mean(model, models)} Defined: {', '.join(models)}."))
            for name, x in vals.items():
                where = (*at, "values", model, name)
                if not any(name == k or name.startswith(k) for k in names):
                    problems.append((where, f"no metric of this suite logs '{name}'."
                                     f"{did_you_mean(name, names)} Logged: {', '.join(names)}."))
                elif not math.isfinite(x):
                    problems.append((where, "a published value is a finite number."))
                elif name.endswith("_acc") and not 0 <= x <= 1:
                    problems.append((where, f"accuracies are fractions in [0, 1] on the board: "
                                     f"write {x / 100:g} for {x:g}%." if 1 < x <= 100 else
                                     "accuracies are fractions in [0, 1]."))
    return problems
