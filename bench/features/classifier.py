"""The suite's own real-trained classifier as feature extractor (penultimate layer).

It works offline on any domain, and is the right default for data that ImageNet features
do not describe (medical images, digits)."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from bench.classifiers.real import real_classifier
from bench.classifiers.train import ClassifierConfig, TrainedClassifier, to_float
from bench.core.registry import Options
from bench.features import FEATURES
from bench.features.base import FeatureExtractor
from bench.infra.cache import stable_hash


class ClassifierFeatureOptions(Options):
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)


@FEATURES.register("classifier")
class ClassifierFeatures(FeatureExtractor[ClassifierFeatureOptions]):
    """Penultimate features (and logits) of the suite's real-trained classifier."""

    has_logits = True
    clf: TrainedClassifier

    def prepare(self, dataset: Any, env: Any) -> None:
        self.clf = real_classifier(dataset, self.options.classifier, env.device, env.seed, env.cache,
                                   env.store, env.progress)
        cfg = stable_hash(self.options.classifier.model_dump(mode="json"), 8)
        # the trained classifier's name: `auto` resolved from the data (small_cnn, airbench)
        self._tag = f"classifier:{self.clf.config.name}-{cfg}:{dataset.digest}:seed{env.seed}"

    def tag(self) -> str:
        return self._tag

    def _forward(self, x: torch.Tensor):
        xf = to_float(x)
        model = self.clf.model
        f = model.forward_features(xf)
        # one pass where the net splits at its features (small_cnn, airbench), else two
        return f, (model.forward_head(f) if model.has_head else model(xf))
