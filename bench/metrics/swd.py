"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018), computed
on the images themselves (no feature network), x1e3 per level as the ProGAN tables report.
Memory is bounded (`memory_mib`): patch descriptors are recomputed per block of directions,
never held (bench.metrics.functional.swd)."""

from __future__ import annotations

import torch
from pydantic import Field

from bench.core.registry import Options
from bench.metrics import METRICS
from bench.metrics.base import Metric
from bench.metrics.functional import sliced_wasserstein
from bench.record.values import diagnostic, score

PROGAN_IMAGES = 16_384  # images per side in Karras et al. (2018), Table 1


class SWDOptions(Options):
    num_samples: int | None = Field(None, ge=2, description="images per side (default: the real "
                                    "training size, at most 16,384 as in ProGAN)")
    patches_per_image: int = Field(128, ge=1)
    min_resolution: int = Field(16, ge=4, description="coarsest pyramid level's side")
    memory_mib: int = Field(1024, ge=16, description="projections held at a time (MiB, on the "
                            "metric's device); less means more passes over the images, same result")


@METRICS.register("swd")
class SWD(Metric[SWDOptions]):
    """Sliced Wasserstein distance of multi-scale 7x7 patches (per level and mean, x1e3)."""

    # 2: the model's shared sample stream (bench.infra.store); 3: streamed descriptors (bounded
    # memory, float64 normalisation statistics), at most 16,384 images per side by default
    version = "3"
    values = {"swd_mean": score("lower", "quality"),
              "swd": diagnostic("lower")}  # per-level values: details of swd_mean
    primary = "swd_mean"

    def images(self, dataset) -> int:
        n = self.options.num_samples
        return n if n is not None else min(len(dataset.train_y), PROGAN_IMAGES)

    def used_options(self, dataset):
        return {**super().used_options(dataset), "num_samples": self.images(dataset)}

    def compute(self, generator, dataset, ctx):
        o = self.options
        n = self.images(dataset)
        fake, _ = ctx.generated(generator, dataset, n)  # a class-balanced prefix of the stream
        real = dataset.train_x
        if n < len(real):  # a seeded random subset: a split may be stored sorted by class
            pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(ctx.seed))[:n]
            real = real[pick.sort().values]
        return sliced_wasserstein(real, fake, patches_per_image=o.patches_per_image,
                                  min_resolution=o.min_resolution, seed=ctx.seed, device=ctx.device,
                                  memory_budget=o.memory_mib << 20)
