"""The Metric contract and the Context that carries shared, cached work between cells."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from bench.cache import Cache
from bench.classifiers.train import ClassifierConfig, TrainedClassifier, evaluate, train_classifier
from bench.data.base import Dataset
from bench.models.base import Generator
from bench.registry import Plugin


@dataclass
class Context:
    """Everything a metric may use besides the generator and the dataset.

    The real-trained classifier is cached in memory and on disk per (dataset digest,
    classifier config, seed), so K models in a suite pay for one real training.
    """

    device: torch.device
    seed: int
    cache: Cache
    artifact_dir: Path
    progress: bool = True
    _memo: dict[str, Any] = field(default_factory=dict)

    def real_classifier(self, dataset: Dataset, cfg: ClassifierConfig) -> TrainedClassifier:
        key = {"dataset": dataset.digest, "classifier": cfg.model_dump(mode="json"), "seed": self.seed}
        path = self.cache.path("real_classifier", key, suffix=".pt")
        mem = str(path)
        if mem in self._memo:
            self.cache.hit("real_classifier")
            return self._memo[mem]
        if path.exists():
            from bench.classifiers import CLASSIFIERS

            c, h, _ = dataset.image_shape
            model = CLASSIFIERS.get(cfg.name)(
                in_chans=c, num_classes=dataset.num_classes, image_size=h, **cfg.args
            )
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            clf = TrainedClassifier(model.to(self.device).eval(), cfg, dataset.image_shape,
                                    dataset.num_classes)
            self.cache.hit("real_classifier")
        else:
            self.cache.miss("real_classifier")
            clf = train_classifier(cfg, dataset.train_x, dataset.train_y, dataset.num_classes,
                                   self.device, self.seed, desc="train real classifier",
                                   progress=self.progress)
            self.cache.save_torch(path, clf.model.state_dict())
        self._memo[mem] = clf
        return clf

    def real_val_accuracy(self, dataset: Dataset, cfg: ClassifierConfig) -> float:
        key = f"real_val_acc:{dataset.digest}:{cfg.model_dump_json()}:{self.seed}"
        if key not in self._memo:
            clf = self.real_classifier(dataset, cfg)
            self._memo[key] = evaluate(clf, dataset.val_x, dataset.val_y, self.device).accuracy
        return self._memo[key]

    def artifact(self, name: str) -> Path:
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return self.artifact_dir / name


class Metric(Plugin):
    """A registered metric: (Generator, Dataset, Context) -> {name: float} (+ artifacts).

    Subclasses set `version` (bump it when results change, so caches and history segments
    follow), `higher_is_better` for each value they return (the leaderboard's arrows and
    the regression check's direction), and `primary`, the value a leaderboard sorts by.
    """

    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[dict[str, bool]] = {}
    primary: ClassVar[str] = ""

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        raise NotImplementedError
