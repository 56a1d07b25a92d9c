"""The Dataset contract: uint8 images (N, C, H, W), int64 labels, train and val splits."""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from bench.core.registry import O, Plugin


@dataclass(frozen=True)
class DataInfo:
    """What validation needs to know about a dataset without loading it."""

    channels: int
    height: int
    width: int
    num_classes: int
    # False: images without class labels (a flat folder, an npz without labels): one class,
    # every label 0; metrics that need labels are refused for it (`Metric.label_need`)
    labeled: bool = True

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor  # uint8 (N, C, H, W), on the CPU
    train_y: torch.Tensor  # int64 (N,)
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    # what loading found worth reporting (skipped files, class imbalance): logged as run tags
    notes: dict[str, str] = field(default_factory=dict)
    # how the split was chosen where a source lets the user choose it (image_folder's `group`
    # regex): part of the digest, so a different grouping is a different dataset
    split_key: str = ""
    # set on a view made by `restrict_train`: "<parent digest>:<sha of the kept indices>",
    # which is then the whole digest (a subset is a dataset of its own to every cache)
    subset: str = ""
    # False: the images have no class labels (unconditional data): num_classes is 1 and
    # every label 0, so label-free metrics run unchanged; see DataInfo.labeled
    labeled: bool = True

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.train_x, self.train_y), ("val", self.val_x, self.val_y)):
            if x.dtype != torch.uint8 or x.ndim != 4:
                raise ValueError(f"dataset {self.name}: {split} images must be uint8 (N, C, H, W)")
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ValueError(f"dataset {self.name}: {split} labels must be int64 (N,)")
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.num_classes)]

    @property
    def info(self) -> DataInfo:
        c, h, w = self.train_x.shape[1:]
        return DataInfo(int(c), int(h), int(w), self.num_classes, self.labeled)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.info.image_shape

    @cached_property
    def digest(self) -> str:
        """Content hash of both splits: the cache key of everything derived from the data."""
        h = hashlib.sha256()
        if self.subset:  # a view: derived from the parent's digest and the kept indices
            h.update(f"subset:{self.subset}".encode())
            return h.hexdigest()[:16]
        for t in (self.train_x, self.train_y, self.val_x, self.val_y):
            h.update(str(tuple(t.shape)).encode())
            # the array's buffer itself (no bytes copy): a memory-mapped set is read, not held
            h.update(np.ascontiguousarray(t.numpy()).data)
        if self.split_key:  # empty for every other source: their digests stay as they were
            h.update(f"split:{self.split_key}".encode())
        return h.hexdigest()[:16]

    def class_counts(self, split: str = "train") -> np.ndarray:
        y = self.train_y if split == "train" else self.val_y
        return np.bincount(y.numpy(), minlength=self.num_classes)

    def restrict_train(self, index: torch.Tensor, why: str = "") -> Dataset:
        """This dataset with its training split cut to the images at `index` (val unchanged):
        the data a protocol trains a generator on when it chooses that data itself
        (augmentation's real subsets, balancing's imbalanced split). The view's digest is
        derived from this dataset's and the indices, so everything keyed by digest (the
        trained baselines' cache above all) keeps one entry per subset. The full, ordered
        index gives this dataset back, with its own digest and cache entries."""
        idx = torch.as_tensor(index, dtype=torch.int64).cpu()
        n = len(self.train_y)
        if len(idx) == n and torch.equal(idx, torch.arange(n)):
            return self
        kept = hashlib.sha256(np.ascontiguousarray(idx.numpy()).tobytes()).hexdigest()[:16]
        notes = {**self.notes, "train_subset": f"{len(idx)} of {n} training images"
                 + (f" ({why})" if why else "")}
        return Dataset(f"{self.name}[subset]", self.train_x[idx], self.train_y[idx], self.val_x,
                       self.val_y, self.num_classes, list(self.class_names), notes,
                       self.split_key, subset=f"{self.digest}:{kept}", labeled=self.labeled)


class DatasetSource(Plugin[O]):
    """A registered way to obtain a Dataset (bundled, torchvision, folder, npz...)."""

    @abstractmethod
    def describe(self) -> DataInfo:
        """Shape and class count, cheaply, for validation before anything runs."""

    def check(self) -> None:
        """Raise BenchError for missing files etc. (called by `bench validate`)."""

    @abstractmethod
    def load(self, cache: Any = None) -> Dataset:
        """The dataset. `cache` (a bench.infra.cache.Cache) is where the source may keep files
        derived from its data (image_folder's decoded images, a parsed torchvision set), given
        by whoever loads it (the worker, `bench train`); None: Cache() (BENCH_CACHE_DIR or
        .bench_cache). Passed here, not set on the source, so a source holds no run state."""


def stratified_split(
    y: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: the same indices for the same labels and seed."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))
