"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018), computed
on the images themselves (no feature network), x1e3 per level as the ProGAN tables report."""

from __future__ import annotations

from pydantic import Field

from bench.metrics import METRICS
from bench.metrics.base import Metric
from bench.metrics.functional import sliced_wasserstein
from bench.registry import Options
from bench.values import diagnostic, score


class SWDOptions(Options):
    num_samples: int | None = Field(None, ge=2, description="images per side (default: real train size)")
    patches_per_image: int = Field(128, ge=1)
    min_resolution: int = Field(16, ge=4, description="coarsest pyramid level's side")


@METRICS.register("swd")
class SWD(Metric):
    """Sliced Wasserstein distance of multi-scale 7x7 patches (per level and mean, x1e3)."""

    Options = SWDOptions
    options: SWDOptions
    version = "2"  # 2: the model's shared sample stream (bench.store)
    values = {"swd_mean": score("lower", "quality"),
              "swd": diagnostic("lower")}  # per-level values: details of swd_mean
    primary = "swd_mean"

    def compute(self, generator, dataset, ctx):
        o = self.options
        fake, _ = ctx.generated(generator, dataset, o.num_samples)
        real = dataset.train_x if o.num_samples is None else dataset.train_x[: o.num_samples]
        out = sliced_wasserstein(real, fake, patches_per_image=o.patches_per_image,
                                 min_resolution=o.min_resolution, seed=ctx.seed, device=ctx.device)
        return out
