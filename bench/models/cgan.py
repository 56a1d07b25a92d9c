"""Built-in class-conditional GAN (SNGAN-style: hinge loss, spectral-norm projection critic).

The suite trains it on the dataset when a cell needs it, caches the weights by (dataset
digest, options, seed) and logs it as an MLflow model, so every leaderboard has a real
trained generator beside the reference rows without anything to download.
"""

from __future__ import annotations

from typing import Any

from bench.data.base import DataInfo, Dataset
from bench.models import MODELS
from bench.models.base import BuildContext, Generator, ModelSource
from bench.models.baselines import build_baseline, check_square_pow2

# The networks live in gan_nets.py; they stay importable from here (and MLflow models pickled
# before the move name bench.models.cgan.CondGenerator).
from bench.models.gan_nets import (  # noqa: F401
    CGANGenerator,
    CGANOptions,
    CondGenerator,
    ProjectionDiscriminator,
)


@MODELS.register("cgan")
class CGAN(ModelSource[CGANOptions]):
    """Built-in conditional GAN (SNGAN-style), trained on the dataset on first use and cached."""

    has_latent = True
    trainable = True  # `bench train` accepts it

    def check(self, info: DataInfo) -> None:
        check_square_pow2(info, "cgan")

    def has_mapping(self, info: DataInfo) -> bool | None:
        return False  # z goes straight into the generator

    def build(self, dataset: Dataset, ctx: BuildContext, **kw: Any) -> Generator:
        return build_baseline("cgan", self.options, "sngan", dataset, ctx,
                              self.options.checkpoint_every, **kw)
