"""Built-in class-conditional GAN (SNGAN-style: hinge loss, spectral-norm projection critic).

The suite trains it on the dataset when a cell needs it, caches the weights by (dataset
digest, options, seed) and logs it as an MLflow model, so every leaderboard has a real
trained generator beside the reference rows without anything to download.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.nn.utils import spectral_norm

from bench.data.base import DataInfo, Dataset
from bench.errors import BenchError
from bench.models import MODELS
from bench.models.base import BuildContext, Generator, ModelSource
from bench.progress import bar as progress_bar
from bench.registry import Options


class CGANOptions(Options):
    steps: int = Field(1000, ge=1, description="generator updates")
    batch_size: int = Field(64, ge=2)
    latent_dim: int = Field(64, ge=1)
    width: int = Field(32, ge=8, description="channels of the widest layer / 2")
    lr: float = Field(2e-4, gt=0)
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


class CGANGenerator(Generator):
    def __init__(self, net: CondGenerator, image_shape, num_classes: int, latent_dim: int,
                 device: torch.device):
        self.net = net.eval().to(device)
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        self.device = device

    @torch.no_grad()
    def render_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.net(z.to(self.device), labels.to(self.device))
        return ((x + 1) * 127.5).clamp(0, 255)

    def sample_latent(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.render_latent(z, labels).round().to(torch.uint8)

    def sample(self, n: int, labels: torch.Tensor, seed: int, batch_size: int = 4096) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g)
        outs = [self.sample_latent(z[i : i + batch_size], labels[i : i + batch_size]).cpu()
                for i in range(0, n, batch_size)]
        return torch.cat(outs)


def train_cgan(opts: CGANOptions, dataset: Dataset, device: torch.device, seed: int,
               progress: bool = True) -> tuple[CondGenerator, dict[str, list[float]]]:
    torch.manual_seed(seed)
    c, h, _ = dataset.image_shape
    k = dataset.num_classes
    G = CondGenerator(c, h, k, opts.latent_dim, opts.width).to(device)
    D = ProjectionDiscriminator(c, h, k, opts.width).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=opts.lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=opts.lr * 2, betas=(0.0, 0.9))
    x_all = dataset.train_x.to(device)
    y_all = dataset.train_y.to(device)
    n = x_all.shape[0]
    gen = torch.Generator(device=device).manual_seed(seed)
    hist: dict[str, list[float]] = {"step": [], "loss_d": [], "loss_g": []}
    bs = opts.batch_size
    bar = progress_bar(range(opts.steps), "train cgan", progress, unit="step")
    for step in bar:
        for _ in range(opts.n_critic):
            idx = torch.randint(0, n, (bs,), device=device, generator=gen)
            real = x_all[idx].float().div(127.5).sub(1)
            y = y_all[idx]
            z = torch.randn(bs, opts.latent_dim, device=device, generator=gen)
            with torch.no_grad():
                fake = G(z, y)
            loss_d = F.relu(1 - D(real, y)).mean() + F.relu(1 + D(fake, y)).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        y = y_all[torch.randint(0, n, (bs,), device=device, generator=gen)]
        z = torch.randn(bs, opts.latent_dim, device=device, generator=gen)
        loss_g = -D(G(z, y), y).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if step % 50 == 0 or step == opts.steps - 1:
            hist["step"].append(step)
            hist["loss_d"].append(loss_d.item())
            hist["loss_g"].append(loss_g.item())
            bar.set_postfix(d=f"{loss_d.item():.2f}", g=f"{loss_g.item():.2f}")
    return G.eval(), hist


@MODELS.register("cgan")
class CGAN(ModelSource):
    """Built-in conditional GAN (SNGAN-style), trained on the dataset on first use and cached."""

    Options = CGANOptions
    has_latent = True

    def check(self, info: DataInfo) -> None:
        s = info.height
        if info.height != info.width or s < 4 or s & (s - 1):
            raise BenchError(f"the built-in cgan needs square images with a power-of-two side "
                             f"(got {info.height}x{info.width}); set the dataset's image_size.")

    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator:
        o = self.options
        key = {"dataset": dataset.digest, "options": o.model_dump(mode="json"), "seed": ctx.seed}
        c, h, _ = dataset.image_shape
        net = CondGenerator(c, h, dataset.num_classes, o.latent_dim, o.width)
        path = ctx.cache.path("cgan", key, suffix=".pt")
        if path.exists():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            ctx.cache.hit("cgan")
        else:
            ctx.cache.miss("cgan")
            t0 = time.perf_counter()
            trained, hist = train_cgan(o, dataset, ctx.device, ctx.seed, ctx.progress)
            saved = {"state_dict": trained.state_dict(), "history": hist,
                     "train_seconds": time.perf_counter() - t0}
            ctx.cache.save_torch(path, saved)
        net.load_state_dict(saved["state_dict"])
        if ctx.log_trained is not None:
            # logged once per tracking store, also when the weights came from the disk cache
            ctx.log_trained("cgan", path.stem, net, saved["history"],
                            {**o.model_dump(mode="json"), "dataset_digest": dataset.digest,
                             "seed": ctx.seed, "train_seconds": round(saved["train_seconds"], 1)})
        return CGANGenerator(net, dataset.image_shape, dataset.num_classes, o.latent_dim, ctx.device)
