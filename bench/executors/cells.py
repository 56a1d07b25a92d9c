"""What a suite expands to: a `Spec` per named dataset, model and metric, and a `Cell` per
(model, dataset, metric, repeat). Pure data: this module imports no plugin, tracking or
torch code (plugin base classes only for annotations), so that the executors (which run
cells) need nothing of the suite (bench.config.suite, which builds them and imports the
executors' registry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bench.core.registry import Options, Plugin

if TYPE_CHECKING:  # annotations only: importing them would make this module heavy
    import torch

    from bench.data.base import DatasetSource
    from bench.metrics.base import Metric
    from bench.models.base import ModelSource

P = TypeVar("P", bound=Plugin)


@dataclass(frozen=True)
class Spec(Generic[P]):
    """One named entry of `datasets`, `models` or `metrics`, with validated options."""

    section: str
    key: str
    plugin: str
    options: Options
    cls: type[P] = field(compare=False, repr=False)

    def instance(self) -> P:
        return self.cls(self.options)

    def resolved(self) -> dict[str, Any]:
        """Plugin name and every option with defaults filled in: what a cell key hashes."""
        return {"plugin": self.plugin, **self.options.model_dump(mode="json"), **self._fingerprint}

    @cached_property
    def _fingerprint(self) -> dict[str, Any]:  # e.g. a samples file's hash: computed once
        return self.instance().fingerprint()


@dataclass(frozen=True)
class Cell:
    model: Spec[ModelSource]
    dataset: Spec[DatasetSource]
    metric: Spec[Metric]
    repeat: int
    seed: int
    key: str
    # seconds the cell may run before it is stopped and fails (None: no limit); not part of
    # its identity: a new limit reruns nothing
    timeout: float | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.model.key} x {self.dataset.key} x {self.metric.key} [seed {self.seed}]"


def resolve_device(name: str) -> torch.device:
    """The torch device of a suite's `device:` value (`auto`: CUDA when present)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
