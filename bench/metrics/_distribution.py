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
from bench.infra.store import GeneratedFeaturesKey, Key
from bench.metrics.base import Context, Metric
from bench.metrics.functional import FrechetReference
from bench.metrics.functional.near_copies import NearCopies, near_copies
from bench.models.base import Generator
from bench.record.values import Value, diagnostic, reference


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


@dataclass(frozen=True)
class NearCopiesKey(Key[NearCopies]):
    """The near-copies check of one model's generated features against the training
    features: computed once per (stream, extractor, count), read by every feature metric."""

    kind: ClassVar[str] = "near_copies"
    fake: GeneratedFeaturesKey
    n: int


NEAR_COPIES_LEVEL = 0.05  # a board of honest models shows a copying flag at most this often
# Every feature metric on training features logs these: memorisation is checked on every
# board that has training images, with no metric asked for (bench.metrics.functional.near_copies)
NEAR_COPIES_VALUES: dict[str, Value] = {
    "near_copies": diagnostic(
        "target", fallback="near_copies_expected", aspect="memorisation",
        note="share of generated samples within the training images' own 5% nearest-neighbour "
        "radius; a fresh sample gets near_copies_expected"),
    "near_copies_expected": reference(
        note="the same share for held-back training images (the null rate, about 0.05)"),
    "near_copies_p": diagnostic(
        "higher", note="one-sided p of Fisher's exact test, near_copies vs near_copies_expected: "
        "the copying gate reads it (Bonferroni over the board at 5%)", gate="p", gate_at=NEAR_COPIES_LEVEL, gate_kind="copies",
        gate_note="more generated samples lie within the training images' own 5% "
        "nearest-neighbour radius than held-back training images do (Fisher's exact test): "
        "near-duplicates of the training (reference) images"),
}


# a feature metric's options: FeatureMetricOptions or a subclass; the default is what a
# subclass with no type argument gets, for mypy and (bench.core.registry) at run time
FO = TypeVar("FO", bound=FeatureMetricOptions, default=FeatureMetricOptions)


class FeatureMetric(Metric[FO]):
    real_split = "train"
    # checked beside every value on training features (near-copies of the training images)
    checks_copies: ClassVar[bool] = True

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.checks_copies and cls.real_split == "train":
            cls.values = {**cls.values, **NEAR_COPIES_VALUES}

    def check(self) -> None:
        self.options.features.build().check()  # missing weights files (inception, vgg16)

    def used_options(self, dataset: Dataset) -> dict[str, Any]:
        n = self.options.num_samples
        return {**super().used_options(dataset), "num_samples": len(dataset.train_y) if n is None else n}

    def compute(self, generator: Generator, dataset: Dataset, ctx: Context) -> dict[str, float]:
        spec = self.options.features
        real = ctx.real_features(dataset, spec, self.real_split)
        fake = ctx.fake_features(generator, dataset, spec, self.options.num_samples)
        return {**self.score(real, fake, dataset, ctx),
                **self.copies(generator, dataset, ctx, real, fake)}

    def copies(self, generator: Generator, dataset: Dataset, ctx: Context, real: Any,
               fake: Any) -> dict[str, float]:
        """The near-copies check on the features this cell already has (once per model,
        extractor and count, shared by the suite's feature metrics)."""
        if not (self.checks_copies and self.real_split == "train"):
            return {}
        stream, _ = ctx.stream(generator, dataset)
        key = NearCopiesKey(GeneratedFeaturesKey(stream, ctx.tags.get("features", "")), len(fake))
        r = ctx.store.get(key, lambda: near_copies(real, fake, seed=ctx.seed, device=ctx.device))
        return {"near_copies": r.share, "near_copies_expected": r.expected,
                "near_copies_p": r.p_value}

    def score(self, real: Any, fake: Any, dataset: Dataset, ctx: Context) -> dict[str, float]:
        raise NotImplementedError
