"""The real-trained classifier, trained once per (dataset digest, classifier config, seed)
and cached in memory and on disk: a suite of K models pays for one real training."""

from __future__ import annotations

from typing import Any

import torch

from bench.cache import Cache
from bench.classifiers import CLASSIFIERS
from bench.classifiers.train import ClassifierConfig, TrainedClassifier, train_classifier
from bench.data.base import Dataset


def real_classifier(dataset: Dataset, cfg: ClassifierConfig, device: torch.device, seed: int,
                    cache: Cache, memo: dict[str, Any], progress: bool = True) -> TrainedClassifier:
    key = {"dataset": dataset.digest, "classifier": cfg.model_dump(mode="json"), "seed": seed}
    path = cache.path("real_classifier", key, suffix=".pt")
    if str(path) in memo:
        cache.hit("real_classifier")
        return memo[str(path)]
    with cache.lock(path):
        if path.exists():
            c, h, _ = dataset.image_shape
            model = CLASSIFIERS.get(cfg.name)(in_chans=c, num_classes=dataset.num_classes,
                                              image_size=h, **cfg.args)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            clf = TrainedClassifier(model.to(device).eval(), cfg, dataset.image_shape,
                                    dataset.num_classes)
            cache.hit("real_classifier")
        else:
            cache.miss("real_classifier")
            clf = train_classifier(cfg, dataset.train_x, dataset.train_y, dataset.num_classes,
                                   device, seed, desc="train real classifier", progress=progress)
            cache.save_torch(path, clf.model.state_dict())
    memo[str(path)] = clf
    return clf
