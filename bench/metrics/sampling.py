"""Helpers shared by the classifier-based metrics: labels with a dataset's class balance,
and the per-class table every accuracy metric logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.data.base import Dataset


def balanced_labels(dataset: Dataset, n: int | None, seed: int, split: str = "train") -> torch.Tensor:
    """n labels with the split's class proportions (exactly the split's labels when n is None
    or equals its size: GAN-train then sees as many images per class as real training)."""
    y = dataset.train_y if split == "train" else dataset.val_y
    if n is None or n == len(y):
        return y.clone()
    counts = np.bincount(y.numpy(), minlength=dataset.num_classes).astype(float)
    want = counts / counts.sum() * n
    per = np.floor(want).astype(int)
    # hand the rounding remainder to the classes with the largest fractional parts
    per[np.argsort(want - per)[::-1][: n - per.sum()]] += 1
    labels = np.repeat(np.arange(dataset.num_classes), per)
    return torch.from_numpy(np.random.default_rng(seed).permutation(labels).astype(np.int64))


def write_per_class(path: Path, dataset: Dataset, columns: dict[str, np.ndarray]) -> None:
    df = pd.DataFrame({"class": dataset.class_names, **columns})
    df.to_csv(path, index=False, float_format="%.4f")
