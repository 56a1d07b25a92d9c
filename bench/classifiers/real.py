"""The real-trained classifier, trained once per (dataset digest, classifier config, seed)
and cached in memory (bench.infra.store) and on disk: a suite of K models pays for one real training.

The key holds the *resolved* config (`ClassifierConfig.resolve(image_shape)`: `auto` made a
classifier, every None the recipe's default), as the trainer resolves it and as the real
curves of augmentation and balancing are keyed: two configs that train the same recipe
share one entry, and a changed recipe default gives a new key instead of loading a
classifier trained under the old one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch

from bench.classifiers import CLASSIFIERS
from bench.classifiers.train import ClassifierConfig, TrainedClassifier, train_classifier
from bench.data.base import Dataset
from bench.infra.cache import Cache
from bench.infra.store import Key

if TYPE_CHECKING:
    from bench.infra.store import Store


@dataclass(frozen=True)
class RealClassifierKey(Key[TrainedClassifier]):
    """The real-trained classifier in the store (bench.infra.store), by dataset digest,
    resolved config (as JSON) and seed."""

    kind: ClassVar[str] = "real_classifier"
    dataset: str
    classifier: str  # the config as JSON
    seed: int


def real_classifier_key(dataset: Dataset, cfg: ClassifierConfig, seed: int) -> dict:
    """The disk cache key of the real classifier: data, *resolved* config and seed."""
    return {"dataset": dataset.digest,
            "classifier": cfg.resolve(dataset.image_shape).model_dump(mode="json"), "seed": seed}


def real_classifier(dataset: Dataset, cfg: ClassifierConfig, device: torch.device, seed: int,
                    cache: Cache, store: Store | None = None, progress: bool = True) -> TrainedClassifier:
    """From the store (counted as a cache hit, as before the store), else from the disk cache
    (`real_classifier_key`: the resolved config), else trained and saved; `store=None`: no
    in-memory reuse."""
    rcfg = cfg.resolve(dataset.image_shape)  # `auto` -> a classifier, None -> default, as in training
    path = cache.path("real_classifier", real_classifier_key(dataset, cfg, seed), suffix=".pt")

    def load(p: Path) -> TrainedClassifier:
        c, h, _ = dataset.image_shape
        model = CLASSIFIERS.get(rcfg.name)(in_chans=c, num_classes=dataset.num_classes,
                                           image_size=h, **rcfg.args)
        model.load_state_dict(torch.load(p, map_location="cpu", weights_only=True))
        return TrainedClassifier(model.to(device).eval(), rcfg, dataset.image_shape,
                                 dataset.num_classes)

    def train() -> TrainedClassifier:
        return train_classifier(rcfg, dataset.train_x, dataset.train_y, dataset.num_classes,
                                device, seed, desc="train real classifier", progress=progress)

    def save(p: Path, clf: TrainedClassifier) -> None:
        cache.save_torch(p, clf.model.state_dict())

    if store is None:
        return cache.entry(path, "real_classifier", load, train, save)
    skey = RealClassifierKey(dataset.digest, rcfg.model_dump_json(), seed)
    return store.entry(skey, cache, path, "real_classifier", load, train, save)
