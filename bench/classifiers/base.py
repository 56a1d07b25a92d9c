"""What every classifier factory returns (bench.classifiers.CLASSIFIERS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

# Classifiers that train with their own recipe (airbench) register their training function
# here under their registry name; `train_classifier` looks it up after loading the classifier,
# so the generic loop never imports a recipe module (and no recipe imports it back in a cycle).
TRAINERS: dict[str, Callable[..., Any]] = {}


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
