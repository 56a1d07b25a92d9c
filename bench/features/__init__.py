"""Feature extractors (one registry) and the cache of real-data features."""

from bench.features.base import FEATURES, FeatureExtractor, FeatureSpec

__all__ = ["FEATURES", "FeatureExtractor", "FeatureSpec"]
