"""Shared shape of the feature-based distribution metrics (FID, KID, PR, DC, ...):
real features (cached) and generated features from one extractor, then a plain function
from `bench.metrics.functional`. Each registered metric only says which function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field
from typing_extensions import TypeVar  # typing's own takes default= from 3.13

from bench.core.registry import Options
from bench.data.base import Dataset
from bench.features.base import FeatureSpec
from bench.metrics.base import Context, Metric
from bench.metrics.functional import FrechetReference
from bench.models.base import Generator
from bench.run.store import Key


class FeatureMetricOptions(Options):
    features: FeatureSpec = Field(default_factory=FeatureSpec,
                                  description="feature extractor: {name: inception|classifier|timm|vgg16, ...}")
    num_samples: int | None = Field(None, ge=2, description="generated images (default: real train size)")


@dataclass(frozen=True)
class FrechetReferenceKey(Key[FrechetReference]):
    """Real statistics and factorisation for Fréchet distances (label: one class, intra-FID),
    kept in the run's store for every model of a suite."""

    kind: ClassVar[str] = "frechet_reference"
    extractor: str
    dataset: str
    split: str
    label: int | None = None


# a feature metric's options: FeatureMetricOptions or a subclass; the default is what a
# subclass with no type argument gets, for mypy and (bench.core.registry) at run time
FO = TypeVar("FO", bound=FeatureMetricOptions, default=FeatureMetricOptions)


class FeatureMetric(Metric[FO]):
    real_split = "train"

    def check(self) -> None:
        self.options.features.build().check()  # missing weights files (inception, vgg16)

    def used_options(self, dataset: Dataset) -> dict[str, Any]:
        n = self.options.num_samples
        return {**super().used_options(dataset), "num_samples": len(dataset.train_y) if n is None else n}

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        spec = self.options.features
        real = ctx.real_features(dataset, spec, self.real_split)
        fake = ctx.fake_features(generator, dataset, spec, self.options.num_samples)
        return self.score(real, fake, dataset, ctx)

    def score(self, real: Any, fake: Any, dataset: Dataset, ctx: Context) -> dict[str, float]:
        raise NotImplementedError
