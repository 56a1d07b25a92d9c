"""The Metric contract and the Context that carries shared, cached work between cells."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from bench.cache import Cache
from bench.classifiers.real import real_classifier
from bench.classifiers.train import ClassifierConfig, Evaluation, TrainedClassifier, evaluate
from bench.data.base import Dataset
from bench.features.base import FeatureExtractor, FeatureSpec
from bench.models.base import Generator
from bench.registry import Plugin
from bench.values import Value, lookup


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
    # extra run tags a metric sets (e.g. the feature extractor and its resize method)
    tags: dict[str, str] = field(default_factory=dict)

    def real_classifier(self, dataset: Dataset, cfg: ClassifierConfig) -> TrainedClassifier:
        return real_classifier(dataset, cfg, self.device, self.seed, self.cache, self._memo,
                               self.progress)

    def real_val_evaluation(self, dataset: Dataset, cfg: ClassifierConfig) -> Evaluation:
        """The real-trained classifier on real validation images: the reference beside every
        classifier-based number, evaluated once per (dataset, config, seed)."""
        key = f"real_val_eval:{dataset.digest}:{cfg.model_dump_json()}:{self.seed}"
        if key not in self._memo:
            clf = self.real_classifier(dataset, cfg)
            self._memo[key] = evaluate(clf, dataset.val_x, dataset.val_y, self.device)
        return self._memo[key]

    def real_val_accuracy(self, dataset: Dataset, cfg: ClassifierConfig) -> float:
        return self.real_val_evaluation(dataset, cfg).accuracy

    # ------------------------------------------------------------ features
    def extractor(self, spec: FeatureSpec, dataset: Dataset) -> FeatureExtractor:
        ex = spec.build()
        ex.prepare(dataset, self)
        self.tags["features"] = ex.tag()
        return ex

    def real_features(self, dataset: Dataset, spec: FeatureSpec, split: str = "train",
                      logits: bool = False) -> Any:
        """Features of a real split, cached on disk per (dataset digest, split, extractor tag):
        K models in a suite extract the real features once."""
        ex = self.extractor(spec, dataset)
        path = self.cache.path("real_features", {"dataset": dataset.digest, "split": split,
                                                 "extractor": ex.tag(), "logits": logits}, ".pt")
        if str(path) in self._memo:
            self.cache.hit("real_features")
            return self._memo[str(path)]
        with self.cache.lock(path):
            if path.exists():
                self.cache.hit("real_features")
                out = torch.load(path, map_location="cpu", weights_only=True)
            else:
                self.cache.miss("real_features")
                x = dataset.train_x if split == "train" else dataset.val_x
                out = ex.extract(x, self.device, spec.batch_size, logits=logits,
                                 progress=self.progress, desc=f"real {split} features")
                self.cache.save_torch(path, out)
        self._memo[str(path)] = out
        return out

    def fake_features(self, generator: Generator, dataset: Dataset, spec: FeatureSpec,
                      n: int | None = None, logits: bool = False) -> Any:
        """Features of n generated images with the real training split's class balance."""
        return self.fake_features_and_labels(generator, dataset, spec, n, logits)[0]

    def fake_features_and_labels(self, generator: Generator, dataset: Dataset, spec: FeatureSpec,
                                 n: int | None = None, logits: bool = False) -> tuple[Any, torch.Tensor]:
        """`fake_features` and the labels the images were generated for (int64, CPU): what
        the class-conditional metrics split generated features by."""
        from bench.metrics.sampling import balanced_labels

        ex = self.extractor(spec, dataset)
        labels = balanced_labels(dataset, n, self.seed)
        x = generator.sample(len(labels), labels, seed=self.seed)
        feats = ex.extract(x, self.device, spec.batch_size, logits=logits, progress=self.progress,
                           desc="generated features")
        return feats, labels

    def artifact(self, name: str) -> Path:
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return self.artifact_dir / name


class Metric(Plugin):
    """A registered metric: (Generator, Dataset, Context) -> {name: float} (+ artifacts).

    Subclasses set `version` (bump it when results change, so caches and history segments
    follow), `values`: the declaration (bench.values.Value: role, ideal, aspect) of every
    value they return, by exact name or prefix (`swd` covers `swd_8`), and `primary`, the
    one score the summary ranks and a leaderboard sorts by. A value may come with its 95%
    interval as `<value>.lo` / `<value>.hi` (bench.values.with_interval).
    """

    version: ClassVar[str] = "1"
    needs_latent: ClassVar[bool] = False  # only for generators that expose their latent input
    trains_on_model_images: ClassVar[bool] = False  # trains on generated, tests on real val
    values: ClassVar[dict[str, Value]] = {}
    primary: ClassVar[str] = ""

    @classmethod
    def value(cls, name: str) -> Value:
        """Declaration of a returned value (undeclared values are diagnostics)."""
        return lookup(cls.values, name)

    def check(self) -> None:
        """Raise BenchError for what `bench validate` can catch (missing weights files...)."""

    @abstractmethod
    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]: ...
