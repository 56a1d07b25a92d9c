"""The real-trained classifier, trained once per (dataset digest, classifier config, seed)
and cached in memory (bench.store) and on disk: a suite of K models pays for one real training."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from bench.cache import Cache
from bench.classifiers import CLASSIFIERS
from bench.classifiers.train import ClassifierConfig, TrainedClassifier, train_classifier
from bench.data.base import Dataset

if TYPE_CHECKING:
    from bench.store import Store


def real_classifier(dataset: Dataset, cfg: ClassifierConfig, device: torch.device, seed: int,
                    cache: Cache, store: Store | None = None, progress: bool = True) -> TrainedClassifier:
    """From the store (counted as a cache hit, as before the store), else from the disk cache
    (same entry names as ever), else trained and saved; `store=None`: no in-memory reuse."""
    from bench.store import RealClassifierKey

    key = {"dataset": dataset.digest, "classifier": cfg.model_dump(mode="json"), "seed": seed}
    path = cache.path("real_classifier", key, suffix=".pt")
    def load(p: Path) -> TrainedClassifier:
        c, h, _ = dataset.image_shape
        rcfg = cfg.resolve(dataset.image_shape)  # `auto` -> a classifier, as in training
        model = CLASSIFIERS.get(rcfg.name)(in_chans=c, num_classes=dataset.num_classes,
                                           image_size=h, **rcfg.args)
        model.load_state_dict(torch.load(p, map_location="cpu", weights_only=True))
        return TrainedClassifier(model.to(device).eval(), rcfg, dataset.image_shape,
                                 dataset.num_classes)

    def train() -> TrainedClassifier:
        return train_classifier(cfg, dataset.train_x, dataset.train_y, dataset.num_classes,
                                device, seed, desc="train real classifier", progress=progress)

    def save(p: Path, clf: TrainedClassifier) -> None:
        cache.save_torch(p, clf.model.state_dict())

    if store is None:
        return cache.entry(path, "real_classifier", load, train, save)
    skey = RealClassifierKey(dataset.digest, cfg.model_dump_json(), seed)
    return store.entry(skey, cache, path, "real_classifier", load, train, save)
