"""Perceptual path length (Karras et al. 2019, StyleGAN): how abruptly images change along
short steps in latent space. Pairs z0, z1 ~ N(0, I); points at t and t + eps on the slerp
(or lerp) between them; distance of the two images in a perceptual feature space / eps^2;
the mean after dropping values outside the 1st-99th percentile, as StyleGAN does.

LPIPS weights cannot be downloaded here, so the feature space is configurable and defaults
to the suite's real-trained classifier (unit-normalised penultimate features).

Interval: normal approximation of the mean of the kept per-pair distances."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from bench.features.base import FeatureSpec
from bench.metrics import METRICS
from bench.metrics._intervals import mean_with_interval
from bench.metrics.base import Metric
from bench.registry import Options
from bench.values import score


class PPLOptions(Options):
    num_samples: int = Field(1000, ge=10)
    epsilon: float = Field(1e-4, gt=0)
    space: Literal["slerp", "lerp"] = Field("slerp", description="slerp for Gaussian z, lerp for w")
    features: FeatureSpec = Field(default_factory=lambda: FeatureSpec(name="classifier"))
    batch_size: int = Field(256, ge=1)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    d = (a_n * b_n).sum(-1, keepdim=True).clamp(-1, 1)
    p = t * torch.acos(d)
    c = b_n - d * a_n
    c = c / c.norm(dim=-1, keepdim=True)
    return a_n * torch.cos(p) + c * torch.sin(p)


@METRICS.register("ppl")
class PPL(Metric):
    """Perceptual path length in latent space (lower = smoother); needs latent access."""

    Options = PPLOptions
    options: PPLOptions
    version = "2"  # 2: normal 95% interval
    needs_latent = True
    values = {"ppl": score("lower", "quality")}
    primary = "ppl"

    def compute(self, generator, dataset, ctx):
        o = self.options
        ex = ctx.extractor(o.features, dataset)
        g = torch.Generator().manual_seed(ctx.seed)
        dists = []
        for i in range(0, o.num_samples, o.batch_size):
            n = min(o.batch_size, o.num_samples - i)
            z0 = torch.randn(n, generator.latent_dim, generator=g)
            z1 = torch.randn(n, generator.latent_dim, generator=g)
            t = torch.rand(n, 1, generator=g)
            labels = torch.randint(0, dataset.num_classes, (n,), generator=g)
            if o.space == "slerp":
                za, zb = slerp(z0, z1, t), slerp(z0, z1, t + o.epsilon)
            else:
                za, zb = torch.lerp(z0, z1, t), torch.lerp(z0, z1, t + o.epsilon)
            imgs = generator.render_latent(torch.cat([za, zb]), torch.cat([labels, labels]))
            with torch.no_grad():
                f, _ = ex._forward(imgs.to(ctx.device))
            f = torch.nn.functional.normalize(f.float(), dim=1)
            dists.append(((f[:n] - f[n:]) ** 2).sum(1).cpu() / o.epsilon**2)
        d = torch.cat(dists).double().numpy()
        lo, hi = np.percentile(d, [1, 99], method="lower"), np.percentile(d, [1, 99], method="higher")
        kept = d[(d >= lo[0]) & (d <= hi[1])]
        return mean_with_interval("ppl", kept, float(kept.mean()), lower=0.0)
