"""Known-defect generator modules for guard-rail suites (suites/guardrails.yaml): a board
that ranks them above an honest model is wrong, and the tests say so. Each is a plain
`nn.Module` for the `callable` source, so it goes through the same path as a user's model.
"""

from __future__ import annotations

import torch
from torch import nn


class NaNOutput(nn.Module):
    """forward(z, y) -> all NaN: a diverged generator. Its cells must fail, not be scored."""

    def __init__(self, num_classes: int, image_size: int, channels: int, latent_dim: int = 8):
        super().__init__()
        self.latent_dim = latent_dim
        self.shape = (channels, image_size, image_size)
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.full((z.shape[0], *self.shape), float("nan"), device=z.device) + self.dummy


class TanhImages(nn.Module):
    """forward(z, y) -> tanh images in [-1, 1], a per-class offset: declared with the wrong
    `output_range` ("[0, 255]") it renders near-black images, which must be flagged."""

    def __init__(self, num_classes: int, image_size: int, channels: int, latent_dim: int = 8):
        super().__init__()
        self.latent_dim = latent_dim
        self.shape = (channels, image_size, image_size)
        g = torch.Generator().manual_seed(0)
        self.fc = nn.Linear(latent_dim, channels * image_size * image_size)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=g))
        self.offset = nn.Embedding(num_classes, 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(z) + self.offset(y)).view(-1, *self.shape)
