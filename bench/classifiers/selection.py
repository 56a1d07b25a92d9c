"""Choosing a classifier's epoch count without looking at the split that is reported.

Every classifier-based number is reported on the real val split, so nothing that tunes a
classifier (epochs, early stopping) may look at val. `epochs_to_plateau` holds out a
seeded, stratified slice of the *training* split (10% by default), trains on the rest for
each epoch count of a grid, and picks the fewest epochs whose accuracy on the slice is
within `tol` of the best. `train_classifier` itself never selects anything: it trains for
exactly `epochs` epochs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bench.classifiers.train import ClassifierConfig, evaluate, train_classifier
from bench.data.base import stratified_split


def selection_split(y: torch.Tensor | np.ndarray, fraction: float = 0.1, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(fit, select) indices into the training split: a seeded stratified `fraction` held out."""
    y = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return stratified_split(y, fraction, seed)


@dataclass
class EpochTrial:
    epochs: int
    seconds: float
    accuracy: float  # on the held-out slice of the training split


def epochs_to_plateau(cfg: ClassifierConfig, train_x: torch.Tensor, train_y: torch.Tensor,
                      num_classes: int, device: torch.device, grid: Sequence[int],
                      tol: float = 0.005, fraction: float = 0.1, seed: int = 0,
                      on_trial: Callable[[EpochTrial], None] | None = None,
                      ) -> tuple[int, list[EpochTrial]]:
    """The fewest epochs of `grid` within `tol` of the best accuracy on a held-out slice of
    the training split (pass the training split only: the val split is never an input)."""
    fit, sel = selection_split(train_y, fraction, seed)
    fit_t, sel_t = torch.from_numpy(fit), torch.from_numpy(sel)
    trials = []
    for ep in grid:
        t0 = time.perf_counter()
        clf = train_classifier(cfg.model_copy(update={"epochs": ep}), train_x[fit_t], train_y[fit_t],
                               num_classes, device, seed, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
        trials.append(EpochTrial(ep, sec, evaluate(clf, train_x[sel_t], train_y[sel_t], device).accuracy))
        if on_trial is not None:
            on_trial(trials[-1])
    best = max(t.accuracy for t in trials)
    return next(t.epochs for t in trials if t.accuracy >= best - tol), trials
