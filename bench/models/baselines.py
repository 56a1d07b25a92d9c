"""Trained class-conditional GAN baselines: one training loop, three loss recipes.

- `sngan`   hinge loss, spectral-norm projection discriminator (the built-in `cgan`)
- `dcgan`   non-saturating BCE loss, BatchNorm discriminator that gets the label as an
            embedded extra input channel
- `wgan_gp` Wasserstein loss with gradient penalty, normalisation-free critic with the same
            label channel, 5 critic updates per generator update

All share `CondGenerator`. Training checkpoints (networks, optimizers, RNG, step, history)
are written atomically every `checkpoint_every` steps beside the disk-cache entry, so an
interrupted training resumes where its last checkpoint left it, bit for bit on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from bench.classifiers.train import device_layout, to_float
from bench.core.errors import BenchError
from bench.core.progress import bar as progress_bar
from bench.data.base import DataInfo, Dataset
from bench.infra.cache import Cache
from bench.models import MODELS
from bench.models.base import BuildContext, Generator, ModelSource
from bench.models.gan_nets import (  # noqa: F401  (ConcatDiscriminator: importable from here)
    CGANGenerator,
    CGANOptions,
    ConcatDiscriminator,
    CondGenerator,
    GANOptions,
    ProjectionDiscriminator,
)

Arch = Literal["sngan", "dcgan", "wgan_gp"]


class BaselineOptions(GANOptions):
    arch: Arch = Field("sngan", description="sngan (hinge, spectral norm, projection), dcgan "
                       "(BCE, BatchNorm, label channel) or wgan_gp (gradient penalty)")
    n_critic: int | None = Field(None, ge=1, description="discriminator updates per generator "
                                 "update (default: 1, wgan_gp 5)")
    gp_weight: float = Field(10.0, ge=0, description="wgan_gp: gradient penalty weight")


# ---------------------------------------------------------------- per-arch loss steps
def _hinge_d(D, real, fake, y, gen, opts):
    return F.relu(1 - D(real, y)).mean() + F.relu(1 + D(fake, y)).mean()


def _bce_d(D, real, fake, y, gen, opts):
    r, f = D(real, y), D(fake, y)
    return (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
            + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))


def _bce_g(D, fake, y):
    f = D(fake, y)
    return F.binary_cross_entropy_with_logits(f, torch.ones_like(f))  # non-saturating


def _wgan_gp_d(D, real, fake, y, gen, opts):
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=gen)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(mix, y).sum(), mix, create_graph=True)
    gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    return D(fake, y).mean() - D(real, y).mean() + opts.gp_weight * gp


def _neg_critic_g(D, fake, y):
    return -D(fake, y).mean()


@dataclass(frozen=True)
class ArchSpec:
    make_d: Callable[[int, int, int, int], nn.Module]  # (chans, size, classes, width)
    d_loss: Callable[..., torch.Tensor]  # (D, real, fake, y, rng, opts)
    g_loss: Callable[..., torch.Tensor]  # (D, fake, y)
    betas: tuple[float, float]
    d_lr_mult: float
    n_critic: int


ARCHS: dict[str, ArchSpec] = {
    "sngan": ArchSpec(ProjectionDiscriminator, _hinge_d, _neg_critic_g, (0.0, 0.9), 2.0, 1),
    "dcgan": ArchSpec(lambda c, s, k, w: ConcatDiscriminator(c, s, k, w, batchnorm=True),
                      _bce_d, _bce_g, (0.5, 0.999), 1.0, 1),
    "wgan_gp": ArchSpec(lambda c, s, k, w: ConcatDiscriminator(c, s, k, w, batchnorm=False),
                        _wgan_gp_d, _neg_critic_g, (0.0, 0.9), 1.0, 5),
}


# ---------------------------------------------------------------- the shared loop
def train_baseline(opts: GANOptions, dataset: Dataset, device: torch.device, seed: int,
                   progress: bool = True, arch: str = "sngan", checkpoint: Path | None = None,
                   checkpoint_every: int = 0, on_step: Callable[[int], None] | None = None,
                   ) -> tuple[CondGenerator, dict[str, list[float]]]:
    """Train a conditional GAN of `arch`; resume from `checkpoint` when it exists, write it
    every `checkpoint_every` steps. `on_step(steps_done)` runs after each generator update
    (after the checkpoint of that step), e.g. to stop early."""
    spec = ARCHS[arch]
    n_critic = opts.n_critic or spec.n_critic
    torch.manual_seed(seed)
    c, h, _ = dataset.image_shape
    k = dataset.num_classes
    G = CondGenerator(c, h, k, opts.latent_dim, opts.width).to(device)
    D = spec.make_d(c, h, k, opts.width).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=opts.lr, betas=spec.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=opts.lr * spec.d_lr_mult, betas=spec.betas)
    x_all = dataset.train_x.to(device)
    y_all = dataset.train_y.to(device)
    n = x_all.shape[0]
    gen = torch.Generator(device=device).manual_seed(seed)
    hist: dict[str, list[float]] = {"step": [], "loss_d": [], "loss_g": []}
    start = 0
    if checkpoint is not None and checkpoint.exists():
        ck = torch.load(checkpoint, map_location=device, weights_only=True)
        G.load_state_dict(ck["G"])
        D.load_state_dict(ck["D"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        gen.set_state(ck["rng"].cpu())
        torch.set_rng_state(ck["torch_rng"].cpu())
        hist, start = ck["history"], int(ck["step"])
    bs = opts.batch_size
    every = max(1, min(50, opts.steps // 20))
    bar = progress_bar(range(start, opts.steps), f"train {arch}", progress, unit="step",
                       initial=start, total=opts.steps)
    for step in bar:
        for _ in range(n_critic):
            idx = torch.randint(0, n, (bs,), device=device, generator=gen)
            real = device_layout(to_float(x_all[idx]), device)
            y = y_all[idx]
            z = torch.randn(bs, opts.latent_dim, device=device, generator=gen)
            with torch.no_grad():
                fake = G(z, y)
            loss_d = spec.d_loss(D, real, fake, y, gen, opts)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        y = y_all[torch.randint(0, n, (bs,), device=device, generator=gen)]
        z = torch.randn(bs, opts.latent_dim, device=device, generator=gen)
        loss_g = spec.g_loss(D, G(z, y), y)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if step % every == 0 or step == opts.steps - 1:
            hist["step"].append(step)
            hist["loss_d"].append(loss_d.item())
            hist["loss_g"].append(loss_g.item())
            bar.set_postfix(d=f"{loss_d.item():.2f}", g=f"{loss_g.item():.2f}")
        done = step + 1
        if checkpoint is not None and checkpoint_every and done % checkpoint_every == 0 \
                and done < opts.steps:
            Cache(checkpoint.parent).save_torch(checkpoint, {
                "G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(), "rng": gen.get_state(),
                "torch_rng": torch.get_rng_state(), "history": hist, "step": done, "arch": arch})
        if on_step is not None:
            on_step(done)
    return G.eval(), hist


def build_baseline(name: str, opts: GANOptions, arch: str, dataset: Dataset,
                   ctx: BuildContext, checkpoint_every: int = 0,
                   on_step: Callable[[int], None] | None = None) -> Generator:
    """Train (or load from the disk cache) and log a baseline; `name` is the cache kind and
    the MLflow artifact name."""
    key = {"dataset": dataset.digest, "options": opts.model_dump(mode="json",
                                                                 exclude={"checkpoint_every"}),
           "seed": ctx.seed}
    c, h, _ = dataset.image_shape
    net = CondGenerator(c, h, dataset.num_classes, opts.latent_dim, opts.width)
    path = ctx.cache.path(name, key, suffix=".pt")
    with ctx.cache.lock(path):  # two workers needing the same baseline: one trains, one waits
        if path.exists():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            ctx.cache.hit(name)
        else:
            ctx.cache.miss(name)
            ckpt = checkpoint_path(path)
            t0 = time.perf_counter()
            trained, hist = train_baseline(opts, dataset, ctx.device, ctx.seed, ctx.progress, arch,
                                           ckpt, checkpoint_every, on_step)
            saved = {"state_dict": trained.state_dict(), "history": hist,
                     "train_seconds": time.perf_counter() - t0}
            ctx.cache.save_torch(path, saved)
            ckpt.unlink(missing_ok=True)
    net.load_state_dict(saved["state_dict"])
    if ctx.log_trained is not None:
        # logged once per tracking store, also when the weights came from the disk cache
        ctx.log_trained(name, path.stem, net, saved["history"],
                        {**opts.model_dump(mode="json"), "arch": arch,
                         "dataset_digest": dataset.digest, "seed": ctx.seed,
                         "train_seconds": round(saved["train_seconds"], 1)})
    return CGANGenerator(net, dataset.image_shape, dataset.num_classes, opts.latent_dim, ctx.device)


def checkpoint_path(entry: Path) -> Path:
    """The training checkpoint of a cache entry: beside it, in the same folder."""
    return entry.with_name(entry.stem + ".ckpt.pt")


def check_square_pow2(info: DataInfo, what: str) -> None:
    s = info.height
    if info.height != info.width or s < 4 or s & (s - 1):
        raise BenchError(f"the built-in {what} needs square images with a power-of-two side "
                         f"(got {info.height}x{info.width}); set the dataset's image_size.")


@MODELS.register("baseline")
class Baseline(ModelSource[BaselineOptions]):
    """Conditional GAN baseline (arch: sngan | dcgan | wgan_gp), trained on first use and cached."""

    has_latent = True
    trainable = True  # `bench train` accepts it

    def check(self, info: DataInfo) -> None:
        check_square_pow2(info, "baseline")

    def has_mapping(self, info: DataInfo) -> bool | None:
        return False  # z goes straight into the generator

    def build(self, dataset: Dataset, ctx: BuildContext, **kw: Any) -> Generator:
        o = self.options
        return build_baseline("baseline", o, o.arch, dataset, ctx, o.checkpoint_every, **kw)
