"""Classifier architectures (one registry) and the one training loop every metric uses."""

from bench.registry import Registry

CLASSIFIERS: Registry = Registry("classifiers", ["bench.classifiers.nets", "bench.classifiers.timm_nets"])

__all__ = ["CLASSIFIERS"]
