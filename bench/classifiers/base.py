"""The classifier plugin: one class per architecture, registered in bench.classifiers.CLASSIFIERS.

A classifier is one `Classifier` subclass that carries everything about it:

- its network: calling the class, `cls(in_chans=..., num_classes=..., image_size=...,
  **args)`, builds the model (`args` are a suite's `classifier: {args: ...}`);
- its recipe: `recipe`, the default of every training setting a `ClassifierConfig` leaves
  at None (`GENERIC_RECIPE` unless the class names its own, as airbench does);
- its trainer: `fit`, the generic loop (bench.classifiers.train.fit_generic) unless the class
  overrides it with its own recipe's training function (airbench).

So adding a classifier is one decorated class in one module; `train_classifier`, the real
classifier's cache and `bench list classifiers` find everything through the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

# the generic recipe's defaults (small_cnn, the ResNets and timm nets; the settings every
# suite has used so far): 30 epochs of AdamW at batch 128 under a one-cycle schedule
GENERIC_RECIPE: dict[str, Any] = dict(
    epochs=30, batch_size=128, optimizer="adamw", lr=2e-3, weight_decay=5e-4, momentum=0.9,
    schedule="onecycle", label_smoothing=0.0, crop=0, flip=False, tta=0)


class Classifier(nn.Module):
    """Maps float images in [-1, 1] to logits (`forward`), and to pooled (N, D) penultimate
    features (`forward_features`) for the feature-space metrics; `num_features` is D.

    A registered subclass is a classifier plugin (see the module docstring): its constructor
    takes (in_chans, num_classes, image_size, **args), `recipe` holds its default training
    settings and `fit` trains it."""

    num_features: int
    # every training setting (ClassifierConfig's names, `crop` and `flip` for its augment)
    recipe: ClassVar[Mapping[str, Any]] = GENERIC_RECIPE

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from `forward_features`' output, where the net splits there (then features
        and logits take one pass, `has_head`); the default says it does not."""
        raise NotImplementedError

    @property
    def has_head(self) -> bool:
        return type(self).forward_head is not Classifier.forward_head

    @classmethod
    def has_own_trainer(cls) -> bool:
        """Whether the classifier trains itself: a classifier with its own recipe may define
        a classmethod `fit(cfg, s, x, y, num_classes, device, seed, desc, progress)` (airbench
        does); every other one is trained by the generic loop, `train.fit_generic`."""
        return callable(getattr(cls, "fit", None))
