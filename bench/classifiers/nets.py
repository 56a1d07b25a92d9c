"""Classifier architectures trained by the generic recipe. Each is a registered
`Classifier` class built from (in_chans, num_classes, image_size, **args): it maps float
images in [-1, 1] to logits, with `forward_features` (penultimate layer) for the
feature-space metrics (nearest neighbours, FID on the classifier).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.classifiers import CLASSIFIERS
from bench.classifiers.base import Classifier


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


@CLASSIFIERS.register("small_cnn")
class SmallCNN(Classifier):
    """Small VGG-style CNN (4-5 conv layers, BatchNorm): seconds per model on digits, CPU.

    Two VGG-style stages (three above 16 px) and global pooling; the generic recipe."""

    def __init__(self, in_chans: int, num_classes: int, image_size: int, width: int = 32):
        super().__init__()
        w = width
        layers = [_block(in_chans, w), _block(w, w), nn.MaxPool2d(2)]
        layers += [_block(w, 2 * w), _block(2 * w, 2 * w)]
        if image_size >= 16:
            layers += [nn.MaxPool2d(2), _block(2 * w, 4 * w)]
            w *= 2
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 2 * w
        self.head = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x)).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

