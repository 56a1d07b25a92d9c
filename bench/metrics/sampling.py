"""Helpers shared by the classifier-based metrics: per-class counts, nested subsets and the
selection of a stream's first images of each class (`Context.generated_by_class`), and the
per-class table every accuracy metric logs. The stream itself is bench.infra.store's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.data.base import Dataset


def write_per_class(path: Path, dataset: Dataset, columns: dict[str, np.ndarray]) -> None:
    df = pd.DataFrame({"class": dataset.class_names, **columns})
    df.to_csv(path, index=False, float_format="%.4f")


def balanced_counts(n: int, available: np.ndarray) -> np.ndarray:
    """Per-class counts summing to min(n, available.sum()), as equal across classes as the
    `available` images per class allow (water-filling: a class short of images gives its
    share to the others). Pass `np.full(k, n)` for a generator, which has no shortage.

    Learning curves and augmentation compare real and generated sets of the same size;
    equal class counts keep the class balance out of that comparison. The last few images
    of a remainder go to the lowest class indices, so the result is deterministic.
    """
    avail = np.asarray(available, dtype=np.int64)
    counts = np.zeros_like(avail)
    remaining = int(min(n, avail.sum()))
    while remaining > 0:
        open_ = np.flatnonzero(counts < avail)
        share = remaining // len(open_)
        if share == 0:
            counts[open_[:remaining]] += 1
            break
        add = np.minimum(share, avail[open_] - counts[open_])
        counts[open_] += add
        remaining -= int(add.sum())
    return counts


def subset_by_counts(y: torch.Tensor, counts: np.ndarray, seed: int) -> torch.Tensor:
    """Indices of `counts[c]` images of each class c: the first ones of a seeded per-class
    permutation, so a smaller subset is nested in a larger one with the same seed (a
    learning curve then measures size, not which images were drawn)."""
    rng = np.random.default_rng(seed)
    yn = y.cpu().numpy()
    picks = []
    for c, n in enumerate(np.asarray(counts)):
        pool = rng.permutation(np.flatnonzero(yn == c))
        if n > len(pool):
            raise ValueError(f"class {c} has {len(pool)} images, {int(n)} requested")
        picks.append(pool[: int(n)])
    return torch.from_numpy(np.sort(np.concatenate(picks)).astype(np.int64))


def first_of_each_class(y: torch.Tensor, counts: np.ndarray) -> torch.Tensor:
    """Indices (ascending) of the first `counts[c]` labels of each class c in `y`."""
    yn = y.cpu().numpy()
    picks = []
    for c, n in enumerate(np.asarray(counts)):
        at = np.flatnonzero(yn == c)[: int(n)]
        if len(at) < n:
            raise ValueError(f"class {c}: {len(at)} labels, {int(n)} requested")
        picks.append(at)
    return torch.from_numpy(np.sort(np.concatenate(picks)).astype(np.int64))


def labels_from_counts(counts: np.ndarray, seed: int) -> torch.Tensor:
    """Shuffled labels with `counts[c]` of class c (the request to a generator)."""
    labels = np.repeat(np.arange(len(counts)), np.asarray(counts, dtype=np.int64))
    return torch.from_numpy(np.random.default_rng(seed).permutation(labels).astype(np.int64))
