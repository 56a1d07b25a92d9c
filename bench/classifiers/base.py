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

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from `forward_features`' output, where the net splits there (then features
        and logits take one pass, `has_head`); the default says it does not."""
        raise NotImplementedError

    @property
    def has_head(self) -> bool:
        return type(self).forward_head is not Classifier.forward_head
