"""Feature extractors (one registry) and the cache of real-data features."""

from bench.features.base import FeatureExtractor, FeatureSpec
from bench.registry import Registry

FEATURES: Registry = Registry(
    "features", ["bench.features.inception", "bench.features.timm_features", "bench.features.classifier"]
)

__all__ = ["FEATURES", "FeatureExtractor", "FeatureSpec"]
