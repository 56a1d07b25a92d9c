"""What every classifier factory returns (bench.classifiers.CLASSIFIERS)."""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """Maps float images in [-1, 1] to logits (`forward`), and to pooled (N, D) penultimate
    features (`forward_features`) for the feature-space metrics; `num_features` is D."""

    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
