"""The conditional GAN networks and their options, shared by the built-in `cgan` source
(models/cgan.py) and the trained baselines (models/baselines.py, which holds the training
loop): a generator with an embedded label, a spectral-norm projection discriminator, a
label-channel discriminator, and the Generator that samples a trained network.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils import spectral_norm

from bench.core.registry import Options
from bench.models.base import Generator


class GANOptions(Options):
    """What the training loop (models/baselines.py) reads; `cgan` and `baseline` extend it."""

    steps: int = Field(1000, ge=1, description="generator updates")
    batch_size: int = Field(64, ge=2)
    latent_dim: int = Field(64, ge=1)
    width: int = Field(32, ge=8, description="channels of the widest layer / 2")
    lr: float = Field(2e-4, gt=0)
    n_critic: int | None = Field(None, ge=1, description="discriminator updates per generator "
                                 "update (default: the arch's)")
    checkpoint_every: int = Field(200, ge=0, description="write a resumable training checkpoint "
                                  "every this many steps (0: never); not part of the cache key")


class CGANOptions(GANOptions):
    n_critic: int = Field(1, ge=1, description="discriminator updates per generator update")


class CondGenerator(nn.Module):
    def __init__(self, out_chans: int, image_size: int, num_classes: int, latent_dim: int, width: int):
        super().__init__()
        self.ups = max(1, int(math.log2(image_size)) - 1)  # 8 -> 2 ups from 2x2; 32 -> 4 from 2x2
        self.s0 = image_size // 2**self.ups
        ch = width * 2
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.fc = nn.Linear(2 * latent_dim, ch * self.s0 * self.s0)
        blocks = []
        for i in range(self.ups):
            cout = max(width // 2, ch // 2) if i < self.ups - 1 else width
            blocks += [nn.BatchNorm2d(ch), nn.ReLU(True), nn.Upsample(scale_factor=2),
                       nn.Conv2d(ch, cout, 3, padding=1)]
            ch = cout
        self.body = nn.Sequential(*blocks, nn.BatchNorm2d(ch), nn.ReLU(True),
                                  nn.Conv2d(ch, out_chans, 3, padding=1), nn.Tanh())
        self.ch0 = width * 2

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.embed(y)], 1)).view(-1, self.ch0, self.s0, self.s0)
        return self.body(h)


class ProjectionDiscriminator(nn.Module):
    def __init__(self, in_chans: int, image_size: int, num_classes: int, width: int):
        super().__init__()
        layers, ch, s = [], in_chans, image_size
        cout = width
        while True:
            layers += [spectral_norm(nn.Conv2d(ch, cout, 3, padding=1)), nn.LeakyReLU(0.1, True)]
            if s <= 2:
                break
            layers += [spectral_norm(nn.Conv2d(cout, cout * 2, 4, stride=2, padding=1)),
                       nn.LeakyReLU(0.1, True)]
            ch, cout, s = cout * 2, cout * 2, s // 2
        self.body = nn.Sequential(*layers)
        self.out = spectral_norm(nn.Linear(cout, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, cout))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x).sum(dim=(2, 3))
        return self.out(h).squeeze(1) + (self.embed(y) * h).sum(1)


class ConcatDiscriminator(nn.Module):
    """Label as an embedded extra channel; stride-2 convolutions; optional BatchNorm."""

    def __init__(self, in_chans: int, image_size: int, num_classes: int, width: int,
                 batchnorm: bool):
        super().__init__()
        self.size = image_size
        self.embed = nn.Embedding(num_classes, image_size * image_size)
        layers: list[nn.Module] = [nn.Conv2d(in_chans + 1, width, 3, padding=1),
                                   nn.LeakyReLU(0.2, True)]
        ch, s = width, image_size
        while s > 2:
            layers.append(nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1))
            if batchnorm:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch, s = ch * 2, s // 2
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(ch * s * s, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        lab = self.embed(y).view(-1, 1, self.size, self.size)
        return self.out(self.body(torch.cat([x, lab], 1)).flatten(1)).squeeze(1)


class CGANGenerator(Generator):
    def __init__(self, net: CondGenerator, image_shape: tuple[int, int, int], num_classes: int,
                 latent_dim: int, device: torch.device):
        self.net = net.eval().to(device)
        c, h, w = image_shape
        self.image_shape = (c, h, w)
        self.num_classes = num_classes
        self.latent_dim: int = latent_dim
        self.device = device

    def render_latent_grad(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.net(z.to(self.device), labels.to(self.device))
        return ((x + 1) * 127.5).clamp(0, 255)

    @torch.no_grad()
    def render_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.render_latent_grad(z, labels)

    def sample_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.render_latent(z, labels).round().to(torch.uint8)

    def sample(self, n: int, labels: torch.Tensor, seed: int, batch_size: int = 4096) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g)
        outs = [self.sample_latent(z[i : i + batch_size], labels[i : i + batch_size]).cpu()
                for i in range(0, n, batch_size)]
        return torch.cat(outs)
